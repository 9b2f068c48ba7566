"""The proposal: the `propose` tool's strict input schema (what the model sees), the server's own
validation of what the model sent (sizes, types, priorities, modes, dependencies; that every
issue it names exists), the duplicate check of each proposed new issue, the revision hash that
binds an approval, and the comment a person reads before approving.

Everything in a proposal was written by a model that read issues strangers wrote: it is shown
and later posted as untrusted Markdown (no mentions, remote images, outside links or hidden
HTML), and only what passes this module ever reaches the comment."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.github import markdown
from app.issues.labels import Kind, Priority

MAX_ITEMS = 10
MAX_EXISTING = 10
MAX_SUMMARY = 3_000
MAX_TITLE = 200
MAX_BODY = 10_000
MAX_WHY = 500
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
TYPES = tuple(kind.value.removeprefix("type/") for kind in Kind)
PRIORITIES = tuple(priority.value.removeprefix("priority/") for priority in Priority)
NEW_ISSUE_MODES = ("investigate", "research", "qa", "none")
EXISTING_ISSUE_MODES = ("investigate", "research", "qa")

_DEPENDS_ON = {
    "type": "array",
    "maxItems": MAX_ITEMS,
    "items": {"type": "string", "pattern": KEY_PATTERN},
    "description": "Keys of items that must be finished (their issues closed) before this "
    "item's run starts; [] when it can start at once.",
}
_KEY = {
    "type": "string",
    "pattern": KEY_PATTERN,
    "description": "A short id for this item, unique in the proposal (e.g. `backoff`), used in "
    "depends_on.",
}

PROPOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "existing", "items"],
    "properties": {
        "summary": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SUMMARY,
            "description": "What you propose and why, in a few sentences of Markdown.",
        },
        "existing": {
            "type": "array",
            "maxItems": MAX_EXISTING,
            "description": "Existing issues that already cover part of the request.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["number", "why"],
                "properties": {
                    "number": {"type": "integer", "minimum": 1},
                    "why": {"type": "string", "minLength": 1, "maxLength": MAX_WHY},
                },
            },
        },
        "items": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "description": "What approving this proposal creates or dispatches, in order.",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": [
                            "key",
                            "kind",
                            "title",
                            "body",
                            "type",
                            "priority",
                            "mode",
                            "depends_on",
                        ],
                        "properties": {
                            "key": _KEY,
                            "kind": {"const": "new_issue"},
                            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
                            "body": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_BODY,
                                "description": "The new issue's description in Markdown.",
                            },
                            "type": {"enum": list(TYPES)},
                            "priority": {"enum": list(PRIORITIES)},
                            "mode": {
                                "enum": list(NEW_ISSUE_MODES),
                                "description": "The agent run to start on it: investigate (ends "
                                "in a plan to review), research (answers a question), qa "
                                "(checks a change), or none (the issue waits for people).",
                            },
                            "depends_on": _DEPENDS_ON,
                        },
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["key", "kind", "number", "mode", "depends_on", "why"],
                        "properties": {
                            "key": _KEY,
                            "kind": {"const": "existing_issue"},
                            "number": {"type": "integer", "minimum": 1},
                            "mode": {"enum": list(EXISTING_ISSUE_MODES)},
                            "depends_on": _DEPENDS_ON,
                            "why": {"type": "string", "minLength": 1, "maxLength": MAX_WHY},
                        },
                    },
                ]
            },
        },
    },
}


# --- the server's validation (the schema's rules, then what a schema cannot say)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Key = Annotated[str, Field(pattern=KEY_PATTERN)]


class Covered(_Strict):
    number: int = Field(ge=1)
    why: str = Field(min_length=1, max_length=MAX_WHY)


class NewIssue(_Strict):
    key: Key
    kind: Literal["new_issue"]
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(min_length=1, max_length=MAX_BODY)
    type: Literal["bug", "feature", "chore", "research", "security"]
    priority: Literal["p0", "p1", "p2", "p3"]
    mode: Literal["investigate", "research", "qa", "none"]
    depends_on: list[Key] = Field(max_length=MAX_ITEMS)


class ExistingIssue(_Strict):
    key: Key
    kind: Literal["existing_issue"]
    number: int = Field(ge=1)
    mode: Literal["investigate", "research", "qa"]
    depends_on: list[Key] = Field(max_length=MAX_ITEMS)
    why: str = Field(min_length=1, max_length=MAX_WHY)


class ProposeInput(_Strict):
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    existing: list[Covered] = Field(max_length=MAX_EXISTING)
    items: list[Annotated[NewIssue | ExistingIssue, Field(discriminator="kind")]] = Field(
        max_length=MAX_ITEMS
    )


class InvalidProposal(Exception):
    """What is wrong with a proposal, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(raw: Any) -> ProposeInput:
    """The `propose` input checked against the schema; InvalidProposal says what is wrong."""
    try:
        found = ProposeInput.model_validate(raw)
    except ValidationError as exc:
        raise InvalidProposal(
            [
                f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"
                for error in exc.errors()[:10]
            ]
        ) from None
    problems: list[str] = []
    keys = [item.key for item in found.items]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"items: the key {key!r} is used twice")
    numbers = [item.number for item in found.items if isinstance(item, ExistingIssue)]
    for number in sorted({n for n in numbers if numbers.count(n) > 1}):
        problems.append(f"items: #{number} is listed twice")
    for item in found.items:
        for other in item.depends_on:
            if other == item.key:
                problems.append(f"items.{item.key}: depends on itself")
            elif other not in keys:
                problems.append(f"items.{item.key}: depends on {other!r}, which is no item")
    if not problems and (cycle := _cycle({item.key: item.depends_on for item in found.items})):
        problems.append(f"items: the dependencies go in a circle ({' → '.join(cycle)})")
    if not found.items and not found.existing:
        problems.append("a proposal needs items, or the existing issues that already cover it")
    if problems:
        raise InvalidProposal(problems)
    return found


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def order(items: list[dict[str, Any]]) -> list[int]:
    """Item positions with every item after the items it depends on (stable otherwise)."""
    by_key = {item["key"]: position for position, item in enumerate(items)}
    done: list[int] = []

    def place(position: int) -> None:
        if position in done:
            return
        for key in items[position]["depends_on"]:
            place(by_key[key])
        done.append(position)

    for position in range(len(items)):
        place(position)
    return done


