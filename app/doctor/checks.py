"""The checks of `dispatch doctor`, area by area. Each returns `Check`s and never raises for
what it finds wrong: a failing GitHub call or query is itself a finding, with its fix.

The CLI runs `configuration` and `storage` first (they need no database), then `examine`, which
walks the database, the App, and every installation and repository, telling `progress` where it
is."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from githubkit import GitHub
from githubkit.exception import RequestError, RequestFailed

from app import queue
from app.agents import workflow_files
from app.config import ConfigError, Settings, environment_warnings, warnings_for
from app.db import engine, migrate
from app.doctor.report import Check, fail, ok, warn
from app.github import rest
from app.github.clients import GitHubAppNotConfigured
from app.issues import repo_config
from app.issues.labels import LABEL_SET
from app.modes import Mode
from app.runtime import Runtime
from app.setup import manifest

# The data directory's disk: warn below either.
MIN_FREE_FRACTION = 0.10
MIN_FREE_BYTES = 1 << 30
# Deliveries from GitHub's log looked at, and how far back.
DELIVERY_WINDOW = timedelta(hours=24)
DELIVERY_PAGES = 3
# A worker beats every JOB_HEARTBEAT_SECONDS; this many missed beats (and at least two minutes)
# and it is taken for gone.
MISSED_BEATS = 3

Progress = Callable[[int, int, str], None]
DiskUsage = Callable[[Path], Any]
LEVELS = {"read": 1, "write": 2, "admin": 3}


def _github_error(exc: BaseException) -> str:
    if isinstance(exc, RequestFailed):
        message = ""
        try:
            body = exc.response.json()
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        return f"GitHub answered {exc.response.status_code}" + (f" ({message})" if message else "")
    if isinstance(exc, RequestError):
        return f"GitHub could not be reached ({type(exc.__cause__ or exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------ configuration


def configuration(loaded: Settings | ConfigError) -> list[Check]:
    """Every setting valid (one ✗ per bad variable), then names that look like settings but are
    not read as such (a misspelt name is often why a value seems ignored), then what is allowed
    but probably a mistake."""
    area = "configuration"
    if isinstance(loaded, ConfigError):
        checks = [
            fail(
                area,
                "setting",
                problem,
                "set a valid value (the README's Configuration table lists every variable)",
            )
            for problem in loaded.problems
        ]
    else:
        checks = [ok(area, "settings", "every variable is valid")]
    for warning in environment_warnings():
        name = warning.split(" ", 1)[0]
        fix = (
            f"rename {name} as the warning says"
            if "old name" in warning or "did you mean" in warning
            else f"remove {name}, or correct it if it was meant for Dispatch"
        )
        checks.append(warn(area, "environment", warning, fix))
    if isinstance(loaded, Settings):
        for warning in warnings_for(loaded):
            checks.append(warn(area, "DISPATCH_URL", warning, "serve Dispatch over https"))
    return checks


def storage(settings: Settings, usage: DiskUsage = shutil.disk_usage) -> list[Check]:
    """The disk holding the data directory (the embedded database, the App's credentials)."""
    path = Path(settings.dispatch_data_dir).resolve()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    try:
        found = usage(existing)
    except OSError as exc:
        return [warn("storage", "disk", f"cannot measure {existing}: {exc}", "check the path")]
    free, total = found.free, found.total
    shown = f"{free / (1 << 30):.1f} GB free of {total / (1 << 30):.1f} GB at {existing}"
    if total and (free / total < MIN_FREE_FRACTION or free < MIN_FREE_BYTES):
        return [
            warn(
                "storage",
                "disk",
                f"the data directory's disk is nearly full: {shown}",
                "free space or move DISPATCH_DATA_DIR to a larger disk: the embedded database "
                "stops accepting writes when the disk is full",
            )
        ]
    return [ok("storage", "disk", shown)]


def unreachable_database(exc: BaseException, settings: Settings) -> Check:
    where = "DATABASE_URL" if settings.database_url else "the embedded PostgreSQL"
    return fail(
        "database",
        "reachable",
        f"{where} cannot be reached: {type(exc).__name__}: {exc}",
        "check DATABASE_URL (host, credentials, network)"
        if settings.database_url
        else f"check DISPATCH_DATA_DIR ({settings.dispatch_data_dir}) and the server log",
    )


# ------------------------------------------------------------------------------ the whole walk


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


# ------------------------------------------------------------------------------ database


async def database(rt: Runtime) -> list[Check]:
    area = "database"
    try:
        async with engine.connection() as connection:
            version = await connection.fetchval("SHOW server_version")
            vector = await connection.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            )
    except Exception as exc:
        return [unreachable_database(exc, rt.settings)]
    checks = [ok(area, "reachable", f"PostgreSQL {version}")]
    if vector:
        checks.append(ok(area, "pgvector", f"the vector extension {vector} is installed"))
    else:
        checks.append(
            fail(
                area,
                "pgvector",
                "the vector extension is not installed",
                "use a PostgreSQL with pgvector, then `dispatch migrate` (it creates the "
                "extension)",
            )
        )
    try:
        pending = await migrate.pending()
    except Exception as exc:
        pending = [f"(cannot tell: {type(exc).__name__})"]
    if pending:
        checks.append(
            fail(
                area,
                "migrations",
                f"{len(pending)} not applied: {', '.join(pending[:5])}",
                "run `dispatch migrate` (servers and workers also migrate when they start)",
            )
        )
        return checks  # the heartbeat table may not exist yet
    checks.append(ok(area, "migrations", "all applied"))
    checks.append(await worker(rt))
    return checks


