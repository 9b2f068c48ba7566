"""The `dispatch` command: serve, worker, migrate, deliveries (replay, discard), tokens, sync,
ask (a mission), kill switch, prune, db dump/restore.

Configuration errors print one line naming the variable and exit with status 2; no traceback.
Each command imports what it needs inside its function, so `dispatch --help` and a mistyped
command answer at once instead of loading the whole application first.

`serve` and `worker` stop alike on SIGTERM, SIGINT and SIGHUP (`_StopSignals`): gracefully on
the first, at once on the second, and always through their clean-up, which ends with releasing
the embedded database (`app/db/embedded.py` decides whether that stops it).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from app import __version__
from app.config import (
    ConfigError,
    Settings,
    environment_warnings,
    load_settings,
    warnings_for,
)

if TYPE_CHECKING:
    from app.issues.cache import BackfillProgress
    from app.runtime import Runtime

T = TypeVar("T")
log = logging.getLogger("app.cli")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"dispatch: configuration error: {exc}", err=True)
        sys.exit(2)
    for warning in [*environment_warnings(), *warnings_for(settings)]:
        click.echo(f"dispatch: warning: {warning}", err=True)
    return settings


def _runtime(settings: Settings) -> Runtime:
    """The process's runtime; a bad secret key file (or another setting found wrong while
    building it) is a configuration error like any other."""
    from app.worker import build_runtime

    try:
        return build_runtime(settings)
    except ConfigError as exc:
        click.echo(f"dispatch: configuration error: {exc}", err=True)
        sys.exit(2)


def _prepare(settings: Settings) -> str:
    """Logging on, and the database DSN: DATABASE_URL, or the embedded server (started here)."""
    from app import logs
    from app.db import embedded

    logs.configure(settings.log_level)
    if settings.database_url:
        return settings.database_url
    server = embedded.start(settings.dispatch_data_dir)
    # Last thing before the process ends, whichever way the command ends (serve and worker
    # never end by a signal's default action: `_StopSignals` turns signals into a clean stop).
    atexit.register(server.release)
    asyncio.run(embedded.ensure_database(server.dsn))
    return server.dsn


class _StopSignals:
    """SIGTERM, SIGINT and SIGHUP for `serve` and `worker`: the first stops gracefully (`graceful`),
    the second at once (`hurry`: running jobs go back to the queue), later ones change nothing.
    None of them ends the process by itself: it always runs its clean-up. Until the event loop
    takes them over (`handled_by`), they are only remembered, so a start that is under way (the
    embedded database, migrations) completes and the process then stops cleanly."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.received = 0
        self._graceful: Callable[[], None] | None = None
        self._hurry: Callable[[], None] | None = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._received(signum)

    def _received(self, signum: int) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            log.info("stopping", extra={"signal": name, "grace_seconds": self.grace})
            if self._graceful is not None:
                self._graceful()
        elif self.received == 2:
            log.warning("stopping now: running jobs go back to the queue", extra={"signal": name})
            if self._hurry is not None:
                self._hurry()
        else:
            log.info("already stopping", extra={"signal": name})

    @contextlib.contextmanager
    def handled_by(
        self,
        loop: asyncio.AbstractEventLoop,
        graceful: Callable[[], None],
        hurry: Callable[[], None],
    ) -> Iterator[None]:
        """While inside, signals call `graceful` and `hurry` on the loop (at once for any that
        came before)."""
        with _signals_blocked():
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self._received, signum)
        self._graceful, self._hurry = graceful, hurry
        if self.received >= 1:
            graceful()
        if self.received >= 2:
            hurry()
        try:
            yield
        finally:
            self._graceful = self._hurry = None
            with _signals_blocked():
                for signum in STOP_SIGNALS:
                    loop.remove_signal_handler(signum)  # this restores the default action …
                    signal.signal(signum, self._on_signal)  # … which must never run


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Signals arriving while handlers are swapped wait (pending) for the new handler."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


