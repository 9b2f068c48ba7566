"""The githubkit clients (`app/github/clients.py`), their bounded retries (`retry.py`) and the
REST calls (`rest.py`), against the fake GitHub over HTTP.

githubkit sleeps between retries with `anyio.sleep`; the `waits` fixture records those sleeps
instead of taking them, so a test sees what was waited for without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import githubkit.core
import pytest
from githubkit.exception import RateLimitExceeded, RequestFailed

from app.github import rest
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from tests.conftest import make_settings

REPO = "octo-org/widgets"
TOKENS = r"^/app/installations/\d+/access_tokens$"


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Waits:
    recorded = Waits()
    monkeypatch.setattr(githubkit.core, "anyio", recorded)
    return recorded


@pytest.fixture
async def clients(tmp_path, github, waits, database) -> AsyncIterator[GitHubClients]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path, github, github_max_retries=3, github_max_retry_wait_seconds=2.0
    )
    built = GitHubClients(settings, CredentialStore(settings))
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
def gh(clients, repo):  # type: ignore[no-untyped-def]
    """The installation client for the `repo` fixture's installation."""
    installation, _ = repo
    return clients.installation(installation)


def repo_reads(github) -> int:  # type: ignore[no-untyped-def]
    return len(github.calls_to("GET", f"^/repos/{REPO}$"))


# --- installation tokens


async def test_installation_token_is_fetched_once_and_reused(clients, gh, github, repo):
    github.add_issue(REPO, "Crash on save", labels=["bug"])

    await rest.get_repository(gh, REPO)
    await rest.issue_labels(gh, REPO, 1)
    await rest.comment(gh, REPO, 1, "On it.")
    await rest.get_issue(clients.installation(repo[0]), REPO, 1)

    assert len(github.calls_to("POST", TOKENS)) == 1
    api_calls = [call for call in github.calls if call.path.startswith("/repos/")]
    assert len(api_calls) == 4
    assert {call.auth for call in api_calls} == {"installation"}


# --- bounded retries


async def test_server_errors_are_retried_until_the_call_succeeds(gh, github, waits):
    github.fail_next(2, 502)

    data = await rest.get_repository(gh, REPO)

    assert data["full_name"] == REPO
    assert repo_reads(github) == 3
    assert len(waits.seconds) == 2
    assert all(0 < wait <= 2.0 for wait in waits.seconds)


async def test_server_errors_are_retried_a_bounded_number_of_times(gh, github, waits):
    github.fail_next(10, 502)

    with pytest.raises(RequestFailed) as raised:
        await rest.get_repository(gh, REPO)

    assert raised.value.response.status_code == 502
    assert repo_reads(github) == 4  # the first try and GITHUB_MAX_RETRIES=3 retries
    assert len(waits.seconds) == 3


async def test_client_errors_are_not_retried(gh, github, waits):
    with pytest.raises(RequestFailed) as raised:
        await rest.get_issue(gh, REPO, 404)

    assert raised.value.response.status_code == 404
    assert len(github.calls_to("GET", f"^/repos/{REPO}/issues/404$")) == 1
    assert waits.seconds == []


async def test_secondary_rate_limit_waits_as_asked_and_retries(gh, github, waits):
    github.rate_limit_next(1, retry_after=1)

    data = await rest.get_repository(gh, REPO)

    assert data["full_name"] == REPO
    assert waits.seconds == [1.0]
    assert repo_reads(github) == 2


async def test_rate_limit_wait_longer_than_the_cap_is_left_to_the_job_queue(gh, github, waits):
    # GITHUB_MAX_RETRY_WAIT_SECONDS is 2 here: a 30 s wait is not sat out inside the job.
    github.rate_limit_next(1, retry_after=30)

    with pytest.raises(RateLimitExceeded) as raised:
        await rest.get_repository(gh, REPO)

    assert raised.value.retry_after.total_seconds() == 30
    assert waits.seconds == []
    assert repo_reads(github) == 1


# --- REST calls and GitHub's quirks


async def test_removing_an_absent_label_returns_false(gh, github):
    github.add_issue(REPO, "Crash on save", labels=["bug", "status/ready"])

    absent = await rest.remove_label(gh, REPO, 1, "status/in progress")
    present = await rest.remove_label(gh, REPO, 1, "status/ready")

    assert absent is False
    assert present is True
    assert github.label_names(REPO, 1) == ["bug"]


async def test_creating_an_existing_label_returns_false_and_leaves_it_alone(gh, github):
    github.add_label(REPO, "status/ready", color="0e8a16", description="Ready for an agent")

    created = await rest.create_label(gh, REPO, "status/ready", "ff0000", "Something else")
    fresh = await rest.create_label(gh, REPO, "status/blocked", "d93f0b", "Waiting on a human")

    assert created is False
    assert fresh is True
    labels = {label["name"]: label for label in github.repo_labels(REPO)}
    assert labels["status/ready"]["color"] == "0e8a16"
    assert labels["status/ready"]["description"] == "Ready for an agent"
    assert labels["status/blocked"]["color"] == "d93f0b"
    assert github.calls_to("PATCH", f"^/repos/{REPO}/labels/") == []


async def test_a_label_github_refuses_for_another_reason_is_an_error_not_already_there(gh, github):
    with pytest.raises(RequestFailed) as refused:
        await rest.create_label(gh, REPO, "agent/" + "x" * 45, "ff0000", "Too long a name")

    assert rest.status_of(refused.value) == 422
    assert "name is too long" in refused.value.response.text
    assert [(v.operation, v.field) for v in github.take_violations()] == [
        ("issues/create-label", "name")
    ]
    assert github.repo_labels(REPO) == []


async def test_marked_comment_is_edited_in_place_the_second_time(gh, github):
    github.add_issue(REPO, "Crash on save")
    github.add_comment(REPO, 1, "<!-- dispatch:status -->\nA person quoting the marker", "alice")
    bot = github.bot.login

    first = await rest.upsert_marked_comment(gh, REPO, 1, "status", "Queued", bot_login=bot)
    second = await rest.upsert_marked_comment(gh, REPO, 1, "status", "Running", bot_login=bot)

    assert first == second
    mine = [c for c in github.comments(REPO, 1) if c["user"]["login"] == bot]
    assert len(mine) == 1
    assert mine[0]["id"] == first
    assert mine[0]["body"] == "<!-- dispatch:status -->\nRunning"
    assert len(github.comments(REPO, 1)) == 2  # the person's comment is untouched


async def test_marked_comment_whose_known_id_was_deleted_is_posted_again(gh, github):
    github.add_issue(REPO, "Crash on save")
    bot = github.bot.login

    posted = await rest.upsert_marked_comment(
        gh, REPO, 1, "status", "Queued", bot_login=bot, comment_id=999_999_999
    )

    assert [c["id"] for c in github.comments(REPO, 1)] == [posted]


async def test_marked_comment_looked_for_by_several_jobs_at_once_is_posted_once(gh, github):
    """A run's status comment published by its dispatch job and by a report at the same moment:
    both look for the marker, neither finds it; only one may post."""
    github.add_issue(REPO, "Crash on save")
    bot = github.bot.login

    posted = await asyncio.gather(
        *(
            rest.upsert_marked_comment(gh, REPO, 1, "run:7", f"state {n}", bot_login=bot)
            for n in range(5)
        )
    )

    assert len(set(posted)) == 1
    [mine] = [c for c in github.comments(REPO, 1) if c["user"]["login"] == bot]
    assert mine["id"] == posted[0]