async def worker(rt: Runtime) -> Check:
    start = "start `dispatch worker`, or `dispatch serve` without --no-worker"
    beat = await queue.latest_heartbeat()
    if beat is None:
        return fail("database", "worker", "no worker has ever reported in", start)
    limit = max(MISSED_BEATS * rt.settings.job_heartbeat_seconds, 120.0)
    who = f"{beat.host}, pid {beat.pid}"
    if beat.age_seconds > limit:
        return fail(
            "database",
            "worker",
            f"no worker heartbeat for {_ago(beat.age_seconds)} (last: {who})",
            f"{start}; jobs (commands, dispatches, comments) wait until one runs",
        )
    return ok("database", "worker", f"alive ({who}, {_ago(beat.age_seconds)} ago)")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------------------ the App


async def github_app(rt: Runtime) -> tuple[list[Check], dict[str, Any] | None]:
    area = "app"
    try:
        client = rt.github.app()
        app = await rest.get_app(client)
    except GitHubAppNotConfigured as exc:
        return [fail(area, "credentials", str(exc), "open /setup")], None
    except Exception as exc:
        return [
            fail(
                area,
                "credentials",
                f"GET /app failed: {_github_error(exc)}",
                "check GITHUB_APP_ID and GITHUB_PRIVATE_KEY (a key the App still lists), and "
                "GITHUB_API_URL",
            )
        ], None
    settings_url = f"{rt.settings.github_web_url}/settings/apps/{app.get('slug')}"
    checks = [
        ok(
            area,
            "credentials",
            f"{app.get('name')} (id {app.get('id')}, owned by "
            f"{(app.get('owner') or {}).get('login')})",
        )
    ]
    checks += await _webhook(rt, client, settings_url)
    checks += _grants(app, rt.settings.dispatch_url, settings_url)
    checks += await _deliveries(rt, client)
    return checks, app


