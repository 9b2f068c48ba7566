"""A rehearsal of a GitHub Actions workflow run on this machine, done the way a runner does it.

`Rehearsal(...).run()` reads the workflow file and runs its jobs in `needs:` order. Each job gets a
fresh machine, as far as it matters here: its own workspace, `RUNNER_TEMP` and `HOME`, GitHub's
environment variables and command files (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`,
`GITHUB_STEP_SUMMARY`), and every `run:` step goes to `bash --noprofile --norc -eo pipefail`.
`env:` and `if:` are evaluated at workflow, job and step level (see `expressions.py`), outputs
flow through `steps.*.outputs` and `needs.*.outputs`. The log shows what GitHub's shows: each
step's header with its `with:` and `env:` values, then its output, with secrets, the job's
tokens and `::add-mask::` values replaced by `***`.

Permissions decide credentials, as on GitHub: a job gets `ACTIONS_ID_TOKEN_REQUEST_URL`/`_TOKEN`
(from the fake OIDC issuer, for this repository and workflow run) only with `id-token: write`,
and a `GITHUB_TOKEN` (`github.token`, `secrets.GITHUB_TOKEN`) minted by the fake GitHub with
exactly the permissions the job declares. Both die when the job ends. Nothing else of the test
process's environment reaches a step.

`uses:` actions are replaced by small local equivalents: `actions/checkout` clones from the git
server standing for GitHub (with the job's token, kept in `.git/config` only if
`persist-credentials` is not false); `actions/upload-artifact` and `download-artifact` go through
a folder (names are write-once, hidden files left out, like v4); `actions/setup-node` and
`setup-python` do nothing. Any other action fails the step, so a new one cannot slip by unrehearsed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.rehearsal.expressions import Status, condition, render, to_text
from tests.rehearsal.git_server import GIT_ENV, git

STEP_TIMEOUT = 120
# The runner refuses these from GITHUB_ENV (they would run code inside every later action).
BLOCKED_ENV = frozenset({"NODE_OPTIONS"})
_COMMAND = re.compile(r"^::([a-zA-Z-]+)(?: ([^:]*))?::(.*)$")


@dataclass
class World:
    """What the workflow run talks to: the fake GitHub and OIDC issuer, the git server, the
    repository and installation, and the tools on PATH (the fake `claude` and `gh`)."""

    github: Any
    oidc: Any
    git_server_url: str
    installation_id: int
    repository: dict[str, Any]
    bin_dir: Path
    workflow_file: str = "dispatch-agent.yml"


@dataclass
class StepResult:
    name: str
    id: str | None
    outcome: str  # success | failure | skipped
    conclusion: str
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    id: str
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    env_of_steps: list[dict[str, str]] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    github_token: str | None = None
    oidc_request_token: str | None = None
    masks: list[str] = field(default_factory=list)
    summary: str = ""
    home: Path | None = None
    temp: Path | None = None
    workspace: Path | None = None

    @property
    def log(self) -> str:
        return "".join(f"## {s.name} ({s.outcome})\n{s.log}" for s in self.steps)

    def step(self, name_part: str) -> StepResult:
        [found] = [s for s in self.steps if name_part.lower() in s.name.lower()]
        return found


@dataclass
class WorkflowRun:
    jobs: dict[str, JobResult]

    @property
    def conclusion(self) -> str:
        results = {job.result for job in self.jobs.values()}
        return "failure" if "failure" in results else "success"

    @property
    def log(self) -> str:
        return "".join(f"# job {name}: {job.result}\n{job.log}" for name, job in self.jobs.items())


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads a bare `on` as true
        doc["on"] = doc.pop(True)
    return doc


def job_order(jobs: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    pending = list(jobs)
    while pending:
        ready = [j for j in pending if set(_needs(jobs[j])) <= set(order)]
        if not ready:
            raise ValueError(f"jobs wait on each other: {pending}")
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def permissions_of(workflow: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, str]:
    """The job's token permissions: its own block, else the workflow's, else GitHub's
    restricted default (`contents: read`, `packages: read`)."""
    declared = job.get("permissions", workflow.get("permissions"))
    if declared is None:
        return {"contents": "read", "packages": "read", "metadata": "read"}
    if declared == "read-all":
        return {"contents": "read", "pull-requests": "read", "issues": "read", "metadata": "read"}
    if declared == "write-all":
        raise ValueError("write-all is not rehearsed: declare the permissions the job needs")
    granted = {k: v for k, v in dict(declared).items() if v in ("read", "write")}
    granted["metadata"] = "read"
    return granted


class Rehearsal:
    def __init__(
        self,
        workflow: Path | Mapping[str, Any],
        *,
        world: World,
        root: Path,
        inputs: Mapping[str, str],
        secrets: Mapping[str, str],
        run_id: int,
        sha: str,
        ref: str = "refs/heads/main",
        run_attempt: int = 1,
    ) -> None:
        self.doc = load(workflow) if isinstance(workflow, Path) else dict(workflow)
        self.world = world
        self.root = root
        self.inputs = dict(inputs)
        self.secrets = dict(secrets)
        self.run_id = run_id
        self.run_attempt = run_attempt
        self.sha = sha
        self.ref = ref
        self.artifacts = root / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self._steps_ctx: dict[str, Any] = {}  # the `steps` context of the job running

    # ------------------------------------------------------------------ the run

    def run(self) -> WorkflowRun:
        jobs: dict[str, JobResult] = {}
        for job_id in job_order(self.doc["jobs"]):
            jobs[job_id] = self._job(job_id, self.doc["jobs"][job_id], jobs)
        return WorkflowRun(jobs)

    def _github_context(self, token: str | None, job_id: str) -> dict[str, Any]:
        repository = self.world.repository
        return {
            "token": token,
            "repository": repository["full_name"],
            "repository_id": str(repository["id"]),
            "repository_owner": repository["full_name"].split("/")[0],
            "run_id": str(self.run_id),
            "run_attempt": str(self.run_attempt),
            "sha": self.sha,
            "ref": self.ref,
            "ref_name": self.ref.removeprefix("refs/heads/"),
            "event_name": "workflow_dispatch",
            "event": {"inputs": self.inputs},
            "server_url": self.world.git_server_url,
            "api_url": self.world.github.url,
            "job": job_id,
            "workflow": self.doc.get("name", ""),
            "actor": "dispatch-test[bot]",
        }

    def _job(self, job_id: str, job: Mapping[str, Any], done: Mapping[str, JobResult]) -> JobResult:
        needs = {
            name: {"result": done[name].result, "outputs": done[name].outputs}
            for name in _needs(job)
        }
        failed = any(done[name].result != "success" for name in _needs(job))
        context: dict[str, Any] = {
            "inputs": self.inputs,
            "needs": needs,
            "github": self._github_context(None, job_id),
            "secrets": {**self.secrets, "GITHUB_TOKEN": None},
            "vars": {},
        }
        workflow_env = {
            k: to_text(v) for k, v in render(self.doc.get("env") or {}, context).items()
        }
        context["env"] = workflow_env
        if not condition(job.get("if"), context, Status(failed=failed)):
            return JobResult(job_id, "skipped")

        machine = self.root / "jobs" / job_id
        workspace, temp, home = machine / "work", machine / "temp", machine / "home"
        for folder in (workspace, temp, home):
            folder.mkdir(parents=True)
        permissions = permissions_of(self.doc, job)
        token_permissions = {k: v for k, v in permissions.items() if k != "id-token"}
        token = self.world.github.mint_job_token(self.world.installation_id, token_permissions)
        result = JobResult(job_id, "success", permissions=permissions, github_token=token)
        result.home, result.temp, result.workspace = home, temp, workspace
        credentials: dict[str, str] = {}
        if permissions.get("id-token") == "write":
            url, request_token = self.world.oidc.issue_request_token(
                repository=self.world.repository["full_name"],
                repository_id=self.world.repository["id"],
                run_id=self.run_id,
                run_attempt=self.run_attempt,
                ref=self.ref,
                sha=self.sha,
                workflow=self.doc.get("name", ""),
                workflow_file=self.world.workflow_file,
            )
            credentials = {
                "ACTIONS_ID_TOKEN_REQUEST_URL": url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
            }
            result.oidc_request_token = request_token
        result.masks.extend(v for v in (*self.secrets.values(), token, *credentials.values()) if v)
        context["github"] = self._github_context(token, job_id)
        context["secrets"] = {**self.secrets, "GITHUB_TOKEN": token}
        context["runner"] = {"temp": str(temp), "os": "Linux", "arch": "X64"}
        context["job"] = {"status": "success"}
        job_env = {
            **workflow_env,
            **{k: to_text(v) for k, v in render(job.get("env") or {}, context).items()},
        }
        try:
            self._steps(job_id, job, context, job_env, credentials, result)
        finally:
            self.world.github.revoke_token(token)
            if result.oidc_request_token:
                self.world.oidc.revoke_request_token(result.oidc_request_token)
        if result.result == "success":
            outputs = render(job.get("outputs") or {}, {**context, "steps": self._steps_ctx})
            result.outputs = {k: to_text(v) for k, v in outputs.items()}
        return result

    # ------------------------------------------------------------------ steps

    def _steps(
        self,
        job_id: str,
        job: Mapping[str, Any],
        context: dict[str, Any],
        job_env: dict[str, str],
        credentials: dict[str, str],
        result: JobResult,
    ) -> None:
        assert result.temp and result.home and result.workspace
        files = result.temp / "_runner_file_commands"
        files.mkdir()
        added_env: dict[str, str] = {}
        added_path: list[str] = []
        self._steps_ctx = {}
        failed = False
        for index, step in enumerate(job.get("steps") or []):
            name = step.get("name") or step.get("uses") or f"step {index + 1}"
            step_id = step.get("id")
            env_ctx = {**job_env, **added_env}
            ctx = {**context, "env": env_ctx, "steps": self._steps_ctx}
            ctx["job"] = {"status": "failure" if failed else "success"}
            if not condition(step.get("if"), ctx, Status(failed=failed)):
                record = StepResult(name, step_id, "skipped", "skipped")
                self._record(result, record)
                continue
            step_env = {k: to_text(v) for k, v in render(step.get("env") or {}, ctx).items()}
            command_files = {
                name_: files / f"{name_.lower()}_{index}"
                for name_ in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
            }
            for path in command_files.values():
                path.write_text("")
            env = {
                **self._base_env(result, added_path),
                **job_env,
                **added_env,
                **step_env,
                **credentials,
                **self._defaults(job_id, result),
                **{k: str(v) for k, v in command_files.items()},
            }
            result.env_of_steps.append(env)
            started = time.monotonic()
            header = _header(step, ctx, {**job_env, **added_env, **step_env})
            if "run" in step:
                status, log = self._run(step, ctx, env, result)
            else:
                status, log = self._use(step, ctx, env, result)
            log = header + log
            outputs: dict[str, str] = {}
            log = self._commands(log, outputs, result)
            outputs.update(_key_values(command_files["GITHUB_OUTPUT"].read_text()))
            for key, value in _key_values(command_files["GITHUB_ENV"].read_text()).items():
                if key not in BLOCKED_ENV:
                    added_env[key] = value
            added_path[:0] = [
                p for p in command_files["GITHUB_PATH"].read_text().splitlines() if p.strip()
            ]
            result.summary += command_files["GITHUB_STEP_SUMMARY"].read_text()
            outcome = "success" if status == 0 else "failure"
            conclusion = "success" if step.get("continue-on-error") else outcome
            if conclusion == "failure":
                failed = True
            record = StepResult(name, step_id, outcome, conclusion, outputs, _mask(log, result))
            record.seconds = time.monotonic() - started
            self._record(result, record)
        if failed:
            result.result = "failure"

    def _record(self, result: JobResult, record: StepResult) -> None:
        result.steps.append(record)
        if record.id:
            self._steps_ctx[record.id] = {
                "outcome": record.outcome,
                "conclusion": record.conclusion,
                "outputs": record.outputs,
            }

    def _base_env(self, result: JobResult, added_path: list[str]) -> dict[str, str]:
        path = [*added_path, str(self.world.bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]
        return {
            "PATH": os.pathsep.join(path),
            "HOME": str(result.home),
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            **GIT_ENV,
        }

    def _defaults(self, job_id: str, result: JobResult) -> dict[str, str]:
        repository = self.world.repository
        event = result.temp / "_github_event.json" if result.temp else None
        if event is not None and not event.exists():
            event.write_text(json.dumps({"inputs": self.inputs}))
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(result.workspace),
            "GITHUB_REPOSITORY": repository["full_name"],
            "GITHUB_REPOSITORY_ID": str(repository["id"]),
            "GITHUB_REPOSITORY_OWNER": repository["full_name"].split("/")[0],
            "GITHUB_RUN_ID": str(self.run_id),
            "GITHUB_RUN_ATTEMPT": str(self.run_attempt),
            "GITHUB_RUN_NUMBER": "1",
            "GITHUB_SERVER_URL": self.world.git_server_url,
            "GITHUB_API_URL": self.world.github.url,
            "GITHUB_SHA": self.sha,
            "GITHUB_REF": self.ref,
            "GITHUB_REF_NAME": self.ref.removeprefix("refs/heads/"),
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_WORKFLOW": str(self.doc.get("name", "")),
            "GITHUB_JOB": job_id,
            "GITHUB_ACTOR": "dispatch-test[bot]",
            "RUNNER_TEMP": str(result.temp),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
        }

    def _run(
        self, step: Mapping[str, Any], ctx: Mapping[str, Any], env: dict[str, str], job: JobResult
    ) -> tuple[int, str]:
        assert job.temp and job.workspace
        script = render(step["run"], ctx)
        shell = step.get("shell", "bash")
        if shell != "bash":
            raise NotImplementedError(f"shell {shell!r} is not rehearsed")
        path = job.temp / f"_step_{len(job.steps)}.sh"
        path.write_text(script)
        cwd = job.workspace / render(step.get("working-directory", "."), ctx)
        try:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=STEP_TIMEOUT,
            )
        except subprocess.TimeoutExpired as expired:
            output = expired.output or b""
            return 124, output.decode("utf-8", "replace") + "\n(step timed out)\n"
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def _commands(self, log: str, outputs: dict[str, str], job: JobResult) -> str:
        """Workflow commands the runner reads from a step's output."""
        stopped: str | None = None
        for line in log.splitlines():
            match = _COMMAND.match(line.strip())
            if match is None:
                continue
            command, properties, value = match.groups()
            if stopped is not None:
                if command == stopped:
                    stopped = None
                continue
            if command == "add-mask" and value.strip():
                job.masks.append(value.strip())
            elif command == "stop-commands":
                stopped = value
            elif command == "set-output":
                name = dict(p.split("=", 1) for p in (properties or "").split(",") if "=" in p).get(
                    "name"
                )
                if name:
                    outputs[name] = value
        return log

    # ------------------------------------------------------------------ actions

    def _use(
        self, step: Mapping[str, Any], ctx: Mapping[str, Any], env: dict[str, str], job: JobResult
    ) -> tuple[int, str]:
        action = str(step["uses"]).split("@", 1)[0]
        options = {k: to_text(v) for k, v in render(step.get("with") or {}, ctx).items()}
        actions = {
            "actions/checkout": self._checkout,
            "actions/setup-node": lambda o, e, j: (0, "(setup-node: node is on PATH)\n"),
            "actions/setup-python": lambda o, e, j: (0, "(setup-python: python3 is on PATH)\n"),
            "actions/upload-artifact": self._upload,
            "actions/download-artifact": self._download,
        }
        if action not in actions:
            return 1, f"the rehearsal has no local equivalent of {step['uses']}\n"
        try:
            code, log = actions[action](options, env, job)
        except (OSError, RuntimeError) as error:
            return 1, f"{action}: {error}\n"
        return code, log

    def _checkout(self, options: dict[str, str], env: dict[str, str], job: JobResult) -> tuple:
        assert job.workspace and job.github_token
        target = job.workspace / options.get("path", ".")
        target.mkdir(parents=True, exist_ok=True)
        url = f"{self.world.git_server_url}/{self.world.repository['full_name']}"
        auth = base64.b64encode(f"x-access-token:{job.github_token}".encode()).decode()
        header = f"AUTHORIZATION: basic {auth}"
        branch = self.ref.removeprefix("refs/heads/")
        depth = int(options.get("fetch-depth") or 1)
        refspec = (
            "+refs/heads/*:refs/remotes/origin/*"
            if depth == 0
            else (f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        )
        home = {"HOME": env["HOME"]}
        git("init", "--quiet", str(target), env=home)
        git("remote", "add", "origin", url, cwd=target, env=home)
        fetch = ["-c", f"http.extraheader={header}", "fetch", "--quiet", "--no-tags"]
        fetch += [f"--depth={depth}"] if depth else []
        git(*fetch, "origin", refspec, cwd=target, env=home)
        git(
            "checkout",
            "--quiet",
            "--force",
            "-B",
            branch,
            options.get("ref") or self.sha,
            cwd=target,
            env=home,
        )
        if options.get("persist-credentials", "true").lower() != "false":
            git(
                "config",
                "--local",
                f"http.{self.world.git_server_url}/.extraheader",
                header,
                cwd=target,
                env=home,
            )
        return 0, f"checked out {self.sha[:7]} into {target}\n"

    def _upload(self, options: dict[str, str], env: dict[str, str], job: JobResult) -> tuple:
        name = options.get("name") or "artifact"
        store = self.artifacts / name
        if store.exists() and options.get("overwrite", "false").lower() != "true":
            return 1, f"an artifact named {name!r} already exists in this workflow run\n"
        sources = [Path(p.strip()) for p in options.get("path", "").splitlines() if p.strip()]
        files = [
            path
            for source in sources
            for path in ([source] if source.is_file() else sorted(source.rglob("*")))
            if path.is_file() and not any(part.startswith(".") for part in path.parts[-1:])
        ]
        if not files:
            behaviour = options.get("if-no-files-found", "warn")
            return (1 if behaviour == "error" else 0), f"no files found for {name!r}\n"
        base = (
            sources[0]
            if len(sources) == 1 and sources[0].is_dir()
            else Path(os.path.commonpath([str(p.parent) for p in files]))
        )
        shutil.rmtree(store, ignore_errors=True)
        for path in files:
            destination = store / path.relative_to(base)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)  # content only, links followed, like a zip
        return 0, f"uploaded {len(files)} file(s) as {name!r}\n"

    def _download(self, options: dict[str, str], env: dict[str, str], job: JobResult) -> tuple:
        assert job.workspace
        name = options.get("name") or "artifact"
        store = self.artifacts / name
        if not store.is_dir():
            return 1, f"Unable to download artifact(s): Artifact not found for name: {name}\n"
        target = Path(options.get("path") or job.workspace)
        shutil.copytree(store, target, dirs_exist_ok=True)
        return 0, f"downloaded {name!r} to {target}\n"


