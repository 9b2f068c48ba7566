"""Every command is answered exactly once, whatever GitHub does meanwhile: 👀 once per comment
even when the command's job races the delivery's acknowledgement, an answer whose reply was lost
on its way back is found again instead of posted twice, a command that meets an outage is
answered once GitHub is back (hours later), and a reply longer than GitHub takes is cut with a
link to all of it."""

from __future__ import annotations

import re

import pytest
from pgqueuer.errors import RetryRequested

from app.commands import answers, runner
from app.db import engine
from app.github import rest
from app.intake import journal, processing
from app.worker import event_router
from tests.commands.test_commands import comment_payload
from tests.conftest import make_settings
from tests.harness import dispatch_cli, drain, fast_forward, settings_env


@pytest.fixture
def settings(tmp_path, github, oidc, clock):
    github.clock = clock
    # Failed attempts wait (the test moves time on with fast_forward), and a GitHub that does
    # not answer is given up on quickly.
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        delivery_retry_base_seconds=60.0,
        github_timeout_seconds=0.5,
        github_max_retries=1,
    )


@pytest.fixture
def issue(github, repo):
    return github.add_issue(repo[1], "Checkout is slow", "It takes 10 s", labels=["status/ready"])


def eyes_sent(github, comment_id: int) -> list[int]:
    """Statuses of the 👀 requests GitHub received for a comment."""
    return [
        c.status
        for c in github.calls_to("POST", f"/issues/comments/{comment_id}/reactions")
        if c.body == {"content": "eyes"}
    ]


async def test_eyes_go_out_once_when_the_commands_job_runs_while_they_are_sent(
    rt, github, repo, issue, deliver, monkeypatch
):
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help\n/dispatch status")
    original = rest.react
    raced: list[bool] = []

    async def react_while_the_jobs_run(client, repository, target, content):
        await original(client, repository, target, content)
        if content == "eyes" and not raced:
            raced.append(True)
            # GitHub has the 👀, its answer is still on the way: the commands' jobs start now.
            async with engine.connection() as connection:
                ids = [r["id"] for r in await connection.fetch("SELECT id FROM command")]
            for command_id in ids:
                # Answered; the 👀 is claimed by a live sender: come back when its lease ends.
                with pytest.raises(RetryRequested):
                    await runner.execute(command_id, rt)

    monkeypatch.setattr(rest, "react", react_while_the_jobs_run)

    # The delivery is processed here (no worker yet): its jobs run only in the hook above, then
    # as queued, so nothing else races with them.
    response = await deliver("issue_comment", payload, run=False)
    await processing.process(response.json()["delivery"], rt, event_router())
    await drain(rt)

    assert raced
    assert eyes_sent(github, comment_id) == [201]
    assert len(github.bot_comments(repo[1], issue["number"])) == 2


async def test_an_answer_lost_on_its_way_back_is_not_posted_twice(
    rt, github, repo, issue, deliver, clock
):
    # GitHub posts the reply, but its answer never reaches Dispatch.
    github.timeout_next(1, applied=True, method="POST", path=re.compile(r"/issues/\d+/comments$"))
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)
    await fast_forward(clock, minutes=5)
    await drain(rt)

    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "Dispatch commands" in answer
    assert github.reactions(repo[1], comment_id) == ["eyes"]
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT answered_at, last_error FROM command")
    assert row["answered_at"] is not None and row["last_error"] is None


@pytest.mark.slow
async def test_a_command_meeting_an_outage_is_answered_once_github_is_back(
    rt, settings, database, github, repo, issue, deliver, clock
):
    github.fail_next(None, 502)  # until it recovers
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")
    await deliver("issue_comment", payload)

    # Hours of outage: far more attempts than DELIVERY_MAX_ATTEMPTS, and the command waits on.
    for _ in range(8):
        await fast_forward(clock, minutes=30)
        await drain(rt)
    async with engine.connection() as connection:
        job = await connection.fetchrow(
            "SELECT attempts, execute_after - now() AS wait FROM pgqueuer "
            "WHERE entrypoint = 'commands.run'"
        )
        state = await connection.fetchval("SELECT state FROM command")
    assert job["attempts"] > rt.settings.delivery_max_attempts
    assert job["wait"].total_seconds() > 60  # backing off, not spinning
    assert state == "pending"
    assert github.bot_comments(repo[1], issue["number"]) == []

    # Meanwhile the operator sees it, with what keeps it unanswered.
    [waiting] = await answers.unanswered()
    assert waiting.line == "/dispatch help" and "502" in waiting.last_error
    listing = (await dispatch_cli(settings_env(settings, database), "deliveries", "--failed")).ok()
    assert "command /dispatch help" in listing and "answering" in listing
    assert "502" in listing

    github.clear_faults()
    await fast_forward(clock, minutes=30)
    await drain(rt)

    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "Dispatch commands" in answer
    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert eyes_sent(github, comment_id).count(201) == 1
    assert await answers.unanswered() == []
    assert await journal.recent(failed_only=True) == []


async def test_a_reply_longer_than_github_takes_is_cut_with_a_link_to_all_of_it(
    rt, client, github, repo, issue, deliver
):
    verb = "x" * 40_000  # quoted back twice: the reply would be twice GitHub's limit
    payload, _ = comment_payload(github, repo, issue, f"/dispatch {verb}")

    await deliver("issue_comment", payload)

    [answer] = github.bot_comments(repo[1], issue["number"])
    assert len(answer) <= 65_536
    assert "is not a Dispatch command" not in answer  # that part is past the cut
    link = re.search(r"\[read all of it\]\((\S+)\)", answer)
    assert link is not None
    path = link[1].removeprefix(rt.settings.dispatch_url)
    whole = await client.get(path)
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/plain")
    assert whole.text.count(verb) == 2 and "is not a Dispatch command" in whole.text
    forged = await client.get(re.sub(r"token=.*", "token=forged", path))
    assert forged.status_code == 404
