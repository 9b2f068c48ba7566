"""`dispatch` commands for tests, forked from a Python that has imported Dispatch once.

A test that runs `dispatch serve`, `dispatch worker` or a CLI command needs a process of its own
(signals, sockets, the embedded database's lifetime, exit codes), but starting a new interpreter
and importing Dispatch costs ~2 s of CPU each time: a quarter of the suite's CPU went there. So
each test process starts one launcher (`python -m tests.launcher`) that imports every module of
`app` and then, on request, forks: the child takes the request's environment, working directory,
arguments and output files, and runs `python -m app.cli` as `__main__`, exactly as a new
interpreter would from there (settings are read from the environment at run time; nothing in
`app` reads it at import). The child is a real process: its own pid, signals, exit status.

Protocol, one JSON line each way on the launcher's stdin/stdout: a request `{"argv", "env",
"cwd", "stdout", "stderr", "status"}` is answered `{"pid": N}`; when the child ends, the launcher
writes its exit code (negative: the signal, as `subprocess` reports it) to the `status` file. The
launcher exits when its stdin closes (its test process ended), and its children then get SIGTERM.

`DISPATCH_TESTS_FORK=0` runs every command as a new interpreter instead (`subprocess.Popen`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import pkgutil
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# What `dispatch serve` loads besides `app`: uvicorn's protocol, loop and lifespan choices.
EXTRA_MODULES = (
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
)


# ------------------------------------------------------------------------------ the launcher


def _preload() -> None:
    import app

    for module in pkgutil.walk_packages(app.__path__, "app."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in EXTRA_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()  # children share these pages instead of copying them on their first collection


def _serve() -> dict[str, Any] | None:
    """Answer requests until stdin closes (None), or return the request in a forked child."""
    children: dict[int, str] = {}
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.02)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _write_atomically(children.pop(pid), str(os.waitstatus_to_exitcode(status)))
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                return request
            children[pid] = request["status"]
            os.write(1, json.dumps({"pid": pid}).encode() + b"\n")


def _write_atomically(path: str, text: str) -> None:
    scratch = f"{path}.tmp"
    with open(scratch, "w") as file:
        file.write(text)
    os.replace(scratch, path)


def _become(request: dict[str, Any]) -> None:
    """In the forked child: take the request's place in the world, then run the command."""
    with contextlib.suppress(Exception):  # die with the launcher (Linux)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    if request["stderr"] is None:
        os.dup2(out, 2)
    else:
        os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["dispatch", *request["argv"]]
    runpy.run_module("app.cli", run_name="__main__", alter_sys=True)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    _preload()
    request = _serve()
    if request is not None:
        _become(request)  # the command's SystemExit ends the child as it would end `python`


# ------------------------------------------------------------------------- the test's side


class Launched:
    """A command started by the launcher, with the part of `subprocess.Popen` tests use."""

    def __init__(self, pid: int, status: Path) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status = status

    def poll(self) -> int | None:
        if self.returncode is None and self._status.exists():
            self.returncode = int(self._status.read_text())
            self._status.unlink()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never a pid that has been reaped (and could be reused)
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Launcher:
    """The launcher of one test process, started on first use."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._scratch = Path(tempfile.mkdtemp(prefix="dispatch-launched-"))
        self._count = 0

    def spawn(
        self,
        args: list[str],
        env: dict[str, str],
        stdout: Path,
        stderr: Path | None = None,
        cwd: Path = ROOT,
    ) -> Launched:
        """`python -m app.cli <args>` with `env`, output appended to `stdout` (and `stderr`, or
        both to `stdout`)."""
        for path in (stdout, stderr):
            if path is not None:
                path.touch()  # there before the command runs, as with Popen
        with self._lock:
            proc = self._started()
            assert proc.stdin is not None and proc.stdout is not None
            self._count += 1
            status = self._scratch / f"{self._count}.status"
            request = {
                "argv": args,
                "env": env,
                "cwd": str(cwd),
                "stdout": str(stdout),
                "stderr": None if stderr is None else str(stderr),
                "status": str(status),
            }
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
        if not answer:
            raise RuntimeError("the test launcher exited")
        return Launched(json.loads(answer)["pid"], status)

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.launcher"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
        return self._proc


_launcher: Launcher | None = None


def forking() -> bool:
    return os.environ.get("DISPATCH_TESTS_FORK", "1") != "0"


def spawn(
    args: list[str], env: dict[str, str], stdout: Path, stderr: Path | None = None
) -> Launched | subprocess.Popen[bytes]:
    """`dispatch <args>` as its own process: forked from the launcher, or (with
    `DISPATCH_TESTS_FORK=0`) a new interpreter."""
    global _launcher
    if not forking():
        with stdout.open("ab") as out:
            err = out if stderr is None else stderr.open("ab")
            try:
                return subprocess.Popen(
                    [sys.executable, "-m", "app.cli", *args],
                    env=env,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                if err is not out:
                    err.close()
    if _launcher is None:
        _launcher = Launcher()
    return _launcher.spawn(args, env, stdout, stderr)


if __name__ == "__main__":
    main()
