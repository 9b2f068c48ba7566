"""`/dispatch qa` checks a pull request: the one it is asked on, or the one linked to the issue.
The brief and the prompt name its head commit, a fork's or a closed one is refused, and the
verdict becomes the `dispatch/qa` check run on that commit."""

from __future__ import annotations

import httpx
import pytest

from app.agents import brief, runs
from app.agents.runs import NewRun, Trigger
from app.issues import repo_config
from app.modes import Mode
from tests.agents.loop import AUDIENCE, comment
from tests.harness import AGENT_WORKFLOW, drain

NO_PULL = "no pull request to check: comment on the PR, or open one that says Fixes #{n}."


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


def on_pull(github, project, number: int, body: str) -> dict:
    """A comment on pull request `number` (GitHub sends it as an issue comment on a PR)."""
    payload = comment(github, project, number, body)
    payload["issue"]["pull_request"] = {
        "url": f"{github.url}/repos/octo-org/widgets/pulls/{number}",
        "html_url": f"https://github.com/octo-org/widgets/pull/{number}",
        "diff_url": f"https://github.com/octo-org/widgets/pull/{number}.diff",
        "patch_url": f"https://github.com/octo-org/widgets/pull/{number}.patch",
    }
    return payload


def replies(github, project, number: int) -> list[str]:
    return [c for c in github.bot_comments(project[1], number) if "dispatch:command:" in c]


async def report(rt, oidc, client, run, event: dict) -> httpx.Response:
    """What the publish job's reporter posts, with the run's OIDC token."""
    token = oidc.token(
        AUDIENCE,
        repository="octo-org/widgets",
        repository_id=run.repository_id,
        run_id=run.workflow_run_id,
    )
    return await client.post(
        f"/api/runs/{run.id}/events", json=event, headers={"authorization": f"Bearer {token}"}
    )


def completed(text: str, **extra) -> dict:
    return {
        "type": "completed",
        "outcome": "completed",
        "summary": text[:1500],
        "cost_usd": 0.4,
        "turns": 6,
        "report": text,
        **extra,
    }


async def test_qa_on_a_pull_request_dispatches_with_its_head(rt, github, project, deliver):
    pull = github.add_pull(project[1], "fix-coupons", body="Fixes #1", title="Fix coupons")
    number, sha = pull["number"], pull["head"]["sha"]

    await deliver("issue_comment", on_pull(github, project, number, "/dispatch qa try SAVE10"))

    [run] = await runs.for_issue("octo-org/widgets", number)
    assert run.mode.value == "qa" and run.state.value == "dispatched"
    assert run.target_pull == {
        "number": number,
        "head_ref": "fix-coupons",
        "head_sha": sha,
        "base_ref": "main",
        "head_repository": "octo-org/widgets",
        "url": f"https://github.com/octo-org/widgets/pull/{number}",
    }
    [dispatch] = github.dispatches(project[1])
    assert dispatch["inputs"]["mode"] == "qa"
    made = await brief.build(rt, run)
    assert made["pull_request"]["head_sha"] == sha and made["pull_request"]["number"] == number
    assert f"pull request #{number}" in made["instructions"] and sha in made["instructions"]
    assert f"The working tree is the head commit `{sha}`" in made["prompt"]
    assert "head branch: fix-coupons" in made["prompt"]
    assert "DISPATCH-VERDICT" in made["prompt"]
    # The check run is pending on that commit until the verdict.
    [check] = github.check_runs(project[1])
    assert (check["name"], check["head_sha"], check["status"]) == (
        "dispatch/qa",
        sha,
        "in_progress",
    )
    assert check["external_id"] == str(run.id)
    # QA leaves the status labels alone.
    assert not any(label.startswith("status/") for label in github.label_names(project[1], number))


async def test_qa_on_an_issue_checks_the_pull_request_that_closes_it(github, project, deliver):
    issue = github.add_issue(project[1], "Coupons apply twice", labels=["status/in-review"])
    github.add_pull(project[1], "unrelated", body="Fixes #999")
    pull = github.add_pull(project[1], "fix-coupons", body=f"This fixes #{issue['number']}.")

    await deliver("issue_comment", comment(github, project, issue["number"], "/dispatch qa"))

    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    assert run.target_pull["number"] == pull["number"]
    assert run.target_pull["head_sha"] == pull["head"]["sha"]
    assert "status/in-review" in github.label_names(project[1], issue["number"])


async def test_qa_on_an_issue_prefers_the_pull_request_its_implementation_opened(
    github, project, deliver
):
    issue = github.add_issue(project[1], "Coupons apply twice")
    github.add_pull(project[1], "someone-else", body=f"Fixes #{issue['number']}")
    mine = github.add_pull(project[1], "dispatch/run-1-coupons")
    await runs.create(
        NewRun(
            installation_id=project[0],
            repository="octo-org/widgets",
            repository_id=project[1]["id"],
            issue_number=issue["number"],
            mode=Mode.IMPLEMENT,
            trigger=Trigger.COMMAND,
        )
    )
    [implemented] = await runs.for_issue("octo-org/widgets", issue["number"])
    await runs.update(implemented.id, state="succeeded", pr_number=mine["number"])

    await deliver("issue_comment", comment(github, project, issue["number"], "/dispatch qa"))

    run = (await runs.for_issue("octo-org/widgets", issue["number"]))[0]
    assert run.mode.value == "qa" and run.target_pull["number"] == mine["number"]


