"""Pull-request follow-ups in the claim queue: an open pull request whose change requests (by
people with write permission, on its current head) no run and no claim has taken up is a
`pr_follow_up` item a harness may claim, next to the `status/ready` issues.

Which pull requests wait, and the review feedback a harness is given, are the agents' business
(`app.agents.follow_up_queue`; the `revise` mode and its rules are in `app.agents.follow_ups`);
the claims room only needs them through `FollowUpSource`, handed to it by the composition root
(the server, the MCP tools).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from app.runtime import Runtime

ISSUE = "issue"
PR_FOLLOW_UP = "pr_follow_up"
KINDS = (ISSUE, PR_FOLLOW_UP)


@dataclass(frozen=True)
class PullFollowUp:
    """A pull request whose change requests wait for someone (an agent) to take them up."""

    installation_id: int
    repository: str
    repository_id: int
    pull_number: int
    title: str
    url: str | None
    head_ref: str
    head_sha: str
    base_ref: str
    origin_issue: int | None
    reviewers: list[str]
    review_ids: list[int]
    # When the oldest change request still waiting was made (ISO 8601): the queue's order.
    requested_at: str | None
    kind: str = field(default=PR_FOLLOW_UP)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("installation_id")
        data["number"] = data.pop("pull_number")
        return data


class FollowUpSource(Protocol):
    async def pending(
        self, rt: Runtime, installation_id: int, repositories: list[str]
    ) -> list[PullFollowUp]:
        """The follow-ups waiting in these repositories of one installation, oldest first."""
        ...

    async def feedback(self, rt: Runtime, item: PullFollowUp) -> dict[str, Any]:
        """The review feedback of a claimed follow-up: writers' words only, others "not
        shown"."""
        ...
