"""Checks of this install itself: the configuration and the data directory's disk (no database
needed), then the database (reachable, migrated, pgvector) and whether a worker is alive."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import queue
from app.config import ConfigError, Settings, environment_warnings, warnings_for
from app.db import engine, migrate
from app.doctor.report import Check, fail, ok, warn
from app.runtime import Runtime

# The data directory's disk: warn below either.
MIN_FREE_FRACTION = 0.10
MIN_FREE_BYTES = 1 << 30
# A worker beats every JOB_HEARTBEAT_SECONDS; this many missed beats (and at least two minutes)
# and it is taken for gone.
MISSED_BEATS = 3

DiskUsage = Callable[[Path], Any]


def configuration(loaded: Settings | ConfigError) -> list[Check]:
    """Every setting valid (one ✗ per bad variable), then names that look like settings but are
    not read as such (a misspelt name is often why a value seems ignored), then what is allowed
    but probably a mistake."""
    area = "configuration"
    if isinstance(loaded, ConfigError):
        checks = [
            fail(
                area,
                "setting",
                problem,
                "set a valid value (the README's Configuration table lists every variable)",
            )
            for problem in loaded.problems
        ]
    else:
        checks = [ok(area, "settings", "every variable is valid")]
    for warning in environment_warnings():
        name = warning.split(" ", 1)[0]
        fix = (
            f"rename {name} as the warning says"
            if "old name" in warning or "did you mean" in warning
            else f"remove {name}, or correct it if it was meant for Dispatch"
        )
        checks.append(warn(area, "environment", warning, fix))
    if isinstance(loaded, Settings):
        for warning in warnings_for(loaded):
            checks.append(warn(area, "DISPATCH_URL", warning, "serve Dispatch over https"))
    return checks


def storage(settings: Settings, usage: DiskUsage = shutil.disk_usage) -> list[Check]:
    """The disk holding the data directory (the embedded database, the App's credentials)."""
    path = Path(settings.dispatch_data_dir).resolve()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    try:
        found = usage(existing)
    except OSError as exc:
        return [warn("storage", "disk", f"cannot measure {existing}: {exc}", "check the path")]
    free, total = found.free, found.total
    shown = f"{free / (1 << 30):.1f} GB free of {total / (1 << 30):.1f} GB at {existing}"
    if total and (free / total < MIN_FREE_FRACTION or free < MIN_FREE_BYTES):
        return [
            warn(
                "storage",
                "disk",
                f"the data directory's disk is nearly full: {shown}",
                "free space or move DISPATCH_DATA_DIR to a larger disk: the embedded database "
                "stops accepting writes when the disk is full",
            )
        ]
    return [ok("storage", "disk", shown)]


def unreachable_database(exc: BaseException, settings: Settings) -> Check:
    where = "DATABASE_URL" if settings.database_url else "the embedded PostgreSQL"
    return fail(
        "database",
        "reachable",
        f"{where} cannot be reached: {type(exc).__name__}: {exc}",
        "check DATABASE_URL (host, credentials, network)"
        if settings.database_url
        else f"check DISPATCH_DATA_DIR ({settings.dispatch_data_dir}) and the server log",
    )


async def database(rt: Runtime) -> list[Check]:
    area = "database"
    try:
        async with engine.connection() as connection:
            version = await connection.fetchval("SHOW server_version")
            vector = await connection.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            )
    except Exception as exc:
        return [unreachable_database(exc, rt.settings)]
    checks = [ok(area, "reachable", f"PostgreSQL {version}")]
    if vector:
        checks.append(ok(area, "pgvector", f"the vector extension {vector} is installed"))
    else:
        checks.append(
            fail(
                area,
                "pgvector",
                "the vector extension is not installed",
                "use a PostgreSQL with pgvector, then `dispatch migrate` (it creates the "
                "extension)",
            )
        )
    try:
        pending = await migrate.pending()
    except Exception as exc:
        pending = [f"(cannot tell: {type(exc).__name__})"]
    if pending:
        checks.append(
            fail(
                area,
                "migrations",
                f"{len(pending)} not applied: {', '.join(pending[:5])}",
                "run `dispatch migrate` (servers and workers also migrate when they start)",
            )
        )
        return checks  # the heartbeat table may not exist yet
    checks.append(ok(area, "migrations", "all applied"))
    checks.append(await worker(rt))
    return checks


async def worker(rt: Runtime) -> Check:
    start = "start `dispatch worker`, or `dispatch serve` without --no-worker"
    beat = await queue.latest_heartbeat()
    if beat is None:
        return fail("database", "worker", "no worker has ever reported in", start)
    limit = max(MISSED_BEATS * rt.settings.job_heartbeat_seconds, 120.0)
    who = f"{beat.host}, pid {beat.pid}"
    if beat.age_seconds > limit:
        return fail(
            "database",
            "worker",
            f"no worker heartbeat for {_ago(beat.age_seconds)} (last: {who})",
            f"{start}; jobs (commands, dispatches, comments) wait until one runs",
        )
    return ok("database", "worker", f"alive ({who}, {_ago(beat.age_seconds)} ago)")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
