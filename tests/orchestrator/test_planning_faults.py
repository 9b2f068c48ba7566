"""When planning goes wrong: Anthropic overloaded (529), rate limited (429, with `retry-after`),
failing (500), dropping the connection or unreachable — the mission waits with backoff and its
status comment says so, and after the last attempt says why and how to retry; no key; a model
that sends invalid tool input, an invalid proposal, no proposal within the rounds, or only text.
Never a partial proposal, never anything created."""

from __future__ import annotations

import asyncio

import pytest

from app.orchestrator import missions
from app.orchestrator.missions import MissionState
from tests.conftest import claude_settings, make_settings
from tests.fakes.anthropic import text, tool_use
from tests.harness import drain, free_port
from tests.orchestrator.missions import (
    ask,
    mission_comment,
    propose_input,
)

REPO = "octo-org/widgets"


@pytest.fixture
def overrides():
    return {}


@pytest.fixture
def settings(tmp_path, github, oidc, claude, overrides):
    values = {**claude_settings(claude), "orchestrator_attempts": 3, **overrides}
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, **values)


def status_history(github, repository, number) -> list[str]:
    final = mission_comment(github, repository, number)
    comment_id = next(c["id"] for c in github.comments(repository, number) if c["body"] == final)
    posted = [
        call.body["body"]
        for call in github.calls_to("POST", f"/repos/{REPO}/issues/{number}/comments")
        if "<!-- dispatch:mission:" in call.body["body"]
    ]
    edits = [
        call.body["body"]
        for call in github.calls_to("PATCH", f"/repos/{REPO}/issues/comments/{comment_id}")
    ]
    return posted + edits


async def mission_of(repository, number):
    return await missions.latest_for_issue(repository["id"], number)


def proposal(project) -> dict:
    return propose_input(project["retries"]["number"], project["docs"]["number"])


async def test_overloaded_then_recovers_and_says_it_waited(github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(tool_use("search_issues", {"query": "webhook"}))
    claude.overloaded(2)
    claude.reply(tool_use("propose", proposal(project)))

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    history = status_history(github, repository, number)
    waits = [h for h in history if "⏳ Waiting" in h]
    assert len(waits) == 2
    assert (
        "⏳ Waiting: Anthropic is overloaded (529). Dispatch tries again in 0 s (attempt 2 of 3)."
        in waits[0]
    )
    assert "(attempt 3 of 3)" in waits[1]
    assert "📋 Proposed" in history[-1]
    mission = await mission_of(repository, number)
    assert mission.state is MissionState.PROPOSED and mission.rounds == 2
    # The retried round carried the conversation on: one search, then the proposal.
    assert [c["name"] for c in claude.requests[-1].tool_calls()] == ["search_issues"]


async def test_a_rate_limit_retry_runs_when_due(rt, github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    claude.rate_limited(retry_after=1)
    claude.reply(tool_use("propose", proposal(project)))
    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))
    assert (await mission_of(repository, number)).state is MissionState.WAITING
    assert (
        "Anthropic's rate limit for this API key was reached (429). Dispatch tries again in 1 s"
        in mission_comment(github, repository, number)
    )

    await asyncio.sleep(1.2)
    await drain(rt)

    assert (await mission_of(repository, number)).state is MissionState.PROPOSED
    assert "📋 Proposed" in mission_comment(github, repository, number)