async def _webhook(rt: Runtime, client: GitHub, settings_url: str) -> list[Check]:
    area = "app"
    expected = f"{rt.settings.dispatch_url}/webhooks/github"
    try:
        config = await rest.app_webhook_config(client)
    except Exception as exc:
        return [
            fail(
                area,
                "webhook",
                f"GET /app/hook/config failed: {_github_error(exc)}",
                f"check the webhook at {settings_url}",
            )
        ]
    checks = []
    url = config.get("url")
    if url != expected:
        checks.append(
            fail(
                area,
                "webhook URL",
                f"GitHub delivers to {url or '(nowhere)'}, not {expected}",
                f"set the Webhook URL to {expected} at {settings_url} (or correct DISPATCH_URL)",
            )
        )
    else:
        checks.append(ok(area, "webhook URL", expected))
    if config.get("content_type") != "json":
        checks.append(
            fail(
                area,
                "webhook content type",
                f"GitHub sends {config.get('content_type') or 'form'}-encoded payloads",
                f"choose the content type application/json at {settings_url}",
            )
        )
    if not config.get("secret"):
        checks.append(
            fail(
                area,
                "webhook secret",
                "the webhook has no secret: Dispatch refuses every delivery",
                f"set the App's webhook secret at {settings_url} to GITHUB_WEBHOOK_SECRET",
            )
        )
    if str(config.get("insecure_ssl")) == "1":
        checks.append(
            warn(
                area,
                "webhook TLS",
                "GitHub does not verify Dispatch's certificate",
                f"turn SSL verification back on at {settings_url}",
            )
        )
    return checks


def _missing_grants(granted: dict[str, str], wanted: dict[str, str]) -> list[str]:
    return [
        f"{name}: {level}" + (f" (has {granted[name]})" if name in granted else "")
        for name, level in sorted(wanted.items())
        if LEVELS.get(granted.get(name, ""), 0) < LEVELS.get(level, 0)
    ]


def _grants(app: dict[str, Any], dispatch_url: str, settings_url: str) -> list[Check]:
    wanted = manifest.manifest(dispatch_url)
    checks = []
    missing = _missing_grants(app.get("permissions") or {}, wanted["default_permissions"])
    if missing:
        checks.append(
            fail(
                "app",
                "permissions",
                f"the App lacks what app.yml asks for: {', '.join(missing)}",
                f"grant them at {settings_url}/permissions (every installation's owner must "
                "then accept them)",
            )
        )
    else:
        granted = app.get("permissions") or {}
        asked = wanted["default_permissions"]
        extra = [
            f"{name}: {level}" + (f" (app.yml: {asked[name]})" if name in asked else "")
            for name, level in sorted(granted.items())
            if LEVELS.get(level, 0) > LEVELS.get(asked.get(name, ""), 0)
        ]
        if extra:
            checks.append(
                warn(
                    "app",
                    "permissions",
                    f"the App holds more than app.yml asks for: {', '.join(extra)}",
                    f"take them away at {settings_url}/permissions (least privilege)",
                )
            )
        else:
            checks.append(ok("app", "permissions", "as app.yml asks"))
    events = sorted(set(wanted["default_events"]) - set(app.get("events") or []))
    if events:
        checks.append(
            fail(
                "app",
                "events",
                f"the App is not subscribed to: {', '.join(events)}",
                f"subscribe to them at {settings_url}/permissions",
            )
        )
    else:
        checks.append(ok("app", "events", "as app.yml asks"))
    return checks


