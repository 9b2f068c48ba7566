"""The worker, as `dispatch worker` runs it and as `dispatch serve` runs it beside its web server:
in a process of its own by default, so requests and jobs each get a core and neither waits behind
the other's event loop (a flood of webhooks no longer slows the jobs that answer commands, and
jobs no longer delay acknowledgements).

`serve` forks the worker once its start-up is done (the database is up, the code is loaded, no
thread is running), so the child starts in milliseconds and shares the embedded database the
parent started. The child has a session of its own (a terminal's Ctrl-C reaches `serve` alone,
which passes it on), stops when its parent is gone (a `serve` killed with SIGKILL leaves no
worker behind), and ends without the parent's exit handlers (the embedded database is the
parent's to release). The parent passes on each stop signal (the first: finish running jobs
within the grace; the second: hand them back now) and, once its own server has stopped, waits
for the child before it releases the database. A worker that ends while `serve` runs (it
crashed) stops `serve` too, with exit status 1, for its supervisor to restart both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import NoReturn

from app.cli.bootstrap import with_database
from app.cli.signals import STOP_SIGNALS, StopSignals, signals_blocked
from app.runtime import Runtime

log = logging.getLogger("app.cli")

# Where processes cannot be watched with a pidfd: how often the child looks for its parent,
# and the parent for its child.
WATCH_SECONDS = 0.5
# After the grace, how long `serve` waits for its worker before it kills it.
STRAGGLER_SECONDS = 10.0


def run_worker(
    rt: Runtime,
    dsn: str,
    stop: StopSignals,
    *,
    parent: int | None = None,
    pool_size: int = 5,
) -> None:
    """Run jobs and schedules until a stop signal (or, with `parent`, until that process is
    gone), then hand back what is still running and close the runtime. `pool_size`: its
    database connections, at most DATABASE_POOL_SIZE (a job holds one only briefly; few per
    `dispatch worker` let many workers fit in PostgreSQL's default of 100)."""
    from app.worker import build_worker

    settings = rt.settings
    grace = settings.shutdown_grace_seconds

    async def work() -> None:
        gc.collect()
        gc.freeze()  # start-up objects stay for the process's life; keep full collections short
        runner = build_worker(rt)
        loop = asyncio.get_running_loop()
        orphaned = None
        if parent is not None:

            def parent_gone(task: asyncio.Task[None]) -> None:
                if not task.cancelled():  # killed with it, as far as it can be: now
                    runner.stop(0)

            orphaned = asyncio.create_task(_until_gone(parent))
            orphaned.add_done_callback(parent_gone)
        try:
            with stop.handled_by(loop, lambda: runner.stop(grace), lambda: runner.stop(0)):
                await runner.run()
        finally:
            if orphaned is not None:
                orphaned.cancel()
            await rt.close()

    asyncio.run(with_database(dsn, settings, work, pool_size=pool_size))


async def _until_gone(parent: int) -> None:
    await ended(parent, lambda: os.getppid() == parent)
    log.warning("dispatch serve is gone: the worker stops")


async def ended(pid: int, running: Callable[[], bool]) -> None:
    """Return once process `pid` has ended: told by the kernel where it can (a pidfd), else
    by asking `running()` every WATCH_SECONDS."""
    try:
        fd = os.pidfd_open(pid) if running() else None
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # not Linux, or a kernel older than 5.3
        while running():  # noqa: ASYNC110 - nothing to wait on but the process table
            await asyncio.sleep(WATCH_SECONDS)
        return
    if fd is None:
        return
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    loop.add_reader(fd, gone.set)
    try:
        await gone.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class WorkerProcess:
    """`serve`'s worker child, seen from `serve`."""

    def __init__(self, pid: int, grace: float) -> None:
        self.pid = pid
        self.grace = grace
        self.returncode: int | None = None
        self._signals_sent = 0  # its first stop signal is the graceful one, the next hurries

    @classmethod
    def fork(cls, rt: Runtime, dsn: str, *, pool_size: int) -> WorkerProcess:
        """Start the worker from `serve`'s runtime (built, not used yet: the child gets a copy
        with nothing open) and database, with `pool_size` connections."""
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        with signals_blocked():  # a stop signal for the child waits for its own handler
            pid = os.fork()
            if pid == 0:
                _child(rt, dsn, parent, pool_size)
        log.info("worker process started", extra={"pid": pid})
        return cls(pid, rt.settings.shutdown_grace_seconds)

    def stop(self) -> None:
        """Stop it gracefully (running jobs finish within the grace); again: nothing more."""
        if self._signals_sent == 0:
            self._signal()

    def hurry(self) -> None:
        """Stop it now: its running jobs go back to the queue."""
        while self._signals_sent < 2:
            self._signal()

    def _signal(self) -> None:
        self._signals_sent += 1
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def poll(self) -> int | None:
        """Its exit status, once it has ended (without waiting)."""
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid == 0:
                    return None
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    async def watch(self, crashed: Callable[[int], None]) -> None:
        """Call `crashed` with its exit status if it ends before it was asked to stop."""
        await ended(self.pid, lambda: self.poll() is None)
        if self.poll() is not None and self._signals_sent == 0:
            crashed(self.returncode or 0)

    async def stopped(self) -> int:
        """Stop it and wait until it has ended: it has the grace and a little more, then it
        is killed. Its exit status."""
        self.stop()
        try:
            await asyncio.wait_for(
                ended(self.pid, lambda: self.poll() is None), self.grace + STRAGGLER_SECONDS
            )
        except TimeoutError:
            self.kill()
        return self.wait()

    def kill(self) -> None:
        log.error("the worker process did not stop in time", extra={"pid": self.pid})
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Wait (blocking) for it to end: the grace and a little more, then it is killed."""
        deadline = time.monotonic() + self.grace + STRAGGLER_SECONDS
        while self.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                deadline = float("inf")
            time.sleep(0.02)
        return self.returncode or 0


def _child(rt: Runtime, dsn: str, parent: int, pool_size: int) -> NoReturn:
    """The forked worker: never returns, and never runs the parent's exit handlers."""
    code = 1
    try:
        os.setsid()
        stop = StopSignals(rt.settings.shutdown_grace_seconds)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if os.getppid() == parent:
            run_worker(rt, dsn, stop, parent=parent, pool_size=pool_size)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("the worker process failed")
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
