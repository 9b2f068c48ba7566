"""Every mode of the agent workflow, rehearsed end to end against a running Dispatch and the fake
GitHub: the workflow file's own jobs and steps run in order as a runner would, with a fake
`claude` replaying a recorded session, and what a user sees is checked where they see it (the
live stream, comments and labels, the pushed branch, the pull request)."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.agents import runs
from app.stream.links import viewer_token
from tests.agents.loop import SSEReader, comment
from tests.rehearsal.conftest import ANTHROPIC_KEY, REPOSITORY, eventually
from tests.rehearsal.tools import Agent, bash, edit, multi_edit, write
from tests.remediation.conftest import ALERTS
from tests.remediation.conftest import TOKEN as GRAFANA_TOKEN

# Whole workflow runs against real processes: minutes, not the suite's 120 s, on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PLAN = (
    "## Summary\nCoupons apply twice.\n## Files\nsrc/cart.py\n## Risks\nLow.\n"
    "## Stop conditions\nNone.\n## Test strategy\nA unit test."
)


async def test_investigate_then_implement_then_qa_on_its_pull_request(rt, stage, client):
    github = stage.github
    issue = github.add_issue(REPOSITORY, "Coupons apply twice", "SAVE10 twice", ["status/ready"])
    number = issue["number"]

    await stage.command(number, "/dispatch investigate look at coupons")
    run = await stage.run_of(await stage.dispatched())
    viewer = SSEReader(
        f"{client.base_url}/runs/{run.id}/stream?token={viewer_token(rt, run.id, run.viewer_key)}"
    )
    viewer.start()
    await asyncio.wait_for(viewer.opened.wait(), 30)

    rehearsed = await stage.rehearse(Agent.answering(PLAN, stream="tool_session_parts.ndjson"))
    await asyncio.wait_for(viewer.ended.wait(), 60)
    await viewer.stop()

    assert {j: r.result for j, r in rehearsed.run.jobs.items()} == {
        "prepare": "success",
        "agent": "success",
        "publish": "success",
    }, rehearsed.run.log
    streamed = "".join(data for _, data in viewer.logs())
    assert "→ Bash(ls -la)\n" in streamed and "■ done: success, 2 turns" in streamed
    finished = await runs.get(run.id)
    assert (finished.state.value, finished.outcome) == ("succeeded", "investigation_complete")

    def plan_proposed() -> None:
        plans = [c for c in github.bot_comments(REPOSITORY, number) if "📋 Plan from run" in c]
        assert len(plans) == 1 and "Coupons apply twice." in plans[0]
        assert "plan/proposed" in github.label_names(REPOSITORY, number)

    await eventually(plan_proposed)
    # The agent got Dispatch's prompt, and nothing to write with.
    claude = rehearsed.claude
    assert claude["prompt"].startswith(f"# Dispatch run {run.id}: investigate in {REPOSITORY}")
    assert "look at coupons" in claude["prompt"]
    assert claude["env"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert "@anthropic-ai/claude-code@" in rehearsed.npm

    # Review, then implementation: the agent's session edits the checkout through its tools.
    await stage.command(number, "/dispatch approve", user="bob")
    await stage.labelled(number, "plan/approved")
    await stage.command(number, "/dispatch implement")
    implement = await stage.run_of(await stage.dispatched())
    assert (implement.mode.value, implement.issue_number) == ("implement", number)
    main = stage.git_server.refs(REPOSITORY)["refs/heads/main"]
    rehearsed = await stage.rehearse(
        Agent.answering(
            "Fixed the double coupon and added a test.",
            edit("src/cart.py", "return sum(items)", "return sum(set(items))"),
            write("tests/test_coupons.py", "def test_once():\n    assert True\n"),
            multi_edit("README.md", ("# widgets", "# widgets\n\nCoupons apply once.")),
            stream="tool_session_parts.ndjson",
        )
    )
    assert rehearsed.run.conclusion == "success", rehearsed.run.log
    assert [t["name"] for t in rehearsed.claude["tools"]] == ["Bash", "Edit", "Write", "MultiEdit"]

    refs = stage.git_server.refs(REPOSITORY)
    [branch] = [r for r in refs if r.startswith(f"refs/heads/dispatch/run-{implement.id}")]
    head = refs[branch]
    assert refs["refs/heads/main"] == main  # nothing else moved
    assert stage.git_server.changed_paths(REPOSITORY, main, head) == [
        "README.md",
        "src/cart.py",
        "tests/test_coupons.py",
    ]
    assert stage.git_server.show(REPOSITORY, head, "src/cart.py") == (
        "def total(items):\n    return sum(set(items))\n"
    )
    assert stage.git_server.show(REPOSITORY, head, "README.md") == (
        "# widgets\n\nCoupons apply once.\n"
    )
    [pull] = rehearsed.pulls
    assert pull["head"]["ref"] == branch.removeprefix("refs/heads/")
    assert pull["head"]["sha"] == head and pull["base"]["ref"] == "main"
    assert pull["body"].startswith(f"Fixes #{number}")
    assert pull["user"]["login"] == "github-actions[bot]"
    done = await runs.get(implement.id)
    assert (done.state.value, done.outcome, done.pr_number) == (
        "succeeded",
        "completed",
        pull["number"],
    )
    await stage.labelled(number, "status/in-review")

    # QA on the pull request the run opened: the agent works on its head, the verdict is a check.
    await qa_comment(stage, pull, "/dispatch qa try SAVE10 twice")
    qa = await stage.run_of(await stage.dispatched())
    assert (qa.mode.value, qa.issue_number, qa.target_pull["head_sha"]) == (
        "qa",
        pull["number"],
        head,
    )
    verdict = "SAVE10 applies once now.\n\nDISPATCH-VERDICT: pass"
    rehearsed = await stage.rehearse(
        Agent.answering(verdict, bash("git rev-parse HEAD && git status -s && cat src/cart.py"))
    )
    assert jobs(rehearsed) == {"prepare": "success", "agent": "success", "publish": "success"}
    [shell] = rehearsed.claude["shell"]
    assert shell["out"].splitlines()[0] == head
    assert "sum(set(items))" in shell["out"]
    assert (await runs.get(qa.id)).state.value == "succeeded"

    def checked() -> None:
        [check] = github.check_runs(REPOSITORY)
        assert (check["name"], check["head_sha"]) == ("dispatch/qa", head)
        assert (check["status"], check["conclusion"]) == ("completed", "success")
        [posted] = [
            c for c in github.bot_comments(REPOSITORY, pull["number"]) if "dispatch:report:" in c
        ]
        assert "**Verdict: pass**" in posted and "SAVE10 applies once now." in posted

    await eventually(checked)
    assert rehearsed.pulls == [] and len(github.pulls(REPOSITORY)) == 1
    assert stage.git_server.refs(REPOSITORY)[branch] == head  # QA pushed nothing


async def qa_comment(stage, pull: dict, body: str) -> None:
    """A writer's `/dispatch qa` comment on a pull request."""
    payload = comment(stage.github, stage.repo, pull["number"], body)
    payload["issue"]["pull_request"] = {"url": pull["url"], "html_url": pull["html_url"]}
    await stage.deliver("issue_comment", payload)


