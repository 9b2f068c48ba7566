"""The long-running processes (`serve`, `worker`) and `migrate`."""

from __future__ import annotations

import asyncio

import click

from app import __version__
from app.cli.bootstrap import prepare, runtime_or_exit, settings_or_exit, with_database
from app.cli.signals import StopSignals
from app.config import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=3000, show_default=True, type=int, help="TCP port (0: any free one)."
)
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `dispatch worker` elsewhere.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve webhooks, the API and pages; run the worker too unless --no-worker."""
    from app.server import Server, create_app

    settings = settings_or_exit()
    stop = StopSignals(settings.shutdown_grace_seconds)
    dsn = prepare(settings)
    if stop.received:
        return
    rt = runtime_or_exit(settings)
    app = create_app(rt, dsn=dsn, run_worker=not no_worker, freeze_heap=True)
    server = Server(
        app,
        host=host,
        port=port,
        grace=settings.shutdown_grace_seconds,
        announce=lambda url: click.echo(f"dispatch {__version__} listening on {url}", err=True),
    )
    if not rt.credentials.configured:
        _announce_setup(settings)

    def graceful() -> None:
        server.should_exit = True

    async def run() -> None:
        with stop.handled_by(asyncio.get_running_loop(), graceful, server.hurry):
            await server.serve()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(run())  # on uvloop, as uvicorn.run would


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
    import gc

    from app.worker import build_worker

    settings = settings_or_exit()
    grace = settings.shutdown_grace_seconds
    stop = StopSignals(grace)
    dsn = prepare(settings)
    if stop.received:
        return
    rt = runtime_or_exit(settings)

    async def work() -> None:
        gc.collect()
        gc.freeze()  # start-up objects stay for the process's life; keep full collections short
        runner = build_worker(rt)
        loop = asyncio.get_running_loop()
        try:
            with stop.handled_by(loop, lambda: runner.stop(grace), lambda: runner.stop(0)):
                await runner.run()
        finally:
            await rt.close()

    asyncio.run(with_database(dsn, settings, work))


@click.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from app.db import migrate as migrations

    settings = settings_or_exit()
    dsn = prepare(settings)
    applied = asyncio.run(with_database(dsn, settings, migrations.migrate, migrate=False))
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")
