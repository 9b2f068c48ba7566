"""What every mission test starts from: settings that reach the fake Anthropic, and the small
repository of `missions.seed_project`, onboarded (a module may override either)."""

from __future__ import annotations

import pytest

from app.issues import onboarding
from tests.conftest import claude_settings, make_settings
from tests.orchestrator.missions import seed_project


@pytest.fixture
def settings(tmp_path, github, oidc, claude):
    return make_settings(tmp_path, github, dispatch_oidc_issuer=oidc.url, **claude_settings(claude))


@pytest.fixture
async def project(rt, github, repo):
    seeded = seed_project(github, repo)
    await onboarding.onboard(rt, repo[0], repo[1]["full_name"])
    return seeded