def jobs(rehearsed) -> dict[str, str]:
    return {name: job.result for name, job in rehearsed.run.jobs.items()}


async def start(stage, title: str, command: str):
    issue = stage.github.add_issue(REPOSITORY, title, "Details in the body.", ["status/ready"])
    await stage.command(issue["number"], command)
    return issue["number"], await stage.run_of(await stage.dispatched())


async def status_comment(stage, number: int, run_id: int, says: str) -> str:
    """The run's status comment on the issue, once it says `says`."""

    def check() -> str:
        found = [
            c
            for c in stage.github.bot_comments(REPOSITORY, number)
            if f"dispatch:run:{run_id}" in c and says in c
        ]
        assert found, f"no status comment of run {run_id} says {says!r}"
        return found[0]

    found: str = await eventually(check)
    return found


def reports(stage, number: int) -> list[str]:
    return [c for c in stage.github.bot_comments(REPOSITORY, number) if "dispatch:report:" in c]


async def report(stage, number: int) -> str:
    def check() -> str:
        [posted] = reports(stage, number)
        return posted

    found: str = await eventually(check)
    return found


async def test_research_posts_its_whole_report(stage):
    report_text = "Use the official SDK: …\n\n## Sources\n- https://github.com/stripe/stripe-python"
    command = "/dispatch research which payment SDK should we use"
    number, run = await start(stage, "Which SDK?", command)
    rehearsed = await stage.rehearse(Agent.answering(report_text))
    assert jobs(rehearsed) == {"prepare": "success", "agent": "success", "publish": "success"}
    done = await runs.get(run.id)
    assert (done.state.value, done.outcome, done.report) == ("succeeded", "completed", report_text)
    await status_comment(stage, number, run.id, "Use the official SDK")
    posted = await report(stage, number)
    assert "stripe/stripe-python" in posted and "no sources" not in posted
    # These modes publish nothing: no checkout in the publish job, no branch, no PR.
    assert rehearsed.run.jobs["publish"].step("Commit").outcome == "skipped"
    assert rehearsed.pulls == []
    assert list(stage.git_server.refs(REPOSITORY)) == ["refs/heads/main"]


