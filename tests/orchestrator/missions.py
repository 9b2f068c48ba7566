"""Helpers for mission tests: a project on the fake GitHub with a mission issue, proposals as
the model would send them, and reading the mission's comments."""

from __future__ import annotations

import re
from typing import Any

from tests.agents.loop import comment
from tests.harness import AGENT_WORKFLOW

WEBHOOKS_PY = '''"""Delivering webhooks to customers."""

def deliver(event):
    response = post(event.url, event.body)
    if response.status >= 500:
        deliver(event)  # retries at once, forever
'''


def seed_project(github, repo) -> dict[str, Any]:
    """Issues, files and people of a small repository, and its mission issue (asked by alice;
    bob may approve)."""
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    github.set_permission(repository, "bob", "maintain")
    github.set_permission(repository, "eve", "read")
    github.add_file(repository, "README.md", "# Widgets\n")
    github.add_file(repository, "app/webhooks.py", WEBHOOKS_PY)
    retries = github.add_issue(
        repository,
        "Webhook deliveries retry in a tight loop",
        "When a customer endpoint answers 500 we retry at once, forever.",
        labels=["type/bug", "priority/p2", "status/ready"],
        user="carol",
    )
    docs = github.add_issue(
        repository,
        "Document webhook signatures",
        "Customers ask how to verify our signatures.",
        labels=["type/chore", "priority/p3", "status/backlog"],
        user="carol",
    )
    mission = github.add_issue(
        repository,
        "Make webhook delivery resilient",
        "Outages at customers should not hurt us or them.",
        user="alice",
    )
    return {"retries": retries, "docs": docs, "mission": mission}


def propose_input(retries: int, docs: int, *, extra_items: list | None = None) -> dict[str, Any]:
    return {
        "summary": "Back off between webhook retries, then document the behaviour; #"
        f"{retries} already describes the tight loop, so it is dispatched as is.",
        "existing": [{"number": docs, "why": "covers the signature docs part of the request"}],
        "items": [
            {
                "key": "backoff",
                "kind": "new_issue",
                "title": "Retry webhook deliveries with exponential backoff",
                "body": "Retry failed deliveries after 1, 2, 4 … minutes, up to a day.",
                "type": "feature",
                "priority": "p1",
                "mode": "investigate",
                "depends_on": [],
            },
            {
                "key": "retry-docs",
                "kind": "new_issue",
                "title": "Document webhook retry behaviour",
                "body": "Tell customers when and how often we retry.",
                "type": "chore",
                "priority": "p3",
                "mode": "none",
                "depends_on": ["backoff"],
            },
            {
                "key": "tight-loop",
                "kind": "existing_issue",
                "number": retries,
                "mode": "investigate",
                "depends_on": [],
                "why": "the bug the backoff fixes; its investigation finds every caller",
            },
            *(extra_items or []),
        ],
    }


def mission_comment(github, repository, number: int) -> str:
    [found] = [c for c in github.bot_comments(repository, number) if "<!-- dispatch:mission:" in c]
    return found


def proposal_comment(github, repository, number: int) -> str:
    found = [
        c for c in github.bot_comments(repository, number) if "dispatch:mission-proposal:" in c
    ]
    return found[-1]


def revision_in(text: str) -> str:
    return re.search(r"revision `([0-9a-f]{12})`", text).group(1)


def ask(github, repo, number: int, text: str, user: str = "alice") -> dict:
    return comment(github, repo, number, f"/dispatch ask {text}", user=user)


def say(github, repo, number: int, text: str, user: str) -> dict:
    return comment(github, repo, number, text, user=user)
