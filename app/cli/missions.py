"""`dispatch ask`: open a mission from the command line."""

from __future__ import annotations

import asyncio
import sys

import click

from app.cli.bootstrap import prepare, runtime_or_exit, settings_or_exit, with_database


@click.command()
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
    from app.orchestrator import asking
    from app.orchestrator.missions import Source

    settings = settings_or_exit()
    if not settings.anthropic_api_key:
        click.echo(
            "dispatch: missions need ANTHROPIC_API_KEY (and optionally ORCHESTRATOR_MODEL, "
            "ANTHROPIC_BASE_URL) in the environment",
            err=True,
        )
        sys.exit(2)
    dsn = prepare(settings)
    rt = runtime_or_exit(settings)

    async def work() -> None:
        try:
            found = await installations.repository_by_name(repo)
            if found is None:
                click.echo(
                    f"dispatch: {repo} is not a repository the App is installed on", err=True
                )
                sys.exit(1)
            opened = await asking.open_mission(
                rt,
                installation_id=found["installation_id"],
                repository=found["full_name"],
                repository_id=found["id"],
                request=" ".join(request),
                requested_by=by,
                source=Source.CLI,
            )
            if isinstance(opened, asking.Refusal):
                click.echo(f"dispatch: no mission: {opened.reason}", err=True)
                sys.exit(1)
            click.echo(f"opened {found['full_name']}#{opened.number}: {opened.url}")
            if isinstance(opened.mission, asking.Refusal):
                click.echo(f"dispatch: not planned: {opened.mission.reason}", err=True)
                sys.exit(1)
            click.echo(
                f"mission #{opened.mission.id}: Claude plans it; approve its proposal on the issue"
            )
        finally:
            await rt.close()

    asyncio.run(with_database(dsn, settings, work))