async def _with_database(
    dsn: str, settings: Settings, work: Callable[[], Awaitable[T]], *, migrate: bool = True
) -> T:
    from app.db import engine
    from app.db import migrate as migrations

    await engine.connect(dsn, pool_size=min(settings.database_pool_size, 5))
    try:
        if migrate:
            await migrations.migrate()
        return await work()
    finally:
        await engine.disconnect()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Dispatch: run AI coding agents on GitHub issues.

    Settings come from the environment (see the README); with no DATABASE_URL an embedded
    PostgreSQL is started in DISPATCH_DATA_DIR.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=3000, show_default=True, type=int, help="TCP port.")
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `dispatch worker` elsewhere.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Serve webhooks, the API and pages; run the worker too unless --no-worker."""
    from app.server import Server, create_app

    settings = _settings()
    stop = _StopSignals(settings.shutdown_grace_seconds)
    dsn = _prepare(settings)
    if stop.received:
        return
    rt = _runtime(settings)
    app = create_app(rt, dsn=dsn, run_worker=not no_worker)
    server = Server(app, host=host, port=port, grace=settings.shutdown_grace_seconds)
    click.echo(f"dispatch {__version__} listening on http://{host}:{port}", err=True)
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


@main.command()
def worker() -> None:
    """Run jobs and schedules from the queue (any number of workers, on any machines)."""
    import gc

    from app.worker import build_worker

    settings = _settings()
    grace = settings.shutdown_grace_seconds
    stop = _StopSignals(grace)
    dsn = _prepare(settings)
    if stop.received:
        return
    rt = _runtime(settings)

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

    asyncio.run(_with_database(dsn, settings, work))


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from app.db import migrate as migrations

    settings = _settings()
    dsn = _prepare(settings)
    applied = asyncio.run(_with_database(dsn, settings, migrations.migrate, migrate=False))
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.group(invoke_without_command=True)
@click.option(
    "--failed",
    is_flag=True,
    help="Only deliveries that failed, or still fail and are being retried, and commands "
    "whose answer has not reached GitHub yet.",
)
@click.option("--limit", default=30, show_default=True, type=int)
@click.pass_context
def deliveries(ctx: click.Context, failed: bool, limit: int) -> None:
    """List recent webhook deliveries from the journal."""
    if ctx.invoked_subcommand is not None:
        return
    from app.commands import runner
    from app.intake import journal

    settings = _settings()
    dsn = _prepare(settings)

    async def read() -> tuple[list[journal.DeliveryRow], list[runner.Unanswered]]:
        rows = await journal.recent(failed_only=failed, limit=limit)
        return rows, await runner.unanswered(limit) if failed else []

    rows, commands = asyncio.run(_with_database(dsn, settings, read))
    if not rows and not commands:
        click.echo("no failed deliveries" if failed else "no deliveries yet")
        return
    for row in rows:
        event = f"{row.event}.{row.action}" if row.action else row.event
        state = row.state
        if row.state == journal.DeliveryState.QUEUED and row.last_error:
            state = "retrying"
        line = (
            f"{row.received_at:%Y-%m-%d %H:%M:%S}  {row.guid}  {event:<34} {state:<9} "
            f"attempts={row.attempts}  {row.repository or ''}"
        )
        if row.payload_dropped_at is not None:
            line += "  (payload dropped)"
        click.echo(line.rstrip())
        if row.last_error and state != journal.DeliveryState.PROCESSED:
            click.echo("    " + row.last_error.strip().splitlines()[-1][:200])
    for command in commands:
        state = "unanswered" if command.state == runner.CommandState.FAILED else "answering"
        click.echo(
            f"{command.created_at:%Y-%m-%d %H:%M:%S}  {command.delivery_guid}  "
            f"{'command ' + command.line[:60]:<34} {state:<9} "
            f"{command.repository}#{command.issue_number}"
        )
        click.echo("    " + command.last_error.strip().splitlines()[-1][:200])


@deliveries.command("replay")
@click.argument("guid")
def deliveries_replay(guid: str) -> None:
    """Run one journaled delivery through its handlers again."""
    from app.intake import journal

    settings = _settings()
    dsn = _prepare(settings)
    try:
        found = asyncio.run(_with_database(dsn, settings, lambda: journal.replay(guid)))
    except journal.PayloadDropped as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    if not found:
        click.echo(f"dispatch: no delivery {guid} in the journal", err=True)
        sys.exit(1)
    click.echo(f"queued {guid} for processing")


@deliveries.command("discard")
@click.argument("guid")
def deliveries_discard(guid: str) -> None:
    """Give up on a failed delivery: no longer listed as failed; its payload then goes with the
    ordinary retention (DELIVERY_RETENTION_DAYS after it arrived)."""
    from app.intake import journal

    settings = _settings()
    dsn = _prepare(settings)
    state = asyncio.run(_with_database(dsn, settings, lambda: journal.discard(guid)))
    if state is None:
        click.echo(f"dispatch: no delivery {guid} in the journal", err=True)
        sys.exit(1)
    if state != journal.DeliveryState.FAILED:
        click.echo(f"dispatch: {guid} is {state}, not failed: nothing to discard", err=True)
        sys.exit(1)
    click.echo(f"discarded {guid}")


@main.group()
def token() -> None:
    """Manage API tokens (shown once; only their hash is stored)."""


@token.command("create")
@click.option("--name", required=True, help="A unique name, e.g. the harness that uses it.")
@click.option(
    "--scope",
    type=click.Choice(["read", "agent", "dispatch", "admin"]),
    required=True,
    help="read: lists and reads; agent: also claims and reports; dispatch: also creates issues "
    "and dispatches agents; admin: everything",
)
@click.option("--repo", "repos", multiple=True, help="owner/name; repeat for several.")
@click.option(
    "--all-repos",
    is_flag=True,
    help="Every repository the App is installed on (say so: no default).",
)
def token_create(name: str, scope: str, repos: tuple[str, ...], all_repos: bool) -> None:
    """Create a token and print it once."""
    from app.tokens import service

    if bool(repos) == all_repos:
        click.echo("dispatch: name the repositories with --repo, or pass --all-repos", err=True)
        sys.exit(2)
    settings = _settings()
    dsn = _prepare(settings)
    try:
        value = asyncio.run(
            _with_database(dsn, settings, lambda: service.create(name, scope, list(repos)))
        )
    except service.TokenError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    click.echo(value)
    click.echo("Store it now: it is not shown again.", err=True)


@token.command("list")
def token_list() -> None:
    """List tokens (names, scopes, repositories; never the tokens)."""
    from app.tokens import service

    settings = _settings()
    dsn = _prepare(settings)
    tokens = asyncio.run(_with_database(dsn, settings, service.list_all))
    if not tokens:
        click.echo("no tokens")
    for item in tokens:
        state = f"revoked {item.revoked_at:%Y-%m-%d}" if item.revoked_at else "active"
        used = f"{item.last_used_at:%Y-%m-%d %H:%M}" if item.last_used_at else "never"
        repos = ", ".join(item.repositories) or "all repositories"
        click.echo(f"{item.name:<24} {item.scope:<8} {state:<18} last used {used:<17} {repos}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke a token by name."""
    from app.tokens import service

    settings = _settings()
    dsn = _prepare(settings)
    if not asyncio.run(_with_database(dsn, settings, lambda: service.revoke(name))):
        click.echo(f"dispatch: no active token named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {name}")


