"""Auto-dispatch rules: an issue that comes to carry a rule's labels gets one run of its mode."""

from __future__ import annotations

from app.agents import runs
from app.db import engine
from tests.harness import AGENT_WORKFLOW
from tests.webhooks import for_repo

CONFIG = """
auto_dispatch:
  - when: {labels: [status/ready, type/bug]}
    mode: investigate
"""


def labeled(github, repo, issue, label, sender="maria"):
    installation, repository = repo
    payload = for_repo("issues/labeled", installation, repository)
    payload["issue"] = {**payload["issue"], **github.issue(repository, issue["number"])}
    payload["label"] = {**payload["label"], "name": label}
    payload["sender"] = {**payload["sender"], "login": sender}
    return payload


async def test_matching_labels_start_one_run(github, repo, deliver):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.add_file(repository, ".github/dispatch.yml", CONFIG)
    github.set_permission(repository, "maria", "write")
    issue = github.add_issue(repository, "Crash on save", labels=["type/bug"])

    await deliver("issues", labeled(github, repo, issue, "type/bug"))
    assert github.dispatches(repository) == []  # one of two labels

    github.add_label_to_issue(repository, issue["number"], "status/ready")
    await deliver("issues", labeled(github, repo, issue, "status/ready"))
    await deliver("issues", labeled(github, repo, issue, "status/ready"))  # a replayed event

    [dispatch] = github.dispatches(repository)
    assert dispatch["inputs"]["mode"] == "investigate"
    [run] = await runs.for_issue("octo-org/widgets", issue["number"])
    assert run.requested_by == "maria" and run.notes.startswith("auto-dispatched")


async def test_an_invalid_config_is_audited(rt, github, repo):
    from app.issues import repo_config

    installation, repository = repo
    github.add_file(repository, ".github/dispatch.yml", "auto_dispatch: [{mode: fly}]\n")

    loaded = await repo_config.refresh(rt, installation, "octo-org/widgets")

    assert loaded.error and "auto_dispatch" in loaded.error
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT outcome, reason FROM audit_log WHERE action = 'config.invalid'"
        )
    assert row["outcome"] == "refused" and "auto_dispatch" in row["reason"]
