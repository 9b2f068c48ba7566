"""What `dispatch doctor` found: one `Check` per thing checked (✓, ⚠ or ✗, what was seen, and
for anything not ✓ the fix), shown as lines for a person or as JSON for a machine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from githubkit.exception import RequestError, RequestFailed


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def mark(self) -> str:
        return {"ok": "✓", "warn": "⚠", "fail": "✗"}[self.value]


@dataclass(frozen=True)
class Check:
    area: str  # configuration, storage, database, app, installation, or a repository's name
    name: str  # what was checked: labels, workflow, webhook URL …
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.status.mark} {self.area}: {self.name}: {self.detail}"
        if self.fix and self.status is not Status.OK:
            text += f"\n    fix: {self.fix}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def ok(area: str, name: str, detail: str) -> Check:
    return Check(area, name, Status.OK, detail)


def warn(area: str, name: str, detail: str, fix: str) -> Check:
    return Check(area, name, Status.WARN, detail, fix)


def fail(area: str, name: str, detail: str, fix: str) -> Check:
    return Check(area, name, Status.FAIL, detail, fix)


def healthy(checks: Iterable[Check]) -> bool:
    """No ✗ (warnings do not fail an install)."""
    return all(check.status is not Status.FAIL for check in checks)


def summary(checks: list[Check]) -> str:
    counts = {status: sum(1 for c in checks if c.status is status) for status in Status}
    verdict = "healthy" if healthy(checks) else "NOT healthy"
    return f"{verdict}: {counts[Status.OK]} ✓, {counts[Status.WARN]} ⚠, {counts[Status.FAIL]} ✗"


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"healthy": healthy(checks), "checks": [check.as_json() for check in checks]}


def github_error(exc: BaseException) -> str:
    """A failed GitHub call, said as a finding: its status and message, or why it failed."""
    if isinstance(exc, RequestFailed):
        message = ""
        try:
            body = exc.response.json()
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        return f"GitHub answered {exc.response.status_code}" + (f" ({message})" if message else "")
    if isinstance(exc, RequestError) and isinstance(exc.__cause__, RequestFailed):
        return github_error(exc.__cause__)  # githubkit's wrapping of a refused token request
    if isinstance(exc, RequestError):
        return f"GitHub could not be reached ({type(exc.__cause__ or exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
