"""The stage of a rehearsal: `dispatch serve` (web and worker, as its own processes) on the test's
database and a port chosen before it starts (so the URL it dispatches with, DISPATCH_URL, is the
one the workflow calls), the fake GitHub with the repository installed and the agent workflow
registered, a real git repository behind it, and `Stage.rehearse()` to run the dispatched workflow
as a runner would and then send what GitHub sends afterwards (`pull_request`, `workflow_run`).
Nothing runs Dispatch's jobs by hand: a test waits (`eventually`) for what its server does to show
at the fake GitHub or in the run's state."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.agents import runs
from app.installations import service as installations
from tests.agents.loop import comment
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW, ServerProcess, free_port, settings_env
from tests.rehearsal.git_server import GitServer
from tests.rehearsal.runner import Rehearsal, WorkflowRun, World, load, python_shim
from tests.rehearsal.tools import Agent, install
from tests.remediation.conftest import TOKEN as GRAFANA_TOKEN
from tests.webhooks import for_repo, signed

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "dispatch-agent.yml"
REPOSITORY = "octo-org/widgets"
ANTHROPIC_KEY = "sk-ant-rehearsal-key"
FILES = {
    "README.md": "# widgets\n",
    "src/cart.py": "def total(items):\n    return sum(items)\n",
    "tests/test_cart.py": "from src.cart import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n",
    ".github/workflows/dispatch-agent.yml": WORKFLOW.read_text(),
}


async def eventually(check: Callable[[], Any], *, timeout: float = 60) -> Any:
    """`check()`'s value (awaited if it is awaitable) once it no longer fails an assertion; the
    last failure if that takes more than `timeout` seconds (generous: the suite shares a loaded
    machine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            return await value if inspect.isawaitable(value) else value
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path, github, oidc, port):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path / "dispatch",
        github,
        dispatch_oidc_issuer=oidc.url,
        dispatch_url=f"http://127.0.0.1:{port}",
        dispatch_alerts_repo=REPOSITORY,
        grafana_webhook_token=GRAFANA_TOKEN,
    )


@pytest.fixture
async def server(settings, database, port, tmp_path) -> AsyncIterator[ServerProcess]:  # type: ignore[no-untyped-def]
    """`dispatch serve` on the test's database, listening at its DISPATCH_URL. The port is chosen
    before the server starts (the URL is in its settings); should another process take it first,
    the server exits at start-up and another port is tried."""
    env = {**settings_env(settings, database), "LOG_LEVEL": "WARNING"}
    log = tmp_path / "dispatch-serve.log"
    for attempt in range(3):
        if attempt:
            port = free_port()
            env["DISPATCH_URL"] = f"http://127.0.0.1:{port}"
        process = ServerProcess(env, port=port).start(log)
        try:
            await process.wait_ready()
            break
        except RuntimeError:
            process.stop()
            if attempt == 2:
                raise
    try:
        yield process
    finally:
        process.stop()
        print(f"----- dispatch serve's log\n{process.output()}")


@pytest.fixture
async def client(server) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def deliver(client, github):  # type: ignore[no-untyped-def]
    """Sign and post a webhook to the server, as GitHub does; what it does about it shows later."""

    async def send(event: str, payload: dict[str, Any]) -> httpx.Response:
        body, headers = signed(github.webhook_secret, event, payload)
        response = await client.post("/webhooks/github", content=body, headers=headers)
        assert response.status_code in (200, 202), response.text
        return response

    return send


@dataclass
class Rehearsed:
    """One rehearsed workflow run and what the fake agent saw."""

    dispatch: dict[str, Any]
    run: WorkflowRun
    spies: Path
    pulls: list[dict[str, Any]]

    @property
    def claude(self) -> dict[str, Any]:
        path = self.spies / "claude.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def npm(self) -> str:
        path = self.spies / "npm.log"
        return path.read_text() if path.exists() else ""


