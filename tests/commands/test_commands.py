"""Commands in comments: 👀 on receipt, an answer every time, permission from GitHub, bots and
Dispatch's own comments ignored."""

from __future__ import annotations

import pytest

from app.db import engine
from tests.harness import drain
from tests.webhooks import for_repo


@pytest.fixture
def issue(github, repo):
    return github.add_issue(repo[1], "Checkout is slow", "It takes 10 s", labels=["status/ready"])


def comment_payload(github, repo, issue, body, user="alice", user_type="User", action="created"):
    installation, repository = repo
    comment = github.add_comment(repository, issue["number"], body, user=user)
    payload = for_repo("issue_comment/created", installation, repository, action=action)
    payload["issue"] = {**payload["issue"], "number": issue["number"], "labels": []}
    payload["comment"] = {
        **payload["comment"],
        "id": comment["id"],
        "body": body,
        "user": {**payload["comment"]["user"], "login": user, "type": user_type},
    }
    payload["sender"] = {**payload["sender"], "login": user, "type": user_type}
    return payload, comment["id"]


async def test_help_reacts_and_answers_with_every_verb(github, repo, issue, deliver):
    github.set_permission(repo[1], "alice", "write")
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)

    assert "eyes" in github.reactions(repo[1], comment_id)
    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "`/dispatch help`" in answer and "`/dispatch status`" in answer
    assert "| read |" in answer
    assert "Your permission on octo-org/widgets: **write**" in answer


async def test_status_says_what_the_issue_waits_for(github, repo, issue, deliver):
    payload, _ = comment_payload(github, repo, issue, "/dispatch status")

    await deliver("issue_comment", payload)

    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "`status/ready`" in answer
    assert "`/dispatch investigate` starts an investigation" in answer


async def test_commands_in_code_or_quotes_do_nothing(github, repo, issue, deliver):
    body = "```\n/dispatch help\n```\n> /dispatch status\nuse `/dispatch help`"
    payload, comment_id = comment_payload(github, repo, issue, body)

    await deliver("issue_comment", payload)

    assert github.reactions(repo[1], comment_id) == []
    assert github.bot_comments(repo[1], issue["number"]) == []


async def test_unknown_verb_gets_the_closest_one(github, repo, issue, deliver):
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch stauts")

    await deliver("issue_comment", payload)

    assert {"eyes", "confused"} <= set(github.reactions(repo[1], comment_id))
    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "\n> `/dispatch stauts`" in answer
    assert "Did you mean `/dispatch status`?" in answer


async def test_insufficient_permission_is_refused_with_the_level_needed(
    github, repo, issue, deliver
):
    github.add_file(repo[1], ".github/dispatch.yml", "permissions:\n  status: write\n")
    github.set_permission(repo[1], "bob", "read")
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch status", user="bob")

    await deliver("issue_comment", payload)

    assert "confused" in github.reactions(repo[1], comment_id)
    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "needs **write** permission" in answer and "@bob has **read**" in answer


async def test_invalid_repo_config_is_reported_to_the_commenter(github, repo, issue, deliver):
    github.add_file(repo[1], ".github/dispatch.yml", "permissions:\n  status: superuser\n")
    payload, _ = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)

    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "Commands are paused" in answer and "superuser" in answer
    async with engine.connection() as connection:
        outcome = await connection.fetchval(
            "SELECT outcome FROM audit_log WHERE action = 'command.help'"
        )
    assert outcome == "refused"


async def test_own_comments_and_unlisted_bots_are_ignored(github, repo, issue, deliver):
    own, own_id = comment_payload(
        github, repo, issue, "/dispatch help", user=f"{github.app_slug}[bot]", user_type="Bot"
    )
    other, other_id = comment_payload(
        github, repo, issue, "/dispatch help", user="renovate[bot]", user_type="Bot"
    )

    await deliver("issue_comment", own)
    await deliver("issue_comment", other)

    assert github.reactions(repo[1], own_id) == []
    assert github.reactions(repo[1], other_id) == []
    assert github.bot_comments(repo[1], issue["number"]) == [own["comment"]["body"]]


async def test_allow_listed_bot_runs_commands(github, repo, issue, deliver):
    github.add_file(repo[1], ".github/dispatch.yml", "allowed_bots: ['renovate[bot]']\n")
    github.set_permission(repo[1], "renovate[bot]", "write")
    payload, comment_id = comment_payload(
        github, repo, issue, "/dispatch help", user="renovate[bot]", user_type="Bot"
    )

    await deliver("issue_comment", payload)

    # Not only seen (👀 comes before any check): run, with the bot's own permission.
    assert github.reactions(repo[1], comment_id) == ["eyes"]
    [answer] = github.bot_comments(repo[1], issue["number"])
    assert "Dispatch commands" in answer
    assert "Your permission on octo-org/widgets: **write**" in answer


