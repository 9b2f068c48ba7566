"""One GitHub budget per installation across processes (`app/github/pacing.py`).

Pacers are what each Dispatch process holds per installation; two pacers of one installation
stand for two processes sharing the database. Most tests run on a fake clock: the pacer's
sleeps move it instead of taking time, so a test sees how long a write would have waited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from app.db import engine
from app.github import pacing, rest
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from app.github.pacing import MARGIN, GitHubPaused, InstallationPacer, creates_content
from tests.conftest import make_settings

API = "http://github.test"
REPO = "octo-org/widgets"
M = 60 + MARGIN.total_seconds()  # a window's minute, as the pacer counts it


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []
        self.on_sleep = None
        self.frozen = False

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            await self.on_sleep()
        self.sleeps.append(round(seconds, 3))
        if not self.frozen:
            self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def at(self) -> float:
        """Seconds since the start."""
        return (self.now - datetime(2026, 12, 1, 12, 0, tzinfo=UTC)).total_seconds()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # Only the pacer's sleeps: the event loop keeps the real clock.
    monkeypatch.setattr(pacing, "asyncio", SimpleNamespace(Lock=asyncio.Lock, sleep=fake.sleep))
    return fake


def pacer(clock: FakeClock, installation: int = 1, **limits: float) -> InstallationPacer:
    values = {"per_minute": 3, "per_hour": 100, "max_wait": 4000.0, **limits}
    return InstallationPacer(
        installation,
        per_minute=int(values["per_minute"]),
        per_hour=int(values["per_hour"]),
        max_wait=values["max_wait"],
        clock=clock,
    )


def request(method: str, path: str) -> httpx.Request:
    return httpx.Request(method, f"{API}{path}")


COMMENT = request("POST", f"/repos/{REPO}/issues/1/comments")
READ = request("GET", f"/repos/{REPO}/issues/1/comments")


async def send(paced: InstallationPacer, clock: FakeClock, req: httpx.Request = COMMENT) -> float:
    """Pass one request through the pacer; returns the (fake) second it went out."""
    async with paced.async_acquire(req):
        return clock.at()


async def slots(installation: int = 1) -> int:
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM github_content_slot WHERE installation_id = $1",
                installation,
            )
        )


async def test_an_isolated_write_is_not_delayed(database, clock):
    sent = await send(pacer(clock), clock)

    assert clock.sleeps == []
    assert sent == 0.0


async def test_a_write_over_the_minute_limit_waits_until_the_oldest_leaves_the_window(
    database, clock
):
    paced = pacer(clock)
    for _ in range(3):
        await send(paced, clock)  # at 0, 10, 20
        clock.advance(10)

    fourth = await send(paced, clock)  # asked for at 30

    assert clock.sleeps == [M - 30]
    assert fourth == M  # the moment the write at 0 is a (counted) minute old


async def test_processes_share_one_budget(database, clock):
    """Three writes through one process's pacer use the minute; the next process waits."""
    first, second = pacer(clock), pacer(clock)
    for _ in range(3):
        await send(first, clock)

    went = await send(second, clock)

    assert went == M
    assert clock.sleeps == [M]


async def test_a_burst_gets_slots_in_order_and_no_window_holds_more_than_the_limit(database, clock):
    processes = [pacer(clock, per_minute=5) for _ in range(3)]
    clock.frozen = True  # twelve writes asked for at once, each sleeping until its slot

    await asyncio.gather(*(send(processes[i % 3], clock) for i in range(12)))

    async with engine.connection() as connection:
        taken = [
            (at - clock.now).total_seconds()
            for at in await connection.fetchval(
                "SELECT array_agg(at ORDER BY at) FROM github_content_slot"
            )
        ]
    assert taken == [0.0] * 5 + [M] * 5 + [2 * M] * 2
    assert sorted(clock.sleeps) == [M] * 5 + [2 * M] * 2


