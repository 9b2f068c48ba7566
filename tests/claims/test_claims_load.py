"""Claims hold under load, across processes: two `dispatch serve` processes (replicas against one
database) and fifty concurrent claimers over 200 ready issues. Every issue is claimed exactly
once at a time and finished exactly once; claimers that die holding a claim lose nothing — their
lease expires, the issue returns to the queue and another claimer finishes it."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter

import httpx
import pytest

from app.claims import expiry as claim_expiry
from app.db import engine
from app.issues import onboarding
from app.tokens import service as tokens
from tests.conftest import make_settings
from tests.harness import ServerProcess, settings_env

pytestmark = pytest.mark.slow

ISSUES = 200
CLAIMERS = 50
DYING = 5  # claimers that die holding their second claim
LEASE_SECONDS = 4.0


@pytest.fixture
def settings(tmp_path, github, oidc):
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        claim_lease_minutes=LEASE_SECONDS / 60,
        database_pool_size=30,
        log_level="WARNING",
    )


async def claimer(
    index: int, base: str, token: str, finished: list[int], abandoned: list[int]
) -> None:
    """Claims and finishes issues until none is ready; a dying claimer stops (no release, no
    heartbeat) right after its second claim, like a harness whose machine went away."""
    headers = {"authorization": f"Bearer {token}"}
    claimed = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        while True:
            got = await http.post("/api/claims", json={"agent": f"worker-{index}"})
            if got.status_code in (502, 503):  # GitHub slow (a loaded machine): "retry"
                await asyncio.sleep(0.5)
                continue
            if got.status_code == 204:
                return
            assert got.status_code == 201, got.text
            body = got.json()
            claimed += 1
            if index < DYING and claimed == 2:
                abandoned.append(body["issue"]["number"])
                return
            await asyncio.sleep(random.uniform(0, 0.05))  # the "work"
            released = await http.post(
                f"/api/claims/{body['claim']['id']}/release", json={"outcome": "done"}
            )
            assert released.status_code == 200, released.text
            finished.append(body["issue"]["number"])


async def test_fifty_claimers_on_two_replicas_claim_each_issue_once(
    rt, settings, database, github, repo, tmp_path
):
    installation, repository = repo
    for i in range(ISSUES):
        github.add_issue(
            repository,
            f"task {i}",
            labels=["status/ready", f"priority/p{i % 4}"],
            created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        )
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    token = await tokens.create("fleet", "agent", ["octo-org/widgets"])
    env = settings_env(settings, database)
    servers = [
        ServerProcess(env, args=("--no-worker",)).start(tmp_path / f"serve-{n}.log")
        for n in range(2)
    ]
    try:
        await asyncio.gather(*(server.wait_ready() for server in servers))
        finished: list[int] = []
        abandoned: list[int] = []
        await asyncio.gather(
            *(claimer(i, servers[i % 2].url, token, finished, abandoned) for i in range(CLAIMERS))
        )
        assert len(abandoned) == DYING
        assert len(finished) == ISSUES - DYING
        assert len(set(finished)) == len(finished), "an issue was finished twice"

        # The dead claimers' leases run out; the issues return to the queue.
        await asyncio.sleep(LEASE_SECONDS + 0.5)
        assert await claim_expiry.expire_due(rt) == DYING
        for number in abandoned:
            labels = github.label_names(repository, number)
            assert "status/ready" in labels and not any(n.startswith("agent/") for n in labels)
        rescued: list[int] = []
        await asyncio.gather(
            *(claimer(CLAIMERS + i, servers[i % 2].url, token, rescued, []) for i in range(10))
        )
        assert sorted(rescued) == sorted(abandoned)
    finally:
        for server in servers:
            server.stop()

    everything = finished + rescued
    assert sorted(everything) == sorted(i["number"] for i in _all(github, repository))
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT issue_number, state, outcome, claimed_at, ended_at FROM claim ORDER BY id"
        )
    per_issue = Counter(row["issue_number"] for row in rows)
    assert set(per_issue.values()) <= {1, 2}
    assert sorted(n for n, count in per_issue.items() if count == 2) == sorted(abandoned)
    assert Counter((row["state"], row["outcome"]) for row in rows) == {
        ("released", "done"): ISSUES,
        ("expired", "abandoned"): DYING,
    }
    # No two claims of one issue ever overlapped.
    by_issue: dict[int, list] = {}
    for row in rows:
        by_issue.setdefault(row["issue_number"], []).append(row)
    for held in by_issue.values():
        for earlier, later in itertools.pairwise(held):
            assert earlier["ended_at"] <= later["claimed_at"]
    for number in everything:
        labels = github.label_names(repository, number)
        assert "status/done" in labels and not any(n.startswith("agent/") for n in labels)


def _all(github, repository):
    return [github.issue(repository, n) for n in range(1, ISSUES + 1)]