async def test_edited_comments_do_not_run_again(github, repo, issue, deliver):
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")
    await deliver("issue_comment", payload)
    assert len(github.bot_comments(repo[1], issue["number"])) == 1  # commands do run here
    calls = len(github.calls)

    edited = {**payload, "action": "edited", "changes": {"body": {"from": "/dispatch hel"}}}
    await deliver("issue_comment", edited)

    assert len(github.bot_comments(repo[1], issue["number"])) == 1
    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert github.calls[calls:] == []  # not even a 👀
    async with engine.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM command") == 1


async def test_several_commands_are_answered_in_order(github, repo, issue, deliver):
    payload, _ = comment_payload(github, repo, issue, "/dispatch help\n/dispatch status")

    await deliver("issue_comment", payload)

    answers = github.bot_comments(repo[1], issue["number"])
    assert len(answers) == 2
    assert "Dispatch commands" in answers[0] and "Status of" in answers[1]


async def test_replayed_delivery_does_not_answer_twice(rt, github, repo, issue, deliver):
    from app.intake import journal
    from tests.harness import drain

    payload, _ = comment_payload(github, repo, issue, "/dispatch help")
    response = await deliver("issue_comment", payload)
    assert await journal.replay(response.json()["delivery"])
    await drain(rt)

    assert len(github.bot_comments(repo[1], issue["number"])) == 1


async def test_issue_body_runs_commands_on_open(github, repo, deliver):
    installation, repository = repo
    issue = github.add_issue(repository, "New", "Please\n/dispatch help")
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **issue}

    await deliver("issues", payload)

    assert "eyes" in github.issue_reactions(repository, issue["number"])
    assert any(
        "Dispatch commands" in c["body"] for c in github.comments(repository, issue["number"])
    )


async def test_an_answer_is_posted_once_even_if_its_job_runs_again(
    rt, github, repo, issue, deliver
):
    from app.commands import runner
    from app.db import engine

    payload, _ = comment_payload(github, repo, issue, "/dispatch help")
    await deliver("issue_comment", payload)
    async with engine.connection() as connection:
        # As if the worker died after posting the reply but before recording that it had.
        command_id = await connection.fetchval(
            "UPDATE command SET answered_at = NULL, attempts = 2 RETURNING id"
        )

    await runner.execute(command_id, rt)
    await runner.execute(command_id, rt)

    assert len(github.bot_comments(repo[1], issue["number"])) == 1


async def test_eyes_go_out_with_the_delivery_before_the_command_runs(
    rt, github, repo, issue, deliver
):
    """The 👀 does not wait for the command's own job (which may sit behind a backlog)."""
    from app.intake import processing
    from app.worker import event_router
    from tests.harness import drain

    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help\n/dispatch status")
    response = await deliver("issue_comment", payload, run=False)

    await processing.process(response.json()["delivery"], rt, event_router())

    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert github.bot_comments(repo[1], issue["number"]) == []
    async with engine.connection() as connection:
        unacknowledged = await connection.fetchval(
            "SELECT count(*) FROM command WHERE acknowledged_at IS NULL"
        )
    assert unacknowledged == 0

    await drain(rt)

    eyes_posts = [
        c
        for c in github.calls
        if c.method == "POST"
        and c.path.endswith(f"/comments/{comment_id}/reactions")
        and c.body == {"content": "eyes"}
    ]
    assert len(eyes_posts) == 1  # once for both commands, and not again by their jobs
    assert len(github.bot_comments(repo[1], issue["number"])) == 2


async def test_the_command_job_sends_the_eyes_if_the_delivery_could_not(
    github, repo, issue, deliver, monkeypatch
):
    from app.events import Event

    async def crashed(self: Event) -> None:  # as if the worker died right after the commit
        return None

    monkeypatch.setattr(Event, "run_after_commit", crashed)
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)

    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert len(github.bot_comments(repo[1], issue["number"])) == 1


async def test_a_command_waits_for_the_eyes_the_delivery_is_still_sending(
    github, repo, issue, deliver, monkeypatch
):
    """The command's job is picked while the delivery's 👀 is still on its way to GitHub: the
    reply comes after the 👀, not before it (and a 👀 GitHub refuses stops the command with it:
    `tests/faults`)."""
    import asyncio

    from app.github import rest

    real_react = rest.react

    async def slow_eyes(client, repository, target, content):  # type: ignore[no-untyped-def]
        if content == "eyes":
            await asyncio.sleep(0.4)
        return await real_react(client, repository, target, content)

    monkeypatch.setattr(rest, "react", slow_eyes)
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)

    posts = [
        "👀" if c.path.endswith("/reactions") else "reply"
        for c in github.calls
        if c.method == "POST"
        and (
            c.path.endswith(f"/comments/{comment_id}/reactions")
            or c.path.endswith(f"/issues/{issue['number']}/comments")
        )
    ]
    assert posts == ["👀", "reply"]


