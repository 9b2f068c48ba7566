"""Dispatch as deployed at scale, on one machine: three `dispatch serve --no-worker` and two
`dispatch worker` processes on one database, signed webhooks (commands, labels, alerts) spread
over the web processes while one worker is killed with SIGKILL. At the fake GitHub the
installation's content writes never exceed GITHUB_CONTENT_PER_MINUTE in any rolling minute,
every command is answered once, every delivery is processed once, and no job is lost.

By default the webhooks go out over about ten seconds and the writes they cause over two budget
minutes. DISPATCH_REPLICAS_LOAD_SECONDS=180 keeps sending them (a webhook every 3 s, the alert
again every round) for that long: the same checks over a few minutes of load."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import engine
from app.installations import service as installations
from tests.agents.loop import comment
from tests.conftest import make_settings
from tests.fakes.github import FakeGitHub
from tests.harness import AGENT_WORKFLOW, ServerProcess, settings_env
from tests.issues.test_state import labeled
from tests.webhooks import signed

pytestmark = pytest.mark.slow

PER_MINUTE = 20
LOAD_SECONDS = float(os.environ.get("DISPATCH_REPLICAS_LOAD_SECONDS", "0"))
INTERVAL = 3.0 if LOAD_SECONDS else 0.5  # between webhooks
# A round: 8 commands and 4 label moves, interleaved, and the alert.
ROUNDS = max(1, math.ceil(LOAD_SECONDS / (12 * INTERVAL)))
COMMANDS = 8 * ROUNDS
LABELS = 4 * ROUNDS
# How long the writes take at PER_MINUTE (a command writes 👀 and its reply), and then some.
SETTLE_SECONDS = 200 + 60 * (2 * COMMANDS + LABELS) // PER_MINUTE
GRAFANA_TOKEN = "grafana-replicas-token"
ALERTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "alerts"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


class TimedFakeGitHub(FakeGitHub):
    """The fake GitHub, plus when each request reached it (monotonic seconds)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, str, str, int | None]] = []

    def _serve(self, method, raw_path, query_string, headers, raw):  # type: ignore[no-untyped-def]
        arrived = time.monotonic()
        answer = super()._serve(method, raw_path, query_string, headers, raw)
        with self.lock:
            call = self.calls[-1]
            self.arrivals.append((arrived, method, raw_path, call.installation_id))
        return answer

    def content_writes(self, installation: int) -> list[float]:
        """Arrival times of the installation's writes that GitHub counts as creating content:
        every write under /repos/ except workflow dispatches (judged here, not by the app)."""
        with self.lock:
            return sorted(
                at
                for at, method, path, inst in self.arrivals
                if inst == installation
                and method in WRITES
                and path.startswith("/repos/")
                and "/actions/" not in path
            )