# --- revisions


def issue_hash(title: str, body: str) -> str:
    """The mission issue's text a proposal was planned from (Dispatch's own task list aside)."""
    text = f"{title.strip()}\n\n{without_tasks(body).strip()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def revision_of(proposal: dict[str, Any], issue_hash: str) -> str:
    canonical = json.dumps(
        {"proposal": proposal, "issue": issue_hash}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


TASKS_START = "<!-- dispatch:mission-tasks -->"
TASKS_END = "<!-- /dispatch:mission-tasks -->"
_TASKS = re.compile(re.escape(TASKS_START) + r".*?" + re.escape(TASKS_END), re.DOTALL)


def without_tasks(body: str) -> str:
    return _TASKS.sub("", body or "")


def with_tasks(body: str, tasks: str) -> str:
    """The mission issue's body with Dispatch's task list in place (replaced, never doubled)."""
    block = f"{TASKS_START}\n{tasks.strip()}\n{TASKS_END}"
    rest = without_tasks(body).rstrip()
    return f"{rest}\n\n{block}\n" if rest else f"{block}\n"


# --- how it reads


def untrusted_markdown(text: str, allowed_hosts: list[str]) -> str:
    """The model's Markdown, safe to post: no mentions, remote images, outside links, secrets,
    or HTML comments (which could pose as Dispatch's own markers)."""
    text = text.replace("<!--", "&lt;!--")
    return markdown.agent_markdown(text.strip(), allowed_hosts)


def title_text(title: str) -> str:
    """A proposed issue title as GitHub will store it: one line, capped."""
    return " ".join(title.split())[:MAX_TITLE] or "untitled"


@dataclass(frozen=True)
class RenderContext:
    revision: str
    model: str
    rounds: int
    cost_usd: float
    allowed_hosts: list[str]
    embeddings: bool


def render(proposal: dict[str, Any], ctx: RenderContext) -> str:
    items: list[dict[str, Any]] = proposal["items"]
    keys = {item["key"]: position + 1 for position, item in enumerate(items)}
    lines = [
        f"### 🧭 Mission proposal · revision `{ctx.revision}`",
        "",
        untrusted_markdown(proposal["summary"], ctx.allowed_hosts),
        "",
    ]
    if items:
        lines += [
            "**Approving creates and dispatches exactly this:**",
            "",
            "| # | item | type | priority | run | after |",
            "|---|---|---|---|---|---|",
        ]
        for position, item in enumerate(items, start=1):
            after = ", ".join(str(keys[key]) for key in item["depends_on"]) or "—"
            run = item["mode"] if item["mode"] != "none" else "no run"
            if item["kind"] == "new_issue":
                what = f"**new issue**: {markdown.inline_text(item['title'], 150)}"
                kind, priority = item["type"], item["priority"]
            else:
                what = f"**#{item['number']}** {markdown.inline_text(item.get('title', ''), 120)}"
                kind, priority = "—", "—"
            lines.append(f"| {position} | {what} | {kind} | {priority} | {run} | {after} |")
        lines.append("")
        for position, item in enumerate(items, start=1):
            for dup in item.get("duplicates", []):
                lines.append(
                    f"⚠️ Item {position} looks like a duplicate of #{dup['number']} "
                    f"{markdown.inline_text(dup['title'], 100)} (similarity {dup['score']:.2f})."
                )
        if any(item.get("duplicates") for item in items):
            lines.append("")
    else:
        lines += ["**Nothing new to create or dispatch:** the issues below cover the request.", ""]
    if proposal["existing"]:
        lines += ["**Already covered by existing issues:**", ""]
        for covered in proposal["existing"]:
            lines.append(
                f"- #{covered['number']} {markdown.inline_text(covered.get('title', ''), 120)}"
                f" ({covered.get('state', 'open')}) — {markdown.inline_text(covered['why'], 300)}"
            )
        lines.append("")
    for position, item in enumerate(items, start=1):
        if item["kind"] == "existing_issue":
            lines.append(
                f"{position}. #{item['number']}, why: {markdown.inline_text(item['why'], 300)}"
            )
            continue
        lines += [
            "<details>",
            f"<summary>{position}. {markdown.html_text(item['title'], 150)}</summary>",
            "",
            untrusted_markdown(item["body"], ctx.allowed_hosts),
            "",
            "</details>",
        ]
    dup_note = "" if ctx.embeddings else " Duplicates were checked by title only (embeddings off)."
    lines += [
        "",
        "---",
        f"Proposed by Claude (`{ctx.model}`) after {ctx.rounds} round"
        f"{'s' if ctx.rounds != 1 else ''} · ${ctx.cost_usd:.4f}. Planning created and "
        f"dispatched nothing.{dup_note}",
        f"`/dispatch approve {ctx.revision}` creates the new issues (with `type/*`, `priority/*` "
        "and `status/ready`) and requests the runs of exactly this revision; "
        "`/dispatch reject <reason>` plans again with your reason.",
    ]
    return "\n".join(lines)
