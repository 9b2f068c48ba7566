"""What a planning tool is called with and answers: the arguments the model may pass (one
strict model per read tool), the scope a call may read (one installation, the mission's
repository), the result, and the fencing of text people wrote as untrusted data with the
mission's nonce, the same way agents' prompts fence it (`app/agents/prompt.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from githubkit import GitHub
from pydantic import BaseModel, ConfigDict, Field

from app.agents.prompt import fence
from app.runtime import Runtime


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SearchIssues(Input):
    query: str = Field(min_length=1, max_length=300)
    state: Literal["open", "closed", "all"] = "open"
    limit: int = Field(10, ge=1, le=20)


class ListIssues(Input):
    state: Literal["open", "closed", "all"] = "open"
    status: Literal["backlog", "ready", "in-progress", "in-review", "verifying", "done"] | None = (
        None
    )
    priority: Literal["p0", "p1", "p2", "p3"] | None = None
    type: Literal["bug", "feature", "chore", "research", "security"] | None = None
    limit: int = Field(25, ge=1, le=50)
    offset: int = Field(0, ge=0, le=10_000)


class ReadIssue(Input):
    number: int = Field(ge=1)


class ReadRuns(Input):
    issue: int | None = Field(None, ge=1)
    limit: int = Field(10, ge=1, le=20)


class FleetStatus(Input):
    pass


class FileTree(Input):
    prefix: str = Field("", max_length=300)


class ReadFile(Input):
    path: str = Field(min_length=1, max_length=500)


@dataclass(frozen=True)
class Scope:
    """What the tools may read: one installation, the mission's repository."""

    rt: Runtime
    client: GitHub
    installation_id: int
    repository: str
    repository_id: int
    nonce: str
    # The mission's own issue: searches and lists leave it out (the request is in the prompt).
    mission_issue: int | None = None


@dataclass(frozen=True)
class Result:
    text: str
    is_error: bool = False


def untrusted(scope: Scope, label: str, data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=1)
    return fence(label, text, scope.nonce)
