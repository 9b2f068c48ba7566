"""The operator's CLI against a real database: deliveries and replay, tokens, sync."""

from __future__ import annotations

import asyncio
import sys
import uuid

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
