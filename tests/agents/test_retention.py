"""Run logs are dropped RUN_LOG_RETENTION_DAYS after the run ended (by the app's clock) while the
run, its events, cost and summary stay and the viewer says the log expired; active runs keep
their logs; spawn decisions are forgotten after their own window unless still in force."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.agents import lifecycle, runs, spawn_decisions
from app.agents.events import Completed
from app.agents.gates import Decision
from app.db import engine
from app.installations import service as installations
from app.retention import service as retention
from app.stream import chunks
from app.stream.links import viewer_token
from app.tokens import service as tokens
from tests.agents.loop import SSEReader, create_run


async def finish(rt, run, summary: str = "found it"):
    done = Completed(outcome="completed", summary=summary, cost_usd=0.42, turns=7)
    return await lifecycle.apply(rt, run, done)


async def log_of(run_id: int) -> list[int]:
    return [chunk.seq for chunk in await chunks.since(run_id, 0)]


async def test_logs_expire_after_the_run_ended_and_the_run_stays(rt, clock, github, repo):
    ended = await create_run(github, repo, state="running", workflow_run_id=1)
    active = await create_run(github, repo, state="running", workflow_run_id=2)
    for run in (ended, active):
        for seq in (1, 2, 3):
            await chunks.append(run.id, seq, f"line {seq}\n")
    await finish(rt, ended)
    clock.advance(days=2)
    recent = await create_run(github, repo, state="running", workflow_run_id=3)
    await chunks.append(recent.id, 1, "recent\n")
    await finish(rt, recent)

    clock.advance(days=28, minutes=1)  # `ended` ended 30 days + 1 minute ago, `recent` 28 days
    report = await retention.prune(rt)

    assert await log_of(ended.id) == []
    assert await log_of(recent.id) == [1]
    assert await log_of(active.id) == [1, 2, 3]  # still running, 30 days on: kept
    kept = await runs.get(ended.id)
    assert kept.log_expired_at is not None
    assert (kept.state, kept.summary, kept.cost_usd, kept.turns) == (
        "succeeded",
        "found it",
        0.42,
        7,
    )
    async with engine.connection() as connection:
        events = await connection.fetchval(
            "SELECT count(*) FROM run_event WHERE run_id = $1", ended.id
        )
    assert events == 1
    assert next(p.rows for p in report.pruned if p.what == "run log chunks") == 3
    assert (await runs.get(recent.id)).log_expired_at is None


async def test_the_viewer_says_the_log_has_expired(rt, clock, client, github, repo):
    installation, repository = repo
    # A private repository: its viewer links outlive the run (a public one's end with it).
    await installations.upsert_installation({"id": installation, "account": {"login": "o"}})
    await installations.add_repositories(installation, [{**repository, "private": True}])
    run = await create_run(github, repo, state="running", workflow_run_id=1)
    await chunks.append(run.id, 1, "secret sauce\n")
    await finish(rt, run, summary="the cache was stale")
    clock.advance(days=31)
    await retention.prune(rt)
    token = viewer_token(rt, run.id, run.viewer_key)

    page = await client.get(f"/runs/{run.id}", params={"token": token})
    viewer = SSEReader(f"{client.base_url}/runs/{run.id}/stream?token={token}").start()
    await asyncio.wait_for(viewer.ended.wait(), 10)

    assert page.status_code == 200
    assert "The log of this run has expired" in page.text and "30 days" in page.text
    assert "the cache was stale" in page.text
    assert [(event, data) for event, _, data in viewer.events] == [
        ("expired", f"{(await runs.get(run.id)).log_expired_at:%Y-%m-%d}"),
        ("end", "succeeded"),
    ]


async def test_an_expired_log_takes_no_more_chunks(rt, clock, client, github, repo):
    run = await create_run(github, repo, state="running", workflow_run_id=1)
    await finish(rt, run)
    clock.advance(days=31)
    await retention.prune(rt)
    agent = await tokens.create("agent", "agent", [])

    posted = await client.post(
        f"/api/runs/{run.id}/log",
        json={"seq": 9, "data": "late\n"},
        headers={"authorization": f"Bearer {agent}"},
    )

    assert posted.status_code == 409 and "expired" in posted.json()["error"]
    assert await log_of(run.id) == []


async def test_spawn_decisions_are_forgotten_unless_still_in_force(rt, clock, github, repo):
    run = await create_run(github, repo, state="running", workflow_run_id=1)
    now = rt.clock.now()
    await spawn_decisions.record(run, Decision.allow())
    await spawn_decisions.record(
        run,
        Decision(False, "daily_spawn_budget", "budget spent", clears_at=now + timedelta(days=60)),
    )
    await spawn_decisions.record(run, Decision(False, "concurrency", "busy", clears_at=now))
    clock.advance(days=30, minutes=1)  # decisions are stamped by the database, a moment ago

    await retention.prune(rt)

    async with engine.connection() as connection:
        left = await connection.fetch("SELECT gate FROM spawn_decision WHERE run_id = $1", run.id)
    assert [row["gate"] for row in left] == ["daily_spawn_budget"]
