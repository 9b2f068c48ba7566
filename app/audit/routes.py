"""`GET /api/audit`: the audit trail of a repository (or of everything, for admin tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter

from app.audit import log
from app.tokens.guard import api_token, require_admin, require_repository
from app.tokens.service import ApiToken


@get("/api/audit", dependencies={"token": Provide(api_token)})
async def list_audit(
    token: ApiToken,
    repo: str | None = None,
    # Issue numbers are Postgres integers.
    issue: Annotated[int | None, Parameter(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first; admin tokens only (the trail says who did what where). Tokens limited to
    some repositories must name one with `repo`."""
    require_admin(token)
    if repo is not None:
        require_repository(token, repo)
    elif token.repositories:
        raise PermissionDeniedException("this token is limited to some repositories: pass ?repo=")
    if issue is not None and repo is None:
        raise PermissionDeniedException("?issue= needs ?repo= as well")
    entries = await log.entries(repository=repo, issue_number=issue, limit=limit)
    return {"entries": [_json(entry) for entry in entries]}


def _json(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    entry["at"] = entry["at"].isoformat()
    return entry


routes = [list_audit]
