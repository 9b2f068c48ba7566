"""QA runs check a pull request: which one (`target_for`), and the `dispatch/qa` check run on its
head commit that carries the verdict, so branch protection can require it.

On a pull request, QA checks that pull request. On an issue, it checks the pull request linked to
it: the one the issue's latest implementation opened, else an open pull request whose text closes
the issue (`Fixes #N`), the repository's own branches before forks. A pull request from a fork is
refused unless the repository allows it (`qa: {allow_forks: true}`): its code would run next to
the repository's Anthropic key. A closed or merged one is refused: there is nothing to check.

The head commit is fixed when the run is asked for: the agent checks out that commit, and the
check run goes on it, whatever is pushed in the meantime.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub

from app.agents import pull_requests, runs
from app.agents.runs import Run, RunState
from app.github import addresses, markdown, rest
from app.modes import Mode
from app.runtime import Runtime

log = logging.getLogger(__name__)

CHECK_NAME = "dispatch/qa"
# GitHub caps a check run's output summary and text at 65,535 characters each.
CHECK_TEXT_MAX = 60_000
SUMMARY_MAX = 4_000
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_VERDICT = re.compile(
    r"^[\s>*_`]*DISPATCH-VERDICT\s*:\s*(pass|fail)\b", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True)
class Refused:
    """No pull request QA may check; `reason` is the reply."""

    reason: str


def describe(pull: dict[str, Any]) -> dict[str, Any]:
    """What the brief, the run and the check run need of a pull request."""
    head = pull.get("head") or {}
    base = pull.get("base") or {}
    return {
        "number": int(pull["number"]),
        "head_ref": str(head.get("ref") or ""),
        "head_sha": str(head.get("sha") or ""),
        "base_ref": str(base.get("ref") or ""),
        "head_repository": (head.get("repo") or {}).get("full_name"),
        "url": pull.get("html_url"),
    }


def _is_fork(pull: dict[str, Any], repository_id: int) -> bool:
    head_repo = (pull.get("head") or {}).get("repo") or {}
    return head_repo.get("id") != repository_id


def checkable(
    pull: dict[str, Any], repository_id: int, allow_forks: bool
) -> dict[str, Any] | Refused:
    """The pull request as a QA target, or why QA may not check it."""
    number = pull["number"]
    if pull.get("merged") or pull.get("merged_at"):
        return Refused(f"pull request #{number} is already merged: there is nothing left to check.")
    if pull.get("state") != "open":
        return Refused(f"pull request #{number} is closed: reopen it to have it checked.")
    head_repo = (pull.get("head") or {}).get("repo")
    if not head_repo:
        return Refused(f"the branch of pull request #{number} is gone (its fork was deleted).")
    if _is_fork(pull, repository_id) and not allow_forks:
        fork = markdown.code_span(str(head_repo.get("full_name") or "a fork"))
        return Refused(
            f"pull request #{number} comes from the fork {fork}: checking it would run its code "
            "next to this repository's `ANTHROPIC_API_KEY`. A maintainer can allow it with "
            "`qa: {allow_forks: true}` in `.github/dispatch.yml`."
        )
    target = describe(pull)
    if not _SHA.match(target["head_sha"]):
        return Refused(f"GitHub gave no head commit for pull request #{number}.")
    return target


async def target_for(
    client: GitHub,
    *,
    repository: str,
    repository_id: int,
    number: int,
    is_pull: bool,
    allow_forks: bool,
) -> dict[str, Any] | Refused:
    """The pull request a `/dispatch qa` on `number` checks, or why there is none."""
    if is_pull:
        pull = await rest.get_pull(client, repository, number)
        if pull is None:
            return Refused(f"pull request #{number} was not found in {repository}.")
        return checkable(pull, repository_id, allow_forks)
    refused: Refused | None = None
    implemented = next(
        (
            run
            for run in await runs.for_issue(repository, number)
            if run.mode is Mode.IMPLEMENT and run.pr_number
        ),
        None,
    )
    if implemented is not None and implemented.pr_number is not None:
        pull = await rest.get_pull(client, repository, implemented.pr_number)
        if pull is not None:
            found = checkable(pull, repository_id, allow_forks)
            if not isinstance(found, Refused):
                return found
            refused = found
    closing = [
        pull
        for pull in await rest.open_pulls(client, repository)
        if number in pull_requests.closes(pull.get("body"))
    ]
    # The repository's own branches first (only writers push those), then forks.
    closing.sort(key=lambda pull: _is_fork(pull, repository_id))
    for pull in closing:
        found = checkable(pull, repository_id, allow_forks)
        if not isinstance(found, Refused):
            return found
        refused = refused or found
    return refused or Refused(
        f"no pull request to check: comment on the PR, or open one that says Fixes #{number}."
    )


def verdict(report: str | None) -> str | None:
    """`pass` or `fail` from the report's last `DISPATCH-VERDICT:` line; None without one."""
    found = _VERDICT.findall(report or "")
    return found[-1].lower() if found else None