class _Progress:
    """Progress on stderr: on a terminal, one line redrawn in place at every update; otherwise
    plain lines, only for the updates the caller marks `milestone` (logs stay short)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.tty = bool(self.stream.isatty())
        self._width = 0

    def update(self, text: str, *, milestone: bool = False) -> None:
        if self.tty:
            self.stream.write("\r" + text + " " * max(self._width - len(text), 0))
            self._width = len(text)
        elif milestone:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Rub the line out (a terminal) before the result is printed."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        self._width = 0


def _backfill_line(step: BackfillProgress, prefix: str) -> str:
    if step.done:
        return f"{prefix}{step.repository}: {step.cached} issues cached"
    if step.phase == "open":
        return (
            f"{prefix}{step.repository}: {step.cached} issues cached · open issues and pull "
            f"requests listed: {step.listed} of {step.expected}"
        )
    return (
        f"{prefix}{step.repository}: {step.cached} issues cached · closed in the last 30 "
        f"days listed: {step.listed}"
    )


@main.command()
@click.option("--repo", "repo", default=None, help="owner/name; default: every repository.")
def sync(repo: str | None) -> None:
    """Create missing labels and cache issues (open, and closed in the last 30 days).

    Shows its progress on stderr: redrawn in place on a terminal, plain lines otherwise."""
    from app.installations import service as installations
    from app.issues import onboarding

    settings = _settings()
    dsn = _prepare(settings)
    rt = _runtime(settings)
    shown = _Progress()

    async def work() -> None:
        try:
            if repo:
                found = await installations.repository_by_name(repo)
                if found is None:
                    click.echo(
                        f"dispatch: {repo} is not a repository the App is installed on", err=True
                    )
                    sys.exit(1)
                targets = [found]
            else:
                targets = await installations.active_repositories()
            for index, target in enumerate(targets, start=1):
                name = target["full_name"]
                prefix = f"[{index}/{len(targets)}] " if len(targets) > 1 else ""

                def progress(step: BackfillProgress, prefix: str = prefix) -> None:
                    # Plain lines: a phase's first page, every 1,000 issues listed, the end.
                    milestone = step.done or step.listed <= 100 or step.listed % 1000 == 0
                    shown.update(_backfill_line(step, prefix), milestone=milestone)

                shown.update(f"{prefix}{name}: labels and configuration …", milestone=True)
                count = await onboarding.onboard(rt, target["installation_id"], name, progress)
                shown.clear()
                click.echo(f"{name}: {count} issues cached")
        finally:
            await rt.close()

    asyncio.run(_with_database(dsn, settings, work))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
def doctor(as_json: bool) -> None:
    """Check the install and say what to fix: configuration, the data directory's disk, the
    database, the GitHub App, every installation and repository.

    One line per check (✓, ⚠ or ✗ and the fix); exits 1 on any ✗. Progress goes to stderr."""
    import json

    from app.doctor import checks, report

    loaded: Settings | ConfigError
    try:
        loaded = load_settings()
    except ConfigError as exc:
        loaded = exc
    found = checks.configuration(loaded)
    if isinstance(loaded, Settings):
        found += checks.storage(loaded)
        found += _doctor_walk(loaded)
    if as_json:
        click.echo(json.dumps(report.as_json(found), indent=2, ensure_ascii=False))
    else:
        for line in checks.lines(found):
            click.echo(line)
        click.echo(report.summary(found))
    if not report.healthy(found):
        sys.exit(1)


def _doctor_walk(settings: Settings) -> list[Any]:
    """The checks that need the database and GitHub (quiet logs: the findings say it all)."""
    from app import logs
    from app.db import embedded, engine
    from app.doctor import checks
    from app.runtime import Runtime

    logs.configure("DEBUG" if settings.log_level == "DEBUG" else "ERROR")
    try:
        if settings.database_url:
            dsn = settings.database_url
        else:
            server = embedded.start(settings.dispatch_data_dir)
            atexit.register(server.release)
            asyncio.run(embedded.ensure_database(server.dsn))
            dsn = server.dsn
    except Exception as exc:
        return [checks.unreachable_database(exc, settings)]
    shown = _Progress()

    def progress(done: int, total: int, name: str) -> None:
        milestone = done == 1 or done == total or done % 10 == 0
        shown.update(f"checking repositories: {done} of {total} ({name})", milestone=milestone)

    async def walk() -> list[Any]:
        try:
            await engine.connect(dsn, pool_size=2)
        except Exception as exc:
            return [checks.unreachable_database(exc, settings)]
        try:
            rt = Runtime.build(settings)
        except ConfigError as exc:
            await engine.disconnect()
            return checks.configuration(exc)
        try:
            return await checks.examine(rt, progress)
        finally:
            shown.clear()
            await rt.close()
            await engine.disconnect()

    return asyncio.run(walk())


@main.command()
@click.option("--repo", "repo", required=True, help="owner/name of a repository the App is on.")
@click.option(
    "--by", "by", default=None, help="GitHub login of who asks (they may not approve it)."
)
@click.argument("request", nargs=-1, required=True)
def ask(repo: str, by: str | None, request: tuple[str, ...]) -> None:
    """Open a mission issue in REPO for REQUEST and let Claude plan it.

    A running `dispatch serve` (or worker) plans it; the proposal appears on the issue, and
    nothing is created or dispatched until someone approves it there with `/dispatch approve`."""
    from app.installations import service as installations
    from app.orchestrator import planning
    from app.orchestrator.store import Source

    settings = _settings()
    if not settings.anthropic_api_key:
        click.echo(
            "dispatch: missions need ANTHROPIC_API_KEY (and optionally ORCHESTRATOR_MODEL, "
            "ANTHROPIC_BASE_URL) in the environment",
            err=True,
        )
        sys.exit(2)
    dsn = _prepare(settings)
    rt = _runtime(settings)

    async def work() -> None:
        try:
            found = await installations.repository_by_name(repo)
            if found is None:
                click.echo(
                    f"dispatch: {repo} is not a repository the App is installed on", err=True
                )
                sys.exit(1)
            opened = await planning.open_mission(
                rt,
                installation_id=found["installation_id"],
                repository=found["full_name"],
                repository_id=found["id"],
                request=" ".join(request),
                requested_by=by,
                source=Source.CLI,
            )
            if isinstance(opened, planning.Refusal):
                click.echo(f"dispatch: no mission: {opened.reason}", err=True)
                sys.exit(1)
            click.echo(f"opened {found['full_name']}#{opened.number}: {opened.url}")
            if isinstance(opened.mission, planning.Refusal):
                click.echo(f"dispatch: not planned: {opened.mission.reason}", err=True)
                sys.exit(1)
            click.echo(
                f"mission #{opened.mission.id}: Claude plans it; approve its proposal on the issue"
            )
        finally:
            await rt.close()

    asyncio.run(_with_database(dsn, settings, work))


@main.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--installation", type=int, default=None, help="Only this installation id.")
@click.option("--reason", default=None, help="Shown in every refusal while it is on.")
def killswitch(state: str, installation: int | None, reason: str | None) -> None:
    """Stop (on) or allow again (off) every new agent run; the next decision sees it."""
    import getpass

    from app.agents import gates

    settings = _settings()
    dsn = _prepare(settings)
    asyncio.run(
        _with_database(
            dsn,
            settings,
            lambda: gates.set_kill_switch(
                state == "on", installation_id=installation, reason=reason, by=getpass.getuser()
            ),
        )
    )
    scope = f"installation {installation}" if installation else "every installation"
    click.echo(f"kill switch {state} for {scope}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
def prune(dry_run: bool) -> None:
    """Remove what is past its retention window now (the job on PRUNE_SCHEDULE does it too)."""
    from app.retention import service as retention
    from app.runtime import Runtime

    settings = _settings()
    dsn = _prepare(settings)
    rt = Runtime.build(settings)

    async def work() -> retention.Report:
        try:
            return await retention.prune(rt, dry_run=dry_run)
        finally:
            await rt.close()

    report = asyncio.run(_with_database(dsn, settings, work))
    verb = "would remove" if dry_run else "removed"
    for pruned in report.pruned:
        size = f"  {_bytes(pruned.bytes)}" if pruned.bytes else ""
        before = f"  (older than {pruned.cutoff:%Y-%m-%d %H:%M} UTC)" if pruned.cutoff else ""
        click.echo(f"{pruned.what:<20} {verb} {pruned.rows:>9,}{size}{before}")
    if settings.audit_retention_days is None:
        click.echo(f"{'audit entries':<20} kept for good (AUDIT_RETENTION_DAYS is not set)")
    for step in report.failed:
        click.echo(f"dispatch: pruning {step} failed (see the log)", err=True)
    if report.failed:
        sys.exit(1)


def _bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


@main.group()
def db() -> None:
    """Move the database: dump it to a file, restore a dump into an empty database.

    The database is DATABASE_URL, or the embedded one in DISPATCH_DATA_DIR (started if needed).
    """


@db.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def db_dump(file: Path) -> None:
    """Write the whole database to FILE (pg_dump custom format, no owners or privileges)."""
    from app.db import dump

    settings = _settings()
    dsn = _prepare(settings)
    try:
        size = dump.dump(dsn, file)
    except dump.DumpError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    click.echo(f"dumped the database to {file} ({_bytes(size)})")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(file: Path) -> None:
    """Load a dump made by `dispatch db dump` into the (empty) database, in one transaction."""
    from app.db import dump

    settings = _settings()
    dsn = _prepare(settings)
    existing = asyncio.run(dump.tables(dsn))
    if existing:
        click.echo(
            f"dispatch: the target database already has {existing} tables; restore into an "
            "empty database",
            err=True,
        )
        sys.exit(1)
    try:
        dump.restore(dsn, file)
    except dump.DumpError as exc:
        click.echo(f"dispatch: {exc}", err=True)
        sys.exit(1)
    asyncio.run(dump.analyze(dsn))
    click.echo(f"restored {file} into {dump.without_password(dsn)[0]}")


if __name__ == "__main__":
    main()
