"""The tools Claude plans with: read-only views of the installation's data through the areas'
own services, and `propose`, the one tool that ends the planning. None of them writes anything:
creating issues and starting runs happens only in `execution.py`, after a person approves.

This module holds the catalogue the model sees and runs a call; the tools themselves are in
`issue_tools`, `fleet_tools` and `file_tools`, what they share in `tool_calls`. Every answer is
size-capped, and text people wrote goes back to the model fenced as untrusted data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.orchestrator import file_tools, fleet_tools, issue_tools
from app.orchestrator.file_tools import MAX_FILE_CHARS, MAX_TREE_ENTRIES
from app.orchestrator.proposal import PROPOSE_SCHEMA
from app.orchestrator.tool_calls import (
    FileTree,
    FleetStatus,
    Input,
    ListIssues,
    ReadFile,
    ReadIssue,
    ReadRuns,
    Result,
    Scope,
    SearchIssues,
)

PROPOSE = "propose"
# What one tool answer may hold; the model sees that it was cut.
MAX_RESULT_CHARS = 24_000


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input: type[Input]

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


def parse_input(name: str, raw: Any) -> Input:
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
            result = await issue_tools.search_issues(scope, parsed)
        case ListIssues():
            result = await issue_tools.list_issues(scope, parsed)
        case ReadIssue():
            result = await issue_tools.read_issue(scope, parsed)
        case ReadRuns():
            result = await fleet_tools.read_runs(scope, parsed)
        case FleetStatus():
            result = await fleet_tools.fleet_status(scope)
        case FileTree():
            result = await file_tools.file_tree(scope, parsed)
        case ReadFile():
            result = await file_tools.read_file(scope, parsed)
        case _:  # pragma: no cover - every tool has a case
            raise UnknownTool(name)
    if len(result.text) > MAX_RESULT_CHARS:
        cut = result.text[:MAX_RESULT_CHARS]
        result = Result(f"{cut}\n… (answer cut at {MAX_RESULT_CHARS} characters)", result.is_error)
    return result
