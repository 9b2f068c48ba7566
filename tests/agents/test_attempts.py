"""Workflow re-runs are attempts of the same run: GitHub's "Re-run jobs" keeps the workflow run
id and raises `run_attempt`. The newest attempt reports (older ones get 409), its log is kept
apart from the earlier attempts' (each starts at seq 1 again), the viewer shows the attempts in
order, and a run the first attempt ended runs again."""

from __future__ import annotations

import asyncio

import pytest

from app.agents import kill_switches, runs
from app.agents.viewer import event_cursor
from app.db import engine
from app.stream.links import viewer_token
from app.tokens import service as tokens
from tests.agents.loop import AUDIENCE, SSEReader, comment
from tests.agents.test_lifecycle import workflow_run_payload
from tests.harness import AGENT_WORKFLOW, drain

FULL_NAME = "octo-org/widgets"


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


async def start(github, project, deliver) -> tuple[int, runs.Run]:
    _, repository = project
    issue = github.add_issue(repository, "bug", labels=["status/ready"])
    await deliver(
        "issue_comment", comment(github, project, issue["number"], "/dispatch investigate")
    )
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    assert run.workflow_run_id is not None
    return issue["number"], run


def job(oidc, project, run, attempt: int) -> dict[str, str]:
    """The headers of one workflow run attempt's Actions job (its OIDC token)."""
    _, repository = project
    token = oidc.token(
        AUDIENCE,
        repository=repository["full_name"],
        repository_id=repository["id"],
        run_id=run.workflow_run_id,
        run_attempt=attempt,
    )
    return {"authorization": f"Bearer {token}"}


async def log(client, run, headers, seq: int, data: str) -> dict:
    response = await client.post(
        f"/api/runs/{run.id}/log", json={"seq": seq, "data": data}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def stored_log(run_id: int) -> list[tuple[int, int, str]]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT attempt, seq, data FROM log_chunk WHERE run_id = $1 ORDER BY attempt, seq",
            run_id,
        )
    return [(r["attempt"], r["seq"], r["data"]) for r in rows]


COMPLETED = {
    "type": "completed",
    "outcome": "investigation_complete",
    "summary": "found it",
    "cost_usd": 0.5,
    "turns": 3,
}


async def test_a_rerun_reports_as_a_new_attempt_with_a_log_of_its_own(
    rt, client, github, oidc, project, deliver
):
    number, run = await start(github, project, deliver)
    first = job(oidc, project, run, 1)
    await client.post(f"/api/runs/{run.id}/events", json={"type": "started"}, headers=first)
    await log(client, run, first, 1, "attempt one, line 1\n")
    await log(client, run, first, 2, "attempt one, line 2\n")
    await deliver("workflow_run", workflow_run_payload(project, run, "completed", "failure"))
    assert (await runs.get(run.id)).state.value == "failed"

    # Someone presses "Re-run jobs": attempt 2 of the same workflow run.
    second = job(oidc, project, run, 2)
    brief = await client.get(f"/api/runs/{run.id}/brief", headers=second)
    stream = await client.post(f"/api/runs/{run.id}/stream-token", headers=second)
    assert (brief.status_code, stream.status_code) == (200, 201)
    assert stream.json()["run_attempt"] == 2
    streaming = {"authorization": f"Bearer {stream.json()['token']}"}
    assert (await log(client, run, streaming, 1, "attempt two, line 1\n"))["attempt"] == 2
    await log(client, run, streaming, 2, "attempt two, line 2\n")

    again = await runs.get(run.id)
    assert (again.state.value, again.attempt, again.finished_at) == ("running", 2, None)
    assert await stored_log(run.id) == [
        (1, 1, "attempt one, line 1\n"),
        (1, 2, "attempt one, line 2\n"),
        (2, 1, "attempt two, line 1\n"),
        (2, 2, "attempt two, line 2\n"),
    ]
    # The read API pages through the attempts in order, each chunk naming its attempt.
    reader = {"authorization": f"Bearer {await tokens.create('ci', 'read', [FULL_NAME])}"}
    page = await client.get(f"/api/runs/{run.id}/log", params={"limit": 3}, headers=reader)
    assert [(c["attempt"], c["seq"]) for c in page.json()["chunks"]] == [(1, 1), (1, 2), (2, 1)]
    cursor = {"after": page.json()["next_after"], "attempt": page.json()["next_attempt"]}
    rest = await client.get(f"/api/runs/{run.id}/log", params=cursor, headers=reader)
    assert [c["data"] for c in rest.json()["chunks"]] == ["attempt two, line 2\n"]
    assert rest.json()["attempt"] == 2
    await drain(rt)
    labels = github.label_names(project[1], number)
    assert "status/in-progress" in labels and "agent/claude" in labels
    status = next(c for c in github.bot_comments(project[1], number) if f"run:{run.id}" in c)
    assert "running" in status and "| attempt | 2" in status

    # The first attempt is over: its reports are refused, whatever it holds.
    late_event = await client.post(
        f"/api/runs/{run.id}/events", json={"type": "progress", "message": "x"}, headers=first
    )
    late_log = await client.post(
        f"/api/runs/{run.id}/log", json={"seq": 3, "data": "x"}, headers=first
    )
    assert (late_event.status_code, late_log.status_code) == (409, 409)
    assert "superseded by attempt 2" in late_event.json()["error"]

    done = await client.post(f"/api/runs/{run.id}/events", json=COMPLETED, headers=second)
    assert done.status_code == 202
    ended = await runs.get(run.id)
    assert (ended.state.value, ended.cost_usd, ended.turns) == ("succeeded", 0.5, 3)


