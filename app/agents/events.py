"""The events an agent reports (`POST /api/runs/{id}/events`), as typed messages: the `type`
field picks the shape, and a missing or wrong field is refused with its name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

BlockerCategory = Literal[
    "missing_env",
    "unclear_requirement",
    "missing_dependency",
    "test_failure",
    "design_decision",
    "out_of_scope",
]
Outcome = Literal[
    "completed",
    "no_changes_needed",
    "blocked",
    "needs_human_decision",
    "investigation_complete",
    "failed",
]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
# A whole QA or research report: the reporter cuts longer ones (the body limit is 2 MB).
REPORT_MAX_CHARS = 200_000


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=False):
    pass


class Started(_Event, tag="started"):
    pass


class Progress(_Event, tag="progress"):
    message: NonEmpty


class PlanProposed(_Event, tag="plan"):
    body: NonEmpty


class Blocker(_Event, tag="blocker"):
    reason: NonEmpty
    category: BlockerCategory


class PullRequestOpened(_Event, tag="pr"):
    # GitHub's issue and pull request numbers fit a 32-bit integer (and Postgres `integer`).
    number: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    url: NonEmpty


class Completed(_Event, tag="completed"):
    outcome: Outcome
    summary: str
    cost_usd: Annotated[float, msgspec.Meta(ge=0)]
    turns: Annotated[int, msgspec.Meta(ge=0)]
    # The agent's whole final answer, for the modes that post a report (qa, research).
    report: Annotated[str, msgspec.Meta(max_length=REPORT_MAX_CHARS)] | None = None


AgentEvent = Started | Progress | PlanProposed | Blocker | PullRequestOpened | Completed


class LogChunk(msgspec.Struct, forbid_unknown_fields=False):
    # Stored as a Postgres `integer`.
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    data: Annotated[str, msgspec.Meta(max_length=1_000_000)]


class InvalidEvent(ValueError):
    pass


def parse_event(body: bytes) -> AgentEvent:
    event: AgentEvent = _decode(body, AgentEvent)
    return event


def parse_log(body: bytes) -> LogChunk:
    chunk: LogChunk = _decode(body, LogChunk)
    return chunk


def _decode(body: bytes, kind: Any) -> Any:
    """`body` as `kind`, or InvalidEvent saying what is wrong (naming the field)."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(_explain(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}") from None


def _explain(message: str) -> str:
    if "Invalid value" in message and "$.type" in message:
        return f"{message}: `type` must be one of started, progress, plan, blocker, pr, completed"
    return message
