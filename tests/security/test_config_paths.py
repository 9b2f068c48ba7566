"""M2: workflow names and refs from `.github/dispatch.yml` cannot redirect the App's requests to
another repository or endpoint; every path segment of every GitHub call is quoted."""

from __future__ import annotations

import pytest

from app.agents import runs
from app.github import rest
from app.issues.repo_config import parse, valid_ref
from tests.commands.test_commands import comment_payload
from tests.harness import AGENT_WORKFLOW


@pytest.mark.parametrize(
    "workflow",
    ["../../other-repo/dispatches#", "a/b.yml", "x.yml?ref=main", "agent.yml#", "", "x.txt"],
)
def test_workflow_names_that_are_not_files_are_refused(workflow):
    with pytest.raises(ValueError, match="workflow is a file name"):
        parse(f"workflows: {{default: {workflow!r}}}")


@pytest.mark.parametrize(
    "ref", ["../main", "main..x", "a b", "x:y", "refs/heads/", "-x", "a\\b", "x@{1}", "x.lock"]
)
def test_refs_git_would_refuse_are_refused(ref):
    assert not valid_ref(ref)
    with pytest.raises(ValueError, match="not a valid branch name"):
        parse(f"workflows: {{ref: {ref!r}}}")


def test_ordinary_names_pass():
    config = parse("workflows: {default: dispatch-agent.yml, implement: '1234', ref: release/2.x}")
    assert config.workflows.for_mode("implement") == "1234"
    assert valid_ref("dispatch/run-12-fix-the-thing")


async def test_a_hostile_workflow_name_stays_one_path_segment(rt, github, repo):
    installation, repository = repo
    client = rt.github.installation(installation)

    with pytest.raises(rest.WorkflowNotDispatchable):
        await rest.dispatch_workflow(
            client, repository["full_name"], "../../../repos/octo-org/other/issues", "main", {}
        )

    [call] = github.calls_to("POST", r"/actions/workflows/")
    assert call.path.startswith(f"/repos/{repository['full_name']}/actions/workflows/..%2F")
    assert call.path.endswith("%2Fissues/dispatches")


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("workflows: {default: '../../other-repo/actions/workflows/agent.yml'}", "workflow is a"),
        ("workflows: {investigate: 'agent.yml?ref=evil#'}", "workflow is a"),
        ("workflows: {ref: '../../../other-repo/git/refs/heads/main'}", "not a valid branch"),
    ],
)
async def test_a_hostile_config_dispatches_nothing_anywhere_and_says_why(
    github, repo, deliver, config, says
):
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    other = github.add_repo(installation, "octo-org/other-repo")
    github.add_workflow(other, "agent.yml", AGENT_WORKFLOW)
    github.add_file(repository, ".github/dispatch.yml", config + "\n")
    github.set_permission(repository, "alice", "write")
    issue = github.add_issue(repository, "Crash on save", labels=["status/ready"])
    payload, comment_id = comment_payload(github, repo, issue, "/dispatch investigate")

    await deliver("issue_comment", payload)

    assert github.dispatches(repository) == [] and github.dispatches(other) == []
    assert github.calls_to("POST", r"/dispatches$") == []
    assert await runs.for_issue(repository["full_name"], issue["number"]) == []
    [reply] = github.bot_comments(repository, issue["number"])
    assert "Commands are paused in this repository until `.github/dispatch.yml` is fixed" in reply
    assert says in reply
    assert "confused" in github.reactions(repository, comment_id)
