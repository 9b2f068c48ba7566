"""Similar and duplicate issues, by cosine similarity of their embeddings (pgvector, HNSW).

Neighbours are ranked by cosine similarity less their neighbourhood density
(app/search/density.py): their *rank score*. A new issue whose most likely open neighbour in the
same repository has a rank score at or above the threshold gets a "possible duplicate" reply and
`dispatch/possible-duplicate`; `/dispatch similar` lists the five most likely; `investigate`
warns before spending an agent on a likely duplicate. The similarity shown to people is the
cosine (a number they can read); the threshold is on the rank score, because the cosine of an
issue in a dense neighbourhood is high to many issues that are not its duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import engine
from app.issues import cache, repo_config
from app.runtime import Runtime
from app.search import density

# Rank score (cosine less density) at or above which the most likely open neighbour makes a new
# issue a possible duplicate. Chosen by `python bench/duplicates.py --real` on the tuning half of
# tests/search/real_pairs (203 duplicate relations stated by 32 projects) with every pool padded
# to 2,000 real issues, as the lowest threshold whose flags were right at least 80% of the time:
# precision 0.80, recall 0.085 (the reporting half, measured once after: 0.78 / 0.048). The cosine
# threshold used before (0.50) flagged with precision 0.50 on the same pools (0.38 reporting):
# half of the "possible duplicate" replies were wrong. Per repository: `duplicates.threshold`.
DEFAULT_DUPLICATE_THRESHOLD = 0.22

# Candidates fetched by cosine similarity before they are ranked with their density. More find
# more (recall@3 on the evaluation set: 0.904 with 5, 0.917 with 10 or 20; bench/duplicates.py)
# but cost more where the repository filter makes the index scan walk (bench/search.py, 100k
# issues over 50 repositories: p99 18-20 ms with 5, 26 ms with 10, 30 ms with 20; target 20).
CANDIDATES = 5


@dataclass(frozen=True)
class Neighbour:
    number: int
    title: str
    state: str
    score: float  # cosine similarity to the issue asked about
    rank: float  # the score less the neighbour's density: what ranks and flags it


async def nearest(
    repository_id: int, number: int, *, limit: int = 5, open_only: bool = False
) -> list[Neighbour]:
    """The issues of the same repository most likely to be the same as issue `number` (which
    must be embedded): the `CANDIDATES` closest by cosine, ranked by cosine less density."""
    async with engine.transaction(), engine.connection() as connection:
        await density.scan_settings(connection)
        # The target vector is a scalar subquery, not a join: PostgreSQL uses the HNSW index
        # only when the distance is to a value it can evaluate once.
        rows = await connection.fetch(
            """
            WITH target AS (
                SELECT embedding FROM issue_embedding WHERE repository_id = $1 AND number = $2
            )
            SELECT * FROM (
                SELECT e.number, e.density,
                       1 - (e.embedding <=> (SELECT embedding FROM target)) AS score
                FROM issue_embedding e
                WHERE EXISTS (SELECT 1 FROM target)
                  AND e.repository_id = $1 AND e.number <> $2 AND NOT e.deleted
                  AND ($4::boolean IS FALSE OR e.open)
                ORDER BY e.embedding <=> (SELECT embedding FROM target)
                LIMIT $3
            ) AS near
            ORDER BY score DESC
            """,
            repository_id,
            number,
            max(CANDIDATES, limit),
            open_only,
        )
    densities = density.fill_missing(row["density"] for row in rows)
    ranked = sorted(
        zip(rows, densities, strict=True),
        key=lambda pair: density.adjusted(float(pair[0]["score"]), pair[1]),
        reverse=True,
    )[:limit]
    shown = await cache.summaries(repository_id, [row["number"] for row, _ in ranked])
    return [
        Neighbour(
            row["number"],
            shown[row["number"]].title,
            shown[row["number"]].state,
            float(row["score"]),
            density.adjusted(float(row["score"]), row_density),
        )
        for row, row_density in ranked
        if row["number"] in shown
    ]


async def similar_to_text(
    rt: Runtime, repository_id: int, text: str, *, limit: int = 5, open_only: bool = False
) -> list[Neighbour]:
    """The issues of a repository closest in meaning to `text` (a search, or an issue not yet
    written), by cosine similarity (each with its rank score too); [] when embeddings are off."""
    if rt.embeddings is None or not text.strip():
        return []
    [vector] = await rt.embeddings.embed([text])
    async with engine.transaction(), engine.connection() as connection:
        await density.scan_settings(connection)
        rows = await connection.fetch(
            """
            SELECT number, density, 1 - (embedding <=> $2) AS score
            FROM issue_embedding
            WHERE repository_id = $1 AND NOT deleted AND ($4::boolean IS FALSE OR open)
            ORDER BY embedding <=> $2
            LIMIT $3
            """,
            repository_id,
            vector,
            limit,
            open_only,
        )
    densities = density.fill_missing(row["density"] for row in rows)
    shown = await cache.summaries(repository_id, [row["number"] for row in rows])
    return [
        Neighbour(
            row["number"],
            shown[row["number"]].title,
            shown[row["number"]].state,
            float(row["score"]),
            density.adjusted(float(row["score"]), row_density),
        )
        for row, row_density in zip(rows, densities, strict=True)
        if row["number"] in shown
    ]


async def likely_duplicates_of_text(
    rt: Runtime,
    installation_id: int,
    repository: str,
    repository_id: int,
    text: str,
    *,
    excluding: int | None = None,
) -> list[Neighbour]:
    """Up to three open issues above the repository's duplicate threshold for an issue that
    does not exist yet (its title and body as `text`), never issue `excluding` (the issue the
    text came from, such as a mission's own)."""
    if rt.embeddings is None:
        return []
    cutoff = await threshold(rt, installation_id, repository)
    found = await similar_to_text(rt, repository_id, text, limit=4, open_only=True)
    return [n for n in found if n.rank >= cutoff and n.number != excluding][:3]


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
    return [n for n in candidates if n.rank >= cutoff]


async def warning_for(
    rt: Runtime, installation_id: int, repository: str, number: int
) -> str | None:
    """A line for `investigate` replies when the issue looks like a duplicate."""
    if rt.settings.dispatch_embeddings == "off":
        return None
    issue = await cache.get(repository, number)
    if issue is None:
        return None
    found = await likely_duplicates(rt, installation_id, repository, issue.repository_id, number)
    if not found:
        return None
    listed = ", ".join(f"#{n.number} ({n.score:.2f})" for n in found)
    return (
        f"⚠️ This looks like a duplicate of {listed}. The investigation is starting anyway; "
        "`/dispatch cancel` stops it if the other issue covers it."
    )