async def test_qa_of_a_persons_pull_request_checks_out_its_head_and_reports_a_check(stage):
    # A person's pull request: a branch with a change the default branch does not have.
    head = stage.git_server.push_branch(
        REPOSITORY, "fix-coupons", {"src/cart.py": "def total(items):\n    return 42\n"}
    )
    pull = stage.github.add_pull(
        REPOSITORY, "fix-coupons", body="Fixes #1", title="Fix coupons", head_sha=head
    )
    main = stage.git_server.refs(REPOSITORY)["refs/heads/main"]
    assert head != main
    await qa_comment(stage, pull, "/dispatch qa try SAVE10")
    run = await stage.run_of(await stage.dispatched())
    assert run.target_pull["head_sha"] == head

    verdict = "All 12 checkout tests pass.\n\nDISPATCH-VERDICT: pass"
    agent = Agent.answering(verdict, bash("git rev-parse HEAD && cat src/cart.py && git status -s"))
    rehearsed = await stage.rehearse(agent)

    assert jobs(rehearsed) == {"prepare": "success", "agent": "success", "publish": "success"}
    agent_job = rehearsed.run.jobs["agent"]
    # The workflow ran from the dispatch ref, and the agent worked on the pull request's head.
    assert agent_job.step("Confirm the pull request").outcome == "success"
    [shell] = rehearsed.claude["shell"]
    assert shell["out"].splitlines()[:2] == [head, "def total(items):"]
    assert "return 42" in shell["out"]
    assert f"`{head}`" in rehearsed.claude["prompt"]
    done = await runs.get(run.id)
    assert (done.state.value, done.report) == ("succeeded", verdict)

    def checked() -> None:
        [check] = stage.github.check_runs(REPOSITORY)
        assert (check["name"], check["head_sha"]) == ("dispatch/qa", head)
        assert (check["status"], check["conclusion"]) == ("completed", "success")

    await eventually(checked)
    posted = await report(stage, pull["number"])
    assert "**Verdict: pass**" in posted and "All 12 checkout tests pass." in posted
    assert rehearsed.pulls == []  # QA publishes nothing


async def test_other_modes_work_on_the_dispatch_ref(stage):
    number, run = await start(stage, "Where is the total?", "/dispatch investigate")
    rehearsed = await stage.rehearse(Agent.answering(PLAN, bash("git rev-parse HEAD")))
    assert rehearsed.run.conclusion == "success", rehearsed.run.log
    assert rehearsed.run.jobs["agent"].step("Confirm the pull request").outcome == "skipped"
    main = stage.git_server.refs(REPOSITORY)["refs/heads/main"]
    assert rehearsed.claude["shell"][0]["out"].strip() == main


