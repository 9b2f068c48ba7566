"""The other ways to ask: the `dispatch/mission` label (by someone with the permission `ask`
needs; the issue's title and body are the request) and `dispatch ask` on the command line (it
opens the mission issue). And what `/dispatch ask` itself refuses."""

from __future__ import annotations

from app.audit import log as audit
from app.db import engine
from app.installations import service as installations
from app.issues import repo_config
from app.orchestrator import missions
from app.orchestrator.missions import MissionState, Source
from tests.fakes.anthropic import tool_use
from tests.harness import dispatch_cli, drain, settings_env
from tests.orchestrator.missions import (
    ask,
    mission_comment,
    proposal_comment,
    propose_input,
)
from tests.webhooks import for_repo

REPO = "octo-org/widgets"


def labeled(github, repo, number: int, sender: str) -> dict:
    installation, repository = repo
    github.add_label_to_issue(repository, number, "dispatch/mission")
    payload = for_repo("issues/labeled", installation, repository)
    payload["issue"] = github.issue(repository, number)
    payload["label"] = {**payload["label"], "name": "dispatch/mission"}
    payload["sender"] = {**payload["sender"], "login": sender, "type": "User"}
    return payload


async def test_the_mission_label_starts_a_mission_from_the_issue(
    github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )

    await deliver("issues", labeled(github, repo, number, "bob"))

    assert "eyes" in github.issue_reactions(repository, number)
    mission = await missions.latest_for_issue(repository["id"], number)
    assert mission.source is Source.LABEL and mission.requested_by == "bob"
    assert mission.request.startswith("Make webhook delivery resilient\n\nOutages at customers")
    assert "📋 Proposed" in mission_comment(github, repository, number)
    opening = claude.requests[0].messages[0]["content"]
    assert "Outages at customers should not hurt us or them." in opening

    # The label again (or GitHub's `opened` for the same label) starts nothing new.
    await deliver("issues", labeled(github, repo, number, "bob"))
    assert claude.attempts == 1


async def test_the_label_from_someone_without_permission_starts_nothing(
    github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]

    await deliver("issues", labeled(github, repo, number, "eve"))

    assert await missions.latest_for_issue(repository["id"], number) is None
    assert github.bot_comments(repository, number) == []  # strangers get no reply
    assert claude.attempts == 0
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT outcome, reason FROM audit_log WHERE action = 'mission.label'"
        )
    assert row["outcome"] == audit.Outcome.REFUSED and "eve has read permission" in row["reason"]

    github.set_permission(repository, "tom", "triage")
    await deliver("issues", labeled(github, repo, number, "tom"))
    [reply] = github.bot_comments(repository, number)
    assert "tom has triage permission; a mission needs write" in reply


async def test_ask_needs_a_request_and_write_permission(github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]

    await deliver("issue_comment", ask(github, repo, number, "", user="alice"))
    assert "`/dispatch ask` needs what you want" in github.bot_comments(repository, number)[-1]

    await deliver("issue_comment", ask(github, repo, number, "do everything", user="eve"))
    assert "needs **write** permission" in github.bot_comments(repository, number)[-1]
    assert claude.attempts == 0


async def test_a_repository_may_let_triagers_ask(rt, github, repo, claude, deliver, project):
    _, repository = repo
    number = project["mission"]["number"]
    github.set_permission(repository, "tom", "triage")

    # By default a mission needs write: a triager is refused and Claude is not called.
    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks", user="tom"))
    assert (
        "@tom `/dispatch ask` needs **write** permission on octo-org/widgets; @tom has **triage**"
        in github.bot_comments(repository, number)[-1]
    )
    assert (
        claude.attempts == 0 and await missions.latest_for_issue(repository["id"], number) is None
    )

    github.add_file(repository, ".github/dispatch.yml", "permissions:\n  ask: triage\n")
    await repo_config.refresh(rt, repo[0], REPO)
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )
    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks", user="tom"))

    mission = await missions.latest_for_issue(repository["id"], number)
    assert mission is not None, github.bot_comments(repository, number)[-1]
    assert mission.requested_by == "tom" and mission.source is Source.COMMAND
    assert "📋 Proposed" in mission_comment(github, repository, number)

    # The label follows the same setting.
    other = github.add_issue(repository, "Alert on failing deliveries", "Page someone.", user="tom")
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )
    await deliver("issues", labeled(github, repo, other["number"], "tom"))
    labelled = await missions.latest_for_issue(repository["id"], other["number"])
    assert labelled is not None and labelled.source is Source.LABEL
    assert "📋 Proposed" in mission_comment(github, repository, other["number"])


