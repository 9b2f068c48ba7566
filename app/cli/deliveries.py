"""`dispatch deliveries`: the webhook journal (and commands not answered yet), replay, discard."""

from __future__ import annotations

import asyncio
import sys

import click

from app.cli.bootstrap import prepare, settings_or_exit, with_database


@click.group(invoke_without_command=True)
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
    from app.commands import answers, runner
    from app.intake import journal

    settings = settings_or_exit()
    dsn = prepare(settings)

    async def read() -> tuple[list[journal.DeliveryRow], list[answers.Unanswered]]:
        rows = await journal.recent(failed_only=failed, limit=limit)
        return rows, await answers.unanswered(limit) if failed else []

    rows, commands = asyncio.run(with_database(dsn, settings, read))
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

    settings = settings_or_exit()
    dsn = prepare(settings)
    try:
        found = asyncio.run(with_database(dsn, settings, lambda: journal.replay(guid)))
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

    settings = settings_or_exit()
    dsn = prepare(settings)
    state = asyncio.run(with_database(dsn, settings, lambda: journal.discard(guid)))
    if state is None:
        click.echo(f"dispatch: no delivery {guid} in the journal", err=True)
        sys.exit(1)
    if state != journal.DeliveryState.FAILED:
        click.echo(f"dispatch: {guid} is {state}, not failed: nothing to discard", err=True)
        sys.exit(1)
    click.echo(f"discarded {guid}")
