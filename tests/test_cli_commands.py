"""The operator's CLI against a real database: deliveries and replay, tokens, sync."""

from __future__ import annotations

import asyncio
import sys
import uuid

from app.db import engine
from app.installations import service as installations
from app.intake import journal
from tests.harness import settings_env


async def dispatch(env, *args) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_deliveries_list_failed_and_replay(rt, settings, database):
    env = settings_env(settings, database)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "issues", "opened", 1, "o/r", '{"action": "opened"}'), handled=True
    )

    code, out, _ = await dispatch(env, "deliveries")
    assert code == 0 and guid in out and "issues.opened" in out and "queued" in out

    code, out, _ = await dispatch(env, "deliveries", "--failed")
    assert code == 0 and "no failed deliveries" in out

    code, out, _ = await dispatch(env, "deliveries", "replay", guid)
    assert code == 0 and f"queued {guid}" in out
    code, _, err = await dispatch(env, "deliveries", "replay", "nope")
    assert code == 1 and "no delivery nope" in err


async def test_tokens_are_printed_once_and_listed_without_the_secret(rt, settings, database):
    env = settings_env(settings, database)

    code, token, _ = await dispatch(
        env, "token", "create", "--name", "ci", "--scope", "agent", "--repo", "octo-org/widgets"
    )
    assert code == 0 and token.strip().startswith("dsp_")
    code, listing, _ = await dispatch(env, "token", "list")
    assert "ci" in listing and "octo-org/widgets" in listing and token.strip() not in listing
    code, _, err = await dispatch(env, "token", "create", "--name", "x", "--scope", "agent")
    assert code == 2 and "--all-repos" in err  # no silent "every repository"
    code, _, err = await dispatch(
        env, "token", "create", "--name", "ci", "--scope", "agent", "--all-repos"
    )
    assert code == 1 and "exists" in err
    code, out, _ = await dispatch(env, "token", "revoke", "ci")
    assert code == 0 and "revoked ci" in out


async def test_sync_caches_a_repository(rt, settings, database, github, repo):
    installation, repository = repo
    for i in range(3):
        github.add_issue(repository, f"issue {i}")
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    env = settings_env(settings, database)

    code, out, err = await dispatch(env, "sync", "--repo", "octo-org/widgets")

    assert code == 0, err
    assert "octo-org/widgets: 3 issues cached" in out
    assert {"status/ready", "type/bug"} <= {
        label["name"] for label in github.repo_labels(repository)
    }
    code, _, err = await dispatch(env, "sync", "--repo", "octo-org/unknown")
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

    code, out, err = await dispatch(env, "prune", "--dry-run")
    assert code == 0, err
    assert "delivery payloads    would remove         1" in out
    assert "audit entries        kept for good" in out
    assert (await journal.get(old)).payload_dropped_at is None

    code, out, err = await dispatch(env, "prune")
    assert code == 0, err
    assert "delivery payloads    removed         1" in out
    assert (await journal.get(old)).payload_dropped_at is not None
    code, out, _ = await dispatch(env, "deliveries")
    assert old in out and "(payload dropped)" in out
    code, _, err = await dispatch(env, "deliveries", "replay", old)
    assert code == 1 and "was dropped on" in err and "cannot be replayed" in err


async def test_deliveries_discard_gives_up_on_a_failed_delivery(rt, settings, database):
    env = settings_env(settings, database)
    guid = str(uuid.uuid4())
    await journal.record(
        journal.Inbound(guid, "issues", "opened", 1, "o/r", '{"action": "opened"}'), handled=True
    )

    code, _, err = await dispatch(env, "deliveries", "discard", guid)
    assert code == 1 and "is queued, not failed" in err
    async with engine.connection() as connection:
        await connection.execute("UPDATE delivery SET state = 'failed' WHERE guid = $1", guid)
    code, out, _ = await dispatch(env, "deliveries", "discard", guid)
    assert code == 0 and f"discarded {guid}" in out
    assert (await journal.get(guid)).state == "discarded"
    code, out, _ = await dispatch(env, "deliveries", "--failed")
    assert "no failed deliveries" in out
    code, _, err = await dispatch(env, "deliveries", "discard", "nope")
    assert code == 1 and "no delivery nope" in err