def _summary(rt: Runtime, run: Run) -> str:
    hosts = addresses.github_hosts(rt.settings.github_web_url)
    text = markdown.agent_markdown(run.summary or "", hosts).strip()
    return markdown.cut(text, SUMMARY_MAX, "…") if text else "(no summary)"


def _conclusion(rt: Runtime, run: Run) -> tuple[str, dict[str, str]]:
    """The check run's conclusion and output for a finished run."""
    if run.state is not RunState.SUCCEEDED:
        state = run.state.value.replace("_", " ")
        return "failure", {
            "title": f"QA run {state}",
            "summary": f"Dispatch run #{run.id} {state}: {_summary(rt, run)}",
        }
    found = verdict(run.report or run.summary)
    if found is None:
        return "failure", {
            "title": "QA gave no verdict",
            "summary": (
                f"Dispatch run #{run.id} ended without a `DISPATCH-VERDICT: pass` line, so the "
                f"change is not confirmed.\n\n{_summary(rt, run)}"
            ),
        }
    output = {
        "title": "QA passed" if found == "pass" else "QA failed",
        "summary": _summary(rt, run),
    }
    if run.report:
        hosts = addresses.github_hosts(rt.settings.github_web_url)
        body = markdown.agent_markdown(run.report, hosts)
        output["text"] = markdown.cut(
            body, CHECK_TEXT_MAX, "_The report is longer: see the issue._"
        )
    return ("success" if found == "pass" else "failure"), output


def _details(run: Run) -> dict[str, str]:
    return {"details_url": run.workflow_run_url} if run.workflow_run_url else {}


async def _existing(client: GitHub, run: Run, sha: str) -> dict[str, Any] | None:
    """The check run an earlier attempt created for this run (found by its external id)."""
    for check in await rest.check_runs_for_ref(client, run.repository, sha, CHECK_NAME):
        if check.get("external_id") == str(run.id):
            return check
    return None


async def start_check(rt: Runtime, run: Run) -> Run:
    """`dispatch/qa` in progress on the pull request's head, once per run."""
    pull = run.target_pull
    if not run.mode.spec.checks_pull or not pull or run.check_run_id is not None:
        return run
    client = rt.github.installation(run.installation_id)
    check = await _existing(client, run, pull["head_sha"])
    if check is None:
        check = await rest.create_check_run(
            client,
            run.repository,
            pull["head_sha"],
            CHECK_NAME,
            status="in_progress",
            external_id=str(run.id),
            started_at=f"{rt.clock.now():%Y-%m-%dT%H:%M:%SZ}",
            output={
                "title": "QA is running",
                "summary": f"Dispatch run #{run.id} is checking this commit.",
            },
            **_details(run),
        )
    if check is None:
        log.warning(
            "no check run: the installation has not granted checks: write",
            extra={"run": run.id, "repository": run.repository},
        )
        return run
    return await runs.update(run.id, check_run_id=int(check["id"]))


async def finish_check(rt: Runtime, run: Run) -> Run:
    """The verdict as the check run's conclusion (success or failure), with the report."""
    pull = run.target_pull
    if not run.mode.spec.checks_pull or not pull or not run.state.finished:
        return run
    client = rt.github.installation(run.installation_id)
    conclusion, output = _conclusion(rt, run)
    fields: dict[str, Any] = {
        "status": "completed",
        "conclusion": conclusion,
        "completed_at": f"{(run.finished_at or rt.clock.now()):%Y-%m-%dT%H:%M:%SZ}",
        "output": output,
        **_details(run),
    }
    done = None
    if run.check_run_id is not None:
        done = await rest.update_check_run(client, run.repository, run.check_run_id, **fields)
    if done is None:
        existing = await _existing(client, run, pull["head_sha"])
        if existing is not None:
            done = await rest.update_check_run(client, run.repository, existing["id"], **fields)
        else:
            done = await rest.create_check_run(
                client,
                run.repository,
                pull["head_sha"],
                CHECK_NAME,
                external_id=str(run.id),
                **fields,
            )
    if done is None:
        log.warning(
            "the QA verdict is not on the pull request: the installation has not granted "
            "checks: write",
            extra={"run": run.id, "repository": run.repository},
        )
        return run
    if done.get("id") != run.check_run_id:
        run = await runs.update(run.id, check_run_id=int(done["id"]))
    return run
