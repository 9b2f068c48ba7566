"""`dispatch sync`: labels and the issue cache of one repository or all, with progress."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from app.cli.bootstrap import prepare, runtime_or_exit, settings_or_exit, with_database
from app.cli.output import Progress

if TYPE_CHECKING:
    from app.issues.backfill import Progress as BackfillProgress


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


@click.command()
@click.option("--repo", "repo", default=None, help="owner/name; default: every repository.")
def sync(repo: str | None) -> None:
    """Create missing labels and cache issues (open, and closed in the last 30 days).

    Shows its progress on stderr: redrawn in place on a terminal, plain lines otherwise."""
    from app.installations import service as installations
    from app.issues import onboarding

    settings = settings_or_exit()
    dsn = prepare(settings)
    rt = runtime_or_exit(settings)
    shown = Progress()

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

    asyncio.run(with_database(dsn, settings, work))