async def test_a_second_ask_while_a_proposal_waits_is_refused(
    github, repo, claude, deliver, project
):
    _, repository = repo
    number = project["mission"]["number"]
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )
    await deliver("issue_comment", ask(github, repo, number, "resilient webhooks"))

    await deliver("issue_comment", ask(github, repo, number, "something else"))

    reply = github.bot_comments(repository, number)[-1]
    assert "mission #1 is already proposed on this issue" in reply
    assert "`/dispatch reject <reason>` plans it again" in reply


async def test_dispatch_ask_on_the_command_line_opens_the_mission_issue(
    rt, settings, database, github, repo, claude, project
):
    installation, repository = repo
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )

    code, out, err = await dispatch_cli(
        settings_env(settings, database),
        "ask",
        "--repo",
        REPO,
        "--by",
        "alice",
        "Make webhook delivery survive outages",
        "and tell customers what we retry.",
    )

    assert code == 0, err
    [opened] = [i for i in github.issues(repository) if i["user"]["login"] == github.bot.login]
    assert f"opened {REPO}#{opened['number']}" in out
    assert (
        opened["title"] == "Make webhook delivery survive outages and tell customers what we retry."
    )
    assert [label["name"] for label in opened["labels"]] == ["dispatch/mission"]
    assert "Asked by @alice with `dispatch ask`" in opened["body"]
    mission = await missions.latest_for_issue(repository["id"], opened["number"])
    assert mission.source is Source.CLI and mission.state is MissionState.PLANNING

    await drain(rt)  # what a running `dispatch serve` does

    assert "mission-proposal" in proposal_comment(github, repository, opened["number"])


async def test_dispatch_ask_without_a_key_says_what_to_set(settings, database, github, repo):
    env = settings_env(settings, database)
    env.pop("ANTHROPIC_API_KEY")

    code, _, err = await dispatch_cli(env, "ask", "--repo", REPO, "anything")

    assert code == 2 and "missions need ANTHROPIC_API_KEY" in err
    assert github.issues(repo[1]) == []


async def test_an_mcp_client_asks_and_only_a_proposal_comes_back(
    rt, client, github, repo, claude, project
):
    from app.tokens import service as tokens
    from tests.mcp.test_mcp_tools import connect, data, text

    installation, repository = repo
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    reader = await tokens.create("reader", "read", [REPO])
    planner = await tokens.create("planner", "dispatch", [REPO])
    claude.reply(
        tool_use("propose", propose_input(project["retries"]["number"], project["docs"]["number"]))
    )
    before = len(github.issues(repository))

    async with connect(client, reader) as mcp:
        refused = await mcp.call_tool("plan_mission", {"repository": REPO, "request": "Retries"})
        assert refused.is_error and "`dispatch` scope" in text(refused)
    async with connect(client, planner) as mcp:
        elsewhere = await mcp.call_tool(
            "plan_mission", {"repository": "octo-org/other", "request": "Retries"}
        )
        assert elsewhere.is_error and "not allowed on octo-org/other" in text(elsewhere)
        opened = data(
            await mcp.call_tool(
                "plan_mission",
                {"repository": REPO, "request": "Make webhook delivery survive outages"},
            )
        )
    assert len(github.issues(repository)) == before + 1  # nothing but the mission issue

    issue = github.issue(repository, opened["number"])
    assert issue["title"] == "Make webhook delivery survive outages"
    assert "through Dispatch's MCP server" in issue["body"]
    mission = await missions.latest_for_issue(repository["id"], opened["number"])
    assert mission.source is Source.MCP and mission.id == opened["mission"]

    await drain(rt)

    assert "mission-proposal" in proposal_comment(github, repository, opened["number"])
    assert len(github.issues(repository)) == before + 1  # approval is a person's, on the issue
    async with engine.connection() as connection:
        actions = await connection.fetch(
            "SELECT actor, outcome FROM audit_log WHERE action = 'mcp.plan_mission' ORDER BY id"
        )
    assert [(a["actor"], a["outcome"]) for a in actions] == [
        ("token:reader", "refused"),
        ("token:planner", "refused"),
        ("token:planner", "done"),
    ]
