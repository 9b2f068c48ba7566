"""The one source of "now" for decisions that depend on time (budgets per UTC day, cooldowns,
fix-verification windows, leases). Tests replace it with a clock they can move. Also the one
timestamp parser and the one backoff rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class MovableClock:
    """Real time plus an offset that tests advance (`clock.advance(hours=49)`)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def parse_timestamp(value: str | int | float | datetime | None) -> datetime | None:
    """A timestamp as GitHub, Grafana and Sentry send it (ISO 8601 with `Z`, or Unix seconds),
    as an aware datetime; None for an empty value."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def backoff(attempt: int, base_seconds: float, cap_seconds: float | None = None) -> timedelta:
    """The wait before retry number `attempt` (1, 2, 3 …): the base, doubled each time, capped."""
    seconds = base_seconds * 2 ** max(attempt - 1, 0)
    if cap_seconds is not None:
        seconds = min(seconds, cap_seconds)
    return timedelta(seconds=seconds)
