"""The error context an `auto_investigate` run carries into its brief: what the error says,
where it comes from, how often and since when, with its stack and sample lines. Taken when the
run is requested, so the agent works on the error as it was when the gates let it start."""

from __future__ import annotations

from typing import Any

FIELDS = (
    "fingerprint",
    "source",
    "feature",
    "message",
    "normalized",
    "severity",
    "event_count",
    "first_seen",
    "last_seen",
    "stack",
    "samples",
    "links",
    "last_release",
)


def of(error: dict[str, Any]) -> dict[str, Any]:
    """The context of an `alert_error` row, as JSON."""
    data = {name: error.get(name) for name in FIELDS}
    data["first_seen"] = error["first_seen"].isoformat()
    data["last_seen"] = error["last_seen"].isoformat()
    return data
