"""`GET /api/issues`: the issue cache, filtered by labels and paged, for API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import Provide
from litestar.params import Parameter

from app.issues import cache
from app.tokens.guard import api_token, require_repository
from app.tokens.service import ApiToken


@get("/api/issues", dependencies={"token": Provide(api_token)})
async def list_issues(
    token: ApiToken,
    repo: str | None = None,
    issue_state: Annotated[str, Parameter(query="state", pattern="^(open|closed|all)$")] = "open",
    status: str | None = None,
    priority: str | None = None,
    agent: str | None = None,
    owner: str | None = None,
    type: str | None = None,
    customer: str | None = None,
    # Bounded so the offset stays a number Postgres takes.
    page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Parameter(ge=1, le=100)] = 30,
) -> dict[str, Any]:
    """Cached issues, highest priority and oldest first. `status=ready` or `status=status/ready`."""
    if repo is not None:
        require_repository(token, repo)
        repositories: list[str] | None = [repo]
    else:
        repositories = token.repositories or None
    total, issues = await cache.search(
        cache.IssueFilter(
            repositories=repositories,
            state=None if issue_state == "all" else issue_state,
            status=status,
            priority=priority,
            agent=agent,
            owner=owner,
            type=type,
            customer=customer,
        ),
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return {
        "total": total,
        "page": page,
        "per_page": per_page,
        "issues": [issue.as_json() for issue in issues],
    }


routes = [list_issues]