async def test_a_late_end_of_an_older_attempt_does_not_end_the_newer_one(
    client, github, oidc, project, deliver
):
    _, run = await start(github, project, deliver)
    await client.post(
        f"/api/runs/{run.id}/events", json={"type": "started"}, headers=job(oidc, project, run, 2)
    )

    payload = workflow_run_payload(project, run, "completed", "failure")
    payload["workflow_run"]["run_attempt"] = 1
    await deliver("workflow_run", payload)
    assert (await runs.get(run.id)).state.value == "running"

    payload["workflow_run"]["run_attempt"] = 2
    await deliver("workflow_run", payload)
    assert (await runs.get(run.id)).state.value == "failed"


async def test_the_workflow_run_webhook_follows_a_rerun(github, project, deliver):
    _, run = await start(github, project, deliver)
    await deliver("workflow_run", workflow_run_payload(project, run, "completed", "cancelled"))
    assert (await runs.get(run.id)).state.value == "cancelled"

    payload = workflow_run_payload(project, run, "requested")
    payload["workflow_run"]["run_attempt"] = 2
    await deliver("workflow_run", payload)

    again = await runs.get(run.id)
    assert (again.state.value, again.attempt) == ("running", 2)


async def test_a_rerun_cannot_restart_a_run_while_the_kill_switch_is_on(
    client, github, oidc, project, deliver
):
    _, run = await start(github, project, deliver)
    await deliver("workflow_run", workflow_run_payload(project, run, "completed", "failure"))
    await kill_switches.set_kill_switch(True, installation_id=None, reason="incident", by="ops")

    refused = await client.get(f"/api/runs/{run.id}/brief", headers=job(oidc, project, run, 2))

    assert refused.status_code == 409
    assert "kill switch" in refused.json()["error"]
    stays = await runs.get(run.id)
    assert (stays.state.value, stays.attempt) == ("failed", 1)


async def test_the_viewer_shows_attempts_in_order_and_resumes_inside_one(rt, client, run_with_log):
    run = run_with_log
    url = f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"

    whole = SSEReader(url).start()
    resumed = SSEReader(url, headers={"Last-Event-ID": "1:2"}).start()
    old_style = SSEReader(url, headers={"Last-Event-ID": "1"}).start()
    for reader in (whole, resumed, old_style):
        await asyncio.wait_for(reader.ended.wait(), 10)

    assert whole.attempts() == [(1, 1, "a\n"), (1, 2, "b\n"), (2, 1, "c\n"), (2, 2, "d\n")]
    assert [d for e, _, d in whole.events if e == "attempt"] == ["1", "2"]
    assert resumed.attempts() == [(2, 1, "c\n"), (2, 2, "d\n")]
    assert [d for e, _, d in resumed.events if e == "attempt"] == ["2"]
    assert old_style.attempts() == [(1, 2, "b\n"), (2, 1, "c\n"), (2, 2, "d\n")]

    page = await client.get(f"/runs/{run.id}?token={viewer_token(rt, run.id, run.viewer_key)}")
    assert page.status_code == 200 and "attempt 2" in page.text


async def test_a_live_viewer_moves_on_to_the_next_attempt(rt, client, github, repo):
    from app.stream import chunks
    from tests.agents.loop import create_run

    run = await create_run(github, repo, state="running", workflow_run_id=7002)
    await chunks.append(run.id, 1, "a\n")
    url = f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
    viewer = SSEReader(url).start()
    await asyncio.wait_for(viewer.opened.wait(), 10)
    await asyncio.sleep(0.2)

    await chunks.append(run.id, 2, "b\n")
    await runs.update(run.id, attempt=2)
    await chunks.append(run.id, 1, "c\n", attempt=2)
    await chunks.append(run.id, 2, "d\n", attempt=2)
    await chunks.announce_end(run.id, "succeeded")
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert viewer.attempts() == [(1, 1, "a\n"), (1, 2, "b\n"), (2, 1, "c\n"), (2, 2, "d\n")]
    assert [d for e, _, d in viewer.events if e == "attempt"] == ["1", "2"]


@pytest.fixture
async def run_with_log(github, repo):
    from app.stream import chunks
    from tests.agents.loop import create_run

    run = await create_run(github, repo, state="running", workflow_run_id=7001)
    for attempt, seq, data in ((1, 1, "a\n"), (1, 2, "b\n"), (2, 1, "c\n"), (2, 2, "d\n")):
        await chunks.append(run.id, seq, data, attempt=attempt)
    return await runs.update(run.id, attempt=2, state="failed")


@pytest.mark.parametrize(
    ("header", "cursor"),
    [("2:17", (2, 17)), ("17", (1, 17)), ("", (1, 0)), ("x:1", (1, 0)), ("0:3", (1, 3))],
)
def test_last_event_ids_carry_attempt_and_seq(header, cursor):
    assert event_cursor(header) == cursor
