"""The label vocabulary. Each family is an Enum whose values are the label names, so the state
machine reads as data; `LABEL_SET` is what Dispatch creates in every repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    BACKLOG = "status/backlog"
    READY = "status/ready"
    IN_PROGRESS = "status/in-progress"
    IN_REVIEW = "status/in-review"
    VERIFYING = "status/verifying"
    DONE = "status/done"


class Priority(StrEnum):
    P0 = "priority/p0"
    P1 = "priority/p1"
    P2 = "priority/p2"
    P3 = "priority/p3"

    def raised(self) -> Priority:
        """One step more urgent (p0 stays p0)."""
        order = list(Priority)
        return order[max(0, order.index(self) - 1)]


class Kind(StrEnum):
    BUG = "type/bug"
    FEATURE = "type/feature"
    CHORE = "type/chore"
    RESEARCH = "type/research"
    SECURITY = "type/security"


class Plan(StrEnum):
    PROPOSED = "plan/proposed"
    APPROVED = "plan/approved"


class Signal(StrEnum):
    BLOCKED = "dispatch/blocked"
    POSSIBLE_DUPLICATE = "dispatch/possible-duplicate"
    FIX_FAILED = "dispatch/fix-failed"
    MISSION = "dispatch/mission"


AGENT_PREFIX = "agent/"
OWNER_PREFIX = "owner/"
CUSTOMER_PREFIX = "customer/"

# An agent's name as its label `agent/<name>` carries it (GitHub labels are at most 50 characters).
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,43}$")
AGENT_NAME_RULE = (
    "letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 44 characters"
)


def agent_label(name: str) -> str:
    return f"{AGENT_PREFIX}{name}"


# Families where at most one label may be on an issue at a time.
EXCLUSIVE_PREFIXES = ("status/", "priority/")


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str
    description: str


LABEL_SET: tuple[LabelSpec, ...] = (
    LabelSpec(Status.BACKLOG, "d4c5f9", "Needs grooming"),
    LabelSpec(Status.READY, "0e8a16", "Groomed: claimable and dispatchable"),
    LabelSpec(Status.IN_PROGRESS, "fbca04", "An agent or a person is working on it"),
    LabelSpec(Status.IN_REVIEW, "1d76db", "A pull request is open for it"),
    LabelSpec(Status.VERIFYING, "5319e7", "Fix merged; watching for a recurrence"),
    LabelSpec(Status.DONE, "c2e0c6", "Finished"),
    LabelSpec(Priority.P0, "b60205", "Drop everything"),
    LabelSpec(Priority.P1, "d93f0b", "Next up"),
    LabelSpec(Priority.P2, "fbca04", "Soon"),
    LabelSpec(Priority.P3, "c5def5", "Some day"),
    LabelSpec(Kind.BUG, "d73a4a", "Something is broken"),
    LabelSpec(Kind.FEATURE, "a2eeef", "Something new"),
    LabelSpec(Kind.CHORE, "ededed", "Upkeep"),
    LabelSpec(Kind.RESEARCH, "bfdadc", "A question to answer"),
    LabelSpec(Kind.SECURITY, "ee0701", "Security-relevant"),
    LabelSpec(Plan.PROPOSED, "fef2c0", "An agent proposed a plan; awaiting review"),
    LabelSpec(Plan.APPROVED, "0e8a16", "The current plan revision is approved"),
    LabelSpec(Signal.BLOCKED, "b60205", "An agent is blocked and needs a human"),
    LabelSpec(Signal.POSSIBLE_DUPLICATE, "cfd3d7", "Dispatch thinks this duplicates another issue"),
    LabelSpec(Signal.FIX_FAILED, "b60205", "The error came back after the fix"),
)

DYNAMIC_COLORS = {AGENT_PREFIX: "5319e7", OWNER_PREFIX: "bfd4f2", CUSTOMER_PREFIX: "f9d0c4"}


def family(label: str) -> str | None:
    for prefix in EXCLUSIVE_PREFIXES:
        if label.startswith(prefix):
            return prefix
    return None


def status_of(labels: list[str]) -> Status | None:
    for label in labels:
        if label in Status._value2member_map_:
            return Status(label)
    return None


def priority_of(labels: list[str]) -> Priority | None:
    found = [Priority(label) for label in labels if label in Priority._value2member_map_]
    return min(found, key=list(Priority).index) if found else None


def agents_of(labels: list[str]) -> list[str]:
    return sorted(
        label.removeprefix(AGENT_PREFIX) for label in labels if label.startswith(AGENT_PREFIX)
    )
