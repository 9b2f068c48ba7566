"""Pacing of content-creating requests under GitHub's secondary rate limits
(`app/github/pacing.py`), on a fake monotonic clock: the pacer's sleeps move the clock instead of
taking time, so a test sees how long a write would have waited and when it went out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest

from app.github import pacing, rest
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from app.github.pacing import ContentPacer, creates_content
from tests.conftest import make_settings

API = "http://github.test"
REPO = "octo-org/widgets"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # Only the pacer's view of time: the event loop keeps the real clock.
    monkeypatch.setattr(pacing, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(pacing, "asyncio", SimpleNamespace(Lock=asyncio.Lock, sleep=fake.sleep))
    return fake


def request(method: str, path: str) -> httpx.Request:
    return httpx.Request(method, f"{API}{path}")


COMMENT = request("POST", f"/repos/{REPO}/issues/1/comments")
READ = request("GET", f"/repos/{REPO}/issues/1/comments")


async def send(pacer: ContentPacer, clock: FakeClock, req: httpx.Request) -> float:
    """Pass one request through the pacer; returns the (fake) time it went out."""
    async with pacer.async_acquire(req):
        return clock.now


async def test_an_isolated_write_is_not_delayed(clock):
    pacer = ContentPacer(per_minute=3, per_hour=100)

    sent = await send(pacer, clock, COMMENT)

    assert clock.sleeps == []
    assert sent == 1000.0


async def test_a_write_over_the_minute_limit_waits_until_the_oldest_leaves_the_window(clock):
    pacer = ContentPacer(per_minute=3, per_hour=100)
    for _ in range(3):
        await send(pacer, clock, COMMENT)  # at 1000, 1010, 1020
        clock.advance(10)

    fourth = await send(pacer, clock, COMMENT)  # asked for at 1030

    assert clock.sleeps == [30.0]
    assert fourth == 1060.0  # the moment the write at 1000 is a minute old


async def test_the_hour_limit_holds_when_the_minute_window_has_room(clock):
    pacer = ContentPacer(per_minute=3, per_hour=4)
    for _ in range(3):
        await send(pacer, clock, COMMENT)  # at 1000, 1010, 1020
        clock.advance(10)
    clock.advance(40)
    await send(pacer, clock, COMMENT)  # at 1070: the minute window has room
    clock.advance(10)

    fifth = await send(pacer, clock, COMMENT)  # asked for at 1080

    assert fifth == 1000.0 + 3600
    assert clock.sleeps == [3600 - 80]


async def test_reads_are_never_paced(clock):
    pacer = ContentPacer(per_minute=3, per_hour=3)
    for _ in range(3):
        await send(pacer, clock, COMMENT)

    for _ in range(20):
        await send(pacer, clock, READ)

    assert clock.sleeps == []


async def test_workflow_dispatches_are_not_paced(clock):
    pacer = ContentPacer(per_minute=3, per_hour=3)
    for _ in range(3):
        await send(pacer, clock, COMMENT)

    await send(
        pacer, clock, request("POST", f"/repos/{REPO}/actions/workflows/agent.yml/dispatches")
    )

    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/repos/octo-org/widgets/issues/1/comments"),
        ("POST", "/repos/octo-org/widgets/issues/comments/77/reactions"),
        ("POST", "/repos/octo-org/widgets/issues/1/reactions"),
        ("POST", "/repos/octo-org/widgets/pulls/comments/77/reactions"),
        ("POST", "/repos/octo-org/widgets/issues/1/labels"),
        ("POST", "/repos/octo-org/widgets/labels"),
        ("POST", "/repos/octo-org/widgets/issues"),
        ("PATCH", "/repos/octo-org/widgets/issues/comments/77"),
        ("POST", "/repos/octo-org/widgets/pulls/3/reviews"),
    ],
)
def test_content_creating_requests(method, path):
    assert creates_content(request(method, path))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/repos/octo-org/widgets/issues"),
        ("GET", "/repos/octo-org/widgets/issues/1/comments"),
        ("GET", "/repos/octo-org/widgets/labels"),
        ("POST", "/repos/octo-org/widgets/actions/workflows/agent.yml/dispatches"),
        ("POST", "/app/installations/7/access_tokens"),
        ("POST", "/app/hook/deliveries/12/attempts"),
        # Owner and repository names are not endpoints, whatever they are called.
        ("POST", "/repos/octo-org/issues/actions/workflows/agent.yml/dispatches"),
        ("POST", "/repos/labels/comments-bot/actions/workflows/agent.yml/dispatches"),
    ],
)
def test_requests_that_create_no_content(method, path):
    assert not creates_content(request(method, path))


@pytest.fixture
async def paced(tmp_path, github, repo, clock) -> AsyncIterator[GitHubClients]:  # type: ignore[no-untyped-def]
    """Clients whose installations may create two pieces of content a minute."""
    settings = make_settings(tmp_path, github, github_content_per_minute=2)
    built = GitHubClients(settings, CredentialStore(settings))
    try:
        yield built
    finally:
        await built.close()


async def test_installation_clients_pace_their_content_writes(paced, github, repo, clock):
    gh = paced.installation(repo[0])
    github.add_issue(REPO, "Crash on save")

    for text in ("one", "two", "three"):
        await rest.comment(gh, REPO, 1, text)
    for _ in range(5):
        await rest.comments(gh, REPO, 1)

    assert clock.sleeps == [60.0]  # only the third comment waited, for a full minute
    assert [c["body"] for c in github.comments(REPO, 1)] == ["one", "two", "three"]