def busiest_minute(times: list[float]) -> int:
    """The most writes in any rolling 60 seconds."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def fake() -> Any:
    server = TimedFakeGitHub()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def wait_until(predicate, timeout: float, every: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(every)
    return False


async def scalar(sql: str, *args: Any) -> Any:
    async with engine.connection() as connection:
        return await connection.fetchval(sql, *args)


@pytest.mark.timeout(120 + LOAD_SECONDS + SETTLE_SECONDS)
async def test_three_web_processes_and_two_workers_share_one_github_budget(
    fake, database, tmp_path
):
    installation = fake.add_installation("octo-org", "Organization")
    repository = fake.add_repo(installation, "octo-org/widgets")
    fake.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    repo = (installation, repository)

    settings = make_settings(
        tmp_path,
        fake,
        dispatch_alerts_repo="octo-org/widgets",
        grafana_webhook_token=GRAFANA_TOKEN,
        github_content_per_minute=PER_MINUTE,
        github_content_per_hour=1000,
        # A write may wait for the next minute's slots in place (GitHub's own limit here).
        github_max_retry_wait_seconds=90.0,
        delivery_retry_base_seconds=1.0,
        worker_concurrency=4,
        database_pool_size=6,
    )
    env = settings_env(settings, database)
    env.update(LOG_LEVEL="WARNING", JOB_HEARTBEAT_SECONDS="2")
    web = [
        ServerProcess(env, command="serve", args=("--no-worker",)).start(tmp_path / f"web-{i}.log")
        for i in range(3)
    ]
    workers = [
        ServerProcess(env, command="worker").start(tmp_path / f"worker-{i}.log") for i in range(2)
    ]
    processes = web + workers
    try:
        await asyncio.gather(*(p.wait_ready(timeout=90) for p in web))

        # The load: commands, label moves and alerts, spread over the web processes.
        commands = []
        for i in range(COMMANDS):
            fake.set_permission(repository, f"user{i}", "read")
            issue = fake.add_issue(repository, f"question {i}")
            payload = comment(fake, repo, issue["number"], "/dispatch help", user=f"user{i}")
            commands.append((issue["number"], payload["comment"]["id"], ("issue_comment", payload)))
        moves = []
        for i in range(LABELS):
            issue = fake.add_issue(repository, f"task {i}", labels=["status/ready"])
            fake.add_label_to_issue(repository, issue["number"], "status/in-progress")
            moves.append(
                (issue["number"], ("issues", labeled(fake, repo, issue, "status/in-progress")))
            )
        alert = json.loads((ALERTS / "grafana-firing.json").read_text())
        # Two commands, then a label move, and so on.
        pairs = itertools.zip_longest(
            [c[2] for c in commands[0::2]], [c[2] for c in commands[1::2]], [m[1] for m in moves]
        )
        schedule = [webhook for group in pairs for webhook in group if webhook]

        started = time.monotonic()
        targets = itertools.cycle(web)
        killed_at = None
        alerts = 0
        async with httpx.AsyncClient(timeout=30) as http:
            for n, (event, payload) in enumerate(schedule):
                body, headers = signed(fake.webhook_secret, event, payload)
                response = await http.post(
                    f"{next(targets).url}/webhooks/github", content=body, headers=headers
                )
                assert response.status_code == 202, response.text
                if n % 12 == 2:
                    alerts += 1
                    response = await http.post(
                        f"{next(targets).url}/webhooks/grafana",
                        json=alert,
                        headers={"authorization": f"Bearer {GRAFANA_TOKEN}"},
                    )
                    assert response.status_code == 202, response.text
                if n == len(schedule) // 2:
                    # Mid-load: jobs are running and waiting for slots in both workers.
                    await asyncio.sleep(2)
                    answered = await scalar(
                        "SELECT count(*) FROM command WHERE answered_at IS NOT NULL"
                    )
                    workers[0].kill()
                    killed_at = time.monotonic() - started
                await asyncio.sleep(INTERVAL)
        sent_for = time.monotonic() - started

        async def settled() -> bool:
            left = await scalar("SELECT count(*) FROM pgqueuer")
            unanswered = await scalar("SELECT count(*) FROM command WHERE answered_at IS NULL")
            return left == 0 and unanswered == 0

        done = await wait_until(settled, timeout=SETTLE_SECONDS)
        elapsed = time.monotonic() - started
        assert done, "\n".join(p.output()[-2000:] for p in processes)
    finally:
        for process in processes:
            process.stop()

    writes = fake.content_writes(installation)
    relative = [round(at - (writes[0] if writes else 0), 1) for at in writes]
    print(
        f"\n{len(writes)} content writes in {elapsed:.0f} s (webhooks sent over {sent_for:.0f} s, "
        f"worker killed at {killed_at:.0f} s): busiest rolling minute {busiest_minute(writes)} "
        f"(limit {PER_MINUTE}); writes at {relative}"
    )

    # The budget held across processes, and it mattered: more than a minute's worth was written.
    assert busiest_minute(writes) <= PER_MINUTE
    assert len(writes) > PER_MINUTE
    assert answered < COMMANDS, "the kill must land before every command was answered"

    # Every command answered once: one 👀 and one reply, whatever the killed worker had done.
    bot = fake.bot.login
    for number, comment_id, _ in commands:
        replies = [c for c in fake.comments(repository, number) if c["user"]["login"] == bot]
        assert len(replies) == 1, (number, replies)
        assert fake.reactions(repository, comment_id) == ["eyes"]
    async with engine.connection() as connection:
        states = dict(await connection.fetch("SELECT state, count(*) FROM command GROUP BY 1"))
        deliveries = dict(await connection.fetch("SELECT state, count(*) FROM delivery GROUP BY 1"))
        alert_issues = await connection.fetchval("SELECT count(*) FROM alert_error")
        failed_jobs = await connection.fetchval(
            "SELECT count(*) FROM pgqueuer_log WHERE status IN ('exception', 'failed')"
        )
        jobs, picked_again = await connection.fetchrow(
            "SELECT count(DISTINCT job_id), count(*) FILTER (WHERE picks > 1) FROM (SELECT "
            "job_id, count(*) FILTER (WHERE status = 'picked') AS picks FROM pgqueuer_log "
            "GROUP BY job_id) AS per_job"
        )
    print(f"{jobs} jobs, {picked_again} of them picked again (retried, or the killed worker's)")
    assert sum(states.values()) == COMMANDS, states
    assert deliveries == {"processed": COMMANDS + LABELS + alerts}  # and the Grafana alerts
    assert failed_jobs == 0

    # Labels: the newest status label won on every moved issue, once.
    for number, _ in moves:
        assert fake.label_names(repository, number) == ["status/in-progress"]

    # Alerts: one issue per fingerprint, however the jobs were shared and re-run.
    created = [
        c.body["title"]
        for c in fake.calls_to("POST", r"^/repos/octo-org/widgets/issues$")
        if c.status == 201
    ]
    assert len(created) == len(set(created)) == alert_issues > 0
    assert not any(re.search(r"Traceback", p.output()) for p in web)