async def test_a_sender_waiting_longer_than_its_lease_keeps_the_eyes_claim(
    rt, github, repo, issue, deliver, monkeypatch
):
    """The claim on a 👀 is a short lease its sender renews while it waits (for a content slot,
    for GitHub): a command's job that comes back after the lease would have ended finds it still
    held, and the 👀 is sent once."""
    import asyncio

    from app.commands import eyes
    from app.github import rest
    from tests.harness import drain, fast_forward

    monkeypatch.setattr(eyes, "EYES_LEASE_SECONDS", 0.3)
    monkeypatch.setattr(eyes, "EYES_WAIT_SECONDS", 0)  # the job does not wait for the 👀
    real_react = rest.react
    slow = asyncio.Event()

    async def react_after_a_wait(client, repository, target, content):  # type: ignore[no-untyped-def]
        if content == "eyes" and not slow.is_set():
            slow.set()  # the first 👀 (the delivery's, after its commit) waits 1.5 s
            await asyncio.sleep(1.5)
        return await real_react(client, repository, target, content)

    monkeypatch.setattr(rest, "react", react_after_a_wait)
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)  # the command is answered; its job saw the claim
    await asyncio.sleep(0.6)  # twice the lease: only a renewed claim is still held
    await fast_forward(seconds=5)
    await drain(rt)  # the job comes back while the first 👀 still waits
    await asyncio.sleep(1.2)  # the first 👀 has gone out
    await fast_forward(seconds=5)
    await drain(rt)

    sent = github.calls_to("POST", rf"/issues/comments/{comment_id}/reactions$")
    assert [call.body["content"] for call in sent] == ["eyes"]
    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert len(github.bot_comments(repo[1], issue["number"])) == 1


async def test_a_sender_that_died_holding_the_eyes_claim_does_not_keep_them_from_going_out(
    rt, github, repo, issue, deliver, monkeypatch
):
    """A worker killed while its 👀 waited for a content slot held the claim: the command is
    answered, and its job comes back once the claim's lease is over and sends the 👀, once."""
    from app.events import Event
    from tests.harness import drain, fast_forward

    async def claimed_then_killed(self: Event) -> None:
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE command SET eyes_claimed_until = clock_timestamp() + interval '1 hour'"
            )

    monkeypatch.setattr(Event, "run_after_commit", claimed_then_killed)
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch help")

    await deliver("issue_comment", payload)

    assert len(github.bot_comments(repo[1], issue["number"])) == 1
    assert github.reactions(repo[1], comment_id) == []  # the claim is live: not sent twice
    async with engine.connection() as connection:
        await connection.execute("UPDATE command SET eyes_claimed_until = now()")  # lease over
    await fast_forward(hours=2)
    await drain(rt)

    assert github.reactions(repo[1], comment_id) == ["eyes"]
    assert len(github.bot_comments(repo[1], issue["number"])) == 1


@pytest.mark.parametrize("rep", range(16))
async def test_a_command_goes_before_a_backlog_of_deliveries(rt, github, repo, issue, deliver, rep):
    """Under a flood of webhooks, the delivery that carries a command (its 👀) and then the
    command's job (its reply) are taken before the deliveries that arrived earlier."""
    github.set_permission(repo[1], "alice", "write")
    for n in range(60):
        chatter, _ = comment_payload(github, repo, issue, f"looks slow here too ({n})")
        await deliver("issue_comment", chatter, run=False)
    payload, comment_id = comment_payload(github, repo, issue, "/Dispatch help")
    command = await deliver("issue_comment", payload, run=False)

    await drain(rt, concurrency=1)  # one job taken at a time (two may run: the worker's slack)

    async with engine.connection() as connection:
        order = await connection.fetch(
            "SELECT guid, processed_at FROM delivery WHERE event = 'issue_comment' "
            "ORDER BY processed_at"
        )
        acknowledged = await connection.fetchval("SELECT max(acknowledged_at) FROM command")
        command_done = await connection.fetchval("SELECT max(answered_at) FROM command")
    # Taken first of 61 (while it ran, the second slot may have finished one of the backlog).
    assert command.json()["delivery"] in [row["guid"] for row in order[:2]]
    # The 👀 went while the first half of the backlog was worked off, and the reply (which
    # waits for its 👀) before the rest was.
    assert acknowledged < order[len(order) // 2]["processed_at"]
    assert command_done < order[-1]["processed_at"]
    assert "eyes" in github.reactions(repo[1], comment_id)
    assert len(github.bot_comments(repo[1], issue["number"])) == 1
