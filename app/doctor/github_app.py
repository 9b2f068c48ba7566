"""Checks of the GitHub App: its credentials work, its webhook points here with the right
secret, it has the permissions and events Dispatch needs, and GitHub's recent deliveries to it
succeeded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from githubkit import GitHub

from app.doctor.report import Check, fail, github_error, ok, warn
from app.github import rest
from app.github.clients import GitHubAppNotConfigured
from app.runtime import Runtime
from app.setup import manifest

# Deliveries from GitHub's log looked at, and how far back.
DELIVERY_WINDOW = timedelta(hours=24)
DELIVERY_PAGES = 3
LEVELS = {"read": 1, "write": 2, "admin": 3}


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
                f"GET /app failed: {github_error(exc)}",
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
                f"GET /app/hook/config failed: {github_error(exc)}",
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


def missing_grants(granted: dict[str, str], wanted: dict[str, str]) -> list[str]:
    return [
        f"{name}: {level}" + (f" (has {granted[name]})" if name in granted else "")
        for name, level in sorted(wanted.items())
        if LEVELS.get(granted.get(name, ""), 0) < LEVELS.get(level, 0)
    ]


def _grants(app: dict[str, Any], dispatch_url: str, settings_url: str) -> list[Check]:
    wanted = manifest.manifest(dispatch_url)
    checks = []
    missing = missing_grants(app.get("permissions") or {}, wanted["default_permissions"])
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
                f"GitHub's delivery log could not be read: {github_error(exc)}",
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
