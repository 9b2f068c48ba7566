"""Listing runs: a repository's latest, and the filtered, paged search of the read API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.agents.runs import Run, RunState
from app.db import engine
from app.modes import Mode


async def recent(repository_id: int, limit: int = 10) -> list[Run]:
    """The latest runs of a repository, newest first."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM run WHERE repository_id = $1 ORDER BY id DESC LIMIT $2",
            repository_id,
            limit,
        )
    return [Run.from_row(row) for row in rows]


@dataclass(frozen=True)
class RunFilter:
    repositories: list[str] | None = None  # None: every repository
    issue_number: int | None = None
    states: list[RunState] | None = None
    mode: Mode | None = None


async def search(flt: RunFilter, *, limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]:
    """(total matching, one page), newest first."""
    where = ["true"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.repositories is not None:
        where.append(f"lower(repository) = ANY({arg([r.lower() for r in flt.repositories])})")
    if flt.issue_number is not None:
        where.append(f"issue_number = {arg(flt.issue_number)}")
    if flt.states:
        where.append(f"state = ANY({arg([state.value for state in flt.states])})")
    if flt.mode is not None:
        where.append(f"mode = {arg(flt.mode.value)}")
    clause = " AND ".join(where)
    async with engine.connection() as connection:
        total = await connection.fetchval(f"SELECT count(*) FROM run WHERE {clause}", *args)
        rows = await connection.fetch(
            f"SELECT * FROM run WHERE {clause} ORDER BY id DESC "
            f"LIMIT {arg(limit)} OFFSET {arg(offset)}",
            *args,
        )
    return int(total), [Run.from_row(row) for row in rows]
