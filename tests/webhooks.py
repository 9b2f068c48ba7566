"""Real webhook payload examples (octokit/webhooks, MIT) from `../shared/fixtures/`, signed the
way GitHub signs them."""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from app.intake.signatures import github_signature

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"
GITHUB_FIXTURES = FIXTURES / "github-webhooks"


@cache
def _load(name: str) -> dict[str, Any]:
    path = GITHUB_FIXTURES / f"{name}.json"
    if not path.exists():
        path = GITHUB_FIXTURES / f"{name}.payload.json"
    return json.loads(path.read_text())


def example(name: str, *, installation_id: int | None = None, **changes: Any) -> dict[str, Any]:
    """A copy of the example `name` ("issues/opened", "installation/created" ...), with an
    `installation` object patched in when asked (many examples lack one) and top-level keys
    replaced by `changes`."""
    payload = copy.deepcopy(_load(name))
    if installation_id is not None:
        payload["installation"] = {**payload.get("installation", {}), "id": installation_id}
    payload.update(changes)
    return payload


def signed(
    secret: str, event: str, payload: dict[str, Any] | bytes, guid: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": guid or str(uuid.uuid4()),
        "x-hub-signature-256": github_signature(secret, body),
        "user-agent": "GitHub-Hookshot/test",
    }
    return body, headers


def for_repo(
    name: str, installation_id: int, repository: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    """An example re-addressed to a repository on the fake GitHub."""
    return example(name, installation_id=installation_id, repository=repository, **changes)