async def test_installations_have_budgets_of_their_own(database, clock):
    one, two = pacer(clock, installation=1), pacer(clock, installation=2)
    for _ in range(3):
        await send(one, clock)

    await send(two, clock)

    assert clock.sleeps == []


async def test_the_hour_limit_holds_when_the_minute_window_has_room(database, clock):
    paced = pacer(clock, per_hour=4)
    for _ in range(3):
        await send(paced, clock)  # at 0, 10, 20
        clock.advance(10)
    clock.advance(40)
    await send(paced, clock)  # at 70: the minute window has room
    clock.advance(10)

    fifth = await send(paced, clock)  # asked for at 80

    assert fifth == 3600 + MARGIN.total_seconds()
    assert clock.sleeps == [3600 + MARGIN.total_seconds() - 80]


async def test_reads_are_never_paced(database, clock):
    paced = pacer(clock, per_hour=3)
    for _ in range(3):
        await send(paced, clock)

    for _ in range(20):
        await send(paced, clock, READ)

    assert clock.sleeps == []
    assert await slots() == 3


async def test_workflow_dispatches_are_not_paced(database, clock):
    paced = pacer(clock, per_hour=3)
    for _ in range(3):
        await send(paced, clock)

    await send(paced, clock, request("POST", f"/repos/{REPO}/actions/workflows/a.yml/dispatches"))

    assert clock.sleeps == []


async def test_a_slot_beyond_the_longest_wait_is_left_to_the_job_queue(database, clock):
    paced = pacer(clock, max_wait=30)
    for _ in range(3):
        await send(paced, clock)

    with pytest.raises(GitHubPaused) as raised:
        await send(paced, clock)

    assert raised.value.retry_after == timedelta(seconds=M - 30)
    assert raised.value.reason == "content budget spent"
    assert clock.sleeps == []
    assert await slots() == 3  # nothing taken for a write that did not go


async def test_a_pause_one_process_heard_holds_every_process(database, clock):
    heard, other = pacer(clock), pacer(clock)
    await heard.pause(seconds=20, reason="secondary rate limit")

    read = await send(other, clock, READ)
    clock.advance(5)
    write = await send(other, clock)

    assert read == 20.0
    assert write == 25.0  # the pause ended meanwhile: no wait
    assert clock.sleeps == [20.0]


async def test_a_pause_longer_than_the_longest_wait_raises_with_its_end(database, clock):
    heard, other = pacer(clock, max_wait=60), pacer(clock, max_wait=60)
    await heard.pause(until=clock.now + timedelta(seconds=600), reason="primary rate limit used up")

    with pytest.raises(GitHubPaused) as read:
        await send(other, clock, READ)
    with pytest.raises(GitHubPaused) as write:
        await send(other, clock)

    assert read.value.retry_after == timedelta(seconds=600)
    assert read.value.reason == "primary rate limit used up"
    assert write.value.retry_after == timedelta(seconds=600)
    assert write.value.reason == "primary rate limit used up"


async def test_a_shorter_pause_does_not_shorten_a_longer_one(database, clock):
    paced = pacer(clock)
    await paced.pause(seconds=30, reason="secondary rate limit")
    await paced.pause(seconds=5, reason="secondary rate limit")

    assert await paced.paused_for() == 30.0


async def test_a_write_that_slept_into_a_pause_takes_a_slot_after_it(database, clock):
    paced, other = pacer(clock), pacer(clock)
    for _ in range(3):
        await send(paced, clock)

    async def pause_meanwhile() -> None:
        clock.on_sleep = None
        await other.pause(seconds=M + 15, reason="secondary rate limit")

    clock.on_sleep = pause_meanwhile
    went = await send(paced, clock)

    assert went == M + 15


