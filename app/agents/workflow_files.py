"""The agent workflow Dispatch ships, and the reporter it pins: where they are (inside the
package when installed, `workflows/` in a checkout), their bytes, and what a repository's copy
must have for Dispatch to start it (`workflow_dispatch` with these inputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

_PACKAGED = Path(__file__).resolve().parent.parent / "_workflows"
_SOURCE = Path(__file__).resolve().parent.parent.parent / "workflows"
WORKFLOWS = _PACKAGED if _PACKAGED.is_dir() else _SOURCE
REPORTER = WORKFLOWS / "reporter.py"
WORKFLOW = WORKFLOWS / "dispatch-agent.yml"
# What `app/agents/dispatcher.py` sends with every `workflow_dispatch`.
INPUTS = ("run_id", "mode", "dispatch_url")
PINNED_REPORTER = "DISPATCH_REPORTER_SHA256"


def reporter_sha256() -> str:
    return hashlib.sha256(REPORTER.read_bytes()).hexdigest()


def shipped_workflow() -> str:
    return WORKFLOW.read_text(encoding="utf-8")


def parse(text: str) -> dict[str, object] | None:
    """A workflow file as a mapping (YAML 1.1 reads a bare `on` key as true: it is `on`
    again here); None when it is not YAML or not a mapping."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(doc, dict):
        return None
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def dispatch_inputs(doc: dict[str, object]) -> dict[str, dict[str, object]] | None:
    """`on.workflow_dispatch.inputs` of a parsed workflow; None without that trigger."""
    triggers = doc.get("on")
    if isinstance(triggers, str):
        triggers = [triggers]
    if isinstance(triggers, list):
        return {} if "workflow_dispatch" in triggers else None
    if not isinstance(triggers, dict) or "workflow_dispatch" not in triggers:
        return None
    declared = (triggers.get("workflow_dispatch") or {}).get("inputs") or {}  # type: ignore[union-attr]
    if not isinstance(declared, dict):
        return {}
    return {str(name): dict(spec or {}) for name, spec in declared.items()}


def pinned_reporter(doc: dict[str, object]) -> str | None:
    """The reporter hash a workflow file pins (its top-level `env`)."""
    env = doc.get("env")
    value = env.get(PINNED_REPORTER) if isinstance(env, dict) else None
    return str(value) if value is not None else None