async def test_server_errors_and_dropped_connections_are_retried(
    github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.server_error()
    claude.drop()
    claude.reply(tool_use("propose", proposal(project)))

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    history = status_history(github, repository, number)
    assert any("Anthropic answered 500" in h for h in history)
    assert any("Anthropic's API could not be reached" in h for h in history)
    assert (await mission_of(repository, number)).state is MissionState.PROPOSED


async def test_after_the_last_attempt_the_mission_says_why_and_how_to_retry(
    github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.overloaded(3)

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert (
        "❌ The mission failed: Anthropic is overloaded (529), and still after 3 attempts."
        in status
    )
    assert "To try again: `/dispatch ask <what you want>` on this issue" in status
    assert (await mission_of(repository, number)).state is MissionState.FAILED
    assert claude.attempts == 3


@pytest.mark.parametrize("overrides", [{"anthropic_base_url": f"http://127.0.0.1:{free_port()}"}])
async def test_an_unreachable_anthropic_fails_after_the_attempts(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert "Anthropic's API could not be reached, and still after 3 attempts" in status


@pytest.mark.parametrize("overrides", [{"anthropic_api_key": None}])
async def test_without_an_api_key_ask_says_how_to_configure_it(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]
    asked = ask(github, repo, number, "resilient webhooks")

    await deliver("issue_comment", asked)

    reply = github.bot_comments(repository, number)[-1]
    assert "> `/dispatch ask resilient webhooks`" in reply
    assert "sets `ANTHROPIC_API_KEY` in Dispatch's environment" in reply
    assert "confused" in github.reactions(repository, asked["comment"]["id"])
    assert claude.attempts == 0 and await mission_of(repository, number) is None


@pytest.mark.parametrize("overrides", [{"orchestrator_model": "claude-nonexistent-1"}])
async def test_an_unknown_model_fails_with_the_setting_to_fix(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    assert "does not offer the model `claude-nonexistent-1` (404): check `ORCHESTRATOR_MODEL`" in (
        mission_comment(github, repository, number)
    )
    assert claude.take_violations() == ["404 not_found_error: model: claude-nonexistent-1"]


async def test_invalid_tool_input_fails_clearly(github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(tool_use("read_issue", {"number": "three", "verbose": True}))

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert "❌ The mission failed: Claude sent invalid input to `read_issue`" in status
    assert "number" in status and "verbose" in status


async def test_an_invalid_proposal_is_refused_whole(github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    bad = proposal(project)
    bad["items"][0]["depends_on"] = ["nowhere"]
    bad["items"][2]["number"] = 999
    bad["items"][1]["priority"] = "urgent"
    claude.reply(tool_use("propose", bad))

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert "❌ The mission failed: Dispatch refused Claude's proposal" in status
    assert "priority" in status
    assert not [c for c in github.bot_comments(repository, number) if "mission-proposal" in c]

    # And what the schema cannot say: a dependency on no item, an issue that does not exist.
    claude.reply(tool_use("propose", {**proposal(project), "items": [bad["items"][0]]}))
    other = github.add_issue(repository, "Another mission", "…", user="alice")
    await deliver("issue_comment", ask(github, repo, other["number"], "resilient webhooks"))
    assert "depends on 'nowhere', which is no item" in mission_comment(
        github, repository, other["number"]
    )
    third = github.add_issue(repository, "A third mission", "…", user="alice")
    missing = proposal(project)
    missing["items"][2]["number"] = 999
    claude.reply(tool_use("propose", missing))
    await deliver("issue_comment", ask(github, repo, third["number"], "resilient webhooks"))
    assert "\\#999 does not exist in octo-org/widgets" in mission_comment(
        github, repository, third["number"]
    )


@pytest.mark.parametrize("overrides", [{"orchestrator_max_tool_rounds": 3}])
async def test_no_proposal_within_the_rounds_fails(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(tool_use("search_issues", {"query": "webhook"}))
    claude.reply(text("Let me think about this some more."))
    claude.reply(tool_use("list_issues", {"status": "ready"}))

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert (
        "Claude did not call `propose` within 3 rounds (`ORCHESTRATOR_MAX_TOOL_ROUNDS`)" in status
    )
    assert claude.attempts == 3
    # It was told: how many rounds were left, and after its text-only answer, to propose.
    second, third = claude.requests[1], claude.requests[2]
    assert second.messages[-1]["content"][-1]["text"] == (
        "Dispatch: 2 rounds left; call `propose` before they run out."
    )
    assert "nothing happens until you call `propose`" in third.messages[-1]["content"]
    assert "this is your last round" in third.messages[-1]["content"]


async def test_the_planning_picks_up_after_a_crash_without_paying_twice(
    github, repo, claude, deliver, project
):
    """The job dies after Claude's answer was stored (here: GitHub refuses the tree once); the
    retried job runs that answer's tool instead of asking Claude again."""
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(tool_use("file_tree", {"prefix": "app"}))
    claude.reply(tool_use("propose", proposal(project)))
    github.fail_next(1, 422, method="GET", path=rf"^/repos/{REPO}/git/trees/")

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    mission = await mission_of(repository, number)
    assert mission.state is MissionState.PROPOSED and mission.rounds == 2
    assert claude.attempts == 2
    assert len(github.calls_to("GET", rf"^/repos/{REPO}/git/trees/")) == 2
    assert "app/webhooks.py (" in claude.requests[-1].results()[0]


@pytest.mark.parametrize("overrides", [{"orchestrator_max_tokens": 1024}])
async def test_an_answer_cut_at_max_tokens_fails_and_says_how_to_retry(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(tool_use("search_issues", {"query": "webhook"}))
    claude.reply(text("Here is my plan: first, back off between"), stop_reason="max_tokens")
    claude.reply(tool_use("propose", proposal(project)))  # never asked for

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert (
        "❌ The mission failed: Claude's answer was cut at `ORCHESTRATOR_MAX_TOKENS` (1024) "
        "before it finished; raise it." in status
    )
    assert "Nothing was created or dispatched (2 rounds" in status
    assert "To try again: `/dispatch ask <what you want>` on this issue" in status
    assert not [c for c in github.bot_comments(repository, number) if "mission-proposal" in c]
    assert github.calls_to("POST", rf"^/repos/{REPO}/issues$") == []
    assert github.dispatches(repository) == []
    mission = await mission_of(repository, number)
    assert mission.state is MissionState.FAILED and mission.rounds == 2
    # The setting is what Claude was asked to stay within, and the cut answer ended the planning.
    assert {r.body["max_tokens"] for r in claude.requests} == {1024}
    assert claude.attempts == 2


@pytest.mark.parametrize("overrides", [{"orchestrator_max_cost_usd": 0.05}])
async def test_the_per_mission_cost_cap_stops_planning(
    github, repo, claude, deliver, project, overrides
):
    _, repository = repo
    number = project["mission"]["number"]
    # $3/Mtok in: 20,000 tokens is $0.06, past the $0.05 cap after one round.
    claude.reply(tool_use("search_issues", {"query": "webhook"}), usage=(20_000, 0))
    claude.reply(tool_use("propose", proposal(project)))  # never asked for

    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    status = mission_comment(github, repository, number)
    assert (
        "❌ The mission failed: it reached its cost cap ($0.05, `ORCHESTRATOR_MAX_COST_USD`) "
        "before Claude proposed anything." in status
    )
    assert "Nothing was created or dispatched (1 round, $0.0600 spent)" in status
    assert "To try again: `/dispatch ask <what you want>` on this issue" in status
    assert not [c for c in github.bot_comments(repository, number) if "mission-proposal" in c]
    assert github.calls_to("POST", rf"^/repos/{REPO}/issues$") == []
    mission = await mission_of(repository, number)
    assert mission.state is MissionState.FAILED and mission.rounds == 1
    assert mission.cost_usd == pytest.approx(0.06)
    assert claude.attempts == 1  # no second call past the cap
