"""The alert pipeline's rules one by one: the summary comment keeps the count, the minimum event
count and the spawn delay hold agents back, and an error from a build older than the fix is not a
recurrence."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.db import engine
from app.remediation import fixes, pipeline
from tests.harness import drain
from tests.remediation.conftest import ALERTS, TOKEN, alert_settings


def billing_alert(count=7, release=None, order=48213):
    payload = json.loads((ALERTS / "grafana-firing.json").read_text())
    payload["alerts"] = [payload["alerts"][0]]
    alert = payload["alerts"][0]
    alert["values"]["A"] = count
    alert["labels"]["msg"] = (
        f"Failed to process payment for cus_Q8x7Lm2 (order {order}): card declined"
    )
    if release:
        alert["labels"]["release"] = release
    return payload


async def send(client, payload):
    response = await client.post(
        "/webhooks/grafana", json=payload, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202


async def the_error():
    async with engine.connection() as connection:
        return dict(await connection.fetchrow("SELECT * FROM alert_error"))


class TestSummary:
    @pytest.fixture
    def settings(self, tmp_path, github, oidc):
        return alert_settings(tmp_path, github, oidc)

    async def test_repeats_add_to_one_issue_and_its_summary_comment(
        self, rt, github, client, installed, clock
    ):
        _, repository = installed
        await send(client, billing_alert(count=7, order=10001))
        await drain(rt)
        await send(client, billing_alert(count=5, order=10002))
        await drain(rt)

        error = await the_error()
        assert error["event_count"] == 12
        assert len(github.calls_to("POST", r"^/repos/octo-org/widgets/issues$")) == 1
        summaries = [
            c
            for c in github.comments(repository, error["issue_number"])
            if "dispatch:alert-summary" in c["body"]
        ]
        assert len(summaries) == 1 and "**12 occurrences**" in summaries[0]["body"]

        # Within a minute, the next edit waits (a deferred job), it does not edit again now.
        await send(client, billing_alert(count=1, order=10003))
        await drain(rt)
        assert "**12 occurrences**" in github.comment(repository, summaries[0]["id"])["body"]
        async with engine.connection() as connection:
            deferred = await connection.fetchval(
                "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'alerts.summary' AND execute_after > now()"
            )
        assert deferred == 1


class TestMinimumEvents:
    @pytest.fixture
    def settings(self, tmp_path, github, oidc):
        return alert_settings(tmp_path, github, oidc, min_event_count_to_spawn=10)

    async def test_an_agent_waits_for_enough_events(self, rt, github, client, installed):
        _, repository = installed
        await send(client, billing_alert(count=7, order=10001))
        await drain(rt)
        assert github.dispatches(repository) == []
        async with engine.connection() as connection:
            reason = await connection.fetchval(
                "SELECT reason FROM spawn_decision WHERE gate = 'min_events'"
            )
        assert reason == "7 of the 10 events needed to spawn"

        await send(client, billing_alert(count=3, order=10002))
        await drain(rt)
        assert [d["inputs"]["mode"] for d in github.dispatches(repository)] == ["auto_investigate"]


class TestSpawnDelay:
    @pytest.fixture
    def settings(self, tmp_path, github, oidc):
        return alert_settings(tmp_path, github, oidc, spawn_delay_minutes=30)

    async def test_the_delay_is_a_scheduled_job_not_the_next_alert(
        self, rt, github, client, installed, clock
    ):
        _, repository = installed
        await send(client, billing_alert())
        await drain(rt)

        assert github.dispatches(repository) == []
        async with engine.connection() as connection:
            later = await connection.fetchval(
                "SELECT execute_after - now() FROM pgqueuer WHERE entrypoint = 'alerts.consider_spawn'"
            )
        assert timedelta(minutes=29) < later <= timedelta(minutes=30)

        clock.advance(minutes=31)  # what the scheduled job sees when it runs
        error = await the_error()
        await pipeline.consider_spawn(rt, error["fingerprint"])
        await drain(rt)
        assert len(github.dispatches(repository)) == 1


class TestOlderReleases:
    @pytest.fixture
    def settings(self, tmp_path, github, oidc):
        return alert_settings(tmp_path, github, oidc)

    async def test_an_error_from_a_build_before_the_fix_is_not_a_recurrence(
        self, rt, github, client, installed, clock
    ):
        installation, repository = installed
        old_build = github.push_commit(repository, message="before the fix")
        await send(client, billing_alert())
        await drain(rt)
        error = await the_error()
        merge = github.push_commit(repository, message="the fix")
        new_build = github.push_commit(repository, message="after the fix")
        async with engine.connection() as connection:
            await connection.execute(
                "INSERT INTO fix_attempt (fingerprint, installation_id, repository, issue_number, pr_number, "
                "merge_commit_sha, merged_at, window_start, deadline) VALUES ($1, $2, 'octo-org/widgets', $3, 9, $4, $5, $5, $6)",
                error["fingerprint"],
                installation,
                error["issue_number"],
                merge,
                clock.now(),
                clock.now() + timedelta(hours=48),
            )

        clock.advance(hours=1)
        await send(client, billing_alert(release=old_build, order=10002))
        await drain(rt)
        assert (await fixes.monitoring(error["fingerprint"])) is not None  # still watching

        await send(client, billing_alert(release=new_build, order=10003))
        await drain(rt)
        assert (await fixes.monitoring(error["fingerprint"])) is None  # failed
        assert "dispatch/fix-failed" in github.label_names(repository, error["issue_number"])