async def _deliveries(rt: Runtime, client: GitHub) -> list[Check]:
    """GitHub's delivery log of the last day: deliveries no attempt of which succeeded."""
    since = datetime.now(UTC) - DELIVERY_WINDOW
    attempts: list[dict[str, Any]] = []
    cursor = None
    try:
        for _ in range(DELIVERY_PAGES):
            page = await rest.webhook_deliveries(client, cursor)
            attempts += page.attempts
            oldest = _when(page.attempts[-1]) if page.attempts else None
            if page.next_cursor is None or (oldest is not None and oldest < since):
                break
            cursor = page.next_cursor
    except Exception as exc:
        return [
            warn(
                "app",
                "deliveries",
                f"GitHub's delivery log could not be read: {_github_error(exc)}",
                "try again later",
            )
        ]
    recent = [a for a in attempts if (_when(a) or since) >= since]
    succeeded = {a.get("guid") for a in recent if 200 <= int(a.get("status_code") or 0) < 300}
    failed: dict[str, dict[str, Any]] = {}
    for attempt in recent:  # newest first: the latest failed attempt of each delivery
        guid = attempt.get("guid")
        if guid not in succeeded and guid not in failed:
            failed[str(guid)] = attempt
    total = len({a.get("guid") for a in recent})
    if not failed:
        return [ok("app", "deliveries", f"none failed in the last 24 hours ({total} delivered)")]
    latest = next(iter(failed.values()))
    what = (
        f"{len(failed)} of {total} deliveries in the last 24 hours never reached Dispatch "
        f"(latest: {latest.get('event')} at {latest.get('delivered_at')}, "
        f"{latest.get('status') or latest.get('status_code')})"
    )
    fix = (
        f"make {rt.settings.dispatch_url}/webhooks/github reachable from GitHub; Dispatch asks "
        "GitHub to redeliver missed deliveries every 10 minutes once it is"
    )
    if len(failed) == total:
        return [fail("app", "deliveries", what, fix)]
    return [warn("app", "deliveries", what, fix)]


def _when(attempt: dict[str, Any]) -> datetime | None:
    value = attempt.get("delivered_at")
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# ------------------------------------------------------------------------------ installations


class _Repository(NamedTuple):
    installation_id: int
    data: dict[str, Any]


async def installations(
    rt: Runtime, app: dict[str, Any], progress: Progress | None = None
) -> list[Check]:
    area = "installation"
    try:
        found = await rest.app_installations(rt.github.app())
    except Exception as exc:
        return [fail(area, "list", f"GET /app/installations failed: {_github_error(exc)}", "retry")]
    if not found:
        return [
            warn(
                area,
                "list",
                "the App is installed nowhere",
                f"install it from {rt.settings.github_web_url}/apps/{app.get('slug')}",
            )
        ]
    wanted = manifest.manifest(rt.settings.dispatch_url)
    checks: list[Check] = []
    repositories: list[_Repository] = []
    for installation in found:
        account = (installation.get("account") or {}).get("login") or installation["id"]
        name = f"{account} (installation {installation['id']})"
        if installation.get("suspended_at"):
            checks.append(
                fail(
                    name,
                    "suspended",
                    f"suspended since {installation['suspended_at']}: no token, no events",
                    f"unsuspend it at {installation.get('html_url')}",
                )
            )
            continue
        missing = _missing_grants(
            installation.get("permissions") or {}, wanted["default_permissions"]
        )
        if missing:
            checks.append(
                fail(
                    name,
                    "permissions",
                    f"not granted yet: {', '.join(missing)}",
                    f"an owner of {account} accepts the App's new permissions at "
                    f"{installation.get('html_url')}",
                )
            )
        try:
            reachable = await rest.installation_repositories(
                rt.github.installation(int(installation["id"]))
            )
        except Exception as exc:
            checks.append(
                fail(
                    name,
                    "token",
                    f"no installation token: {_github_error(exc)}",
                    f"check the installation at {installation.get('html_url')}",
                )
            )
            continue
        checks.append(ok(name, "token", f"{len(reachable)} repositories reachable"))
        repositories += [_Repository(int(installation["id"]), r) for r in reachable]
    for index, repository in enumerate(repositories, start=1):
        if progress is not None:
            progress(index, len(repositories), repository.data["full_name"])
        checks += await repository_checks(rt, repository.installation_id, repository.data)
    return checks


async def repository_checks(
    rt: Runtime, installation_id: int, repository: dict[str, Any]
) -> list[Check]:
    """Labels, `.github/dispatch.yml` and the agent workflow of one repository. A healthy one is
    one ✓ line; otherwise each finding on its own."""
    name = repository["full_name"]
    client = rt.github.installation(installation_id)
    try:
        findings = [
            await _labels(client, name),
            *await _config_and_workflows(rt, client, repository),
        ]
    except Exception as exc:
        return [fail(name, "repository", f"could not be read: {_github_error(exc)}", "retry")]
    problems = [check for check in findings if check.status.value != "ok"]
    if problems:
        return problems
    return [ok(name, "repository", "; ".join(check.detail for check in findings))]