async def test_an_alert_is_investigated_with_its_error_context(stage, client):
    payload = json.loads((ALERTS / "grafana-firing.json").read_text())
    payload["alerts"] = [payload["alerts"][0]]
    response = await client.post(
        "/webhooks/grafana", json=payload, headers={"authorization": f"Bearer {GRAFANA_TOKEN}"}
    )
    assert response.status_code == 202
    dispatch = await stage.dispatched()
    assert dispatch["inputs"]["mode"] == "auto_investigate"

    rehearsed = await stage.rehearse(Agent.answering(PLAN))
    assert rehearsed.run.conclusion == "success", rehearsed.run.log
    prompt = rehearsed.claude["prompt"]
    context = prompt.split("----- BEGIN UNTRUSTED ERROR CONTEXT ", 1)[1]
    assert "card declined" in context and '"event_count"' in context
    assert "Error: card_declined" in context  # the stack trace
    run = await stage.run_of(dispatch)
    assert (run.state.value, run.outcome) == ("succeeded", "investigation_complete")

    def planned() -> None:
        comments = stage.github.bot_comments(REPOSITORY, run.issue_number)
        assert any("📋 Plan from run" in c for c in comments)

    await eventually(planned)


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (Agent(exit=2, result={"is_error": True, "subtype": None}), "The agent exited with code 2"),
        (
            Agent(
                exit=1,
                result={
                    "is_error": True,
                    "subtype": "error_max_budget_usd",
                    "total_cost_usd": 5.02,
                    "result": "",
                },
            ),
            "The agent stopped at its cost cap ($5.02 spent).",
        ),
    ],
)
async def test_a_failing_agent_fails_the_run_with_its_reason(stage, agent, reason):
    number, run = await start(stage, "Flaky checkout", "/dispatch investigate")
    rehearsed = await stage.rehearse(agent)
    assert jobs(rehearsed) == {"prepare": "success", "agent": "failure", "publish": "success"}
    done = await runs.get(run.id)
    assert done.state.value == "failed" and done.summary.startswith(reason)
    await status_comment(stage, number, run.id, reason)
    assert not any("📋 Plan from run" in c for c in stage.github.bot_comments(REPOSITORY, number))


async def test_an_implementation_that_changes_nothing_or_is_blocked_publishes_nothing(stage):
    for agent, state, outcome in (
        (Agent.answering("The code already does this."), "succeeded", "no_changes_needed"),
        (
            Agent.answering(
                "Half done.\nDISPATCH-BLOCKED missing_env: STRIPE_KEY is not set",
                write("src/cart.py", "partial\n"),
            ),
            "blocked",
            "blocked",
        ),
    ):
        number = await stage.approved(f"Implement {outcome}")
        await stage.command(number, "/dispatch implement")
        implement = await stage.run_of(await stage.dispatched())
        assert implement.mode.value == "implement"
        rehearsed = await stage.rehearse(agent)
        assert rehearsed.run.conclusion == "success", rehearsed.run.log
        done = await runs.get(implement.id)
        assert (done.state.value, done.outcome, done.pr_number) == (state, outcome, None)
        assert rehearsed.pulls == []
    assert list(stage.git_server.refs(REPOSITORY)) == ["refs/heads/main"]
    blocked = await runs.get(implement.id)
    assert blocked.blocker_category == "missing_env"


async def test_a_workflow_that_never_reports_is_closed_by_its_workflow_run(stage, workflow_doc):
    # Dispatch serves a reporter the workflow does not pin: the first job stops before anything
    # runs or reports, and only GitHub's `workflow_run` webhook tells Dispatch.
    workflow_doc["env"]["DISPATCH_REPORTER_SHA256"] = "0" * 64
    number, run = await start(stage, "Never reports", "/dispatch investigate")
    rehearsed = await stage.rehearse(Agent.answering(PLAN), workflow=workflow_doc)
    assert jobs(rehearsed) == {"prepare": "failure", "agent": "skipped", "publish": "skipped"}
    log = rehearsed.run.jobs["prepare"].log
    assert "Dispatch reporter mismatch" in log and "/agent/dispatch-agent.yml" in log
    assert rehearsed.claude == {}  # the agent never started
    done = await runs.get(run.id)
    assert done.state.value == "failed"
    assert "without the agent reporting completion" in done.summary
    await status_comment(stage, number, run.id, "without the agent reporting completion")
    await stage.labelled(number, "status/ready")