@dataclass
class Stage:
    github: Any
    oidc: Any
    deliver: Any
    installation: int
    repository: dict[str, Any]
    git_server: GitServer
    root: Path
    dispatch_url: str
    rehearsed: set[int] = field(default_factory=set)

    @property
    def repo(self) -> tuple[int, dict[str, Any]]:
        return self.installation, self.repository

    async def command(self, number: int, body: str, user: str = "alice") -> None:
        await self.deliver("issue_comment", comment(self.github, self.repo, number, body, user))

    async def labelled(self, number: int, label: str) -> None:
        """Until the issue carries `label`."""

        def check() -> None:
            assert label in self.github.label_names(REPOSITORY, number)

        await eventually(check)

    async def approved(self, title: str) -> int:
        """A new issue with an approved plan, ready for `/dispatch implement`. The investigation
        reports its plan straight to the agent API (it is rehearsed in test_modes)."""
        issue = self.github.add_issue(REPOSITORY, title, "Please fix.", ["status/ready"])
        number: int = issue["number"]
        await self.command(number, "/dispatch investigate")
        dispatch = await self.dispatched()
        self.rehearsed.add(dispatch["run_id"])
        token = self.oidc.token(
            self.dispatch_url,
            repository=REPOSITORY,
            repository_id=self.repository["id"],
            run_id=dispatch["run_id"],
        )
        url = f"{self.dispatch_url}/api/runs/{dispatch['inputs']['run_id']}/events"
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http:
            for event in (
                {"type": "plan", "body": f"## Summary\nFix {title}."},
                {
                    "type": "completed",
                    "outcome": "investigation_complete",
                    "summary": "planned",
                    "cost_usd": 0.1,
                    "turns": 1,
                },
            ):
                assert (await http.post(url, json=event)).status_code == 202
        # The plan is on the table once the server has posted it.
        await self.labelled(number, "plan/proposed")
        await self.command(number, "/dispatch approve", user="bob")
        await self.labelled(number, "plan/approved")
        return number

    async def dispatched(self) -> dict[str, Any]:
        """The newest workflow dispatch not rehearsed yet, once Dispatch has made one."""

        def fresh() -> dict[str, Any]:
            found = self.github.dispatches(REPOSITORY)
            found = [d for d in found if d["run_id"] not in self.rehearsed]
            assert found, "Dispatch dispatched no workflow run"
            return found[-1]

        dispatch: dict[str, Any] = await eventually(fresh)
        return dispatch

    async def run_of(self, dispatch: dict[str, Any]) -> runs.Run:
        run = await runs.get(int(dispatch["inputs"]["run_id"]))
        assert run is not None
        return run

    async def rehearse(self, agent: Agent, *, workflow: dict[str, Any] | None = None) -> Rehearsed:
        """Run the newest dispatched workflow run as a runner would, send the webhooks GitHub
        sends after it, and wait until Dispatch has ended the run."""
        dispatch = await self.dispatched()
        self.rehearsed.add(dispatch["run_id"])
        [github_run] = [r for r in self.github.runs(REPOSITORY) if r["id"] == dispatch["run_id"]]
        folder = self.root / f"run-{dispatch['run_id']}"
        bin_dir, spies = folder / "bin", folder / "spies"
        install(bin_dir, spies, agent)
        python_shim(bin_dir)
        world = World(
            github=self.github,
            oidc=self.oidc,
            git_server_url=self.git_server.url,
            installation_id=self.installation,
            repository=self.repository,
            bin_dir=bin_dir,
        )
        pulls_before = {p["number"] for p in self.github.pulls(REPOSITORY)}
        rehearsal = Rehearsal(
            workflow or load(WORKFLOW),
            world=world,
            root=folder,
            inputs=dispatch["inputs"],
            secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
            run_id=dispatch["run_id"],
            sha=github_run["head_sha"],
            ref=f"refs/heads/{github_run['head_branch']}",
        )
        self.github.set_run_status(REPOSITORY, dispatch["run_id"], "in_progress")
        run = await asyncio.to_thread(rehearsal.run)
        self.github.set_run_status(REPOSITORY, dispatch["run_id"], "completed", run.conclusion)
        # What GitHub sends next: the pull request the run opened, and the run's end.
        pulls = [p for p in self.github.pulls(REPOSITORY) if p["number"] not in pulls_before]
        for pull in pulls:
            payload = for_repo("pull_request/opened", *self.repo)
            payload.update(number=pull["number"], pull_request=pull)
            await self.deliver("pull_request", payload)
        [finished] = [r for r in self.github.runs(REPOSITORY) if r["id"] == dispatch["run_id"]]
        payload = for_repo("workflow_run/completed", *self.repo)
        payload["workflow_run"] = {**payload["workflow_run"], **finished}
        await self.deliver("workflow_run", payload)

        async def ended() -> None:
            assert (await self.run_of(dispatch)).state.finished, "the run has not ended"

        await eventually(ended)
        return Rehearsed(dispatch, run, spies, pulls)


@pytest.fixture
async def stage(github, oidc, repo, deliver, server, tmp_path) -> AsyncIterator[Stage]:  # type: ignore[no-untyped-def]
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    github.set_permission(repository, "bob", "maintain")
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    git_server = GitServer(tmp_path / "git", github).start()
    git_server.create(REPOSITORY, FILES)
    try:
        yield Stage(
            github,
            oidc,
            deliver,
            installation,
            repository,
            git_server,
            tmp_path / "runs",
            server.url,
        )
    finally:
        git_server.stop()


@pytest.fixture
def workflow_doc() -> Iterator[dict[str, Any]]:
    """A copy of the workflow to alter for one rehearsal."""
    yield load(WORKFLOW)
