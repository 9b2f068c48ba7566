"""The portal and the run viewer in a real browser (headless Chromium, driven by Playwright),
against `dispatch serve` running as a child process with the fake GitHub: the customer is created
with the CLI, issues are labelled through signed webhooks, and the pages are read the way a
customer reads them — on a desktop and on a phone, with no console errors.

Needs Debian's `chromium` package (`apt-get install -y chromium`); `.ci/run` installs it. Without
it these tests skip locally, and fail when `CI` is set."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from app.agents import runs
from app.agents.runs import NewRun, Trigger
from app.db import engine
from app.modes import Mode
from app.stream.links import viewer_token
from app.tokens import service as tokens
from tests.harness import ServerProcess, dispatch_cli, free_port, settings_env
from tests.webhooks import example, for_repo, signed

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("DISPATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "headless Chromium is needed for the browser tests: `apt-get install -y chromium` on Debian "
    "(and `pip install -e '.[test]'` for Playwright); set DISPATCH_CHROMIUM to use another binary"
)
# Screenshots land here (kept for a look after the run) when set, else in the test's tmp dir.
SHOTS = os.environ.get("DISPATCH_SCREENSHOTS")


def _browser_or_skip() -> None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = True
    else:
        missing = not Path(CHROMIUM).exists()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)


@pytest.fixture
async def browser(tmp_path):
    """A fresh headless Chromium profile; yields a function that opens a page which records
    console errors and failed page scripts in `page.errors`."""
    _browser_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )

        async def open_page(viewport: dict | None = None):
            page = await context.new_page()
            if viewport:
                await page.set_viewport_size(viewport)
            page.errors = []
            page.on(
                "console",
                lambda m: (
                    page.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
            page.on(
                "response",
                lambda r: (
                    page.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
                ),
            )
            return page

        try:
            yield open_page
        finally:
            await context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def server(settings, database, tmp_path):
    """`dispatch serve` (web and worker) on the test database, its DISPATCH_URL its own."""
    env = settings_env(settings, database)
    proc = ServerProcess(env, port=free_port())
    env["DISPATCH_URL"] = proc.url
    env["LOG_LEVEL"] = "WARNING"
    proc.start(tmp_path / "dispatch-serve.log")
    try:
        await proc.wait_ready()
        yield proc
    finally:
        proc.stop()


async def post_webhook(http: httpx.AsyncClient, github, event: str, payload: dict) -> None:
    body, headers = signed(github.webhook_secret, event, payload)
    response = await http.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 202, response.text


async def settled(timeout: float = 30) -> None:
    """Until the server's worker has processed every delivery and every due job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with engine.connection() as connection:
            waiting = await connection.fetchval(
                "SELECT (SELECT count(*) FROM delivery WHERE state = 'queued') + "
                "(SELECT count(*) FROM pgqueuer WHERE status = 'picked' "
                "OR (status = 'queued' AND execute_after <= now()))"
            )
        if waiting == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("deliveries still waiting")


async def label(http, github, repo, number: int, name: str, sender: str = "maya") -> None:
    installation, repository = repo
    github.add_label_to_issue(repository, number, name)
    payload = for_repo("issues/labeled", installation, repository)
    payload["issue"] = github.issue(repository, number)
    payload["label"] = {**payload["label"], "name": name}
    payload["sender"] = {**payload["sender"], "login": sender, "type": "User"}
    await post_webhook(http, github, "issues", payload)
    # One at a time: GitHub's timestamps have whole seconds, and of two webhooks about one issue
    # in the same second the cache keeps whichever is processed last.
    await settled()