async def test_an_issue_without_a_pull_request_is_refused(github, project, deliver):
    issue = github.add_issue(project[1], "Nothing done yet")

    await deliver("issue_comment", comment(github, project, issue["number"], "/dispatch qa"))

    assert await runs.for_issue("octo-org/widgets", issue["number"]) == []
    [reply] = replies(github, project, issue["number"])
    assert NO_PULL.format(n=issue["number"]) in reply
    assert github.dispatches(project[1]) == [] and github.check_runs(project[1]) == []


async def test_a_pull_request_from_a_fork_is_refused_unless_the_repository_allows_it(
    rt, github, project, deliver
):
    pull = github.add_pull(project[1], "patch-1", body="Fixes #1", fork_owner="mallory")

    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))

    assert await runs.for_issue("octo-org/widgets", pull["number"]) == []
    [reply] = replies(github, project, pull["number"])
    assert "comes from the fork `mallory/widgets`" in reply
    assert "ANTHROPIC_API_KEY" in reply and "allow_forks: true" in reply

    github.add_file(project[1], ".github/dispatch.yml", "qa:\n  allow_forks: true\n")
    await repo_config.refresh(rt, project[0], "octo-org/widgets")
    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))

    [run] = await runs.for_issue("octo-org/widgets", pull["number"])
    assert run.target_pull["head_repository"] == "mallory/widgets"
    assert run.target_pull["head_sha"] == pull["head"]["sha"]


@pytest.mark.parametrize(("merged", "said"), [(True, "is already merged"), (False, "is closed")])
async def test_a_closed_or_merged_pull_request_is_refused(github, project, deliver, merged, said):
    pull = github.add_pull(project[1], "done", merged=merged, state="closed")

    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))

    assert await runs.for_issue("octo-org/widgets", pull["number"]) == []
    [reply] = replies(github, project, pull["number"])
    assert f"pull request #{pull['number']} {said}" in reply


@pytest.mark.parametrize(
    ("ending", "conclusion", "title"),
    [
        ("All 12 checkout tests pass.\n\nDISPATCH-VERDICT: pass", "success", "QA passed"),
        ("SAVE10 still applies twice.\n\nDISPATCH-VERDICT: fail", "failure", "QA failed"),
        ("I looked around.", "failure", "QA gave no verdict"),
    ],
)
async def test_the_verdict_becomes_the_check_run(
    rt, github, oidc, client, project, deliver, ending, conclusion, title
):
    pull = github.add_pull(project[1], "fix-coupons")
    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))
    [run] = await runs.for_issue("octo-org/widgets", pull["number"])

    text = f"## QA of #{pull['number']}\n\n{ending}"
    assert (await report(rt, oidc, client, run, completed(text))).status_code == 202
    await drain(rt)

    [check] = github.check_runs(project[1])
    assert (check["status"], check["conclusion"]) == ("completed", conclusion)
    assert check["output"]["title"] == title
    assert check["head_sha"] == pull["head"]["sha"]
    reports = [
        c for c in github.bot_comments(project[1], pull["number"]) if "dispatch:report:" in c
    ]
    assert len(reports) == 1 and ending.splitlines()[0] in reports[0]


async def test_a_qa_run_that_fails_fails_the_check(rt, github, oidc, client, project, deliver):
    pull = github.add_pull(project[1], "fix-coupons")
    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))
    [run] = await runs.for_issue("octo-org/widgets", pull["number"])

    event = {**completed("The agent exited with code 2."), "outcome": "failed"}
    assert (await report(rt, oidc, client, run, event)).status_code == 202
    await drain(rt)

    [check] = github.check_runs(project[1])
    assert check["conclusion"] == "failure" and check["output"]["title"] == "QA run failed"
    assert not any("dispatch:report:" in c for c in github.bot_comments(project[1], pull["number"]))


async def test_without_checks_write_qa_still_runs(rt, github, oidc, client, project, deliver):
    # An installation that has not accepted the new `checks: write` permission yet.
    github.set_installation_permissions(project[0], checks="read")
    pull = github.add_pull(project[1], "fix-coupons")
    await deliver("issue_comment", on_pull(github, project, pull["number"], "/dispatch qa"))
    [run] = await runs.for_issue("octo-org/widgets", pull["number"])
    assert run.state.value == "dispatched" and run.check_run_id is None

    event = completed("Works.\nDISPATCH-VERDICT: pass")
    assert (await report(rt, oidc, client, run, event)).status_code == 202
    await drain(rt)

    assert github.check_runs(project[1]) == []
    assert (await runs.get(run.id)).state.value == "succeeded"
    assert any("dispatch:report:" in c for c in github.bot_comments(project[1], pull["number"]))


async def test_a_qa_rule_checks_the_linked_pull_request_or_says_why_not(github, project, deliver):
    from app.audit import log as audit
    from tests.agents.test_auto_dispatch import labeled

    github.add_file(
        project[1],
        ".github/dispatch.yml",
        "auto_dispatch:\n  - when: {labels: [status/in-review]}\n    mode: qa\n",
    )
    github.set_permission(project[1], "maria", "write")
    lonely = github.add_issue(project[1], "No PR yet", labels=["status/in-review"])
    await deliver("issues", labeled(github, project, lonely, "status/in-review"))
    assert github.dispatches(project[1]) == []
    [entry] = [e for e in await audit.entries() if e["action"] == "run.auto_dispatch"]
    assert entry["reason"] == NO_PULL.format(n=lonely["number"])

    issue = github.add_issue(project[1], "Coupons", labels=["status/in-review"])
    pull = github.add_pull(project[1], "fix", body=f"Closes #{issue['number']}")
    await deliver("issues", labeled(github, project, issue, "status/in-review"))
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    assert run.mode is Mode.QA and run.target_pull["number"] == pull["number"]