async def test_the_pacer_keeps_off_the_callers_transaction(database, clock):
    """The slot commits by itself (a rolled-back caller sent its request all the same), and
    nothing is held open while a write waits for its slot."""
    paced = pacer(clock)
    open_while_waiting: list[int] = []

    async def look() -> None:
        async with engine.autonomous_connection() as connection:
            open_while_waiting.append(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname IN ('github_pace', 'github_content_slot') "
                    "AND l.mode <> 'AccessShareLock'"
                )
            )

    clock.on_sleep = look

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with engine.transaction():
            for _ in range(4):
                await send(paced, clock)
            raise Rollback

    assert await slots() == 4
    assert clock.sleeps == [M]
    assert open_while_waiting == [0]


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


# --- through the clients, against the fake GitHub, on the database's clock


@pytest.fixture
async def processes(tmp_path, github, repo, database) -> AsyncIterator[list[GitHubClients]]:  # type: ignore[no-untyped-def]
    """Two processes' clients, whose installations may wait 5 s for GitHub."""
    settings = make_settings(tmp_path, github, github_max_retry_wait_seconds=5.0)
    built = [GitHubClients(settings, CredentialStore(settings)) for _ in range(2)]
    try:
        yield built
    finally:
        for clients in built:
            await clients.close()


async def scalar_pause(installation: int) -> bool:
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT paused_until IS NOT NULL FROM github_pace WHERE installation_id = $1",
                installation,
            )
        )


@pytest.mark.slow
async def test_a_retry_after_heard_by_one_process_pauses_the_other(processes, github, repo):
    one, two = (clients.installation(repo[0]) for clients in processes)
    github.add_issue(REPO, "Crash on save")
    github.rate_limit_next(1, retry_after=4, method="POST")

    first = asyncio.create_task(rest.comment(one, REPO, 1, "first"))  # 403, retry-after: 4
    while not await scalar_pause(repo[0]):
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await rest.comments(two, REPO, 1)
    waited = time.monotonic() - started
    await first  # retried by its own process after the wait

    assert 1.0 < waited <= 4.5
    assert [c["body"] for c in github.comments(REPO, 1)] == ["first"]


async def test_an_exhausted_primary_limit_pauses_every_process_until_its_reset(
    processes, github, repo
):
    one, two = (clients.installation(repo[0]) for clients in processes)
    github.add_issue(REPO, "Crash on save")
    await rest.get_issue(one, REPO, 1)
    reset = github.exhaust_primary_limit(reset_in=600, installation_id=repo[0])

    with pytest.raises(Exception):  # noqa: B017  (GitHub's 403 with remaining 0)
        await rest.get_issue(one, REPO, 1)
    calls = len(github.calls)
    with pytest.raises(GitHubPaused) as raised:
        await rest.comment(two, REPO, 1, "not now")

    assert len(github.calls) == calls  # the other process did not ask
    left = reset - time.time()
    assert abs(raised.value.retry_after.total_seconds() - left) < 5 + 2
    assert raised.value.reason == "primary rate limit used up"


async def test_a_write_asked_for_at_once_does_not_wait_or_take_a_later_slot(database, clock):
    paced = pacer(clock)
    with pacing.at_once():
        await send(paced, clock)
    for _ in range(2):
        await send(paced, clock)

    with pacing.at_once(), pytest.raises(GitHubPaused):
        await send(paced, clock)

    assert clock.sleeps == []
    assert await slots() == 3


async def test_a_write_asked_for_at_once_does_not_queue_behind_one_that_sleeps(database, clock):
    paced = pacer(clock)
    for _ in range(3):
        await send(paced, clock)
    gave_up: list[GitHubPaused] = []

    async def meanwhile() -> None:
        clock.on_sleep = None
        with pacing.at_once():
            try:
                await send(paced, clock)
            except GitHubPaused as exc:
                gave_up.append(exc)

    clock.on_sleep = meanwhile
    await send(paced, clock)  # sleeps until the window has room

    assert len(gave_up) == 1
    assert await slots() == 4