async def test_a_customer_reads_the_portal_in_a_browser(
    browser, shots, server, settings, database, github, repo, tmp_path
):
    installation, repository = repo
    github.set_permission(repository, "maya", "maintain")
    checkout = github.add_issue(repository, "Checkout fails on Safari", "Internal notes: see db-7")
    search = github.add_issue(repository, "Search is slow for long queries", labels=["priority/p1"])
    github.add_issue(repository, "Refactor the billing module", labels=["status/ready"])

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        created = example("installation/created")
        created["installation"]["id"] = installation
        created["repositories"] = [
            {k: repository[k] for k in ("id", "node_id", "name", "full_name", "private")}
        ]
        await post_webhook(http, github, "installation", created)
        await settled()

        env = {**settings_env(settings, database), "DISPATCH_URL": server.url}
        created = await dispatch_cli(env, "customer", "create", "--installation", str(installation),
                                     "--name", "Acme Corp", "--slug", "acme", "--color", "#6f42c1")  # fmt: skip
        link = created.ok().strip()
        assert link.startswith(f"{server.url}/portal/acme?token=dpt_")

        await label(http, github, repo, checkout["number"], "customer/acme")
        await label(http, github, repo, checkout["number"], "status/in-progress")
        await label(http, github, repo, search["number"], "customer/acme")
        await label(http, github, repo, search["number"], "status/ready")
        secret = "PRIVATE: the root password for staging is hunter2"
        comment = github.add_comment(repository, checkout["number"], secret, user="maya")
        said = for_repo("issue_comment/created", installation, repository)
        said["issue"] = github.issue(repository, checkout["number"])
        said["comment"] = {**said["comment"], "id": comment["id"], "body": secret}
        await post_webhook(http, github, "issue_comment", said)
        await settled()
        run = await runs.create(
            NewRun(installation, repository["full_name"], repository["id"], checkout["number"],
                   Mode.INVESTIGATE, Trigger.COMMAND, requested_by="maya")
        )  # fmt: skip
        await runs.update(run.id, state="running")

    page = await browser()
    response = await page.goto(link)
    assert response.status == 200
    board = page.locator("#column-in-progress")
    await board.get_by_text("Checkout fails on Safari").wait_for()
    assert "Search is slow" in await page.locator("#column-ready").inner_text()
    assert "Refactor the billing module" not in await page.content()
    assert (
        await page.locator("header.brand").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(111, 66, 193)"
    )
    await page.screenshot(path=str(shots / "portal-board-desktop.png"), full_page=True)

    await board.get_by_role("link", name="Checkout fails on Safari").click()
    await page.locator("#timeline").wait_for()
    timeline = await page.locator("#timeline").inner_text()
    assert "Issue opened" in timeline and "Status: In progress" in timeline
    assert "Agent investigation" in timeline and "running" in timeline
    text = await page.locator("body").inner_text()
    assert "hunter2" not in text and "PRIVATE" not in text and "db-7" not in text
    await page.screenshot(path=str(shots / "portal-issue-desktop.png"), full_page=True)
    assert page.errors == []

    phone = await browser({"width": 390, "height": 844})
    await phone.goto(link)
    await phone.get_by_text("Checkout fails on Safari").wait_for()
    overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the board scrolls sideways on a phone"
    await phone.screenshot(path=str(shots / "portal-board-phone.png"), full_page=True)
    await phone.get_by_role("link", name="Checkout fails on Safari").click()
    await phone.locator("#timeline").wait_for()
    assert await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    await phone.screenshot(path=str(shots / "portal-issue-phone.png"), full_page=True)
    assert phone.errors == []

    # The live link opens the run viewer with the portal token.
    await page.get_by_role("link", name="Watch it live").click()
    await page.wait_for_url(f"**/runs/{run.id}?token=*")
    await page.get_by_text("live", exact=True).wait_for()
    assert page.errors == []

    env = {**settings_env(settings, database), "DISPATCH_URL": server.url}
    (await dispatch_cli(env, "customer", "rotate-token", "acme")).ok()
    stale = await browser()
    answer = await stale.goto(link)
    assert answer.status == 404
    await stale.get_by_text("This page does not exist").wait_for()
    assert "Acme" not in await stale.content()
    await stale.screenshot(path=str(shots / "portal-rotated-token-404.png"), full_page=True)


async def test_the_run_viewer_shows_chunks_as_the_agent_posts_them(
    rt, browser, shots, server, github, repo
):
    installation, repository = repo
    issue = github.add_issue(repository, "Crash on save")
    run = await runs.create(
        NewRun(installation, repository["full_name"], repository["id"], issue["number"],
               Mode.INVESTIGATE, Trigger.COMMAND, requested_by="maya")
    )  # fmt: skip
    await runs.update(run.id, state="running")
    agent = await tokens.create("harness", "agent", [])
    token = viewer_token(
        rt, run.id, run.viewer_key
    )  # signed with the server's secret key (same settings)

    page = await browser()
    await page.goto(f"{server.url}/runs/{run.id}?token={token}")
    await page.locator("#status").get_by_text("live").wait_for()
    log = page.locator("#log")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"authorization": f"Bearer {agent}"}, timeout=30
    ) as http:
        for seq, line in enumerate(["Reading src/save.py", "Found the bug", "Writing the plan"], 1):
            posted = await http.post(f"/api/runs/{run.id}/log", json={"seq": seq, "data": line})
            assert posted.status_code == 200, posted.text
            await log.get_by_text(line).wait_for(timeout=5000)
            assert (await log.inner_text()).strip().splitlines()[-1] == line
        await page.screenshot(path=str(shots / "run-viewer-live.png"), full_page=True)
        done = await http.post(
            f"/api/runs/{run.id}/events",
            json={"type": "completed", "outcome": "investigation_complete",
                  "summary": "found it", "cost_usd": 0.1, "turns": 3},
        )  # fmt: skip
        assert done.status_code == 202, done.text
    await page.locator("#state").get_by_text("succeeded").wait_for()
    await page.screenshot(path=str(shots / "run-viewer-finished.png"), full_page=True)
    assert page.errors == []
