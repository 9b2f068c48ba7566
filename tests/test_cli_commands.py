"""The operator's CLI against a real database: deliveries and replay, tokens, sync."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest

from app.db import engine
from app.installations import service as installations
from app.intake import journal
from tests.harness import dispatch_cli, settings_env

pytestmark = pytest.mark.slow


async def test_deliveries_list_failed_and_replay(rt, settings, database):
    env = settings_env(settings, database)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "issues", "opened", 1, "o/r", '{"action": "opened"}'), handled=True
    )

    code, out, _ = await dispatch_cli(env, "deliveries")
    assert code == 0 and guid in out and "issues.opened" in out and "queued" in out

    code, out, _ = await dispatch_cli(env, "deliveries", "--failed")
    assert code == 0 and "no failed deliveries" in out

    code, out, _ = await dispatch_cli(env, "deliveries", "replay", guid)
    assert code == 0 and f"queued {guid}" in out
    code, _, err = await dispatch_cli(env, "deliveries", "replay", "nope")
    assert code == 1 and "no delivery nope" in err


async def test_tokens_are_printed_once_and_listed_without_the_secret(rt, settings, database):
    env = settings_env(settings, database)

    code, token, _ = await dispatch_cli(
        env, "token", "create", "--name", "ci", "--scope", "agent", "--repo", "octo-org/widgets"
    )
    assert code == 0 and token.strip().startswith("dsp_")
    code, listing, _ = await dispatch_cli(env, "token", "list")
    assert "ci" in listing and "octo-org/widgets" in listing and token.strip() not in listing
    code, _, err = await dispatch_cli(env, "token", "create", "--name", "x", "--scope", "agent")
    assert code == 2 and "--all-repos" in err  # no silent "every repository"
    code, _, err = await dispatch_cli(
        env, "token", "create", "--name", "ci", "--scope", "agent", "--all-repos"
    )
    assert code == 1 and "exists" in err
    code, out, _ = await dispatch_cli(env, "token", "revoke", "ci")
    assert code == 0 and "revoked ci" in out


async def test_sync_caches_a_repository(rt, settings, database, github, repo):
    installation, repository = repo
    for i in range(3):
        github.add_issue(repository, f"issue {i}")
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    env = settings_env(settings, database)

    code, out, err = await dispatch_cli(env, "sync", "--repo", "octo-org/widgets")

    assert code == 0, err
    assert "octo-org/widgets: 3 issues cached" in out
    assert {"status/ready", "type/bug"} <= {
        label["name"] for label in github.repo_labels(repository)
    }
    code, _, err = await dispatch_cli(env, "sync", "--repo", "octo-org/unknown")
    assert code == 1 and "not a repository the App is installed on" in err


async def test_prune_dry_run_shows_what_would_go_and_prune_removes_it(rt, settings, database):
    from datetime import timedelta

    env = settings_env(settings, database)
    old = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(
            old,
            "issues",
            "opened",
            1,
            "o/r",
            '{"action": "opened"}',
            received_at=rt.clock.now() - timedelta(days=20),
        ),
        handled=False,
    )

    code, out, err = await dispatch_cli(env, "prune", "--dry-run")
    assert code == 0, err
    assert "delivery payloads    would remove         1" in out
    assert "audit entries        kept for good" in out
    assert (await journal.get(old)).payload_dropped_at is None

    code, out, err = await dispatch_cli(env, "prune")
    assert code == 0, err
    assert "delivery payloads    removed         1" in out
    assert (await journal.get(old)).payload_dropped_at is not None
    code, out, _ = await dispatch_cli(env, "deliveries")
    assert old in out and "(payload dropped)" in out
    code, _, err = await dispatch_cli(env, "deliveries", "replay", old)
    assert code == 1 and "was dropped on" in err and "cannot be replayed" in err


async def test_deliveries_discard_gives_up_on_a_failed_delivery(rt, settings, database):
    env = settings_env(settings, database)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "issues", "opened", 1, "o/r", '{"action": "opened"}'), handled=True
    )

    code, _, err = await dispatch_cli(env, "deliveries", "discard", guid)
    assert code == 1 and "is queued, not failed" in err
    async with engine.connection() as connection:
        await connection.execute("UPDATE delivery SET state = 'failed' WHERE guid = $1", guid)
    code, out, _ = await dispatch_cli(env, "deliveries", "discard", guid)
    assert code == 0 and f"discarded {guid}" in out
    assert (await journal.get(guid)).state == "discarded"
    code, out, _ = await dispatch_cli(env, "deliveries", "--failed")
    assert "no failed deliveries" in out
    code, _, err = await dispatch_cli(env, "deliveries", "discard", "nope")
    assert code == 1 and "no delivery nope" in err


async def repository_with_issues(github, repo, count: int) -> None:
    installation, repository = repo
    for i in range(count):
        github.add_issue(repository, f"issue {i}")
    github.add_pull(repository, "feature")  # listed with the issues, never cached
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])


async def test_sync_shows_plain_progress_lines_when_not_on_a_terminal(
    rt, settings, database, github, repo
):
    await repository_with_issues(github, repo, 250)
    env = settings_env(settings, database)

    code, out, err = await dispatch_cli(env, "sync")

    assert code == 0, err
    assert out == "octo-org/widgets: 250 issues cached\n"
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("octo-org/widgets")]
    assert lines == [
        "octo-org/widgets: labels and configuration …",
        "octo-org/widgets: 100 issues cached · open issues and pull requests listed: 100 of 251",
        "octo-org/widgets: 250 issues cached",
    ]


async def test_sync_redraws_one_progress_line_on_a_terminal(rt, settings, database, github, repo):
    import os
    import pty

    await repository_with_issues(github, repo, 250)
    env = settings_env(settings, database)
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "sync",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    out, _ = await proc.communicate()
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert out.decode() == "octo-org/widgets: 250 issues cached\n"
    shown = seen.decode()
    for expected in (
        "\rocto-org/widgets: 100 issues cached · open issues and pull requests listed: 100 of 251",
        "\rocto-org/widgets: 200 issues cached · open issues and pull requests listed: 200 of 251",
        "\rocto-org/widgets: 250 issues cached · open issues and pull requests listed: 251 of 251",
    ):
        assert expected in shown, shown


async def test_doctor_passes_a_healthy_install_and_fails_a_broken_one(
    rt, settings, database, github, repo
):
    from datetime import UTC, datetime

    from app import queue
    from app.issues import onboarding
    from tests.harness import AGENT_WORKFLOW

    installation, repository = repo
    github.set_hook_config(url=f"{settings.dispatch_url}/webhooks/github")
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    await onboarding.ensure_labels(rt, installation, "octo-org/widgets")
    await queue.beat("test-worker", datetime.now(UTC))
    env = settings_env(settings, database)

    code, out, err = await dispatch_cli(env, "doctor")

    assert code == 0, out + err
    assert "✓ database: worker: alive" in out
    assert "✓ app: webhook URL: http://dispatch.test/webhooks/github" in out
    assert "✓ octo-org/widgets: repository: labels present" in out
    assert "⚠ configuration: DISPATCH_URL" in out  # http://dispatch.test: warned, not failed
    assert out.rstrip().splitlines()[-1].startswith("healthy: ")
    assert "checking repositories: 1 of 1 (octo-org/widgets)" in err

    github.set_hook_config(url="https://old.example/webhooks/github")
    code, out, err = await dispatch_cli(env, "doctor", "--json")

    assert code == 1
    found = __import__("json").loads(out)
    assert found["healthy"] is False
    [wrong] = [c for c in found["checks"] if c["status"] == "fail"]
    assert (wrong["area"], wrong["name"]) == ("app", "webhook URL")
    assert "old.example" in wrong["detail"] and "/webhooks/github" in wrong["fix"]


async def test_doctor_reports_an_unreachable_database_and_bad_settings(settings, database):
    env = settings_env(settings, database)
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/nothing"

    code, out, _ = await dispatch_cli(env, "doctor")

    assert code == 1
    assert "✗ database: reachable: DATABASE_URL cannot be reached" in out
    assert "fix: check DATABASE_URL" in out

    env["WORKER_CONCURRENCY"] = "0"
    env["DISPATCH_DATADIR"] = "/srv"
    code, out, _ = await dispatch_cli(env, "doctor")
    assert code == 1
    assert "✗ configuration: setting: WORKER_CONCURRENCY" in out
    assert "did you mean DISPATCH_DATA_DIR?" in out