def _header(step: Mapping[str, Any], ctx: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """What GitHub prints before a step's output: the command or action, `with:` and `env:`."""
    if "run" in step:
        script = str(render(step["run"], ctx)).rstrip("\n")
        lines = [f"Run {script.splitlines()[0] if script else ''}"]
        lines += [f"  {line}" for line in script.splitlines()]
        lines.append("  shell: /usr/bin/bash --noprofile --norc -e -o pipefail {0}")
    else:
        lines = [f"Run {step['uses']}"]
        options = render(step.get("with") or {}, ctx)
        if options:
            lines.append("  with:")
            lines += [f"    {key}: {to_text(value)}" for key, value in options.items()]
    if env:
        lines.append("  env:")
        lines += [f"    {key}: {value}" for key, value in env.items()]
    return "".join(f"{line}\n" for line in lines)


def _key_values(text: str) -> dict[str, str]:
    """`NAME=value` lines and `NAME<<DELIMITER` blocks, as in GITHUB_ENV and GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            while index < len(lines) and lines[index] != delimiter:
                block.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def _mask(log: str, job: JobResult) -> str:
    for secret in sorted(job.masks, key=len, reverse=True):
        log = log.replace(secret, "***")
    return log


def python_shim(bin_dir: Path) -> None:
    """`python3` on PATH is the interpreter running the tests (the reporter needs only 3.10+)."""
    shim = bin_dir / "python3"
    if not shim.exists():
        shim.symlink_to(sys.executable)
