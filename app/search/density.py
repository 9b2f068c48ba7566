"""Neighbourhood density: how close an issue sits to its nearest neighbours in general.

Some issues are near everything (a vague "checkout is broken" is close to half the shop's
reports); in a plain nearest-neighbour list they crowd out the one issue that really is the same
report: the "hubness" of high-dimensional embeddings. Ranking a candidate by its cosine
similarity minus its density (the mean similarity to its own `NEIGHBOURS` nearest issues; CSLS,
Conneau et al. 2018) corrects for it. On tests/search/eval_pairs.py it raises recall@3 from
0.878 to 0.904 and the flagging F1 at the default threshold from 0.54 to 0.55 (`python
bench/duplicates.py`).

An issue's density is stored with its embedding (`issue_embedding.density`), measured within its
repository when it is embedded; a new or edited issue also refreshes the density of its nearest
neighbours, whose neighbourhood it has just joined. A missing density (an issue alone in its
repository, or not measured yet) counts as the mean of the other candidates'."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import numpy as np

from app.db import engine

NEIGHBOURS = 5

# How far an index scan may walk to find enough neighbours in one repository (bench/search.py:
# p99 17 ms at recall 0.91 over 100k issues in 50 repositories).
MAX_SCAN_TUPLES = 5000


def adjusted(score: float, density: float) -> float:
    """A candidate's rank score: its similarity to the issue asked about, less how similar it is
    to everything near it."""
    return score - density


def fill_missing(densities: Iterable[float | None]) -> list[float]:
    """Densities with the unknown ones replaced by the mean of the known (0 if none is)."""
    values = list(densities)
    known = [d for d in values if d is not None]
    mean = sum(known) / len(known) if known else 0.0
    return [mean if d is None else d for d in values]


def rank_scores(similarity: np.ndarray, candidates: int) -> np.ndarray:
    """The ranking of `duplicates.nearest`, over an in-memory pool (for the evaluation in
    bench/duplicates.py and the tests): `similarity` is the pool's cosine matrix with -inf on
    the diagonal; each row keeps its `candidates` most similar columns, scored by cosine less
    the column's density (its mean similarity to its `NEIGHBOURS` nearest in the pool); the
    rest of the row is -inf. A pool smaller than that uses all of its other issues."""
    others = len(similarity) - 1
    ordered = np.sort(similarity, axis=1)  # the diagonal's -inf first
    nearest = ordered[:, -min(NEIGHBOURS, others) :]
    scores = similarity - nearest.mean(axis=1)[None, :]
    cutoff = ordered[:, -min(candidates, others)][:, None]
    return np.where(similarity >= cutoff, scores, -np.inf)


async def scan_settings(connection: asyncpg.Connection) -> None:
    """Inside a transaction: filtering by repository after the HNSW scan can leave too few rows,
    so pgvector keeps scanning (bounded) until it has enough. Relaxed order finds better
    neighbours than strict order here (bench/search.py); queries sort their results."""
    await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    await connection.execute(f"SET LOCAL hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}")


# The target vector is a scalar subquery, not a join: PostgreSQL uses the HNSW index only when
# the distance is to a value it can evaluate once.
_MEASURE = """
WITH target AS (
    SELECT repository_id, embedding FROM issue_embedding WHERE issue_id = $1
)
UPDATE issue_embedding SET density = (
    SELECT avg(near.score) FROM (
        SELECT 1 - (o.embedding <=> (SELECT embedding FROM target)) AS score
        FROM issue_embedding o
        WHERE o.repository_id = (SELECT repository_id FROM target) AND o.issue_id <> $1
          AND NOT o.deleted
        ORDER BY o.embedding <=> (SELECT embedding FROM target)
        LIMIT $2
    ) AS near
)
WHERE issue_id = $1 AND EXISTS (SELECT 1 FROM target)
"""

_NEIGHBOURS_OF = """
WITH target AS (
    SELECT repository_id, embedding FROM issue_embedding WHERE issue_id = $1
)
SELECT * FROM (
    SELECT o.issue_id FROM issue_embedding o
    WHERE o.repository_id = (SELECT repository_id FROM target) AND o.issue_id <> $1
      AND NOT o.deleted AND EXISTS (SELECT 1 FROM target)
    ORDER BY o.embedding <=> (SELECT embedding FROM target)
    LIMIT $2
) AS near
"""


async def measure(issue_ids: Iterable[int]) -> None:
    """Store the density of each issue (those without an embedding are skipped)."""
    for issue_id in issue_ids:
        async with engine.transaction(), engine.connection() as connection:
            await scan_settings(connection)
            await connection.execute(_MEASURE, issue_id, NEIGHBOURS)


async def measure_with_neighbours(issue_id: int) -> None:
    """After an issue's embedding changed: its density, and its nearest neighbours' (it may now
    be one of their nearest)."""
    async with engine.transaction(), engine.connection() as connection:
        await scan_settings(connection)
        rows = await connection.fetch(_NEIGHBOURS_OF, issue_id, NEIGHBOURS)
    await measure([issue_id, *(row["issue_id"] for row in rows)])


async def measure_unmeasured(repository_id: int | None = None) -> int:
    """Measure every embedded issue that has no density yet (after a backfill)."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT issue_id FROM issue_embedding WHERE density IS NULL AND NOT deleted "
            "AND ($1::bigint IS NULL OR repository_id = $1) ORDER BY issue_id",
            repository_id,
        )
    await measure(row["issue_id"] for row in rows)
    return len(rows)
