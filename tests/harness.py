"""Running Dispatch for tests: in-process (uvicorn on a loopback port, sharing the test's event
loop, clock and engine) or as a real `dispatch serve` subprocess; draining the job queue; and
letting time pass for the app (its clock and its queue's delays) without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
import uvicorn

from app.clock import MovableClock
from app.config import Settings
from app.events import Router
from app.github import tls
from app.runtime import Runtime
from app.server import create_app
from app.worker import build_worker
from tests import launcher

_LISTENING = re.compile(r"listening on (http://\S+)")

# The agent workflow Dispatch ships, as a repository holds it (the fake GitHub reads its inputs).
AGENT_WORKFLOW = (Path(__file__).parents[1] / "workflows" / "dispatch-agent.yml").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def drain(
    rt: Runtime, *, concurrency: int = 4, timeout: float = 60, router: Router | None = None
) -> None:
    """Run jobs until none is due: jobs deferred into the future (a summary edit in a minute, a
    retry with backoff) are left for later, as a real worker would leave them."""
    from app.db import engine

    worker = build_worker(rt, router, concurrency=concurrency)
    task = asyncio.create_task(worker.run(schedules=False))
    deadline = time.monotonic() + timeout
    idle_polls = 0
    try:
        while idle_polls < 3:
            if task.done():
                task.result()
                raise RuntimeError("the worker stopped while draining")
            if time.monotonic() > deadline:
                raise TimeoutError("jobs still due after the drain timeout")
            await asyncio.sleep(0.01)
            async with engine.connection() as connection:
                due = await connection.fetchval(
                    "SELECT count(*) FROM pgqueuer WHERE status = 'picked' "
                    "OR (status = 'queued' AND execute_after <= now())"
                )
            idle_polls = idle_polls + 1 if due == 0 and worker.running.is_set() else 0
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)


async def fast_forward(clock: MovableClock | None = None, **delta: float) -> None:
    """Let `delta` (`minutes=5`, `hours=3` …) pass for the app at once: its clock moves (and with
    it the fake GitHub's, when the test handed it over), and every queued job comes `delta`
    closer to due. A retry that waits for a rate limit's reset stays put until the reset."""
    seconds = timedelta(**delta).total_seconds()
    if clock is not None:
        clock.advance(**delta)
    from app.db import engine

    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE pgqueuer SET execute_after = execute_after - make_interval(secs => $1) "
            "WHERE status = 'queued'",
            seconds,
        )


class _InProcessServer(uvicorn.Server):
    """uvicorn as `serve_in_process` runs it: it stops as soon as it is asked to, not at its
    next 0.1 s tick, and its shutdown looks every few milliseconds (not every 0.1 s) whether
    the connections and requests it waits for are done. What it waits for, and in which order,
    is uvicorn's."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_requested = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers
        await self.stop_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


@contextlib.asynccontextmanager
async def serve_in_process(
    rt: Runtime, dsn: str, *, worker: bool = True, port: int = 0
) -> AsyncIterator[str]:
    """The real app on a loopback port (one the system chooses unless given); yields its base
    URL once the server has bound it."""
    config = uvicorn.Config(
        create_app(rt, dsn=dsn, run_worker=worker),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = _InProcessServer(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.002)
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        await _wait_ready(base, task)
        yield base
    finally:
        server.stop_requested.set()
        await asyncio.wait_for(task, timeout=15)


async def _wait_ready(base: str, task: asyncio.Task | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(verify=tls.context()) as client:
        while time.monotonic() < deadline:
            if task is not None and task.done():
                task.result()
                raise RuntimeError("server exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{base} not ready after {timeout}s")


def settings_env(settings: Settings, dsn: str) -> dict[str, str]:
    """The environment a `dispatch` subprocess needs to match `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DISPATCH_"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env["DATABASE_URL"] = dsn
    return env


class CliResult(NamedTuple):
    code: int
    out: str
    err: str

    def ok(self) -> str:
        """stdout, once the command has exited 0 (else the test fails with its output)."""
        assert self.code == 0, f"dispatch exited {self.code}:\n{self.out}{self.err}"
        return self.out


async def dispatch_cli(env: dict[str, str], *args: str, timeout: float = 120) -> CliResult:
    """`dispatch <args>` as its own process, with `env`, to its end."""
    with tempfile.TemporaryDirectory(prefix="dispatch-cli-") as scratch:
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        process = launcher.spawn(list(args), env, out, err)
        deadline = time.monotonic() + timeout
        while (code := process.poll()) is None:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"dispatch {' '.join(args)} still running after {timeout}s")
            await asyncio.sleep(0.01)
        return CliResult(code, out.read_text(), err.read_text())


class ServerProcess:
    """`dispatch serve` (or `dispatch worker`) as a child process. A server listens on a port the
    system chooses (`--port 0`, unless `port` is given) and names it once bound: `wait_ready`
    waits for that line, so `url` is never another test's server that took the port first."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        command: str = "serve",
        args: tuple[str, ...] = (),
        port: int = 0,
    ):
        self.env = env
        self.command = command
        self.args = args
        self.port = port
        self.proc: launcher.Launched | subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log_start = 0
        self._bound: str | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"http://127.0.0.1:{self.port}"
        if self._bound is None:
            raise RuntimeError("the server's port is known once wait_ready() has returned")
        return self._bound

    def start(self, log_path: Path) -> ServerProcess:
        self.log_path = log_path
        self._log_start = log_path.stat().st_size if log_path.exists() else 0
        args = [self.command, *self.args]
        if self.command == "serve":
            args += ["--port", str(self.port)]
        self.proc = launcher.spawn(args, self.env, log_path)
        return self

    async def wait_ready(self, timeout: float = 40) -> None:
        if self.command != "serve":
            return
        deadline = time.monotonic() + timeout
        while self._bound is None:
            assert self.proc is not None and self.log_path is not None
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                bound = _LISTENING.search(log.read().decode(errors="replace"))
            if bound:
                self._bound = bound.group(1)
            elif self.proc.poll() is not None:
                raise RuntimeError(f"dispatch serve exited during start-up:\n{self.output()}")
            elif time.monotonic() > deadline:
                raise TimeoutError(f"dispatch serve not listening after {timeout}s")
            else:
                await asyncio.sleep(0.05)
        await _wait_ready(self._bound, timeout=max(deadline - time.monotonic(), 1))

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""
