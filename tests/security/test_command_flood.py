"""M5: an outsider's comment full of commands and @mentions makes Dispatch post one reply at
most, mentions no one but the commenter, and a person flooding a repository is slowed down."""

from __future__ import annotations

import re

import pytest

from app.db import engine
from tests.commands.test_commands import comment_payload

MENTION = re.compile(r"(?<![\w`])@([A-Za-z0-9-]+)")


@pytest.fixture
def issue(github, repo):
    return github.add_issue(repo[1], "Checkout is slow", "It takes 10 s")


async def test_an_outsiders_flood_gets_one_reply_and_mentions_no_one_else(
    github, repo, issue, deliver
):
    lines = [f"/dispatch investigate please @victim{i} @octo-org/security" for i in range(25)]
    payload, comment_id = comment_payload(github, repo, issue, "\n".join(lines), user="mallory")

    await deliver("issue_comment", payload)

    async with engine.connection() as connection:
        stored = await connection.fetchval("SELECT count(*) FROM command")
    replies = github.bot_comments(repo[1], issue["number"])
    assert stored == 5
    assert len(replies) == 1
    assert "needs **write** permission" in replies[0]
    assert set(MENTION.findall(replies[0])) == {"mallory"}
    assert "confused" in github.reactions(repo[1], comment_id)


async def test_quoted_command_text_cannot_break_out_of_its_code_span(github, repo, issue, deliver):
    github.set_permission(repo[1], "alice", "write")
    payload, _ = comment_payload(
        github, repo, issue, "/dispatch `x @everyone ![a](https://evil.example/p.png)"
    )

    await deliver("issue_comment", payload)

    [reply] = github.bot_comments(repo[1], issue["number"])
    quoted = reply.split("\n")[1]  # after the hidden marker
    assert quoted.startswith("> ``/dispatch") and quoted.endswith("png)``")
    assert quoted.count("`") == 5  # the user's backtick stays inside the span
    assert set(MENTION.findall(reply)) == {"alice"}


async def test_a_person_sending_too_many_commands_is_slowed_down(github, repo, issue, deliver):
    github.set_permission(repo[1], "alice", "read")
    for _ in range(5):
        payload, _ = comment_payload(
            github, repo, issue, "\n".join(["/dispatch status"] * 5), user="alice"
        )
        await deliver("issue_comment", payload)

    replies = github.bot_comments(repo[1], issue["number"])
    slowed = [body for body in replies if "commands in 10 minutes" in body]
    # 20 statuses ran (one answered: a reader's repeated questions get 😕 alone), then one
    # reply that says to wait, then only 😕.
    async with engine.connection() as connection:
        settled = await connection.fetch(
            "SELECT state, refused_for FROM command WHERE author = 'alice' ORDER BY id"
        )
    assert [(r["state"], r["refused_for"]) for r in settled] == [("done", "status")] * 20 + [
        ("refused", "rate_limit")
    ] * 5
    assert len([body for body in replies if "**Status of" in body]) == 1
    assert len(slowed) == 1


@pytest.mark.parametrize("verb", ["nosuchverb", "", "help", "status"])
async def test_an_outsiders_flood_of_unknown_verbs_or_questions_gets_one_reply(
    github, repo, issue, deliver, verb
):
    # Two comments of 25 lines each: whatever the verb, and whether or not there is one.
    lines = "\n".join(f"/dispatch {verb} @victim{i} @octo-org/security" for i in range(25))
    sent = []
    for _ in range(2):
        payload, comment_id = comment_payload(github, repo, issue, lines, user="mallory")
        await deliver("issue_comment", payload)
        sent.append(comment_id)

    replies = github.bot_comments(repo[1], issue["number"])
    assert len(replies) == 1
    assert set(MENTION.findall(replies[0])) <= {"mallory"}
    assert "victim" not in "".join(MENTION.findall(replies[0]))
    # The second comment got no reply, only 😕: nothing was answered there.
    assert "confused" in github.reactions(repo[1], sent[1])


async def test_a_writer_still_gets_every_answer(github, repo, issue, deliver):
    github.set_permission(repo[1], "alice", "write")
    payload, _ = comment_payload(
        github, repo, issue, "/dispatch nosuchverb\n/dispatch status\n/dispatch status"
    )

    await deliver("issue_comment", payload)

    replies = github.bot_comments(repo[1], issue["number"])
    assert len(replies) == 3
    assert "is not a Dispatch command" in replies[0]
    assert all("**Status of" in body for body in replies[1:])
