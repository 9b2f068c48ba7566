"""Similar and duplicate issues, by cosine similarity of their embeddings (pgvector, HNSW).

A new issue whose nearest open neighbour in the same repository scores above the threshold gets
a "possible duplicate" reply and `dispatch/possible-duplicate`; `/dispatch similar` lists the
nearest five; `investigate` warns before spending an agent on a likely duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import engine
from app.issues import repo_config
from app.runtime import Runtime
from app.search.embeddings import DEFAULT_DUPLICATE_THRESHOLD

# How far an index scan may walk to find enough neighbours in one repository (bench/search.py:
# p99 17 ms at recall 0.91 over 100k issues in 50 repositories).
MAX_SCAN_TUPLES = 5000


@dataclass(frozen=True)
class Neighbour:
    number: int
    title: str
    state: str
    score: float


async def nearest(
    repository_id: int, number: int, *, limit: int = 5, open_only: bool = False
) -> list[Neighbour]:
    """The issues of the same repository closest to issue `number` (which must be embedded)."""
    async with engine.transaction(), engine.connection() as connection:
        # Filtering by repository after the index scan can leave too few rows: let pgvector keep
        # scanning (bounded) until it has enough. Relaxed order finds better neighbours than
        # strict order here (bench/search.py); the outer query sorts them. SET LOCAL needs the
        # transaction.
        await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        await connection.execute(f"SET LOCAL hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}")
        # The target vector is a scalar subquery, not a join: PostgreSQL uses the HNSW index
        # only when the distance is to a value it can evaluate once.
        rows = await connection.fetch(
            """
            WITH target AS (
                SELECT embedding FROM issue
                WHERE repository_id = $1 AND number = $2 AND embedding IS NOT NULL
            )
            SELECT * FROM (
                SELECT i.number, i.title, i.state,
                       1 - (i.embedding <=> (SELECT embedding FROM target)) AS score
                FROM issue i
                WHERE EXISTS (SELECT 1 FROM target)
                  AND i.repository_id = $1 AND i.number <> $2 AND NOT i.deleted
                  AND i.embedding IS NOT NULL AND ($4::boolean IS FALSE OR i.state = 'open')
                ORDER BY i.embedding <=> (SELECT embedding FROM target)
                LIMIT $3
            ) AS near
            ORDER BY score DESC
            """,
            repository_id,
            number,
            limit,
            open_only,
        )
    return [
        Neighbour(row["number"], row["title"], row["state"], float(row["score"])) for row in rows
    ]


async def threshold(rt: Runtime, installation_id: int, repository: str) -> float:
    loaded = await repo_config.load(rt, installation_id, repository)
    return loaded.config.duplicates.threshold or DEFAULT_DUPLICATE_THRESHOLD


async def likely_duplicates(
    rt: Runtime, installation_id: int, repository: str, repository_id: int, number: int
) -> list[Neighbour]:
    """Up to three open issues above the repository's duplicate threshold."""
    if rt.settings.dispatch_embeddings == "off":
        return []
    cutoff = await threshold(rt, installation_id, repository)
    candidates = await nearest(repository_id, number, limit=3, open_only=True)
    return [n for n in candidates if n.score >= cutoff]


async def warning_for(
    rt: Runtime, installation_id: int, repository: str, number: int
) -> str | None:
    """A line for `investigate` replies when the issue looks like a duplicate."""
    if rt.settings.dispatch_embeddings == "off":
        return None
    async with engine.connection() as connection:
        repository_id = await connection.fetchval(
            "SELECT repository_id FROM issue WHERE lower(repository) = lower($1) AND number = $2",
            repository,
            number,
        )
    if repository_id is None:
        return None
    found = await likely_duplicates(rt, installation_id, repository, repository_id, number)
    if not found:
        return None
    listed = ", ".join(f"#{n.number} ({n.score:.2f})" for n in found)
    return (
        f"⚠️ This looks like a duplicate of {listed}. The investigation is starting anyway; "
        "`/dispatch cancel` stops it if the other issue covers it."
    )
