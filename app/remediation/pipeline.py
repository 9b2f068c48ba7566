"""From alert to agent: every firing occurrence counts against its fingerprint (one error, one
row, one issue — an atomic upsert decides who is first); a new error opens one issue; a known one
refreshes the issue's summary (at most once a minute) and may spawn an `auto_investigate` run
through the gates; a recurrence inside a fix's verification window fails that fix.

Everything that talks to GitHub runs in its own job, keyed by fingerprint, so fifty concurrent
alerts of one new error create exactly one issue and one summary edit at a time."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from app import jobs, queue
from app.agents import gates, spawn, spawn_decisions, spawn_limits
from app.agents.runs import NewRun, Trigger
from app.db import engine
from app.events import Event
from app.github import addresses, markdown, rest
from app.installations import service as installations
from app.issues import cache, repo_config
from app.issues.labels import Kind, Status
from app.modes import Mode
from app.remediation import alerts, context, fixes
from app.remediation.alerts import Occurrence
from app.runtime import Runtime

log = logging.getLogger(__name__)

SUMMARY_INTERVAL = timedelta(minutes=1)


class AlertsRepoNotInstalled(RuntimeError):
    pass


def occurrences(event: Event) -> list[Occurrence]:
    if event.name == "grafana_alert":
        return alerts.from_grafana(event.payload)
    if event.name.startswith("sentry_"):
        return alerts.from_sentry(event.name.removeprefix("sentry_"), event.payload)
    return []


async def record(event: Event, rt: Runtime) -> int:
    """Count every occurrence in an alert delivery (inside the delivery's transaction)."""
    counted = 0
    for occurrence in occurrences(event):
        await _record_one(rt, occurrence, event.delivery)
        counted += 1
    return counted


async def _record_one(rt: Runtime, occurrence: Occurrence, delivery: str) -> None:
    fp = occurrence.fingerprint
    now = rt.clock.now()
    if occurrence.status == "resolved":
        async with engine.connection() as connection:
            await connection.execute(
                "INSERT INTO alert_event (fingerprint, source, status, count, release, message, "
                "at, delivery_guid) SELECT $1, $2, 'resolved', 0, $3, $4, $5, $6 "
                "WHERE EXISTS (SELECT 1 FROM alert_error WHERE fingerprint = $1)",
                fp,
                occurrence.source,
                occurrence.release,
                occurrence.message,
                now,
                delivery,
            )
        return
    repository = await _target_repository(rt, occurrence.source)
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            """
            INSERT INTO alert_error (fingerprint, source, feature, message, normalized, severity,
                repository, installation_id, repository_id, event_count, first_seen, last_seen,
                stack, samples, links, last_release)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15)
            ON CONFLICT (fingerprint) DO UPDATE SET
                event_count = alert_error.event_count + EXCLUDED.event_count,
                last_seen = greatest(alert_error.last_seen, EXCLUDED.last_seen),
                stack = coalesce(EXCLUDED.stack, alert_error.stack),
                last_release = coalesce(EXCLUDED.last_release, alert_error.last_release)
            RETURNING (xmax = 0) AS inserted, issue_number, event_count
            """,
            fp,
            occurrence.source,
            occurrence.feature,
            occurrence.message,
            occurrence.normalized,
            occurrence.severity,
            repository["full_name"],
            repository["installation_id"],
            repository["id"],
            occurrence.count,
            now,
            occurrence.stack,
            occurrence.samples,
            occurrence.links,
            occurrence.release,
        )
        await connection.execute(
            "INSERT INTO alert_event (fingerprint, source, status, count, release, message, at, "
            "delivery_guid) VALUES ($1, $2, 'firing', $3, $4, $5, $6, $7)",
            fp,
            occurrence.source,
            occurrence.count,
            occurrence.release,
            occurrence.message,
            now,
            delivery,
        )
    if row["inserted"]:
        await queue.enqueue(jobs.OPEN_ALERT_ISSUE, {"fingerprint": fp}, dedupe_key=f"open:{fp}")
        return
    if row["issue_number"] is None:
        return  # its issue is being opened; that job reads the latest count
    events = await _recent_events(fp)
    failed_fix = await fixes.recurrence(rt, fp, now, occurrence.release, events)
    if failed_fix:
        log.info("fix failed: the error came back", extra={"fingerprint": fp})
    await queue.enqueue(
        jobs.ALERT_SUMMARY,
        {"fingerprint": fp},
        delay=await _summary_delay(rt, fp),
        dedupe_key=f"summary:{fp}",
    )
    if not failed_fix:  # else the job that reopens the issue considers a run once it has
        await queue.enqueue(jobs.CONSIDER_SPAWN, {"fingerprint": fp}, dedupe_key=f"spawn:{fp}")


