"""Moving an installation: `dispatch db dump` of one database, `dispatch db restore` into a fresh
embedded server, and `dispatch serve` on it answers with the same issues, runs, deliveries and
audit trail and customers (and the same API token and portal link work)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from app.agents import lifecycle
from app.agents.events import Completed
from app.audit import log as audit
from app.db import dump
from app.installations import service as installations
from app.intake import journal
from app.issues import onboarding
from app.portal import customers
from app.stream import chunks
from app.stream.links import viewer_token
from app.tokens import service as tokens
from tests.agents.loop import SSEReader, create_run
from tests.harness import ServerProcess, dispatch_cli, settings_env
from tests.webhooks import example

pytestmark = pytest.mark.slow


def test_passwords_stay_off_the_command_line():
    target, env = dump.without_password("postgresql://app:s%40cret@db.example:5432/dispatch")

    assert target == "postgresql://app@db.example:5432/dispatch"
    assert env["PGPASSWORD"] == "s@cret"
    assert dump.client_program("pg_dump").endswith("pginstall/bin/pg_dump")


async def seed(rt, github, repo) -> dict:
    installation, repository = repo
    github.add_issue(repository, "ready bug", labels=["status/ready", "type/bug", "customer/acme"])
    github.add_issue(repository, "backlog item", labels=["status/backlog"])
    await onboarding.onboard(rt, installation, "octo-org/widgets")
    await audit.record(actor="alice", action="label.add", target="octo-org/widgets#1")
    body = example("issues/opened", installation_id=installation)
    await journal.record(
        journal.Inbound(
            "guid-moved-1", "issues", "opened", installation, "octo-org/widgets", json.dumps(body)
        ),
        handled=False,
    )
    # A private repository: the run's viewer link outlives the run (a public one's would not).
    await installations.upsert_installation({"id": installation, "account": {"login": "o"}})
    await installations.add_repositories(installation, [{**repository, "private": True}])
    run = await create_run(github, repo, state="running", workflow_run_id=11)
    await chunks.append(run.id, 1, "thinking about it\n")
    await chunks.append(run.id, 2, "done\n")
    done = Completed(outcome="completed", summary="moved well", cost_usd=0.5, turns=3)
    await lifecycle.apply(rt, run, done)
    _, portal_token = await customers.create(
        installation, "Acme Corp", slug="acme", color="#0366d6"
    )
    return {
        "run": run.id,
        "key": run.viewer_key,
        "token": await tokens.create("ops", "admin", []),
        "portal": portal_token,
    }


async def listing(base: str, token: str, portal_token: str) -> tuple[list, list, list, list]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        issues = (await http.get("/api/issues", headers=headers)).json()["issues"]
        trail = (await http.get("/api/audit", headers=headers)).json()
        known = (await http.get("/api/customers", headers=headers)).json()
        board = (await http.get("/api/portal/acme", params={"token": portal_token})).json()
    return (
        sorted((i["number"], i["title"], i["status"]) for i in issues),
        sorted((e["actor"], e["action"], e["target"]) for e in trail["entries"]),
        sorted((c["slug"], c["name"], c["color"]) for c in known["customers"]),
        [(c["status"], [i["title"] for i in c["issues"]]) for c in board["columns"]],
    )


async def test_a_dump_restored_into_a_fresh_embedded_server_serves_the_same_data(
    rt, settings, database, github, repo, client, tmp_path
):
    seeded = await seed(rt, github, repo)
    before = await listing(str(client.base_url), seeded["token"], seeded["portal"])
    source = settings_env(settings, database)
    archive = tmp_path / "dispatch.dump"

    code, out, err = await dispatch_cli(source, "db", "dump", str(archive))
    assert code == 0, err
    assert "dumped the database to" in out and archive.stat().st_size > 10_000

    moved = {k: v for k, v in source.items() if k != "DATABASE_URL"}
    moved["DISPATCH_DATA_DIR"] = str(tmp_path / "moved")
    try:
        code, out, err = await dispatch_cli(moved, "db", "restore", str(archive))
        assert code == 0, err
        code, _, err = await dispatch_cli(moved, "db", "restore", str(archive))
        assert code == 1 and "restore into an empty database" in err
        code, out, _ = await dispatch_cli(moved, "deliveries")
        assert "guid-moved-1" in out and "issues.opened" in out

        server = ServerProcess(moved, args=("--no-worker",)).start(tmp_path / "serve.log")
        try:
            await server.wait_ready(timeout=60)
            after = await listing(server.url, seeded["token"], seeded["portal"])
            token = viewer_token(rt, seeded["run"], seeded["key"])
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                page = await http.get(f"/runs/{seeded['run']}", params={"token": token})
            viewer = SSEReader(f"{server.url}/runs/{seeded['run']}/stream?token={token}").start()
            await asyncio.wait_for(viewer.ended.wait(), 20)
        finally:
            server.stop()

        assert after == before and len(after[0]) == 2 and after[1]
        assert after[2] == [("acme", "Acme Corp", "#0366d6")]
        assert ("status/ready", ["ready bug"]) in after[3]
        assert page.status_code == 200 and "succeeded" in page.text
        assert viewer.logs() == [(1, "thinking about it\n"), (2, "done\n")]
    finally:
        _stop_embedded(tmp_path / "moved" / "postgres")


def _stop_embedded(pgdata: Path) -> None:
    """Make sure the moved installation's embedded server is gone (its owner stops it on exit)."""
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_file.exists():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
