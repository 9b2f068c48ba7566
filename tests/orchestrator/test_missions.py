"""Missions end to end, over HTTP: `/dispatch ask` as a webhook → Claude (the fake Messages API,
reached through the real `anthropic` SDK) reads issues and code through the read-only tools and
proposes → one proposal comment at the fake GitHub, nothing created → `/dispatch approve` →
issues created with their labels, a task list on the mission issue, investigations dispatched.
And what must not happen: acting without approval, approving a stale revision, creating twice,
spending past the daily budget."""

from __future__ import annotations

import pytest

from app.agents import runs
from app.issues import onboarding
from app.orchestrator import execution, store
from tests.conftest import claude_settings, make_settings
from tests.fakes.anthropic import tool_use
from tests.orchestrator.missions import (
    ask,
    mission_comment,
    proposal_comment,
    propose_input,
    revision_in,
    say,
    seed_project,
)

REPO = "octo-org/widgets"


@pytest.fixture
def settings(tmp_path, github, oidc, claude):
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, **claude_settings(claude))


@pytest.fixture
async def project(rt, github, repo):
    installation, repository = repo
    seeded = seed_project(github, repo)
    await onboarding.onboard(rt, installation, REPO)
    return seeded


CREATE_ISSUE = rf"^/repos/{REPO}/issues$"


def issue_count(github, repository) -> int:
    return len(github.calls_to("POST", CREATE_ISSUE))


def status_edits(github, comment_id: int) -> list[str]:
    return [
        call.body["body"]
        for call in github.calls_to("PATCH", f"/repos/{REPO}/issues/comments/{comment_id}")
    ]


def script_happy_path(claude, project) -> None:
    retries, docs = project["retries"]["number"], project["docs"]["number"]
    claude.reply(tool_use("search_issues", {"query": "webhook retries"}), usage=(2_000, 60))
    claude.reply(
        tool_use("read_issue", {"number": retries}), tool_use("file_tree", {}), usage=(3_000, 80)
    )
    claude.reply(tool_use("read_file", {"path": "app/webhooks.py"}), usage=(4_000, 50))
    claude.reply(tool_use("propose", propose_input(retries, docs)), usage=(5_000, 900))


async def test_ask_propose_approve_creates_and_dispatches(
    rt, github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]
    retries = project["retries"]["number"]
    script_happy_path(claude, project)

    # 1. Alice asks; Claude reads (search, an issue, the tree, a file) and proposes.
    asked = ask(github, repo, number, "make webhook delivery survive customer outages")
    await deliver("issue_comment", asked)

    assert "eyes" in github.reactions(repository, asked["comment"]["id"])
    status = mission_comment(github, repository, number)
    proposal = proposal_comment(github, repository, number)
    revision = revision_in(proposal)
    assert f"📋 Proposed: revision `{revision}`" in status
    assert (
        "| 1 | **new issue**: Retry webhook deliveries with exponential backoff | feature | p1 | investigate | — |"
        in proposal
    )
    assert (
        "| 2 | **new issue**: Document webhook retry behaviour | chore | p3 | no run | 1 |"
        in proposal
    )
    assert (
        f"| 3 | **#{retries}** Webhook deliveries retry in a tight loop | — | — | investigate | — |"
        in proposal
    )
    assert f"#{project['docs']['number']} Document webhook signatures (open)" in proposal
    assert f"`/dispatch approve {revision}`" in proposal
    # Planning created and dispatched nothing.
    assert issue_count(github, repository) == 0 and github.dispatches(repository) == []

    # What Claude was sent: Dispatch's rules first, the request fenced, real tool results.
    first, *_, last = claude.requests
    mission = await store.latest_for_issue(repository["id"], number)
    assert mission.nonce in first.body["system"] and "only way to finish" in first.body["system"]
    opening = first.messages[0]["content"]
    assert f"----- BEGIN UNTRUSTED REQUEST {mission.nonce} -----\nmake webhook delivery" in opening
    assert [tool["name"] for tool in first.body["tools"]] == [
        "search_issues",
        "list_issues",
        "read_issue",
        "read_runs",
        "fleet_status",
        "file_tree",
        "read_file",
        "propose",
    ]
    assert first.body["tool_choice"] == {"type": "auto"}
    assert "retries at once, forever" in last.results()[0]  # read_file answered from GitHub
    assert mission.rounds == 4 and mission.input_tokens == 14_000 and mission.output_tokens == 1_090
    assert mission.cost_usd == pytest.approx((14_000 * 3 + 1_090 * 15) / 1e6)

    # 2. Bob approves that revision: issues created, a task list, runs requested.
    await deliver(
        "issue_comment", say(github, repo, number, f"/dispatch approve {revision}", "bob")
    )

    created = [call.body for call in github.calls_to("POST", CREATE_ISSUE)]
    assert [c["title"] for c in created] == [
        "Retry webhook deliveries with exponential backoff",
        "Document webhook retry behaviour",
    ]
    assert created[0]["labels"] == ["type/feature", "priority/p1", "status/ready"]
    assert created[1]["labels"] == ["type/chore", "priority/p3", "status/ready"]
    backoff, docs_issue = (
        i["number"] for i in github.issues(repository) if i["user"]["login"] == github.bot.login
    )
    assert f"Depends on #{backoff}." in github.issue(repository, docs_issue)["body"]
    assert (
        f"Part of mission #{number} (revision `{revision}`)"
        in github.issue(repository, backoff)["body"]
    )
    body = github.issue(repository, number)["body"]
    assert f"- [ ] #{backoff} (investigate)" in body
    assert f"- [ ] #{docs_issue} (no run, after #{backoff})" in body
    assert f"- [ ] #{retries} (investigate)" in body
    dispatched = sorted(
        [
            (await runs.get(int(d["inputs"]["run_id"]))).issue_number
            for d in github.dispatches(repository)
        ]
    )
    assert dispatched == sorted([backoff, retries])
    assert {d["inputs"]["mode"] for d in github.dispatches(repository)} == {"investigate"}
    [run] = await runs.for_issue(REPO, backoff)
    assert run.trigger.value == "mission" and run.requested_by == "bob"
    assert "status/in-progress" in github.label_names(repository, backoff)

    await execution.report(rt, (await store.latest_proposal(mission.id)).id)
    status = mission_comment(github, repository, number)
    assert f"| 1 | #{backoff} (new) | run #{run.id} investigate: dispatched 🚀 |" in status
    assert f"| 2 | #{docs_issue} (new) | no run |" in status

    # 3. A retried approval creates nothing twice.
    before = (issue_count(github, repository), len(github.dispatches(repository)))
    again = say(github, repo, number, f"/dispatch approve {revision}", "bob")
    await deliver("issue_comment", again)
    assert (issue_count(github, repository), len(github.dispatches(repository))) == before
    assert "already approved by bob" in github.bot_comments(repository, number)[-1]
