"""M2: workflow names and refs from `.github/dispatch.yml` cannot redirect the App's requests to
another repository or endpoint; every path segment of every GitHub call is quoted."""

from __future__ import annotations

import pytest

from app.github import rest
from app.issues.repo_config import parse, valid_ref


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
