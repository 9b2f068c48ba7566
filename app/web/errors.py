"""Errors are part of the interface: every refusal is JSON `{"error": ..., "status": ...}` with
a message that says what was wrong and how to fix it. Never a bare 500 page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from githubkit.exception import GitHubException, RequestFailed
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

log = logging.getLogger(__name__)


def error(
    status: int, message: str, *, headers: dict[str, str] | None = None, **fields: Any
) -> Response[dict[str, Any]]:
    return Response(
        {"error": message, "status": status, **fields},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def http_exception_handler(_: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    message = exc.detail
    if exc.status_code == 413:
        message = "request body too large"
    extra = {"details": exc.extra} if exc.extra else {}
    return error(exc.status_code, str(message), headers=dict(exc.headers or {}), **extra)


def busy_handler(request: Request, exc: TimeoutError) -> Response[dict[str, Any]]:
    log.warning("no database connection in time", extra={"path": request.url.path})
    return Response(
        {"error": "busy: no database connection was free in time; retry", "status": 503},
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": "5"},
    )


def internal_error_handler(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", extra={"path": request.url.path})
    return error(500, "internal error; the details are in the server log")


def invalid(field: str, message: str) -> HTTPException:
    """A 422 that names the field that is wrong (`details.field`) and says why."""
    return HTTPException(status_code=422, detail=message, extra={"field": field})


def conflict(message: str) -> HTTPException:
    """A 409: the request is well formed but the thing it acts on has moved on."""
    return HTTPException(status_code=409, detail=message)


@contextlib.contextmanager
def github_trouble(doing: str) -> Iterator[None]:
    """GitHub failing in the middle of a request (an outage, a rate limit, a timeout) as a 502
    that says to retry; GitHub not knowing the thing asked about as a 404."""
    try:
        yield
    except RequestFailed as exc:
        status = exc.response.status_code
        if status in (404, 410):
            raise HTTPException(
                status_code=404, detail=f"GitHub answered {status} while {doing}"
            ) from exc
        raise HTTPException(
            status_code=502, detail=f"GitHub answered {status} while {doing}; retry in a moment"
        ) from exc
    except GitHubException as exc:
        raise HTTPException(
            status_code=502,
            detail=f"GitHub did not answer while {doing} ({type(exc).__name__}); retry in a moment",
        ) from exc
