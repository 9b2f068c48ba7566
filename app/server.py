"""The composition root of the web side: the Litestar app factory collects each area's routes
in one list, hands handlers the runtime and the event router, and a lifespan connects the
database, applies migrations and runs the worker (unless `--no-worker`).

`Server` is uvicorn with Dispatch's way of stopping (the CLI owns the signals): it stops
listening, ends the live streams at once, lets requests and running jobs finish within
`SHUTDOWN_GRACE_SECONDS` (then hands the jobs back to the queue and answers what is left 503),
and only then closes the worker, the stream bus and the database pools."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.template import TemplateConfig

from app import __version__
from app.agents import api_routes as agent_api_routes
from app.agents import follow_up_queue
from app.agents import routes as agent_routes
from app.audit import routes as audit_routes
from app.claims import routes as claim_routes
from app.commands import routes as command_routes
from app.db import engine, migrate
from app.health import routes as health_routes
from app.intake import alert_routes
from app.intake import routes as intake_routes
from app.issues import routes as issue_routes
from app.mcp import mount as mcp_mount
from app.portal import access as portal_access
from app.portal import routes as portal_routes
from app.queue import Worker
from app.retention.service import StorageMetrics
from app.runtime import Runtime
from app.search import routes as search_routes
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


def create_app(
    rt: Runtime,
    *,
    dsn: str,
    run_worker: bool = True,
    freeze_heap: bool = False,
    pool_size: int | None = None,
) -> Litestar:
    """The web app on `rt`. `freeze_heap` is for the process that serves it for good (`dispatch
    serve`): after start-up, everything loaded is moved out of the garbage collector's reach.
    `pool_size`: its database connections (DATABASE_POOL_SIZE unless given)."""
    pool_size = pool_size or rt.settings.database_pool_size
    router = event_router()
    metric_sources = [StorageMetrics(rt.clock).refresh]
    mcp = mcp_mount.build(rt)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await engine.connect(dsn, pool_size=pool_size)
        if await migrate.migrate():
            # Reconnect so every pooled connection has the codecs of the freshly migrated schema.
            await engine.disconnect()
            await engine.connect(dsn, pool_size=pool_size)
        app.state.migrated = True
        bus = app.state.bus = StreamBus(dsn)
        await bus.start()
        worker_task: asyncio.Task[None] | None = None
        if run_worker:
            worker = build_worker(rt, router)
            app.state.worker = worker
            worker_task = asyncio.create_task(worker.run(), name="dispatch-worker")
            worker_task.add_done_callback(_report_worker_exit)
        if freeze_heap:
            # Everything loaded so far lives as long as the process: keep it out of the
            # collector's generations, so full collections stay short (they showed as stream
            # lag spikes). Not for an app served in a process that goes on (a test's): there the
            # full collection is the slowest part of a start.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if worker_task is not None:
                grace = rt.settings.shutdown_grace_seconds
                app.state.worker.stop(grace)  # keeps an earlier deadline set by `Server`
                # The worker hands its jobs back by the deadline; this bound is only a backstop.
                done, _ = await asyncio.wait({worker_task}, timeout=grace + 5)
                if not done:
                    log.error("the worker did not stop in time")
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
        *command_routes.routes,
        *agent_api_routes.routes,
        *claim_routes.routes,
        *search_routes.routes,
        mcp.handler,
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
            "metric_sources": Provide(lambda: metric_sources, use_cache=True, sync_to_thread=False),
            # The claim queue's pull-request follow-ups come from the agents' revise rules.
            "follow_ups": Provide(
                lambda: follow_up_queue.SOURCE, use_cache=True, sync_to_thread=False
            ),
        },
        # The MCP session manager runs inside the app's lifespan, after the database is up.
        lifespan=[lifespan, mcp.lifespan],
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


class Server(uvicorn.Server):
    """`dispatch serve`'s uvicorn. Signals are the caller's: it sets `should_exit` on the first
    and calls `hurry()` on the next. Shutdown then runs in this order: stop listening; end the
    live streams and stop the worker taking jobs; wait for requests and running jobs, at most
    `grace` seconds (then `hurry()`); close the worker, the stream bus and the pools."""

    def __init__(
        self,
        app: Litestar,
        *,
        host: str,
        port: int,
        grace: float,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.grace = grace
        self.announce = announce
        self._hurried = False
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            # A backstop: `hurry()` at the grace has ended every request well before.
            timeout_graceful_shutdown=int(grace) + 5,
        )
        super().__init__(config)

    @property
    def bound_url(self) -> str:
        """Where the server listens, with the port it was given (for `--port 0`, the one the
        system chose)."""
        port = self.servers[0].sockets[0].getsockname()[1]
        host = self.config.host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce is not None:
            self.announce(self.bound_url)  # only once the socket is bound: it is ours

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own handlers would re-raise SIGTERM after the shutdown (killing the process
        # before anything after `serve()` ran) and cancel the lifespan on a second Ctrl-C.
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        bus: StreamBus | None = self.app.state.get("bus")
        if bus is not None:
            bus.end_streams()
        worker: Worker | None = self.app.state.get("worker")
        if worker is not None:
            worker.stop(0 if self._hurried else self.grace)
        hurry = asyncio.get_running_loop().call_later(self.grace, self.hurry)
        try:
            await super().shutdown(sockets)
        finally:
            hurry.cancel()

    def hurry(self) -> None:
        """The grace is over (or a second signal came): running jobs go back to the queue now,
        and requests still running are cut short with a 503."""
        if self._hurried:
            return
        self._hurried = True
        worker: Worker | None = self.app.state.get("worker")
        if worker is not None:
            worker.stop(0)
        for task in list(self.server_state.tasks):
            task.cancel()

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._hurried or task is None:
                raise
            task.uncancel()
            if scope["type"] == "http" and not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5")],
                    }
                )
                body = (
                    b'{"detail": "the server is stopping; try again (another replica may answer)"}'
                )
                await send({"type": "http.response.body", "body": body})
