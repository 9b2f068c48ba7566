"""Nothing is lost on a crash: 300 deliveries, a worker killed with SIGKILL mid-way, a restart,
and every delivery is processed exactly once (its handler's audit row counted in Postgres)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from app.db import engine
from tests.harness import ServerProcess, settings_env
from tests.webhooks import example, signed

pytestmark = pytest.mark.slow

TOTAL = 300


async def counts() -> tuple[int, int]:
    async with engine.connection() as connection:
        processed = await connection.fetchval(
            "SELECT count(*) FROM delivery WHERE state = 'processed'"
        )
        audited = await connection.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'installation_repositories.added'"
        )
    return processed, audited


async def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_sigkilled_worker_loses_and_duplicates_nothing(
    rt, settings, database, github, client, tmp_path
):
    installation = github.add_installation()
    payload = example("installation_repositories/added")
    payload["installation"]["id"] = installation
    payload["repositories_added"] = []  # the handler's work is its journal and audit rows
    guids = [str(uuid.uuid4()) for _ in range(TOTAL)]
    for guid in guids:
        body, headers = signed(github.webhook_secret, "installation_repositories", payload, guid)
        response = await client.post("/webhooks/github", content=body, headers=headers)
        assert response.status_code == 202

    env = settings_env(settings, database)
    env.update(WORKER_CONCURRENCY="1", JOB_HEARTBEAT_SECONDS="2", LOG_LEVEL="WARNING")
    worker = ServerProcess(env, command="worker").start(tmp_path / "worker-1.log")
    try:
        started = await wait_for(lambda: _at_least(20), timeout=60)
        assert started, worker.output()[-3000:]
        worker.kill()
    finally:
        worker.kill()
    processed_at_kill, _ = await counts()
    assert 0 < processed_at_kill < TOTAL, "the kill must land mid-way to prove anything"

    again = ServerProcess(env, command="worker").start(tmp_path / "worker-2.log")
    try:
        finished = await wait_for(lambda: _at_least(TOTAL), timeout=120)
        assert finished, again.output()[-3000:]
    finally:
        again.stop()

    async with engine.connection() as connection:
        per_guid = await connection.fetch(
            "SELECT delivery_guid, count(*) AS n FROM audit_log "
            "WHERE action = 'installation_repositories.added' GROUP BY delivery_guid"
        )
        states = await connection.fetch("SELECT state, count(*) AS n FROM delivery GROUP BY state")
    assert {row["delivery_guid"] for row in per_guid} == set(guids)
    assert {row["n"] for row in per_guid} == {1}
    assert {row["state"]: row["n"] for row in states} == {"processed": TOTAL}


async def _at_least(n: int) -> bool:
    processed, _ = await counts()
    return processed >= n
