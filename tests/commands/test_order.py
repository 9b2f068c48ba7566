"""One comment's commands are answered in the order they were written, even when the answer of
one of them has to wait for GitHub."""

from __future__ import annotations

import pytest

from app.db import engine
from tests.commands.test_commands import comment_payload
from tests.conftest import make_settings
from tests.harness import drain, fast_forward


@pytest.fixture
def settings(tmp_path, github):
    # A failed job waits (30 s, then longer) before it is tried again, as in production.
    return make_settings(tmp_path, github, delivery_retry_base_seconds=30.0, github_max_retries=1)


@pytest.fixture
def issue(github, repo):
    return github.add_issue(repo[1], "Crash on save")


async def test_a_later_command_waits_for_the_one_written_before_it(
    rt, github, repo, issue, deliver
):
    comments = rf"^/repos/{repo[1]['full_name']}/issues/\d+/comments$"
    github.fail_next(None, 502, method="POST", path=comments)  # no answer can be posted
    payload, _ = comment_payload(github, repo, issue, "/dispatch help\n/dispatch status")

    await deliver("issue_comment", payload)  # runs the queue until only later retries wait

    async with engine.connection() as connection:
        tried = await connection.fetch("SELECT verb, attempts FROM command ORDER BY position")
    assert [(row["verb"], row["attempts"] > 0) for row in tried] == [
        ("help", True),
        ("status", False),  # not started while help's answer waits
    ]
    github.clear_faults()
    await fast_forward(hours=1)
    await drain(rt)

    answers = github.bot_comments(repo[1], issue["number"])
    assert len(answers) == 2
    assert "Dispatch commands" in answers[0] and "Status of" in answers[1]
