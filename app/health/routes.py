"""`/healthz` (alive, database reachable), `/readyz` (migrated and, if this process runs one, the
worker is running) and `/metrics`.

Some metrics are measured when they are read: the composition root hands `/metrics` the
refreshers to await first (`metric_sources`), so this room needs to know none of the areas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import __version__
from app.db import engine
from app.runtime import Runtime


@get("/healthz", include_in_schema=False)
async def healthz(rt: Runtime) -> Response[dict[str, Any]]:
    try:
        async with engine.connection() as connection:
            await connection.fetchval("SELECT 1")
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    body = {
        "ok": database == "ok",
        "database": database,
        "version": __version__,
        "github_app": "configured" if rt.credentials.configured else "unconfigured",
    }
    return Response(body, status_code=200 if body["ok"] else 503)


@get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response[dict[str, Any]]:
    state = request.app.state
    checks = {"migrated": bool(state.get("migrated"))}
    if state.get("worker") is not None:
        checks["worker"] = state["worker"].running.is_set()
    ready = all(checks.values())
    return Response({"ready": ready, **checks}, status_code=200 if ready else 503)


MetricSources = list[Callable[[], Awaitable[None]]]


@get("/metrics", include_in_schema=False)
async def metrics(metric_sources: MetricSources) -> Response[bytes]:
    for refresh in metric_sources:
        await refresh()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [healthz, readyz, metrics]
