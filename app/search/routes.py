"""`GET /api/search?q=…&repo=…`: issues matching a query, by meaning (embeddings) or, when
embeddings are off, by words; for any API token, within its repositories."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import Provide
from litestar.params import Parameter

from app.runtime import Runtime
from app.search import query
from app.tokens.guard import api_token
from app.tokens.service import ApiToken


@get("/api/search", dependencies={"token": Provide(api_token)})
async def search_issues(
    rt: Runtime,
    token: ApiToken,
    q: str,
    repo: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=query.MAX_RESULTS)] = 10,
) -> dict[str, Any]:
    """Best matches first, each with its score (cosine similarity, or a text-search rank)."""
    results = await query.search(rt, token, q, repository=repo, limit=limit)
    return {
        "method": results.method,
        "issues": [
            {**found.issue.as_json(), "score": round(found.score, 4)} for found in results.found
        ],
    }


routes = [search_issues]
