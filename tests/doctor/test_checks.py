"""`dispatch doctor` against the fake GitHub and a real database: a healthy install passes, and
each fault planted in it is found, with its fix."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from datetime import UTC, datetime

import pytest

from app import queue
from app.config import ConfigError, load_settings
from app.db import engine
from app.doctor import checks, report
from app.doctor.report import Status
from app.installations import service as installations
from app.issues import onboarding
from app.worker import build_worker
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW

URL = "https://dispatch.example"
REPOSITORY = "octo-org/widgets"


@pytest.fixture
def settings(tmp_path, github, oidc):  # https: no warning about the URL
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, dispatch_url=URL)


@pytest.fixture
async def healthy(rt, github, repo):
    """An install as it should be: the webhook aimed at Dispatch, the labels, the shipped
    workflow, a worker that beat a moment ago."""
    installation, repository = repo
    github.set_hook_config(url=f"{URL}/webhooks/github")
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    await onboarding.ensure_labels(rt, installation, REPOSITORY)
    await queue.beat("test-worker", datetime.now(UTC))
    return repo


def problems(found: list[report.Check]) -> list[report.Check]:
    return [check for check in found if check.status is not Status.OK]


def only_problem(found: list[report.Check]) -> report.Check:
    [problem] = problems(found)
    assert problem.fix, problem
    return problem


async def test_a_healthy_install_passes(rt, healthy):
    found = await checks.examine(rt)

    assert problems(found) == []
    assert report.healthy(found)
    names = {(check.area, check.name) for check in found}
    assert {
        ("database", "reachable"),
        ("database", "pgvector"),
        ("database", "migrations"),
        ("database", "worker"),
        ("app", "credentials"),
        ("app", "webhook URL"),
        ("app", "permissions"),
        ("app", "events"),
        ("app", "deliveries"),
        (REPOSITORY, "repository"),
    } <= names
    [line] = [c.line() for c in found if c.area == REPOSITORY]
    assert line.startswith(f"✓ {REPOSITORY}: repository: labels present")
    assert "dispatch-agent.yml is the shipped version" in line


async def test_progress_is_told_per_repository(rt, healthy, github):
    github.add_repo(healthy[0], "octo-org/gadgets")
    seen = []

    await checks.examine(rt, lambda done, total, name: seen.append((done, total, name)))

    assert seen == [(1, 2, "octo-org/widgets"), (2, 2, "octo-org/gadgets")]


# ---------------------------------------------------------------------------- configuration


def test_each_bad_variable_is_a_failure_with_its_fix():
    with pytest.raises(ConfigError) as caught:
        load_settings(worker_concurrency="0", log_level="LOUD")
    found = checks.configuration(caught.value)
    assert [c.status for c in found] == [Status.FAIL, Status.FAIL]
    assert {c.detail.split(":")[0] for c in found} == {"WORKER_CONCURRENCY", "LOG_LEVEL"}
    assert all("Configuration table" in (c.fix or "") for c in found)


def test_unknown_and_old_names_are_warned(monkeypatch, settings):
    monkeypatch.setenv("DISPATCH_DATADIR", "/srv")
    monkeypatch.setenv("MAX_CONCURRENT_SPAWNS_ERROR", "4")
    found = checks.configuration(settings)
    warned = {c.detail: c for c in found if c.status is Status.WARN}
    assert any("did you mean DISPATCH_DATA_DIR?" in d for d in warned)
    assert any("read as MAX_CONCURRENT_SPAWNS_AUTO_INVESTIGATE" in d for d in warned)
    assert report.healthy(found)


def test_a_plain_http_url_is_warned(tmp_path, github):
    found = checks.configuration(make_settings(tmp_path, github))  # http://dispatch.test
    assert any(c.name == "DISPATCH_URL" and c.status is Status.WARN for c in found)


def test_a_nearly_full_disk_is_warned(settings):
    Usage = namedtuple("Usage", "total used free")
    full = checks.storage(settings, usage=lambda _: Usage(100 << 30, 97 << 30, 3 << 30))
    assert only_problem(full).status is Status.WARN
    assert "nearly full" in full[0].detail and "3.0 GB free" in full[0].detail
    roomy = checks.storage(settings, usage=lambda _: Usage(100 << 30, 50 << 30, 50 << 30))
    assert problems(roomy) == []


# ---------------------------------------------------------------------------- database


async def test_no_worker_is_a_failure(rt, healthy):
    async with engine.connection() as connection:
        await connection.execute("DELETE FROM worker_heartbeat")
    problem = only_problem(await checks.examine(rt))
    assert (problem.area, problem.name, problem.status) == ("database", "worker", Status.FAIL)
    assert "no worker has ever reported" in problem.detail and "dispatch worker" in problem.fix


async def test_a_silent_worker_is_a_failure(rt, healthy):
    async with engine.connection() as connection:
        await connection.execute("UPDATE worker_heartbeat SET seen_at = now() - interval '1 hour'")
    problem = only_problem(await checks.examine(rt))
    assert problem.name == "worker" and "no worker heartbeat for 60 min" in problem.detail


async def test_a_worker_records_its_heartbeat(rt, healthy):
    async with engine.connection() as connection:
        await connection.execute("DELETE FROM worker_heartbeat")
    worker = build_worker(rt)
    task = asyncio.create_task(worker.run(schedules=False))
    try:
        for _ in range(200):
            if await queue.latest_heartbeat() is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.stop(0)
        await asyncio.wait_for(task, 15)
    beat = await queue.latest_heartbeat()
    assert beat is not None and beat.age_seconds < 60
    assert (await checks.worker(rt)).status is Status.OK


async def test_pending_migrations_are_a_failure(rt, healthy):
    async with engine.connection() as connection:
        await connection.execute(
            "DELETE FROM migration WHERE name = (SELECT max(name) FROM migration)"
        )
    found = await checks.examine(rt)
    [problem] = [c for c in found if c.name == "migrations"]
    assert problem.status is Status.FAIL and "dispatch migrate" in problem.fix


async def test_a_database_without_pgvector_is_a_failure(rt, healthy):
    async with engine.connection() as connection:
        await connection.execute("DROP EXTENSION vector CASCADE")
    [problem] = [c for c in await checks.examine(rt) if c.name == "pgvector"]
    assert problem.status is Status.FAIL and "pgvector" in problem.fix


# ---------------------------------------------------------------------------- the App


async def test_wrong_app_credentials_are_a_failure(tmp_path, github, oidc, database, healthy):
    from app.runtime import Runtime

    wrong = make_settings(
        tmp_path / "wrong", github, dispatch_url=URL, github_app_id=github.app_id + 1
    )
    rt = Runtime.build(wrong)
    try:
        found = await checks.examine(rt)
    finally:
        await rt.close()
    problem = only_problem(found)
    assert (problem.area, problem.name) == ("app", "credentials")
    assert "GitHub answered 401" in problem.detail and "GITHUB_APP_ID" in problem.fix


@pytest.mark.parametrize(
    ("change", "name", "said"),
    [
        ({"url": "https://old.example/webhooks/github"}, "webhook URL", "old.example"),
        ({"content_type": "form"}, "webhook content type", "form-encoded"),
        ({"secret": None}, "webhook secret", "no secret"),
    ],
)
async def test_a_misdirected_webhook_is_a_failure(rt, healthy, github, change, name, said):
    github.set_hook_config(**change)
    problem = only_problem(await checks.examine(rt))
    assert (problem.area, problem.name, problem.status) == ("app", name, Status.FAIL)
    assert said in problem.detail


async def test_missing_permissions_and_events_are_failures(rt, healthy, github):
    github.app_permissions["checks"] = "read"
    github.app_events.remove("workflow_run")
    found = problems(await checks.examine(rt))
    assert {(c.name, c.status) for c in found} == {
        ("permissions", Status.FAIL),
        ("events", Status.FAIL),
    }
    [permissions] = [c for c in found if c.name == "permissions"]
    assert "checks: write (has read)" in permissions.detail
    [events] = [c for c in found if c.name == "events"]
    assert "workflow_run" in events.detail


async def test_more_permissions_than_app_yml_asks_are_warned(rt, healthy, github):
    github.app_permissions["administration"] = "write"
    problem = only_problem(await checks.examine(rt))
    assert (problem.name, problem.status) == ("permissions", Status.WARN)
    assert "administration: write" in problem.detail and "least privilege" in problem.fix


async def test_failed_deliveries_are_found_in_githubs_log(rt, healthy, github):
    github.add_hook_delivery("guid-ok", "issues", "opened", status_code=200)
    github.add_hook_delivery("guid-lost", "issue_comment", "created", status_code=502)
    github.add_hook_delivery("guid-retried", "issues", "edited", status_code=502)
    github.add_hook_delivery("guid-retried", "issues", "edited", status_code=200)

    problem = only_problem(await checks.examine(rt))
    assert (problem.name, problem.status) == ("deliveries", Status.WARN)
    assert problem.detail.startswith("1 of 3 deliveries in the last 24 hours")
    assert "issue_comment" in problem.detail

    github.reset()
    github.set_hook_config(url=f"{URL}/webhooks/github")
    github.add_hook_delivery("guid-a", "issues", "opened", status_code=0)
    [problem] = [c for c in await checks.examine(rt) if c.name == "deliveries"]
    assert problem.status is Status.FAIL


# ---------------------------------------------------------------------------- installations


async def test_a_suspended_installation_is_a_failure(rt, healthy, github):
    github.suspend_installation(healthy[0])
    problem = only_problem(await checks.examine(rt))
    assert problem.name == "suspended" and problem.status is Status.FAIL


async def test_an_installation_that_has_not_accepted_new_permissions(rt, healthy, github):
    github.set_installation_permissions(healthy[0], checks="read")
    problem = only_problem(await checks.examine(rt))
    assert problem.name == "permissions" and problem.area.startswith("octo-org (installation")
    assert "checks: write" in problem.detail and "accepts" in problem.fix


async def test_an_installation_without_a_token_is_a_failure(rt, healthy, github):
    # a second installation, whose token no client has cached yet: GitHub refuses to issue one
    refused = github.add_installation("gizmo-inc")
    github.add_repo(refused, "gizmo-inc/gears")
    github.fail_next(None, 403, method="POST", path=f"/app/installations/{refused}/access_tokens")

    found = await checks.examine(rt)

    problem = only_problem(found)
    assert (problem.area, problem.name, problem.status) == (
        f"gizmo-inc (installation {refused})",
        "token",
        Status.FAIL,
    )
    assert problem.detail.startswith("no installation token: GitHub answered 403")
    assert problem.line().startswith(f"✗ gizmo-inc (installation {refused}): token:")
    assert "check the installation at" in problem.fix
    assert not report.healthy(found)
    # the other installation is still checked, repository and all
    working = f"octo-org (installation {healthy[0]})"
    assert [c.status for c in found if (c.area, c.name) == (working, "token")] == [Status.OK]
    assert any(c.area == REPOSITORY and c.status is Status.OK for c in found)


# ---------------------------------------------------------------------------- repositories


async def test_missing_labels_are_warned(rt, healthy, github):
    github.reset()
    installation = github.add_installation("octo-org")
    repository = github.add_repo(installation, REPOSITORY)
    github.set_hook_config(url=f"{URL}/webhooks/github")
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    problem = only_problem(await checks.examine(rt))
    assert (problem.name, problem.status) == ("labels", Status.WARN)
    assert f"dispatch sync --repo {REPOSITORY}" in problem.fix


def replace_workflow(github, text: str) -> None:
    github.add_workflow(REPOSITORY, "dispatch-agent.yml", text)


EXTRA_INPUT = AGENT_WORKFLOW.replace(
    "      dispatch_url:\n",
    "      target:\n        type: string\n        required: true\n      dispatch_url:\n",
    1,
)
NO_DISPATCH_URL = AGENT_WORKFLOW.replace(
    "      dispatch_url:\n"
    "        description: Base URL of the Dispatch server\n"
    "        type: string\n"
    "        required: true\n",
    "",
    1,
)
OLD_REPORTER = AGENT_WORKFLOW.replace(
    "DISPATCH_REPORTER_SHA256: ", "DISPATCH_REPORTER_SHA256: 0000", 1
)


@pytest.mark.parametrize(
    ("plant", "status", "said"),
    [
        (lambda gh: gh._find_repo(REPOSITORY).files.clear(), Status.FAIL, "is missing on main"),
        (
            lambda gh: replace_workflow(gh, "name: x\non: push\njobs: {}\n"),
            Status.FAIL,
            "no workflow_dispatch trigger",
        ),
        (
            lambda gh: replace_workflow(gh, EXTRA_INPUT),
            Status.FAIL,
            "requires target, which Dispatch does not send",
        ),
        (
            lambda gh: replace_workflow(gh, NO_DISPATCH_URL),
            Status.FAIL,
            "does not take dispatch_url: every dispatch would be refused",
        ),
        (
            lambda gh: replace_workflow(gh, OLD_REPORTER),
            Status.FAIL,
            "Dispatch reporter mismatch",
        ),
        (
            lambda gh: replace_workflow(gh, AGENT_WORKFLOW + "# edited by hand\n"),
            Status.WARN,
            "differs from the shipped version",
        ),
    ],
    ids=["missing", "not-dispatchable", "extra-input", "no-dispatch-url", "old-reporter", "edited"],
)
async def test_a_workflow_fault_is_found(rt, healthy, github, plant, status, said):
    assert NO_DISPATCH_URL != AGENT_WORKFLOW  # the input really is gone from the planted copy
    plant(github)
    problem = only_problem(await checks.examine(rt))
    assert (problem.area, problem.name, problem.status) == (REPOSITORY, "workflow", status)
    assert said in problem.detail
    assert f"{URL}/agent/dispatch-agent.yml" in problem.fix


async def test_an_invalid_repository_config_is_a_failure(rt, healthy, github):
    github.add_file(REPOSITORY, ".github/dispatch.yml", "budgets:\n  daily_cost_usd: lots\n")
    problem = only_problem(await checks.examine(rt))
    assert (problem.name, problem.status) == ("config", Status.FAIL)
    assert "daily_cost_usd" in problem.detail and "paused" in problem.fix


async def test_a_mode_mapped_to_a_missing_workflow_is_a_failure(rt, healthy, github):
    github.add_file(REPOSITORY, ".github/dispatch.yml", "workflows:\n  qa: dispatch-qa.yml\n")
    problem = only_problem(await checks.examine(rt))
    assert problem.name == "workflow" and "dispatch-qa.yml is missing" in problem.detail
