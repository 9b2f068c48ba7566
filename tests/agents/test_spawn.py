"""The one way to start a run: the run and the job that dispatches it exist together or not at
all, so a worker that dies between creating a run and dispatching it never leaves the run stuck
in `queued` — another worker dispatches it (or the gates refuse it with a reason)."""

from __future__ import annotations

import pytest

from app.agents import kill_switches, runs, spawn
from app.agents.runs import NewRun, RunState, Trigger
from app.db import engine
from app.modes import Mode
from tests.harness import AGENT_WORKFLOW, drain


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    return repo


def new_run(github, project, **changes) -> NewRun:
    installation, repository = project
    values = {
        "installation_id": installation,
        "repository": repository["full_name"],
        "repository_id": repository["id"],
        "issue_number": github.add_issue(repository, "Crash on save")["number"],
        "mode": Mode.INVESTIGATE,
        "trigger": Trigger.ALERT,
    }
    values.update(changes)
    return NewRun(**values)


async def dispatch_jobs() -> list[str]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT status::text FROM pgqueuer WHERE entrypoint = 'runs.dispatch'"
        )
    return [row["status"] for row in rows]


async def test_a_run_that_is_not_committed_leaves_no_job_behind(rt, github, project):
    with pytest.raises(RuntimeError):
        async with engine.transaction():
            await spawn.request_run(new_run(github, project))
            raise RuntimeError("the worker died before its transaction committed")

    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM run") == 0
    assert await dispatch_jobs() == []


async def test_a_run_whose_requester_died_is_dispatched_by_the_next_worker(rt, github, project):
    _, repository = project
    run = await spawn.request_run(new_run(github, project))
    assert isinstance(run, runs.Run) and run.state is RunState.QUEUED
    # The process that asked for the run is gone; whatever worker comes next finds its job.
    assert await dispatch_jobs() == ["queued"]

    await drain(rt)

    assert (await runs.get(run.id)).state is RunState.DISPATCHED
    assert [d["inputs"]["run_id"] for d in github.dispatches(repository)] == [str(run.id)]


async def test_a_dispatch_whose_worker_died_mid_job_is_taken_over(rt, github, project):
    _, repository = project
    run = await spawn.request_run(new_run(github, project))
    # What a worker killed while dispatching leaves behind: the job picked, its heartbeat stale.
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE pgqueuer SET status = 'picked', heartbeat = now() - interval '1 hour' "
            "WHERE entrypoint = 'runs.dispatch'"
        )

    await drain(rt)

    assert (await runs.get(run.id)).state is RunState.DISPATCHED
    assert len(github.dispatches(repository)) == 1


async def test_a_refused_run_says_why_instead_of_waiting(rt, github, project):
    await kill_switches.set_kill_switch(True, installation_id=None, reason="incident", by="ops")
    run = await spawn.request_run(new_run(github, project))

    await drain(rt)

    refused = await runs.get(run.id)
    assert refused.state is RunState.REFUSED
    assert "kill switch" in (refused.refusal or "")


async def test_a_second_request_for_the_same_issue_is_refused_with_the_active_run(
    rt, github, project
):
    first = await spawn.request_run(new_run(github, project))
    second = await spawn.request_run(new_run(github, project, issue_number=first.issue_number))

    assert isinstance(second, spawn.Refusal)
    assert second.active is not None and second.active.id == first.id
    assert f"run #{first.id}" in second.reason
    assert await dispatch_jobs() == ["queued"]
