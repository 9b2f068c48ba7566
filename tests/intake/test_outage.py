"""A delivery that meets GitHub's rate limits or an outage is neither lost nor hurried: it waits
for the limit's reset (`retry-after`, `x-ratelimit-reset` on the app's clock) and keeps trying
for as long as GitHub is away, far past DELIVERY_MAX_ATTEMPTS."""

from __future__ import annotations

import pytest

from app.db import engine
from app.intake import journal
from tests.conftest import make_settings
from tests.harness import drain, fast_forward
from tests.issues.test_state import labeled
from tests.webhooks import signed


@pytest.fixture
def settings(tmp_path, github, oidc, clock):
    github.clock = clock
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        delivery_retry_base_seconds=60.0,
        github_max_retries=1,
    )


async def test_a_delivery_meeting_github_s_rate_limit_waits_for_its_reset(
    rt, github, repo, client, clock
):
    """It neither fails after DELIVERY_MAX_ATTEMPTS quick retries nor tries before the reset."""
    github.clock = clock
    issue = github.add_issue(repo[1], "t", labels=["status/backlog", "status/ready"])
    reset = github.exhaust_primary_limit(reset_in=600)
    body, headers = signed(
        github.webhook_secret, "issues", labeled(github, repo, issue, "status/ready")
    )
    guid = (await client.post("/webhooks/github", content=body, headers=headers)).json()["delivery"]

    await drain(rt)
    row = await journal.get(guid)
    assert (row.state, row.attempts) == ("queued", 1)
    assert "PrimaryRateLimitExceeded" in row.last_error
    async with engine.connection() as connection:
        due = await connection.fetchval(
            "SELECT extract(epoch FROM execute_after) FROM pgqueuer "
            "WHERE entrypoint = 'deliveries.process'"
        )
    # Due once the limit lifts on GitHub's clock (the app's clock, moved by the test).
    assert due >= reset - clock.offset.total_seconds() - 1
    assert [r.guid for r in await journal.recent(failed_only=True)] == [guid]

    await fast_forward(clock, minutes=9)
    await drain(rt)
    assert (await journal.get(guid)).attempts == 1  # not before the reset

    await fast_forward(clock, minutes=2)
    await drain(rt)
    row = await journal.get(guid)
    assert (row.state, row.attempts, row.last_error) == ("processed", 2, None)
    assert github.label_names(repo[1], issue["number"]) == ["status/ready"]


@pytest.mark.slow
async def test_a_delivery_keeps_trying_through_a_long_github_outage(
    rt, github, repo, client, clock
):
    issue = github.add_issue(repo[1], "t", labels=["status/backlog", "status/ready"])
    github.fail_next(None, 503)
    body, headers = signed(
        github.webhook_secret, "issues", labeled(github, repo, issue, "status/ready")
    )
    guid = (await client.post("/webhooks/github", content=body, headers=headers)).json()["delivery"]

    for _ in range(rt.settings.delivery_max_attempts + 3):
        await drain(rt)
        await fast_forward(clock, hours=1)
    row = await journal.get(guid)
    assert row.state == "queued" and row.attempts > rt.settings.delivery_max_attempts

    github.clear_faults()
    await drain(rt)
    assert (await journal.get(guid)).state == "processed"
    assert github.label_names(repo[1], issue["number"]) == ["status/ready"]


@pytest.mark.expect_failed
async def test_a_refusal_is_no_outage_and_fails_after_its_attempts(rt, github, repo, client, clock):
    """GitHub answering "no such installation" (404 on the token) is an answer, not an outage:
    the delivery is not retried for hours."""
    installation, repository = repo
    issue = github.add_issue(repository, "t", labels=["status/backlog", "status/ready"])
    payload = labeled(github, repo, issue, "status/ready")
    payload["installation"] = {"id": installation + 10_000}
    body, headers = signed(github.webhook_secret, "issues", payload)
    guid = (await client.post("/webhooks/github", content=body, headers=headers)).json()["delivery"]

    for _ in range(rt.settings.delivery_max_attempts):
        await drain(rt)
        await fast_forward(clock, hours=1)

    row = await journal.get(guid)
    assert (row.state, row.attempts) == ("failed", rt.settings.delivery_max_attempts)
