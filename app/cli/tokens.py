"""`dispatch token`: API tokens for harnesses and MCP clients (shown once; only hashes kept)."""

from __future__ import annotations

import asyncio
import sys

import click

from app.cli.bootstrap import prepare, settings_or_exit, with_database


@click.group()
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
    settings = settings_or_exit()
    dsn = prepare(settings)
    try:
        value = asyncio.run(
            with_database(dsn, settings, lambda: service.create(name, scope, list(repos)))
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

    settings = settings_or_exit()
    dsn = prepare(settings)
    tokens = asyncio.run(with_database(dsn, settings, service.list_all))
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

    settings = settings_or_exit()
    dsn = prepare(settings)
    if not asyncio.run(with_database(dsn, settings, lambda: service.revoke(name))):
        click.echo(f"dispatch: no active token named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {name}")
