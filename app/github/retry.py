"""Bounded retries for GitHub calls: a few on 5xx, and on rate limits only when the wait GitHub
asks for (`Retry-After`, `x-ratelimit-reset`) is short enough to sit out inside a job.

Longer waits raise, and the durable job queue retries the whole job later instead of holding a
worker (and its transaction) for minutes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed
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
