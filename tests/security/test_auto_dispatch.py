"""M6: auto-dispatch rules start runs only for people with the permission the mode needs, and
an `implement` rule waits for an approved plan."""

from __future__ import annotations

from app.audit import log as audit
from tests.agents.test_auto_dispatch import labeled
from tests.harness import AGENT_WORKFLOW
from tests.webhooks import for_repo

CONFIG = """
auto_dispatch:
  - when: {labels: [status/ready, type/bug]}
    mode: investigate
  - when: {labels: [status/ready, type/feature]}
    mode: implement
"""


def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.add_file(repository, ".github/dispatch.yml", CONFIG)
    return repository


async def refusals() -> list[str]:
    return [e["reason"] for e in await audit.entries() if e["action"] == "run.auto_dispatch"]


async def test_a_stranger_opening_an_issue_with_the_rules_labels_starts_nothing(
    github, repo, deliver
):
    installation, repository = repo
    project(github, repo)
    issue = github.add_issue(
        repository, "Please run", labels=["status/ready", "type/bug"], user="stranger"
    )
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, issue["number"])}
    payload["sender"] = {**payload["sender"], "login": "stranger"}

    await deliver("issues", payload)

    assert github.dispatches(repository) == []
    assert await refusals() == ["stranger has read permission; a investigate run needs write"]


async def test_a_triager_labelling_starts_nothing_unless_the_config_allows_it(
    github, repo, deliver
):
    repository = project(github, repo)
    github.set_permission(repository, "tina", "triage")
    issue = github.add_issue(repository, "Crash", labels=["status/ready", "type/bug"])

    await deliver("issues", labeled(github, repo, issue, "status/ready", sender="tina"))
    assert github.dispatches(repository) == []

    github.add_file(
        repository,
        ".github/dispatch.yml",
        CONFIG + "permissions:\n  investigate: triage\n",
    )
    await deliver("push", _config_push(github, repo))
    await deliver("issues", labeled(github, repo, issue, "status/ready", sender="tina"))
    assert len(github.dispatches(repository)) == 1


async def test_an_implement_rule_waits_for_an_approved_plan(github, repo, deliver):
    repository = project(github, repo)
    github.set_permission(repository, "maria", "write")
    issue = github.add_issue(repository, "Add export", labels=["status/ready", "type/feature"])

    await deliver("issues", labeled(github, repo, issue, "type/feature"))

    assert github.dispatches(repository) == []
    assert await refusals() == ["implementation waits for an approved plan"]


async def test_a_writer_adding_an_unrelated_label_does_not_start_a_strangers_rule(
    github, repo, deliver
):
    # A stranger opens an issue carrying a rule's labels: refused (see above). A writer then
    # adds a label that is no rule's: that starts nothing under the writer's permission.
    installation, repository = repo
    project(github, repo)
    github.set_permission(repository, "maria", "write")
    issue = github.add_issue(
        repository, "Please run", labels=["status/ready", "type/bug"], user="stranger"
    )
    payload = for_repo("issues/opened", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, issue["number"])}
    payload["sender"] = {**payload["sender"], "login": "stranger"}
    await deliver("issues", payload)
    github.add_label_to_issue(repository, issue["number"], "needs-info")

    await deliver("issues", labeled(github, repo, issue, "needs-info", sender="maria"))

    assert github.dispatches(repository) == []
    # Adding one of the rule's own labels is the writer's decision to run it.
    github.remove_label_from_issue(repository, issue["number"], "type/bug")
    github.add_label_to_issue(repository, issue["number"], "type/bug")
    await deliver("issues", labeled(github, repo, issue, "type/bug", sender="maria"))
    [dispatched] = github.dispatches(repository)
    assert dispatched["inputs"]["mode"] == "investigate"


def _config_push(github, repo):
    installation, repository = repo
    payload = for_repo("push/payload", installation, repository)
    branch = repository.get("default_branch") or "main"
    payload["ref"] = f"refs/heads/{branch}"
    payload["repository"] = {**payload["repository"], "default_branch": branch}
    payload["commits"] = [{"added": [], "modified": [".github/dispatch.yml"], "removed": []}]
    payload["head_commit"] = payload["commits"][0]
    return payload