async def _target_repository(rt: Runtime, source: str) -> dict[str, Any]:
    name = rt.settings.alerts_repo_for(source)
    if name is None:
        raise AlertsRepoNotInstalled(
            "no repository for alerts: set DISPATCH_ALERTS_REPO (or DISPATCH_ALERTS_REPO_MAP)"
        )
    found = await installations.repository_by_name(name)
    if found is None:
        raise AlertsRepoNotInstalled(
            f"{name} (for alerts from {source}) is not a repository the App is installed on"
        )
    return found


async def _summary_delay(rt: Runtime, fingerprint: str) -> timedelta | None:
    async with engine.connection() as connection:
        last = await connection.fetchval(
            "SELECT summary_updated_at FROM alert_error WHERE fingerprint = $1", fingerprint
        )
    if last is None:
        return None
    wait = last + SUMMARY_INTERVAL - rt.clock.now()
    return wait if wait.total_seconds() > 0 else None


async def _recent_events(fingerprint: str, limit: int = 10) -> list[dict[str, Any]]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT at, count, release, message FROM alert_event WHERE fingerprint = $1 "
            "AND status = 'firing' ORDER BY at DESC, id DESC LIMIT $2",
            fingerprint,
            limit,
        )
    return [{**dict(row), "at": row["at"].isoformat(timespec="seconds")} for row in rows]


async def open_issue(rt: Runtime, fingerprint: str) -> int | None:
    """Open the one issue of a new error. An attempt that died after GitHub created the issue
    but before its number was stored is recognised on the retry (the issue carries a marker)."""
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM alert_error WHERE fingerprint = $1 FOR UPDATE", fingerprint
        )
        if row is None or row["issue_number"] is not None:
            return None
        error = dict(row)
        await connection.execute(
            "UPDATE alert_error SET issue_requested_at = $2 WHERE fingerprint = $1",
            fingerprint,
            rt.clock.now(),
        )
    client = rt.github.installation(error["installation_id"])
    # Only a retry needs to look (listing issues costs API calls in a burst of new errors).
    found = await _find_opened(client, error) if error["issue_requested_at"] else None
    issue = found or await rest.create_issue(
        client,
        error["repository"],
        alerts.title_for(_occurrence(error)),
        issue_body(error, rt.settings.alert_hosts),
        [
            Kind.BUG.value,
            alerts.priority_for(error["severity"], error["event_count"]),
            Status.READY.value,
        ],
    )
    repository = await rest.get_repository(client, error["repository"])
    async with engine.transaction(), engine.connection() as connection:
        await connection.execute(
            "UPDATE alert_error SET issue_number = $2 WHERE fingerprint = $1",
            fingerprint,
            issue["number"],
        )
        await cache.store(error["installation_id"], repository, issue)
        await queue.enqueue(
            jobs.CONSIDER_SPAWN, {"fingerprint": fingerprint}, dedupe_key=f"spawn:{fingerprint}"
        )
    log.info("alert issue opened", extra={"fingerprint": fingerprint, "issue": issue["number"]})
    return int(issue["number"])


def _occurrence(error: dict[str, Any]) -> Occurrence:
    return Occurrence(
        source=error["source"],
        feature=error["feature"],
        message=error["message"],
        status="firing",
        count=error["event_count"],
        at=error["first_seen"],
    )


def _cell_code(text: str) -> str:
    """A short value as code inside a table cell (a pipe would end the cell: escaped)."""
    return markdown.code_span(text[:100]).replace("|", "\\|")


def _link(name: str, url: str | None, hosts: list[str]) -> str | None:
    if not url:
        return None
    label = markdown.inline_text(name, 40)
    safe = addresses.safe_link(url, hosts)
    return f"[{label}]({safe})" if safe else f"{label}: {markdown.code_span(url[:300])}"


def marker(fingerprint: str) -> str:
    return rest.marker(f"alert:{fingerprint}")


async def _find_opened(client: Any, error: dict[str, Any]) -> dict[str, Any] | None:
    """An issue a previous attempt created before it could record the number (found by marker)."""
    since = (error["first_seen"] - timedelta(minutes=5)).isoformat()
    async for page in rest.list_issues(client, error["repository"], state="all", since=since):
        for issue in page:
            if marker(error["fingerprint"]) in (issue.get("body") or ""):
                return issue
    return None


