"""Dispatch through GitHub's bad days, over HTTP: signed webhooks and agent reports go in while
GitHub fails in one way — a 5xx burst longer than every retry, a secondary rate limit, the
primary limit used up until a reset minutes ahead, requests that time out after GitHub acted on
them — and the effects are counted at the fake GitHub once it recovers.

Every flow is in each run: command replies (help, status, an unknown verb, two commands in one
comment, a permission refusal), a workflow dispatch with its 🚀 and status comment, a plan
comment from an agent's report, the label set of a newly installed repository, a status label
made exclusive inside a delivery, an issue for a new production error, and the close of an
issue whose fix was verified. Time passes on the app's clock (`fast_forward`), never in sleeps.

After recovery: every command answered exactly once (one 👀 per comment, one reply or 😕 per
command), no comment posted twice (every comment Dispatch posts carries its hidden marker, and
each marker appears once), no delivery lost, labels consistent. While GitHub is down, commands
keep trying with backoff (for hours, not 30 s) and `dispatch deliveries --failed` shows them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from app.agents import runs
from app.db import engine
from app.installations import service as installations
from app.issues.labels import LABEL_SET
from app.remediation import fixes
from app.tokens import service as tokens
from tests.agents.loop import comment
from tests.fakes.github import GitHubError
from tests.faults.conftest import FIGURES, GRAFANA_TOKEN
from tests.harness import AGENT_WORKFLOW, dispatch_cli, drain, fast_forward, settings_env
from tests.webhooks import FIXTURES, for_repo, signed

pytestmark = pytest.mark.slow

MARKER = re.compile(r"<!-- dispatch:(\S+) -->")
ALERT = json.loads((FIXTURES / "alerts" / "grafana-firing.json").read_text())


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Any], Any]
    # How far the app's clock moves in each round of the outage, and how GitHub recovers.
    rounds: tuple[timedelta, ...]
    clears: bool = True
    # The wait GitHub asked for: nothing may be retried sooner.
    asked: timedelta | None = None


FAULTS = [
    Fault(
        "5xx burst",
        lambda gh: gh.fail_next(None, 502),
        # Far more attempts than DELIVERY_MAX_ATTEMPTS, over three hours.
        rounds=(timedelta(minutes=30),) * 5,
    ),
    Fault(
        "secondary limit",
        lambda gh: gh.rate_limit_next(None, retry_after=180),
        rounds=(timedelta(minutes=1), timedelta(minutes=2)),
        asked=timedelta(minutes=3),
    ),
    Fault(
        "primary limit",
        lambda gh: gh.exhaust_primary_limit(reset_in=300),
        rounds=(timedelta(minutes=2), timedelta(minutes=2)),
        clears=False,  # it lifts by itself at the reset, on the app's clock
        asked=timedelta(minutes=5),
    ),
    Fault(
        "timeouts",
        # GitHub acts on every write, but its answer never comes back.
        lambda gh: gh.timeout_next(None, applied=True),
        rounds=(timedelta(minutes=30),) * 2,
    ),
]


@dataclass
class Scenario:
    rt: Any
    github: Any
    client: Any
    clock: Any
    installation: int
    repository: dict[str, Any]
    guids: list[str] = field(default_factory=list)
    comments: list[tuple[int, int]] = field(default_factory=list)  # (issue, comment id)
    issues: dict[str, int] = field(default_factory=dict)
    planning_run: Any = None
    fix_attempt: int = 0
    gadgets: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.repository["full_name"])

    async def webhook(self, event: str, payload: dict[str, Any]) -> str:
        body, headers = signed(self.github.webhook_secret, event, payload)
        response = await self.client.post("/webhooks/github", content=body, headers=headers)
        assert response.status_code == 202, response.text
        self.guids.append(headers["x-github-delivery"])
        return headers["x-github-delivery"]

    async def command(self, issue: str, body: str, user: str = "alice") -> None:
        number = self.issues[issue]
        payload = comment(self.github, (self.installation, self.repository), number, body, user)
        self.comments.append((number, payload["comment"]["id"]))
        await self.webhook("issue_comment", payload)

    async def alert(self, message: str) -> None:
        payload = {**ALERT, "alerts": [json.loads(json.dumps(ALERT["alerts"][0]))]}
        payload["alerts"][0]["labels"]["msg"] = message
        response = await self.client.post(
            "/webhooks/grafana", json=payload, headers={"authorization": f"Bearer {GRAFANA_TOKEN}"}
        )
        assert response.status_code == 202, response.text
        self.guids.append(response.json()["delivery"])


async def prepare(rt, github, client, clock, repo) -> Scenario:
    """While GitHub is healthy: a repository with the agent workflow, a run that will report a
    plan during the outage, and an alert issue whose fix merged 48 hours ago."""
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    github.set_permission(repository, "bob", "read")
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    s = Scenario(rt, github, client, clock, installation, repository)
    for key, labels in [
        ("help", ["status/ready"]),
        ("status", ["status/ready", "priority/p2"]),
        ("typo", []),
        ("two", ["status/backlog"]),
        ("denied", ["status/ready"]),
        ("investigate", ["status/ready"]),
        ("plan", ["status/ready"]),
        ("relabel", ["status/backlog", "status/ready"]),
    ]:
        s.issues[key] = github.add_issue(repository, f"Issue {key}", labels=labels)["number"]

    await s.command("plan", "/dispatch investigate")
    await s.alert("Charge failed for cus_Fx81Kq2: card declined")
    await drain(rt)
    [s.planning_run] = await runs.for_issue(s.name, s.issues["plan"])
    assert s.planning_run.workflow_run_id is not None
    async with engine.connection() as connection:
        fingerprint, fix_issue = await connection.fetchrow(
            "SELECT fingerprint, issue_number FROM alert_error"
        )
    s.issues["fix"] = fix_issue
    github.push_commit(repository, message="Merge fix")
    pull = github.add_pull(repository, "fix-charge", body=f"Fixes #{fix_issue}")
    merged = for_repo("pull_request/closed", installation, repository)
    merged["pull_request"].update(
        number=pull["number"],
        merged=True,
        # The verification window (48 h from the merge) ends a few seconds into the outage.
        merged_at=(clock.now() - timedelta(hours=48) + timedelta(seconds=20)).isoformat(),
        merge_commit_sha=pull["head"]["sha"],
        body=f"Fixes #{fix_issue}",
        head={
            **merged["pull_request"]["head"],
            "ref": "fix-charge",
            "repo": {**merged["pull_request"]["head"]["repo"], "id": repository["id"]},
        },
    )
    await s.webhook("pull_request", merged)
    await drain(rt)
    attempt = await fixes.monitoring(fingerprint)
    assert attempt is not None and "status/verifying" in github.label_names(repository, fix_issue)
    s.fix_attempt = attempt.id

    other = github.add_installation("gizmo-org", "Organization")
    s.gadgets = github.add_repo(other, "gizmo-org/gadgets")
    return s


async def during_the_outage(s: Scenario) -> None:
    """What people, agents, GitHub and alerting send while GitHub fails."""
    await s.command("help", "/dispatch help")
    await s.command("status", "/dispatch status")
    await s.command("typo", "/dispatch stauts")
    await s.command("two", "/dispatch help\n/dispatch status")
    await s.command("denied", "/dispatch investigate", user="bob")
    await s.command("investigate", "/dispatch investigate please look")
    await s.command("help", "Thanks! And\n/dispatch status")

    token = await tokens.create("faults-agent", "agent", [])
    plan = {"type": "plan", "body": "## Summary\nCache the search index.\n## Files\n- search.py"}
    response = await s.client.post(
        f"/api/runs/{s.planning_run.id}/events",
        json=plan,
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 202, response.text

    installed = for_repo("installation/created", s.github.installation_of(s.gadgets), s.gadgets)
    installed["repositories"] = [
        {k: s.gadgets[k] for k in ("id", "node_id", "name", "full_name", "private")}
    ]
    await s.webhook("installation", installed)

    # A maintainer adds a second status label: the delivery itself removes the first.
    payload = for_repo("issues/labeled", s.installation, s.repository)
    number = s.issues["relabel"]
    payload["issue"] = {
        **payload["issue"],
        "number": number,
        "labels": [{"name": n} for n in s.github.label_names(s.repository, number)],
    }
    payload["label"] = {**payload["label"], "name": "status/ready"}
    await s.webhook("issues", payload)

    await s.alert("Refund failed for cus_Zq92Lm1: processor timeout")


async def scheduled_checks(rt) -> None:
    """The fix-verification schedule, as the worker runs it (a failure waits for its next pass)."""
    with contextlib.suppress(Exception):
        await fixes.verify_due(rt)


async def pending_jobs() -> int:
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
            )
        )


async def settle(s: Scenario) -> None:
    for _ in range(12):
        await fast_forward(s.clock, minutes=20)
        await drain(s.rt)
        await scheduled_checks(s.rt)
        if await pending_jobs() == 0:
            return
    raise AssertionError("jobs still pending long after GitHub recovered")


def bot_comments(github, repository) -> list[tuple[int, str]]:
    numbers = [issue["number"] for issue in _issues(github, repository)]
    return [(n, body) for n in numbers for body in github.bot_comments(repository, n)]


def _issues(github, repository) -> list[dict[str, Any]]:
    """Every issue (and pull request) of a repository on the fake, by number."""
    found = []
    for number in range(1, 200):
        try:
            found.append(github.issue(repository, number))
        except GitHubError:
            break
    return found


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_every_flow_recovers_answered_once(
    rt, settings, database, github, client, clock, repo, fault
):
    s = await prepare(rt, github, client, clock, repo)
    before = len(github.calls)

    fault.inject(github)
    await during_the_outage(s)
    await drain(s.rt)
    first_refusals = sum(1 for c in github.calls[before:] if c.status >= 400 or c.status == 0)
    assert first_refusals > 0
    if fault.asked is not None:
        # Nothing is tried again before GitHub said it may be.
        calls = len(github.calls)
        await fast_forward(clock, seconds=fault.asked.total_seconds() - 30)
        await drain(rt)
        assert len(github.calls) == calls
    for step in fault.rounds:
        await fast_forward(clock, seconds=step.total_seconds())
        await drain(rt)
        await scheduled_checks(rt)

    async with engine.connection() as connection:
        unsettled = await connection.fetchval(
            "SELECT count(*) FROM command WHERE answered_at IS NULL"
        )
        failed = await connection.fetchval("SELECT count(*) FROM command WHERE state = 'failed'")
    if fault.name == "5xx burst":
        # Hours into the outage: nothing given up, everything still waiting to be answered,
        # and the operator sees why.
        assert failed == 0 and unsettled == 8
        async with engine.connection() as connection:
            attempts = await connection.fetchval(
                "SELECT max(attempts) FROM pgqueuer WHERE entrypoint = 'commands.run'"
            )
        assert attempts > s.rt.settings.delivery_max_attempts
        listing = (
            await dispatch_cli(settings_env(settings, database), "deliveries", "--failed")
        ).ok()
        assert listing.count("answering") == 8 and "/dispatch stauts" in listing
        assert "retrying" in listing  # the delivery that edits labels itself
        assert "502" in listing
    refused = sum(1 for c in github.calls[before:] if c.status >= 400 or c.status == 0)

    if fault.clears:
        github.clear_faults()
    await settle(s)

    figures = await outcome(s)
    figures.update(fault=fault.name, **{"requests refused": refused})
    FIGURES.append(figures)
    assert figures["commands sent"] == 8
    assert figures["answered once"] == figures["commands sent"], figures
    assert figures["answered twice"] == 0, figures
    assert figures["duplicate comments"] == 0, figures
    assert figures["lost deliveries"] == 0, figures
    if fault.name != "timeouts":
        # Only an answer lost on its way back makes Dispatch send a 👀 GitHub already has.
        assert figures["👀 sent again"] == 0, figures
    await labels_consistent(s)


async def outcome(s: Scenario) -> dict[str, Any]:
    github = s.github
    comments = bot_comments(github, s.repository) + bot_comments(github, s.gadgets)
    markers = Counter(m.group(1) for _, body in comments if (m := MARKER.search(body)))
    unmarked = [body[:80] for _, body in comments if not MARKER.search(body)]
    assert not unmarked, f"comments without a marker: {unmarked}"

    async with engine.connection() as connection:
        commands = await connection.fetch(
            "SELECT c.id, c.state, c.reply, c.answered_at, r.id AS run "
            "FROM command c LEFT JOIN run r ON r.command_id = c.id ORDER BY c.id"
        )
        states = dict(
            await connection.fetch("SELECT guid, state FROM delivery WHERE guid = ANY($1)", s.guids)
        )
    sent = [c for c in commands if c["run"] != s.planning_run.id]
    answers = {
        c["id"]: markers[f"command:{c['id']}"] + (markers[f"run:{c['run']}"] if c["run"] else 0)
        for c in sent
    }
    for c in sent:
        assert c["answered_at"] is not None and c["state"] in ("done", "refused"), dict(c)

    # One 👀 per comment (and 😕 once on each refused one); a 👀 GitHub already had (200) was
    # sent twice.
    eyes_again = 0
    for number, comment_id in s.comments:
        reactions = Counter(github.reactions(s.repository, comment_id))
        assert reactions["eyes"] == 1, (number, reactions)
        assert reactions["confused"] <= 1
        posts = github.calls_to("POST", f"/issues/comments/{comment_id}/reactions")
        eyes_again += sum(1 for c in posts if c.body == {"content": "eyes"} and c.status == 200)

    return {
        "commands sent": len(sent),
        "answered once": sum(1 for n in answers.values() if n == 1),
        "answered twice": sum(1 for n in answers.values() if n > 1),
        "duplicate comments": sum(n - 1 for n in markers.values()),
        "👀 sent again": eyes_again,
        "deliveries sent": len(s.guids),
        "lost deliveries": sum(1 for guid in s.guids if states.get(guid) != "processed"),
    }


async def labels_consistent(s: Scenario) -> None:
    github, repository = s.github, s.repository
    for issue in _issues(github, repository):
        labels = github.label_names(repository, issue["number"])
        assert sum(label.startswith("status/") for label in labels) <= 1, (issue["number"], labels)
        assert sum(label.startswith("priority/") for label in labels) <= 1, labels

    # The dispatched run: one workflow dispatch, in progress, its agent's label, 🚀 on the ask.
    [run] = await runs.for_issue(s.name, s.issues["investigate"])
    sent = [d for d in github.dispatches(repository) if d["inputs"]["run_id"] == str(run.id)]
    assert len(sent) == 1 and run.state.value == "dispatched"
    labels = github.label_names(repository, s.issues["investigate"])
    assert "status/in-progress" in labels and "agent/claude" in labels
    # The refused investigation dispatched nothing.
    assert await runs.for_issue(s.name, s.issues["denied"]) == []

    # The plan: posted once, proposed.
    plans = [b for _, b in bot_comments(github, repository) if "dispatch:plan:" in b]
    assert len(plans) == 1 and "Cache the search index" in plans[0]
    assert "plan/proposed" in github.label_names(repository, s.issues["plan"])

    # The label made exclusive by the delivery.
    assert github.label_names(repository, s.issues["relabel"]) == ["status/ready"]

    # The new production error: one issue.
    refunds = [i for i in _issues(github, repository) if "Refund failed" in i["title"]]
    assert len(refunds) == 1
    assert {"type/bug", "status/ready"} <= set(github.label_names(repository, refunds[0]["number"]))

    # The verified fix: closed, done, said once.
    fixed = github.issue(repository, s.issues["fix"])
    assert fixed["state"] == "closed"
    assert "status/done" in github.label_names(repository, s.issues["fix"])
    async with engine.connection() as connection:
        state = await connection.fetchval(
            "SELECT state FROM fix_attempt WHERE id = $1", s.fix_attempt
        )
    assert state == "verified"

    # The newly installed repository: the whole label set, each label once.
    names = [label["name"] for label in github.repo_labels(s.gadgets)]
    assert len(names) == len(set(names))
    assert {spec.name for spec in LABEL_SET} <= set(names)
