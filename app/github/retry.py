"""Bounded retries for GitHub calls: a few on 5xx, and on rate limits only when the wait GitHub
asks for (`Retry-After`, `x-ratelimit-reset`) is short enough to sit out inside a job.

Longer waits raise, and the durable job queue retries the whole job later instead of holding a
worker (and its transaction) for minutes: `unavailable()` tells the queue and the delivery
journal that GitHub, not Dispatch, failed (so they keep trying through an outage), and
`wait_asked()` how long GitHub asked them to wait.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.typing import RetryOption

log = logging.getLogger(__name__)


class BoundedRetry:
    def __init__(self, max_retries: int, max_wait: timedelta) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if retry_count >= self.max_retries:
            return RetryOption(False)
        if isinstance(exc, RateLimitExceeded):
            wait = exc.retry_after
            if wait > self.max_wait:
                log.warning(
                    "github rate limit: wait too long to retry in place",
                    extra={"wait_seconds": wait.total_seconds(), "url": str(exc.request.url)},
                )
                return RetryOption(False)
            log.warning(
                "github rate limit: retrying",
                extra={"wait_seconds": wait.total_seconds(), "url": str(exc.request.url)},
            )
            return RetryOption(True, wait)
        if isinstance(exc, RequestFailed) and exc.response.status_code >= 500:
            wait = timedelta(seconds=min(2**retry_count * 0.5, self.max_wait.total_seconds()))
            log.warning(
                "github server error: retrying",
                extra={"status": exc.response.status_code, "url": str(exc.request.url)},
            )
            return RetryOption(True, wait)
        return RetryOption(False)


def _github_error(exc: BaseException) -> GitHubException | None:
    """The GitHub error behind `exc` (itself, or what it was raised from)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, GitHubException):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means GitHub could not serve us for now: a 5xx, a timeout, a lost
    connection, or a rate limit. Such failures say nothing about the work itself, so it is
    retried for as long as GitHub is away (GITHUB_OUTAGE_RETRY_HOURS)."""
    error = _github_error(exc)
    if isinstance(error, RateLimitExceeded):
        return True
    if isinstance(error, RequestFailed):
        return error.response.status_code >= 500
    if isinstance(error, RequestTimeout):
        return True
    if isinstance(error, RequestError):
        # githubkit wraps what went wrong on the way: a lost connection, or a refusal met while
        # fetching the installation token (judged like any other answer).
        inner = error.exc
        if isinstance(inner, GitHubException):
            return unavailable(inner)
        return isinstance(inner, httpx.TransportError)
    return False


def wait_asked(exc: BaseException, now: datetime) -> timedelta | None:
    """How long GitHub asked us to wait before trying again, if it did: `retry-after` (a
    secondary limit), or until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0 (the
    primary limit), measured on Dispatch's clock `now`."""
    error = _github_error(exc)
    if not isinstance(error, RequestFailed) or error.response.status_code not in (403, 429):
        return None
    headers = error.response.headers
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return timedelta(seconds=max(int(retry_after), 0))
        except ValueError:
            return None
    reset = headers.get("x-ratelimit-reset")
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        try:
            lifts = datetime.fromtimestamp(int(reset), UTC)
        except (ValueError, OverflowError):
            return None
        return max(lifts - now, timedelta()) + timedelta(seconds=1)
    return None


def describe(exc: BaseException) -> str:
    """One line naming the error (githubkit's errors say nothing in `str()`)."""
    if isinstance(exc, GitHubException) and not str(exc):
        return repr(exc)
    return f"{type(exc).__name__}: {exc}"
