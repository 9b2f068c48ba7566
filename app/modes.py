"""The agent modes, in one table: what each mode is called, how far an agent may go in it (turns,
tools, whether it may change files) and the instructions it starts from.

Every other place that needs the list of modes (settings, the repository config, budgets, the
brief, the status comment) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    INVESTIGATE = "investigate"
    IMPLEMENT = "implement"
    QA = "qa"
    RESEARCH = "research"
    AUTO_INVESTIGATE = "auto_investigate"

    @property
    def spec(self) -> ModeSpec:
        return MODES[self]

    @property
    def heading(self) -> str:
        return MODES[self].heading


READ_ONLY_TOOLS = (
    "Read",
    "Grep",
    "Glob",
    "LS",
    "Bash(git log:*)",
    "Bash(git diff:*)",
    "Bash(git show:*)",
)


@dataclass(frozen=True)
class ModeSpec:
    heading: str
    max_turns: int
    tools: tuple[str, ...]
    # Whether the agent's work ends in a plan to review (the investigation modes).
    ends_in_plan: bool
    # Whether the agent may change files (its patch is published by the workflow, never by it).
    changes_files: bool
    instructions: str
    # Whether the agent's final answer is a report Dispatch posts in full on the issue.
    posts_report: bool = False
    # Whether a run moves the status (in progress, then back to ready). A QA run checks
    # a pull request: the issue stays where it is (usually in review).
    moves_status: bool = True
    # Whether the run works on a pull request's head commit (the brief names it).
    checks_pull: bool = False


MODES: dict[Mode, ModeSpec] = {
    Mode.INVESTIGATE: ModeSpec(
        heading="Investigation",
        max_turns=40,
        tools=READ_ONLY_TOOLS,
        ends_in_plan=True,
        changes_files=False,
        instructions=(
            "Investigate issue #{number} in {repository}. Read the code, reproduce the problem if "
            "you can, and find the cause. Do not change any file. Finish with a plan in Markdown "
            "with the sections Summary, Files, Risks, Stop conditions and Test strategy; a "
            "maintainer reviews it before anyone implements it."
        ),
    ),
    Mode.AUTO_INVESTIGATE: ModeSpec(
        heading="Automatic investigation",
        max_turns=40,
        tools=READ_ONLY_TOOLS,
        ends_in_plan=True,
        changes_files=False,
        instructions=(
            "A production error was reported automatically as issue #{number} in {repository}; "
            "the error context is attached. Find the cause from the code and the stack trace. Do "
            "not change any file. Finish with a plan in Markdown with the sections Summary, "
            "Files, Risks, Stop conditions and Test strategy."
        ),
    ),
    Mode.IMPLEMENT: ModeSpec(
        heading="Implementation",
        max_turns=80,
        tools=(*READ_ONLY_TOOLS, "Edit", "Write", "MultiEdit", "Bash"),
        ends_in_plan=False,
        changes_files=True,
        instructions=(
            "Implement the approved plan for issue #{number} in {repository} on branch {branch}. "
            "Follow the plan; if it turns out to be wrong, stop and explain instead of "
            "improvising. Add or update tests, run them, and leave the work committed on the "
            "branch; the workflow pushes it and opens the pull request."
        ),
    ),
    Mode.QA: ModeSpec(
        heading="QA",
        max_turns=60,
        tools=(*READ_ONLY_TOOLS, "Bash"),
        ends_in_plan=False,
        changes_files=False,
        instructions=(
            "Check pull request #{pull_number} in {repository} (asked on #{number}): the "
            "checkout is its head commit {head_sha}. Run the tests, try the behaviour the issue "
            "and the pull request describe, and report what works and what does not. Do not "
            "change files. End the report with one line, exactly `DISPATCH-VERDICT: pass` "
            "when the change does what the issue asks and the tests pass, or "
            "`DISPATCH-VERDICT: fail` otherwise; it becomes the pull request's `dispatch/qa` check."
        ),
        posts_report=True,
        moves_status=False,
        checks_pull=True,
    ),
    Mode.RESEARCH: ModeSpec(
        heading="Research",
        max_turns=40,
        tools=(*READ_ONLY_TOOLS, "WebSearch", "WebFetch"),
        ends_in_plan=False,
        changes_files=False,
        instructions=(
            "Research the question asked on issue #{number} in {repository} and answer it with "
            "sources, trade-offs and a recommendation. Do not change files. End the report with a "
            "`## Sources` section listing every source you relied on (links, documents, files of "
            "the repository); if you used none, say so in that section."
        ),
        posts_report=True,
    ),
}

# Modes a person starts with a command (auto_investigate comes from alerts).
COMMAND_MODES = (Mode.INVESTIGATE, Mode.IMPLEMENT, Mode.QA, Mode.RESEARCH)
