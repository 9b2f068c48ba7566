"""Neighbourhood density in the database: measured as the mean similarity to an issue's nearest
neighbours in its repository, and used so that an issue close to everything does not crowd out
the one that is really the same report. Vectors are made by hand so the geometry is known."""

from __future__ import annotations

import numpy as np
import pytest

from app.db import engine
from app.search import density, duplicates

REPO_ID = 7


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


async def add(number: int, vector: np.ndarray, *, repository_id: int = REPO_ID) -> int:
    """An issue in the cache and its embedding (as search stores it)."""
    async with engine.connection() as connection:
        issue_id = await connection.fetchval(
            "INSERT INTO issue (installation_id, repository_id, repository, number, title, body, "
            "state, labels, assignees, agents) "
            "VALUES (1, $1, $2, $3, $4, '', 'open', '{}', '{}', '{}') RETURNING id",
            repository_id,
            f"octo-org/repo-{repository_id}",
            number,
            f"Issue {number}",
        )
        await connection.execute(
            "INSERT INTO issue_embedding (issue_id, repository_id, number, embedding, "
            "embedded_hash, model) VALUES ($1, $2, $3, $4, 'hand-made', 'test')",
            issue_id,
            repository_id,
            number,
            vector,
        )
    return issue_id


async def stored_density(issue_id: int) -> float | None:
    async with engine.connection() as connection:
        return await connection.fetchval(
            "SELECT density FROM issue_embedding WHERE issue_id = $1", issue_id
        )


async def test_density_is_the_mean_similarity_to_the_nearest_issues_of_the_repository(database):
    rng = np.random.default_rng(3)
    vectors = [unit(rng.normal(size=384)) for _ in range(12)]
    ids = [await add(n + 1, v) for n, v in enumerate(vectors)]
    # The same vector in another repository must not count as a neighbour.
    await add(1, vectors[0], repository_id=REPO_ID + 1)

    await density.measure([ids[0]])

    similarities = sorted((float(vectors[0] @ v) for v in vectors[1:]), reverse=True)
    expected = sum(similarities[: density.NEIGHBOURS]) / density.NEIGHBOURS
    assert await stored_density(ids[0]) == pytest.approx(expected, abs=1e-5)


async def test_an_issue_alone_in_its_repository_has_no_density(database):
    alone = await add(1, unit(np.ones(384)))

    await density.measure([alone])

    assert await stored_density(alone) is None


async def test_a_new_issue_refreshes_its_neighbours_density(database):
    rng = np.random.default_rng(5)
    base = unit(rng.normal(size=384))
    ids = [await add(n + 1, unit(base + 0.8 * unit(rng.normal(size=384)))) for n in range(7)]
    await density.measure_unmeasured(REPO_ID)
    before = [await stored_density(i) for i in ids]

    newcomer = await add(8, base)  # closer to all of them than they are to each other
    await density.measure_with_neighbours(newcomer)

    after = [await stored_density(i) for i in ids]
    assert await stored_density(newcomer) is not None
    assert sum(a > b + 1e-6 for a, b in zip(after, before, strict=True)) >= density.NEIGHBOURS


async def test_an_issue_close_to_everything_does_not_crowd_out_the_real_duplicate(database):
    """Asked about `report`: the hub is slightly closer by cosine, but it is about as close to
    every other issue too; the duplicate is close to `report` and to little else."""
    rng = np.random.default_rng(11)
    topic = unit(rng.normal(size=384))
    report_direction = unit(rng.normal(size=384))
    others = [unit(topic + 0.9 * unit(rng.normal(size=384))) for _ in range(8)]
    hub = unit(topic + 0.9 * report_direction)
    duplicate = unit(report_direction + 0.25 * topic + 0.55 * unit(rng.normal(size=384)))
    report = unit(report_direction + 0.45 * topic)
    numbers = {"hub": 1, "duplicate": 2, "report": 3}
    await add(numbers["hub"], hub)
    await add(numbers["duplicate"], duplicate)
    for n, vector in enumerate(others):
        await add(10 + n, vector)
    await density.measure_unmeasured(REPO_ID)
    report_id = await add(numbers["report"], report)
    await density.measure_with_neighbours(report_id)
    assert float(report @ hub) > float(report @ duplicate)  # the trap: cosine alone picks the hub

    found = await duplicates.nearest(REPO_ID, numbers["report"], limit=3)

    assert found[0].number == numbers["duplicate"]
    assert found[0].score == pytest.approx(float(report @ duplicate), abs=1e-5)  # still cosine
    assert numbers["hub"] in [n.number for n in found]
