"""Helpers for driving whole agent runs in tests: issue comments as webhooks, the reporter as
the workflow would run it, and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.webhooks import for_repo

ROOT = Path(__file__).resolve().parents[2]
REPORTER = ROOT / "workflows" / "reporter.py"
STREAM_FIXTURES = ROOT.parent / "shared" / "fixtures" / "claude-stream-json"
AUDIENCE = "http://dispatch.test"


def comment(github, repo, number: int, body: str, user: str = "alice") -> dict:
    installation, repository = repo
    posted = github.add_comment(repository, number, body, user=user)
    payload = for_repo("issue_comment/created", installation, repository)
    payload["issue"] = {**payload["issue"], "number": number, "labels": []}
    payload["comment"] = {
        **payload["comment"],
        "id": posted["id"],
        "body": body,
        "user": {**payload["comment"]["user"], "login": user, "type": "User"},
    }
    payload["sender"] = {**payload["sender"], "login": user, "type": "User"}
    return payload


@dataclass
class Reporter:
    """Runs `workflows/reporter.py` the way the agent workflow does, with an OIDC request token
    for the run's repository and workflow run."""

    base_url: str
    run_id: int
    env: dict[str, str]
    workdir: Path

    @classmethod
    def for_run(cls, oidc, base_url: str, run, repository: dict, workdir: Path) -> Reporter:
        url, token = oidc.issue_request_token(
            repository=repository["full_name"],
            repository_id=repository["id"],
            run_id=run.workflow_run_id,
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "ACTIONS_"))},
            "DISPATCH_URL": base_url,
            "DISPATCH_AUDIENCE": AUDIENCE,
            "RUN_ID": str(run.id),
            "ACTIONS_ID_TOKEN_REQUEST_URL": url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": token,
            "RUNNER_TEMP": str(workdir),
            "DISPATCH_BACKOFF_BASE": "0.01",
        }
        return cls(base_url, run.id, env, workdir)

    async def __call__(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPORTER),
            *args,
            env=self.env,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        text = out.decode()
        if proc.returncode != 0:
            raise AssertionError(f"reporter {args} exited {proc.returncode}:\n{text}")
        return text

    def brief(self) -> dict:
        return json.loads((self.workdir / "brief.json").read_text())


@dataclass
class SSEReader:
    """Collects one stream's events in the background."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (event, id, data)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    # The server's first message arrived (it subscribes to the run before sending it).
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> SSEReader:
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            await self._follow()
        finally:
            self._arrived.set()  # a waiter sees the end (or the refusal) at once

    async def _follow(self) -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            async with client.stream("GET", self.url, headers=self.headers) as response:
                assert response.status_code == 200, await response.aread()
                self.opened.set()
                event, ident, data = "message", "", []
                async for line in response.aiter_lines():
                    if line == "":
                        self.ready.set()
                        if data:
                            self.events.append((event, ident, "\n".join(data)))
                            self._arrived.set()
                            if event == "end":
                                self.ended.set()
                                return
                        event, ident, data = "message", "", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("id:"):
                        ident = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))

    def logs(self) -> list[tuple[int, str]]:
        return [(int(i), d) for e, i, d in self.events if e == "log"]

    async def wait_logs(self, count: int, timeout: float = 10) -> list[tuple[int, str]]:
        """Wait until `count` log events have arrived (not for a while: for them)."""
        async with asyncio.timeout(timeout):
            while len(self.logs()) < count:
                if self.task is not None and self.task.done():
                    self.task.result()
                    raise AssertionError(f"the stream ended with {self.logs()}")
                self._arrived.clear()
                await self._arrived.wait()
        return self.logs()

    async def stop(self) -> None:
        if self.task and not self.task.done():
            self.task.cancel()


async def create_run(github, repo, *, state: str, workflow_run_id: int):
    """A run of `investigate` on a new issue, put straight into `state` (no GitHub involved)."""
    from app.agents import runs
    from app.agents.runs import NewRun, Trigger
    from app.modes import Mode

    installation, repository = repo
    created = await runs.create(
        NewRun(
            installation_id=installation,
            repository=repository["full_name"],
            repository_id=repository["id"],
            issue_number=github.add_issue(repository, "t")["number"],
            mode=Mode.INVESTIGATE,
            trigger=Trigger.COMMAND,
            requested_by="alice",
        )
    )
    return await runs.update(created.id, state=state, workflow_run_id=workflow_run_id)