async def _labels(client: GitHub, repository: str) -> Check:
    present = {label["name"].lower() for label in await rest.repo_labels(client, repository)}
    missing = [spec.name for spec in LABEL_SET if spec.name.lower() not in present]
    if missing:
        shown = ", ".join(missing[:6]) + (" …" if len(missing) > 6 else "")
        return warn(
            repository,
            "labels",
            f"{len(missing)} of Dispatch's labels missing: {shown}",
            f"`dispatch sync --repo {repository}` creates them",
        )
    return ok(repository, "labels", "labels present")


async def _config_and_workflows(
    rt: Runtime, client: GitHub, repository: dict[str, Any]
) -> list[Check]:
    name = repository["full_name"]
    found = await rest.file_content(client, name, repo_config.CONFIG_PATH)
    checks = []
    config = repo_config.RepoConfig()
    if found is None:
        checks.append(ok(name, "config", f"no {repo_config.CONFIG_PATH} (defaults)"))
    else:
        try:
            config = repo_config.parse(found.text)
            checks.append(ok(name, "config", f"{repo_config.CONFIG_PATH} valid"))
        except ValueError as exc:
            checks.append(
                fail(
                    name,
                    "config",
                    str(exc),
                    f"fix {repo_config.CONFIG_PATH} on the default branch: commands in "
                    f"{name} are paused until it is valid",
                )
            )
    ref = config.workflows.ref or repository.get("default_branch") or "main"
    files = sorted({config.workflows.for_mode(mode.value) for mode in Mode})
    for file in files:
        checks.append(await _workflow(rt, client, name, file, ref))
    return checks


async def _workflow(rt: Runtime, client: GitHub, repository: str, file: str, ref: str) -> Check:
    served = f"{rt.settings.dispatch_url}/agent/dispatch-agent.yml"
    path = f".github/workflows/{file}"
    if file.isdigit():
        return ok(repository, "workflow", f"workflow id {file} (not checked by id)")
    found = await rest.file_content(client, repository, path, ref=ref)
    if found is None:
        return fail(
            repository,
            "workflow",
            f"{path} is missing on {ref}: no agent can run",
            f"copy {served} to {path} on {ref}",
        )
    doc = workflow_files.parse(found.text)
    inputs = workflow_files.dispatch_inputs(doc) if doc is not None else None
    if doc is None or inputs is None:
        return fail(
            repository,
            "workflow",
            f"{path} on {ref} cannot be dispatched (no workflow_dispatch trigger)",
            f"replace it with {served}",
        )
    lacking = [i for i in workflow_files.INPUTS if i not in inputs]
    required = [
        i
        for i, spec in inputs.items()
        if i not in workflow_files.INPUTS and spec.get("required") and "default" not in spec
    ]
    if lacking or required:
        said = []
        if lacking:
            said.append(f"does not take {', '.join(lacking)}")
        if required:
            said.append(f"requires {', '.join(required)}, which Dispatch does not send")
        return fail(
            repository,
            "workflow",
            f"{path} on {ref} {' and '.join(said)}: every dispatch would be refused",
            f"replace it with {served}",
        )
    if found.text == workflow_files.shipped_workflow():
        return ok(repository, "workflow", f"{path} is the shipped version")
    pinned = workflow_files.pinned_reporter(doc)
    serving = workflow_files.reporter_sha256()
    if pinned is not None and pinned != serving:
        return fail(
            repository,
            "workflow",
            f"{path} pins reporter {pinned[:12]}…, this server serves {serving[:12]}…: every "
            "run stops at “Dispatch reporter mismatch”",
            f"copy the workflow of this version from {served} to {path}",
        )
    return warn(
        repository,
        "workflow",
        f"{path} differs from the shipped version",
        f"compare it with {served} (an older copy, or edited by hand)",
    )


def lines(checks: Iterable[Check]) -> list[str]:
    return [check.line() for check in checks]
