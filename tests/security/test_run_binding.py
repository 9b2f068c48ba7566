"""M3: a `workflow_run` titled `dispatch-run-N` binds run N only when it comes from run N's
repository, as a `workflow_dispatch` of its workflow file, after Dispatch dispatched it; the same
rule holds for a run bound through an agent's OIDC token."""

from __future__ import annotations

import pytest

from app.agents import runs
from tests.agents.loop import AUDIENCE, create_run
from tests.agents.test_lifecycle import start, workflow_run_payload
from tests.harness import AGENT_WORKFLOW


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


@pytest.fixture
async def unbound(github, project, deliver):
    github.dispatch_supports_run_details = False
    try:
        _, run = await start(github, project, deliver)
    finally:
        github.dispatch_supports_run_details = True
    return run


def imposter(project, run, **changes):
    payload = workflow_run_payload(project, run, "completed", "failure")
    payload["workflow_run"]["id"] = 31337
    payload["workflow_run"].update(changes.pop("workflow_run", {}))
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    "changes",
    [
        {"repository": {"id": 999, "full_name": "mallory/fork", "name": "fork"}},
        {"workflow_run": {"event": "push"}},
        {"workflow_run": {"event": "pull_request"}},
        {"workflow_run": {"path": ".github/workflows/evil.yml"}},
    ],
    ids=["other-repository", "push", "pull-request", "other-workflow"],
)
async def test_a_lookalike_workflow_run_neither_binds_nor_fails_the_run(
    github, project, deliver, unbound, changes
):
    await deliver("workflow_run", imposter(project, unbound, **changes))

    after = await runs.get(unbound.id)
    assert after.workflow_run_id is None
    assert after.state.value == "dispatched"


async def test_a_token_from_another_workflow_cannot_bind_the_run(
    client, oidc, github, project, unbound
):
    _, repository = project
    token = oidc.token(
        AUDIENCE,
        repository=repository["full_name"],
        repository_id=repository["id"],
        run_id=31337,
        workflow_file="evil.yml",
    )

    response = await client.post(
        f"/api/runs/{unbound.id}/events",
        json={"type": "started"},
        headers={"authorization": f"Bearer {token}"},
    )

    assert response.status_code == 403
    assert (await runs.get(unbound.id)).workflow_run_id is None


@pytest.mark.parametrize("action", ["in_progress", "completed"])
async def test_a_lookalike_does_not_bind_a_run_not_yet_dispatched(github, project, deliver, action):
    # Everything about it looks like Dispatch's — the run's repository, a workflow_dispatch of
    # the run's workflow, its title (someone ran the workflow by hand with run_id N) — but run N
    # still waits in Dispatch's queue: nothing was dispatched for it yet.
    queued = await create_run(github, project, state="queued", workflow_run_id=None)
    assert queued.dispatch_sent_at is None

    await deliver("workflow_run", imposter(project, queued, action=action))

    after = await runs.get(queued.id)
    assert after.workflow_run_id is None
    assert after.state.value == "queued"
    assert github.dispatches(project[1]) == []


async def test_a_lookalike_does_not_rebind_or_fail_a_run_bound_to_githubs_id(
    github, project, deliver
):
    # GitHub returned the workflow run's id at dispatch: that id is the run's, whatever else
    # carries its title.
    _, run = await start(github, project, deliver)
    assert run.workflow_run_id is not None and run.state.value == "dispatched"

    await deliver("workflow_run", imposter(project, run, action="in_progress"))
    await deliver("workflow_run", imposter(project, run))

    after = await runs.get(run.id)
    assert after.workflow_run_id == run.workflow_run_id
    assert after.state.value == "dispatched"
    assert await runs.by_workflow_run(31337) is None
