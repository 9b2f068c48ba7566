"""What the remediation tests share: alert settings, the alerts repository installed, the
example payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.installations import service as installations
from tests.conftest import make_settings
from tests.harness import AGENT_WORKFLOW

ALERTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "alerts"
TOKEN = "grafana-test-token"
SENTRY_SECRET = "sentry-test-secret"


def alert_settings(tmp_path, github, oidc, **extra):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        dispatch_alerts_repo="octo-org/widgets",
        grafana_webhook_token=TOKEN,
        sentry_client_secret=SENTRY_SECRET,
        # A request the fake GitHub holds (a lost answer) is given up on quickly.
        github_timeout_seconds=1.0,
        **extra,
    )


@pytest.fixture
def settings(tmp_path, github, oidc):  # type: ignore[no-untyped-def]
    return alert_settings(tmp_path, github, oidc)


@pytest.fixture
async def installed(rt, github, repo):  # type: ignore[no-untyped-def]
    """The App installed on the alerts repository, with the agent workflow in place."""
    installation, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    return repo
