"""The checks of `dispatch doctor`, area by area: this install (`local`), the GitHub App
(`github_app`), every installation and repository (`repositories`). Each returns `Check`s and never
raises for what it finds wrong: a failing GitHub call or query is itself a finding, with its fix.

The CLI runs `configuration` and `storage` first (they need no database), then `examine`, which
walks the database, the App, and every installation and repository, telling `progress` where it
is."""

from __future__ import annotations

from collections.abc import Iterable

from app.doctor.github_app import github_app
from app.doctor.local import configuration, database, storage, unreachable_database, worker
from app.doctor.report import Check, fail
from app.doctor.repositories import Progress, installations
from app.runtime import Runtime

__all__ = ["configuration", "examine", "lines", "storage", "unreachable_database", "worker"]


async def examine(rt: Runtime, progress: Progress | None = None) -> list[Check]:
    """The database, the App, then every installation and repository."""
    checks = await database(rt)
    if not rt.credentials.configured:
        checks.append(
            fail(
                "app",
                "credentials",
                "no GitHub App is configured",
                f"open {rt.settings.dispatch_url}/setup, or set GITHUB_APP_ID, "
                "GITHUB_PRIVATE_KEY and GITHUB_WEBHOOK_SECRET",
            )
        )
        return checks
    app_checks, app = await github_app(rt)
    checks += app_checks
    if app is None:
        return checks
    checks += await installations(rt, app, progress)
    return checks


def lines(checks: Iterable[Check]) -> list[str]:
    return [check.line() for check in checks]
