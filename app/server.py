"""The composition root of the web side: the Litestar app factory collects each area's routes
in one list, hands handlers the runtime and the event router, and a lifespan connects the
database, applies migrations and runs the worker (unless `--no-worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.template import TemplateConfig

from app import __version__
from app.agents import routes as agent_routes
from app.audit import routes as audit_routes
from app.db import engine, migrate
from app.health import routes as health_routes
from app.intake import alert_routes
from app.intake import routes as intake_routes
from app.issues import routes as issue_routes
from app.portal import access as portal_access
from app.portal import routes as portal_routes
from app.runtime import Runtime
from app.setup import routes as setup_routes
from app.stream.bus import StreamBus
from app.web.errors import busy_handler, http_exception_handler, internal_error_handler
from app.worker import build_worker, event_router

log = logging.getLogger(__name__)

TEMPLATE_DIRS: list[Path | os.PathLike[Any] | str] = [
    Path(__file__).parent / "setup" / "templates",
    Path(__file__).parent / "agents" / "templates",
    Path(__file__).parent / "portal" / "templates",
]


def create_app(rt: Runtime, *, dsn: str, run_worker: bool = True) -> Litestar:
    router = event_router()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await engine.connect(dsn, pool_size=rt.settings.database_pool_size)
        await migrate.migrate()
        # Reconnect so every pooled connection has the codecs of the freshly migrated schema.
        await engine.connect(dsn, pool_size=rt.settings.database_pool_size)
        app.state.migrated = True
        bus = app.state.bus = StreamBus(dsn)
        await bus.start()
        worker_task: asyncio.Task[None] | None = None
        if run_worker:
            worker = build_worker(rt, router)
            app.state.worker = worker
            worker_task = asyncio.create_task(worker.run(), name="dispatch-worker")
            worker_task.add_done_callback(_report_worker_exit)
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # generations, so full collections stay short (they showed as stream lag spikes).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if worker_task is not None:
                app.state.worker.stop()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(worker_task, timeout=10)
            await bus.stop()
            await rt.close()
            await engine.disconnect()

    routes = [
        *intake_routes.routes,
        *alert_routes.routes,
        *setup_routes.routes,
        *health_routes.routes,
        *issue_routes.routes,
        *audit_routes.routes,
        *agent_routes.routes,
        *portal_routes.routes,
    ]
    return Litestar(
        route_handlers=routes,
        dependencies={
            "rt": Provide(lambda: rt, use_cache=True, sync_to_thread=False),
            "router": Provide(lambda: router, use_cache=True, sync_to_thread=False),
            # Who else may watch a run's stream: holders of a portal token whose customer
            # follows the run's issue (the run viewer knows only its own signed links).
            "other_viewers": Provide(
                lambda: portal_access.opens_run, use_cache=True, sync_to_thread=False
            ),
        },
        lifespan=[lifespan],
        exception_handlers={
            HTTPException: http_exception_handler,
            TimeoutError: busy_handler,
            Exception: internal_error_handler,
        },
        template_config=TemplateConfig(directory=TEMPLATE_DIRS, engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(title="Dispatch", version=__version__, path="/schema"),
        on_app_init=[_state_defaults],
        logging_config=None,
    )


def _state_defaults(config: AppConfig) -> AppConfig:
    config.state.update({"migrated": False, "worker": None})
    return config


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker stopped", exc_info=task.exception())
