"""Searching issues for a query someone types (the read API's `GET /api/search`, MCP's
`search_issues`): by meaning — the query is embedded like an issue and the nearest issues by
cosine similarity are found in the HNSW index — and by words (PostgreSQL full text search over the
issue cache) when embeddings are off or the provider fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.db import engine
from app.issues import cache
from app.issues.cache import CachedIssue
from app.runtime import Runtime
from app.search import density
from app.search.embeddings import issue_text
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope
from app.tokens.service import ApiToken
from app.web.errors import invalid

log = logging.getLogger(__name__)

MAX_RESULTS = 50


@dataclass(frozen=True)
class Found:
    issue: CachedIssue
    score: float


@dataclass(frozen=True)
class Results:
    method: str  # "semantic" or "words"
    found: list[Found]


async def search(
    rt: Runtime,
    token: ApiToken,
    text: str,
    *,
    repository: str | None = None,
    limit: int = 10,
) -> Results:
    """The issues that best match `text` among the token's repositories (or `repository`)."""
    require_scope(token, tokens.READ)
    text = (text or "").strip()
    if not text:
        raise invalid("q", "`q` is empty: say what to look for")
    if repository is not None:
        require_repository(token, repository)
        repositories: list[str] | None = [repository]
    else:
        repositories = token.repositories or None
    limit = min(max(limit, 1), MAX_RESULTS)
    if rt.embeddings is not None:
        try:
            return Results("semantic", await _by_meaning(rt, text, repositories, limit))
        except Exception:
            log.warning("semantic search failed; searching by words", exc_info=True)
    found = await cache.search_words(text, repositories, limit=limit)
    return Results("words", [Found(issue, score) for issue, score in found])


async def _by_meaning(
    rt: Runtime, text: str, repositories: list[str] | None, limit: int
) -> list[Found]:
    assert rt.embeddings is not None
    [vector] = await rt.embeddings.embed([issue_text(text, None)])
    ids = await cache.repository_ids(repositories) if repositories is not None else None
    if ids == []:
        return []
    async with engine.transaction(), engine.connection() as connection:
        await density.scan_settings(connection)
        rows = await connection.fetch(
            """
            SELECT issue_id, 1 - (embedding <=> $1) AS score FROM issue_embedding
            WHERE NOT deleted AND ($2::bigint[] IS NULL OR repository_id = ANY($2))
            ORDER BY embedding <=> $1
            LIMIT $3
            """,
            vector,
            ids,
            limit,
        )
    issues = await cache.by_ids([row["issue_id"] for row in rows])
    return [
        Found(issues[row["issue_id"]], float(row["score"]))
        for row in sorted(rows, key=lambda r: -float(r["score"]))
        if row["issue_id"] in issues
    ]