async def test_processes_contending_for_the_lock_do_not_wait_when_the_budget_has_room(database):
    """On the database's clock: "now" is read once the lock is held, so the slot the previous
    holder took is never in this one's future (which would make it wait, or give up at once)."""
    processes = [
        InstallationPacer(1, per_minute=1000, per_hour=1000, max_wait=60) for _ in range(4)
    ]

    async def write(paced: InstallationPacer) -> None:
        with pacing.at_once():
            async with paced.async_acquire(COMMENT):
                pass

    await asyncio.gather(*(write(processes[i % 4]) for i in range(80)))

    assert await slots() == 80


async def test_a_slot_gone_stale_while_its_write_waited_for_its_turn_is_taken_again(
    database, clock
):
    """Slots are taken before a write queues for its turn in the process; one that waited too
    long (a burst, a slow answer from GitHub) takes a fresh slot, so the window stays honest."""
    paced = pacer(clock, per_minute=10)
    holding = asyncio.Event()

    async def slow_write() -> None:
        async with paced.async_acquire(COMMENT):
            holding.set()
            await asyncio.sleep(pacing.STALE_SLOT.total_seconds() + 0.3)  # GitHub is slow

    async def quick_write() -> None:
        await holding.wait()
        await send(paced, clock)

    await asyncio.gather(slow_write(), quick_write())

    assert await slots() == 3  # the slow one's, and the quick one's twice


async def test_a_write_whose_turn_comes_soon_keeps_its_slot(database, clock):
    paced = pacer(clock, per_minute=10)
    holding = asyncio.Event()

    async def write() -> None:
        async with paced.async_acquire(COMMENT):
            holding.set()
            await asyncio.sleep(0.05)

    async def next_write() -> None:
        await holding.wait()
        await send(paced, clock)

    await asyncio.gather(write(), next_write())

    assert await slots() == 2


def count_round_trips(paced: InstallationPacer) -> list[int]:
    """The `wanted` of each reservation the pacer makes (one round trip each)."""
    calls: list[int] = []
    reserve = paced.reserve

    async def counted(wanted: int = 1) -> float:
        calls.append(wanted)
        return await reserve(wanted)

    paced.reserve = counted  # type: ignore[method-assign]
    return calls


async def test_writes_waiting_together_take_their_slots_in_one_round_trip(database, clock):
    paced = pacer(clock, per_minute=100, per_hour=1000)
    trips = count_round_trips(paced)

    await asyncio.gather(*(send(paced, clock) for _ in range(4)))

    assert trips == [1, 3]  # the first alone; the three that queued behind it together
    assert await slots() == 4  # no slot taken for nothing
    assert clock.sleeps == []


async def test_a_write_on_its_own_takes_one_slot(database, clock):
    paced = pacer(clock, per_minute=100, per_hour=1000)

    for _ in range(3):
        await send(paced, clock)

    assert await slots() == 3


async def test_near_the_limit_slots_are_taken_one_at_a_time(database, clock):
    paced = pacer(clock, per_minute=5, per_hour=1000)
    trips = count_round_trips(paced)

    await asyncio.gather(*(send(paced, clock) for _ in range(4)))

    assert await slots() == 4
    assert len(trips) == 4  # asked for several at once, but the window had no room to spare


async def test_spare_slots_are_dropped_when_github_asks_to_wait(database, clock):
    paced = pacer(clock, per_minute=100, per_hour=1000)
    await paced.reserve(4)  # one slot used now, three kept for the next writes

    await paced.pause(seconds=30, reason="secondary rate limit")
    went = await send(paced, clock)

    assert went >= 30  # not on a spare slot taken before the pause


async def test_spare_slots_gone_stale_are_not_used(database, clock):
    paced = pacer(clock, per_minute=100, per_hour=1000)
    await paced.reserve(4)

    await asyncio.sleep(pacing.STALE_SLOT.total_seconds() + 0.2)  # real time: the process idled
    await send(paced, clock)

    assert await slots() == 5