def issue_body(error: dict[str, Any], link_hosts: list[str]) -> str:
    """Everything in an alert is production data anyone could have put there: error text goes
    in fences, short values in code spans or escaped cells, links only to `link_hosts`."""
    parts = [
        marker(error["fingerprint"]),
        "Dispatch opened this issue from a production error alert.",
        "### Error",
        markdown.fenced(error["message"]),
        "| | |",
        "|---|---|",
        f"| source / feature | {_cell_code(error['source'])} / {_cell_code(error['feature'])} |",
        f"| severity | {markdown.table_cell(error['severity'] or 'unknown', 40)} |",
        f"| fingerprint | `{error['fingerprint'][:16]}` |",
        f"| occurrences | {error['event_count']} |",
        f"| first seen | {error['first_seen']:%Y-%m-%d %H:%M:%S} UTC |",
        f"| last seen | {error['last_seen']:%Y-%m-%d %H:%M:%S} UTC |",
    ]
    if error.get("stack"):
        parts += ["### Stack", markdown.fenced(error["stack"])]
    if error.get("samples"):
        parts += ["### Sample lines", markdown.fenced("\n".join(error["samples"]))]
    links = [_link(name, url, link_hosts) for name, url in (error.get("links") or {}).items()]
    if any(links):
        parts += ["### Links", *(f"- {link}" for link in links if link)]
    parts.append(
        "_The occurrence count is kept current in Dispatch's summary comment. An agent "
        "investigates within the spawn budgets; a merged fix is verified before this closes._"
    )
    return "\n\n".join(parts)


async def update_summary(rt: Runtime, fingerprint: str) -> None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM alert_error WHERE fingerprint = $1", fingerprint
        )
    if row is None or row["issue_number"] is None:
        return
    error = dict(row)
    events = await _recent_events(fingerprint, limit=5)
    lines = [
        f"**{error['event_count']} occurrences** · "
        f"first seen {error['first_seen']:%Y-%m-%d %H:%M} UTC · "
        f"last seen {error['last_seen']:%Y-%m-%d %H:%M} UTC",
        "",
        "Latest events:",
        *(
            f"- {e['at']}: x{e['count']}"
            + (f" (release {markdown.code_span(e['release'])})" if e["release"] else "")
            for e in events
        ),
    ]
    client = rt.github.installation(error["installation_id"])
    comment_id = await rest.upsert_marked_comment(
        client,
        error["repository"],
        error["issue_number"],
        f"alert-summary:{fingerprint[:16]}",
        "\n".join(lines),
        bot_login=await rt.github.bot_login(),
        comment_id=error["summary_comment_id"],
    )
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE alert_error SET summary_comment_id = $2, summary_updated_at = $3, "
            "summary_count = $4 WHERE fingerprint = $1",
            fingerprint,
            comment_id,
            rt.clock.now(),
            error["event_count"],
        )


async def consider_spawn(rt: Runtime, fingerprint: str) -> None:
    """Start an `auto_investigate` run for an alert issue if the gates allow it."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM alert_error WHERE fingerprint = $1", fingerprint
        )
    if row is None or row["issue_number"] is None:
        return
    error = dict(row)
    if await fixes.monitoring(fingerprint) is not None:
        return  # a fix is being verified; a recurrence fails it first
    issue = await cache.get(error["repository"], error["issue_number"])
    if issue is not None and issue.state == "closed":
        return
    loaded = await repo_config.load(rt, error["installation_id"], error["repository"])
    limits = spawn_limits.limits_for(rt.settings, loaded.config, Mode.AUTO_INVESTIGATE)
    now = rt.clock.now()
    facts = gates.AlertFacts(event_count=error["event_count"], first_seen=error["first_seen"])
    refusal = await gates.precheck_alert(
        error["installation_id"],
        error["repository_id"],
        error["issue_number"],
        fingerprint,
        limits,
        now,
        facts,
    )
    if refusal is None and await spawn_decisions.refused_recently(fingerprint, now):
        return  # the budget said no and has not cleared: no new refusal per alert
    if refusal is not None:
        if refusal.gate != "one_active_run":
            await spawn_decisions.record(
                None,
                refusal,
                installation_id=error["installation_id"],
                mode=Mode.AUTO_INVESTIGATE,
                fingerprint=fingerprint,
            )
        if refusal.gate == "spawn_delay" and refusal.clears_at is not None:
            await queue.enqueue(
                jobs.CONSIDER_SPAWN,
                {"fingerprint": fingerprint},
                delay=refusal.clears_at - now,
                dedupe_key=f"spawn-later:{fingerprint}",
            )
        return
    await spawn.request_run(
        NewRun(
            installation_id=error["installation_id"],
            repository=error["repository"],
            repository_id=error["repository_id"],
            issue_number=error["issue_number"],
            mode=Mode.AUTO_INVESTIGATE,
            trigger=Trigger.ALERT,
            fingerprint=fingerprint,
            error_context=context.of(error),
        )
    )
