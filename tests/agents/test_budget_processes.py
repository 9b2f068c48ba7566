"""A spawn budget holds across processes: two `dispatch worker` processes (as on two machines)
take fifty `/dispatch investigate` commands against a daily budget of ten, and exactly ten
agents start; the forty others are told the budget is spent. A lock or counter kept in one
process's memory would let each process spend the budget once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.db import engine
from tests.agents.loop import comment
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW, ServerProcess, settings_env
from tests.webhooks import signed

pytestmark = pytest.mark.slow

COMMANDS = 50
BUDGET = 10


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        daily_spawn_budget_investigate=BUDGET,
        max_concurrent_spawns_investigate=100,
        worker_poll_seconds=0.2,
        worker_concurrency=10,
        job_heartbeat_seconds=2,
    )


@pytest.fixture
def workers(settings, database, tmp_path: Path):
    env = settings_env(settings, database)
    started = [
        ServerProcess(env, command="worker").start(tmp_path / f"worker-{i}.log") for i in (1, 2)
    ]
    try:
        yield started
    finally:
        for process in started:
            process.stop()


async def _fetchval(sql: str):  # type: ignore[no-untyped-def]
    async with engine.connection() as connection:
        return await connection.fetchval(sql)


async def _until(sql: str, expected: object, what: str, workers: list[ServerProcess]) -> None:
    deadline = time.monotonic() + 90
    while (value := await _fetchval(sql)) != expected:
        for process in workers:
            if process.proc is not None and process.proc.poll() is not None:
                raise AssertionError(
                    f"a worker exited while waiting for {what}:\n{process.output()}"
                )
        if time.monotonic() > deadline:
            logs = "\n".join(process.output()[-3000:] for process in workers)
            raise AssertionError(f"{what}: still {value!r}, not {expected!r}\n{logs}")
        await asyncio.sleep(0.1)


async def test_two_worker_processes_spend_one_budget_once(github, repo, client, workers):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    async with engine.connection() as connection:
        # Which worker took each command (pgqueuer forgets finished jobs): test-only bookkeeping.
        await connection.execute(
            "CREATE TABLE picked_by (manager uuid);"
            "CREATE FUNCTION note_picker() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "  IF NEW.status = 'picked' AND NEW.entrypoint = 'commands.run' THEN "
            "    INSERT INTO picked_by VALUES (NEW.queue_manager_id); END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER note_picker AFTER UPDATE ON pgqueuer "
            "  FOR EACH ROW EXECUTE FUNCTION note_picker();"
        )
    await _until("SELECT count(DISTINCT pid) FROM worker_heartbeat", 2, "both workers up", workers)

    issues = [github.add_issue(repository, f"bug {i}") for i in range(COMMANDS)]
    for issue in issues:
        body, headers = signed(
            github.webhook_secret,
            "issue_comment",
            comment(github, repo, issue["number"], "/dispatch investigate"),
        )
        response = await client.post("/webhooks/github", content=body, headers=headers)
        assert response.status_code == 202, response.text

    await _until("SELECT count(*) FROM run", COMMANDS, "a run per command", workers)
    await _until(
        "SELECT count(*) FROM run WHERE state NOT IN ('refused', 'dispatched')",
        0,
        "every run dispatched or refused",
        workers,
    )
    await _until(
        "SELECT count(*) FROM pgqueuer WHERE status = 'picked' "
        "OR (status = 'queued' AND execute_after <= now())",
        0,
        "no job due",
        workers,
    )

    assert await _fetchval("SELECT count(DISTINCT manager) FROM picked_by") == 2, (
        "both processes took commands"
    )
    assert len(github.dispatches(repository)) == BUDGET
    assert await _fetchval("SELECT count(*) FROM run WHERE state = 'dispatched'") == BUDGET
    assert await _fetchval("SELECT spawned FROM spawn_budget") == BUDGET
    refusals = [
        body
        for issue in issues
        for body in github.bot_comments(repository, issue["number"])
        if "Not started" in body
    ]
    assert len(refusals) == COMMANDS - BUDGET
    assert all(f"budget is spent ({BUDGET} of {BUDGET})" in body for body in refusals)
