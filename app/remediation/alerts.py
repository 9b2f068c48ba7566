"""Reading alert webhooks: Grafana unified alerting and Sentry integration webhooks become
`Occurrence`s — one error, how many times, where it came from — with the fallbacks a real setup
produces (Grafana labels vs annotations, a missing `feature`, values that are floats)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.clock import parse_timestamp
from app.remediation.fingerprint import fingerprint as compute_fingerprint
from app.remediation.fingerprint import normalize


@dataclass(frozen=True)
class Occurrence:
    source: str
    feature: str
    message: str
    status: str  # "firing" | "resolved"
    count: int
    at: datetime
    severity: str | None = None
    stack: str | None = None
    release: str | None = None
    samples: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    key: str | None = None  # a stable upstream id (Sentry issue id) that decides the fingerprint

    def __post_init__(self) -> None:
        # Whatever a sender puts in an alert is bounded before it is stored or shown.
        capped = {
            "source": _cap(self.source, 100),
            "feature": _cap(self.feature, 200),
            "message": _cap(self.message, MAX_MESSAGE),
            "severity": _cap(self.severity, 40),
            "release": _cap(self.release, 100),
            "stack": _cap(self.stack, MAX_STACK),
            "samples": [_cap(line, 1000) for line in self.samples[:5]],
            "links": {
                _cap(name, 40): _cap(url, 2000) for name, url in list(self.links.items())[:10]
            },
            "count": max(0, min(int(self.count), 10**9)),
        }
        for name, value in capped.items():
            object.__setattr__(self, name, value)

    @property
    def fingerprint(self) -> str:
        if self.key is not None:
            return compute_fingerprint(self.source, self.feature, self.key)
        return compute_fingerprint(self.source, self.feature, self.message)

    @property
    def normalized(self) -> str:
        return normalize(self.message)


MAX_ALERTS_PER_PAYLOAD = 100
MAX_MESSAGE = 8192
MAX_STACK = 20_000


def _cap(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def _time(value: Any) -> datetime:
    """When the alert says it started; now when it says nothing usable (Grafana sends
    `0001-01-01T00:00:00Z` for "unknown")."""
    if isinstance(value, str) and value and not value.startswith("0001-"):
        try:
            return parse_timestamp(value) or datetime.now(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _first(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _count(values: Any) -> int:
    """Grafana's `values` carry the query results (`{"A": 7, "C": 1}`); the first is the count
    of matching log lines in the usual error-rate rule. `C` is the threshold condition (0/1)."""
    if not isinstance(values, dict):
        return 1
    for name in sorted(values):
        if name == "C":
            continue
        value = values[name]
        if isinstance(value, int | float) and value >= 1:
            return round(value)
    return 1


def from_grafana(payload: dict[str, Any]) -> list[Occurrence]:
    found = []
    for alert in (payload.get("alerts") or [])[:MAX_ALERTS_PER_PAYLOAD]:
        labels = alert.get("labels") or {}
        notes = alert.get("annotations") or {}
        message = (
            _first(
                labels.get("msg"),
                notes.get("msg"),
                notes.get("description"),
                notes.get("summary"),
                labels.get("alertname"),
            )
            or "alert without a message"
        )
        source = (
            _first(
                labels.get("source"), labels.get("service"), labels.get("app"), labels.get("job")
            )
            or "grafana"
        )
        feature = (
            _first(labels.get("feature"), labels.get("component"), labels.get("alertname"))
            or "unknown"
        )
        samples = [line for line in (notes.get("sample_lines") or "").splitlines() if line.strip()]
        links = {
            name: alert[key]
            for name, key in (
                ("alert", "generatorURL"),
                ("dashboard", "dashboardURL"),
                ("panel", "panelURL"),
                ("silence", "silenceURL"),
            )
            if alert.get(key)
        }
        found.append(
            Occurrence(
                source=source,
                feature=feature,
                message=message,
                status="resolved" if alert.get("status") == "resolved" else "firing",
                count=_count(alert.get("values")),
                at=_time(alert.get("startsAt")),
                severity=_first(labels.get("severity"), labels.get("level")),
                stack=_first(notes.get("stack_trace"), notes.get("stack"), notes.get("stacktrace")),
                release=_first(labels.get("release"), labels.get("version"), labels.get("commit")),
                samples=samples[:5],
                links=links,
            )
        )
    return found


def from_sentry(resource: str, payload: dict[str, Any]) -> list[Occurrence]:
    data = payload.get("data") or {}
    if resource == "issue":
        issue = data.get("issue") or {}
        project = (issue.get("project") or {}).get("slug") or "sentry"
        metadata = issue.get("metadata") or {}
        status = (
            "resolved" if payload.get("action") in ("resolved", "archived", "ignored") else "firing"
        )
        return [
            Occurrence(
                source=project,
                feature=_first(issue.get("culprit"), metadata.get("function")) or "unknown",
                message=_first(issue.get("title"), metadata.get("value")) or "Sentry issue",
                status=status,
                count=int(issue.get("count") or 1) if payload.get("action") == "created" else 1,
                at=_time(issue.get("lastSeen")),
                severity=issue.get("level"),
                stack=_frame_hint(metadata),
                links={"sentry": issue.get("web_url") or issue.get("permalink") or ""},
                key=f"sentry-issue:{issue.get('id')}",
            )
        ]
    if resource == "event_alert":
        event = data.get("event") or {}
        issue_id = event.get("issue_id") or event.get("groupID")
        project = str(event.get("project") or "sentry")
        return [
            Occurrence(
                source=_first(event.get("project_slug"), project) or "sentry",
                feature=_first(event.get("culprit"), event.get("transaction")) or "unknown",
                message=_first(event.get("title"), event.get("message")) or "Sentry event",
                status="firing",
                count=1,
                at=_time(event.get("datetime") or event.get("timestamp")),
                severity=event.get("level"),
                stack=_event_stack(event),
                release=event.get("release"),
                links={"sentry": event.get("web_url") or ""},
                key=f"sentry-issue:{issue_id}" if issue_id else None,
            )
        ]
    return []


def _frame_hint(metadata: dict[str, Any]) -> str | None:
    if metadata.get("filename"):
        head = f"{metadata.get('type', 'Error')}: {metadata.get('value', '')}"
        return f"{head}\n    at {metadata.get('function', '?')} ({metadata['filename']})"
    return None


def _event_stack(event: dict[str, Any]) -> str | None:
    values = ((event.get("exception") or {}).get("values")) or []
    lines = []
    for value in values[-1:]:
        lines.append(f"{value.get('type', 'Error')}: {value.get('value', '')}")
        frames = ((value.get("stacktrace") or {}).get("frames")) or []
        for frame in reversed(frames[-12:]):
            where = frame.get("filename") or frame.get("module", "?")
            lines.append(
                f"    at {frame.get('function', '?')} ({where}:{frame.get('lineno', '?')})"
            )
    return "\n".join(lines) or None


_SEVERITY_PRIORITY = {"critical": 0, "fatal": 0, "error": 1, "warning": 2, "warn": 2, "info": 3}


def priority_for(severity: str | None, count: int) -> str:
    """p0…p3 from severity, one step more urgent for an error that fires a lot."""
    level = _SEVERITY_PRIORITY.get((severity or "error").lower(), 2)
    if count >= 100:
        level = max(0, level - 1)
    return f"priority/p{level}"


def title_for(occurrence: Occurrence) -> str:
    message = re.sub(r"\s+", " ", occurrence.message).strip()
    title = f"[{occurrence.source}/{occurrence.feature}] {message}"
    return title if len(title) <= 200 else title[:197] + "…"
