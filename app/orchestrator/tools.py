"""The tools Claude plans with: read-only views of the installation's data through the areas'
own services, and `propose`, the one tool that ends the planning. None of them writes anything:
creating issues and starting runs happens only in `execution.py`, after a person approves.

Every answer is size-capped, and text people wrote (issue titles and bodies, run summaries,
file contents) goes back to the model fenced as untrusted data with the mission's nonce, the
same way agents' prompts fence it (`app/agents/prompt.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from githubkit import GitHub
from githubkit.exception import RequestFailed
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.agents import gates, plans, run_search, runs, spawn_budgets, spawn_limits
from app.agents.prompt import fence
from app.github import rest
from app.issues import cache, repo_config
from app.issues.cache import IssueFilter
from app.modes import COMMAND_MODES
from app.orchestrator.proposal import PROPOSE_SCHEMA
from app.runtime import Runtime
from app.search import duplicates

PROPOSE = "propose"
# What one tool answer may hold; the model sees that it was cut.
MAX_RESULT_CHARS = 24_000
MAX_ISSUE_BODY_CHARS = 8_000
MAX_FILE_CHARS = 20_000
MAX_TREE_ENTRIES = 400


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SearchIssues(_Input):
    query: str = Field(min_length=1, max_length=300)
    state: Literal["open", "closed", "all"] = "open"
    limit: int = Field(10, ge=1, le=20)


class ListIssues(_Input):
    state: Literal["open", "closed", "all"] = "open"
    status: Literal["backlog", "ready", "in-progress", "in-review", "verifying", "done"] | None = (
        None
    )
    priority: Literal["p0", "p1", "p2", "p3"] | None = None
    type: Literal["bug", "feature", "chore", "research", "security"] | None = None
    limit: int = Field(25, ge=1, le=50)
    offset: int = Field(0, ge=0, le=10_000)


class ReadIssue(_Input):
    number: int = Field(ge=1)


class ReadRuns(_Input):
    issue: int | None = Field(None, ge=1)
    limit: int = Field(10, ge=1, le=20)


class FleetStatus(_Input):
    pass


class FileTree(_Input):
    prefix: str = Field("", max_length=300)


class ReadFile(_Input):
    path: str = Field(min_length=1, max_length=500)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input: type[_Input]

    def spec(self) -> dict[str, Any]:
        schema = self.input.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        return {"name": self.name, "description": self.description, "input_schema": schema}


READ_TOOLS: tuple[Tool, ...] = (
    Tool(
        "search_issues",
        "Search this repository's issues by meaning (semantic search over their title and "
        "body; word search when semantic search is off). Use it first, to find what already "
        "exists before proposing anything new.",
        SearchIssues,
    ),
    Tool(
        "list_issues",
        "List this repository's issues by state and labels (status, priority, type), most "
        "urgent first.",
        ListIssues,
    ),
    Tool(
        "read_issue",
        "Read one issue of this repository: state, labels, body, its agent runs and plan.",
        ReadIssue,
    ),
    Tool(
        "read_runs",
        "Read the agent runs of one issue, or the latest runs of the repository: mode, state, "
        "outcome, cost and summary.",
        ReadRuns,
    ),
    Tool(
        "fleet_status",
        "The installation's agent fleet today: runs active per mode, spawn budgets left, the "
        "day's spend against the daily cost budget, and whether the kill switch is on.",
        FleetStatus,
    ),
    Tool(
        "file_tree",
        "The repository's files at the default branch (paths and sizes), optionally only "
        f"under a path prefix; at most {MAX_TREE_ENTRIES} entries per answer.",
        FileTree,
    ),
    Tool(
        "read_file",
        "Read one file of the repository at the default branch (text; the first "
        f"{MAX_FILE_CHARS} characters).",
        ReadFile,
    ),
)

PROPOSE_TOOL = {
    "name": PROPOSE,
    "description": (
        "Finish planning with your proposal. This is the only way to finish, and it changes "
        "nothing: Dispatch validates it and posts it on the mission issue, and nothing is "
        "created or dispatched until a person approves it. Call it exactly once."
    ),
    "input_schema": PROPOSE_SCHEMA,
}

TOOLS_BY_NAME = {tool.name: tool for tool in READ_TOOLS}


def specs() -> list[dict[str, Any]]:
    """The tool list the model sees."""
    return [tool.spec() for tool in READ_TOOLS] + [PROPOSE_TOOL]


class UnknownTool(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class InvalidToolInput(Exception):
    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"{name}: {'; '.join(problems)}")
        self.name = name
        self.problems = problems


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


def parse_input(name: str, raw: Any) -> _Input:
    tool = TOOLS_BY_NAME.get(name)
    if tool is None:
        raise UnknownTool(name)
    try:
        return tool.input.model_validate(raw)
    except ValidationError as exc:
        raise InvalidToolInput(
            name,
            [
                f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"
                for error in exc.errors()[:5]
            ],
        ) from None


async def run(scope: Scope, name: str, raw: Any) -> Result:
    """Run a read tool. UnknownTool and InvalidToolInput end the mission; a tool that finds
    nothing (no such issue or file) answers with an error result the model can read."""
    parsed = parse_input(name, raw)
    match parsed:
        case SearchIssues():
            result = await _search_issues(scope, parsed)
        case ListIssues():
            result = await _list_issues(scope, parsed)
        case ReadIssue():
            result = await _read_issue(scope, parsed)
        case ReadRuns():
            result = await _read_runs(scope, parsed)
        case FleetStatus():
            result = await _fleet_status(scope)
        case FileTree():
            result = await _file_tree(scope, parsed)
        case ReadFile():
            result = await _read_file(scope, parsed)
        case _:  # pragma: no cover - every tool has a case
            raise UnknownTool(name)
    if len(result.text) > MAX_RESULT_CHARS:
        cut = result.text[:MAX_RESULT_CHARS]
        result = Result(f"{cut}\n… (answer cut at {MAX_RESULT_CHARS} characters)", result.is_error)
    return result


def _untrusted(scope: Scope, label: str, data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=1)
    return fence(label, text, scope.nonce)


async def _search_issues(scope: Scope, args: SearchIssues) -> Result:
    rt = scope.rt
    state = None if args.state == "all" else args.state
    if rt.embeddings is not None:
        found = await duplicates.similar_to_text(
            rt, scope.repository_id, args.query, limit=args.limit * 2, open_only=state == "open"
        )
        hits = [
            {
                "number": n.number,
                "state": n.state,
                "similarity": round(n.score, 3),
                "title": n.title,
            }
            for n in found
            if state is None or n.state == state
        ][: args.limit]
        how = "by meaning"
    else:
        words = await cache.issues_with_words(
            scope.repository_id, args.query.split(), state=state, limit=args.limit + 1
        )
        hits = [
            {"number": i.number, "state": i.state, "title": i.title}
            for i in words
            if i.number != scope.mission_issue
        ][: args.limit]
        how = "by words (semantic search is off)"
    if not hits:
        return Result(f"No issue matches {json.dumps(args.query)} ({how}).")
    return Result(
        f"{len(hits)} issue(s) match {json.dumps(args.query)} ({how}), best first:\n"
        + _untrusted(scope, "SEARCH RESULTS", hits)
    )


async def _list_issues(scope: Scope, args: ListIssues) -> Result:
    total, page = await cache.search(
        IssueFilter(
            repositories=[scope.repository],
            state=None if args.state == "all" else args.state,
            status=args.status,
            priority=args.priority,
            type=args.type,
        ),
        limit=args.limit,
        offset=args.offset,
    )
    listed = [
        {
            "number": issue.number,
            "state": issue.state,
            "status": issue.status,
            "priority": issue.priority,
            "labels": issue.labels,
            "title": issue.title,
        }
        for issue in page
    ]
    head = f"{total} issue(s) match; showing {len(listed)} from {args.offset}."
    return Result(head + ("\n" + _untrusted(scope, "ISSUES", listed) if listed else ""))


async def _read_issue(scope: Scope, args: ReadIssue) -> Result:
    issue = await cache.get(scope.repository, args.number)
    if issue is not None:
        title, body, state, labels = issue.title, issue.body, issue.state, issue.labels
        is_pull = False
    else:
        try:
            live = await rest.get_issue(scope.client, scope.repository, args.number)
        except RequestFailed as exc:
            if rest.status_of(exc) in (404, 410):
                return Result(f"There is no issue #{args.number} in {scope.repository}.", True)
            raise
        title, body = live.get("title") or "", live.get("body") or ""
        state = live.get("state") or "open"
        labels = sorted(label["name"] for label in live.get("labels") or [])
        is_pull = "pull_request" in live
    cut = ""
    if len(body) > MAX_ISSUE_BODY_CHARS:
        cut = f"\n(the body is {len(body)} characters; the first {MAX_ISSUE_BODY_CHARS} shown)"
        body = body[:MAX_ISSUE_BODY_CHARS]
    recent = await runs.for_issue(scope.repository, args.number, limit=5)
    plan = await plans.latest(scope.repository_id, args.number)
    lines = [
        f"{'Pull request' if is_pull else 'Issue'} #{args.number} in {scope.repository}: {state}",
        f"labels: {', '.join(labels) or 'none'}",
        "runs: "
        + (
            "; ".join(f"#{r.id} {r.mode.value} {r.state.value}" for r in recent)
            if recent
            else "none"
        ),
        f"plan: {plan.state.value} (revision {plan.revision})" if plan else "plan: none",
        _untrusted(scope, f"ISSUE {args.number} TITLE", title),
        _untrusted(scope, f"ISSUE {args.number} BODY", body or "(empty)") + cut,
    ]
    return Result("\n".join(lines))


async def _read_runs(scope: Scope, args: ReadRuns) -> Result:
    if args.issue is not None:
        found = await runs.for_issue(scope.repository, args.issue, limit=args.limit)
    else:
        found = await run_search.recent(scope.repository_id, limit=args.limit)
    if not found:
        where = f"issue #{args.issue}" if args.issue else scope.repository
        return Result(f"No agent runs on {where}.")
    listed = [
        {
            "run": r.id,
            "issue": r.issue_number,
            "mode": r.mode.value,
            "state": r.state.value,
            "outcome": r.outcome,
            "cost_usd": r.cost_usd,
            "created_at": r.created_at.isoformat(),
            "refusal": r.refusal,
            "summary": (r.summary or "")[:600] or None,
        }
        for r in found
    ]
    return Result(f"{len(listed)} run(s), newest first:\n" + _untrusted(scope, "RUNS", listed))


async def _fleet_status(scope: Scope) -> Result:
    rt = scope.rt
    now = rt.clock.now()
    loaded = await repo_config.load(rt, scope.installation_id, scope.repository)
    limits = {
        mode: spawn_limits.limits_for(rt.settings, loaded.config, mode) for mode in COMMAND_MODES
    }
    left = await spawn_budgets.budgets_left(scope.installation_id, limits, now)
    spent = await spawn_budgets.spent_today(scope.installation_id, now)
    limit = spawn_limits.daily_cost_limit(rt.settings, loaded.config)
    stopped = await gates.kill_switch(scope.installation_id, rt.settings)
    status = {
        "kill_switch": stopped.reason if stopped else "off",
        "spend_today_usd": round(spent, 4),
        "daily_cost_limit_usd": limit,
        "modes": [
            {
                "mode": str(b.mode),
                "active_runs": b.active,
                "concurrency_limit": b.concurrency,
                "spawned_today": b.spawned,
                "daily_spawn_budget": b.budget,
            }
            for b in left
        ],
    }
    return Result(json.dumps(status, indent=1))


async def _default_branch(scope: Scope) -> str:
    data = await rest.get_repository(scope.client, scope.repository)
    return str(data.get("default_branch") or "main")


async def _file_tree(scope: Scope, args: FileTree) -> Result:
    branch = await _default_branch(scope)
    tree = await rest.file_tree(scope.client, scope.repository, branch)
    if tree is None:
        return Result(f"The repository has no files on {branch}.", True)
    prefix = args.prefix.strip("/")
    entries = [
        e for e in tree.entries if not prefix or e.path == prefix or e.path.startswith(prefix + "/")
    ]
    shown = entries[:MAX_TREE_ENTRIES]
    lines = [
        f"{e.path}/" if e.type == "tree" else f"{e.path} ({e.size} bytes)"
        for e in shown
        if e.type in ("tree", "blob")
    ]
    notes = []
    if len(entries) > len(shown):
        notes.append(f"{len(entries) - len(shown)} more entries not shown: narrow the prefix")
    if tree.truncated:
        notes.append("GitHub cut the tree (the repository is very large)")
    head = f"{len(entries)} entries on {branch}" + (f" under {prefix}/" if prefix else "") + ":"
    body = _untrusted(scope, "FILE TREE", "\n".join(lines) or "(none)")
    return Result("\n".join([head, body, *notes]))


async def _read_file(scope: Scope, args: ReadFile) -> Result:
    path = args.path.strip("/")
    if any(part in ("", ".", "..") for part in path.split("/")):
        return Result(f"{args.path!r} is not a path in the repository.", True)
    branch = await _default_branch(scope)
    found = await rest.file_content(scope.client, scope.repository, path, ref=branch)
    if found is None:
        return Result(f"There is no file {path} on {branch} (directories: use file_tree).", True)
    text = found.text
    if "\x00" in text:
        return Result(f"{path} is a binary file; it is not shown.")
    cut = ""
    if len(text) > MAX_FILE_CHARS:
        cut = f"\n(the file has {len(text)} characters; the first {MAX_FILE_CHARS} shown)"
        text = text[:MAX_FILE_CHARS]
    return Result(f"{path} on {branch}:\n" + _untrusted(scope, f"FILE {path}", text) + cut)
