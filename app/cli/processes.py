"""The long-running processes (`serve`, `worker`) and `migrate`."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from app import __version__
from app.cli.bootstrap import prepare, runtime_or_exit, settings_or_exit, with_database
from app.cli.signals import StopSignals
from app.cli.worker_process import WorkerProcess, run_worker
from app.config import Settings

log = logging.getLogger("app.cli")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=3000, show_default=True, type=int, help="TCP port (0: any free one)."
)
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `dispatch worker` elsewhere.")
@click.option(
    "--worker-in-process",
    is_flag=True,
    help="Run the worker in the web server's own process (one core) instead of beside it.",
)
def serve(host: str, port: int, no_worker: bool, worker_in_process: bool) -> None:
    """Serve webhooks, the API and pages; run the worker too (in a process of its own) unless
    --no-worker."""
    from app.server import Server, create_app

    settings = settings_or_exit()
    stop = StopSignals(settings.shutdown_grace_seconds)
    dsn = prepare(settings)
    if stop.received:
        return
    rt = runtime_or_exit(settings)
    worker = None
    pool_size = settings.database_pool_size
    if not no_worker and not worker_in_process:
        # DATABASE_POOL_SIZE is per `serve`: its two processes share it.
        worker = WorkerProcess.fork(rt, dsn, pool_size=pool_size // 2)
        pool_size -= pool_size // 2
    app = create_app(
        rt,
        dsn=dsn,
        run_worker=worker_in_process and not no_worker,
        freeze_heap=True,
        pool_size=pool_size,
    )
    server = Server(
        app,
        host=host,
        port=port,
        grace=settings.shutdown_grace_seconds,
        announce=lambda url: click.echo(f"dispatch {__version__} listening on {url}", err=True),
    )
    if not rt.credentials.configured:
        _announce_setup(settings)
    worker_failed: list[int] = []

    def graceful() -> None:
        server.should_exit = True
        if worker is not None:
            worker.stop()

    def hurry() -> None:
        server.hurry()
        if worker is not None:
            worker.hurry()

    def worker_crashed(status: int) -> None:
        log.error("the worker process ended; dispatch serve stops", extra={"status": status})
        worker_failed.append(status)
        server.should_exit = True

    async def run() -> None:
        watch = asyncio.create_task(worker.watch(worker_crashed)) if worker else None
        try:
            with stop.handled_by(asyncio.get_running_loop(), graceful, hurry):
                await server.serve()
                if worker is not None:
                    await worker.stopped()  # a signal meanwhile still reaches it
        finally:
            if watch is not None:
                watch.cancel()

    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(run())  # on uvloop, as uvicorn.run would
    finally:
        if worker is not None:  # the server ended by itself (it could not bind its port)
            worker.stop()
            worker.wait()
    if worker_failed:
        sys.exit(1)


def _announce_setup(settings: Settings) -> None:
    """Print the one-time setup code (never through the logs, which may be shipped elsewhere)."""
    from app.setup import code

    setup_code = code.ensure(settings.dispatch_data_dir)
    click.echo(
        f"No GitHub App is configured yet. Open {settings.dispatch_url}/setup and enter the "
        f"setup code {setup_code}\n(also in {settings.dispatch_data_dir / code.CODE_FILE})",
        err=True,
    )


@click.command()
def worker() -> None:
    """Run jobs and schedules from the queue (any number of workers, on any machines)."""
    settings = settings_or_exit()
    stop = StopSignals(settings.shutdown_grace_seconds)
    dsn = prepare(settings)
    if stop.received:
        return
    run_worker(runtime_or_exit(settings), dsn, stop)


@click.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from app.db import migrate as migrations

    settings = settings_or_exit()
    dsn = prepare(settings)
    applied = asyncio.run(with_database(dsn, settings, migrations.migrate, migrate=False))
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")
