"""A customer of an installation whose repository the App knows (the portal lists only issues
of the installation's current repositories), and issues put into the cache as their webhooks
would put them."""

from __future__ import annotations

import pytest

from app.installations import service as installations
from app.portal import customers
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, github, oidc):
    # Many requests come from one test client address; tests/portal/test_rate_limits.py checks
    # the limits themselves.
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        portal_rate_per_address=100_000,
        portal_rate_per_token=100_000,
    )


@pytest.fixture
async def installed(database, github, repo):
    installation, repository = repo
    await installations.upsert_installation({"id": installation, "account": {"login": "octo-org"}})
    await installations.add_repositories(installation, [repository])
    return repo


@pytest.fixture
async def acme(installed):
    installation, _ = installed
    customer, token = await customers.create(
        installation, "Acme Corp", slug="acme", color="#d73a4a", logo_url=None
    )
    return customer, token
