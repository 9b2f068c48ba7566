"""What the fault suite shares: settings that make failed attempts wait (time is moved on with
`fast_forward`, never slept), a GitHub client that gives up on a silent request in a quarter
of a second, the fake GitHub on the app's clock, and the figures each run reports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_settings

GRAFANA_TOKEN = "grafana-fault-token"

# One row per fault: what was sent and how it was answered once GitHub recovered.
FIGURES: list[dict[str, Any]] = []


@pytest.fixture
def settings(request, tmp_path, github, oidc, clock):  # type: ignore[no-untyped-def]
    github.clock = clock
    fault = getattr(getattr(request.node, "callspec", None), "params", {}).get("fault")
    # Short for the fault of timeouts (the fake holds each request until the client gives up);
    # for the others long enough that a busy machine's slow answer is not taken for one.
    timeout = 0.25 if getattr(fault, "name", None) == "timeouts" else 3.0
    return make_settings(
        tmp_path,
        github,
        dispatch_oidc_issuer=oidc.url,
        delivery_retry_base_seconds=30.0,
        github_max_retries=1,
        github_timeout_seconds=timeout,
        dispatch_alerts_repo="octo-org/widgets",
        grafana_webhook_token=GRAFANA_TOKEN,
        # Alerts open issues; no agent is spent on them here.
        daily_spawn_budget_auto_investigate=0,
    )


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not FIGURES:
        return
    terminalreporter.section("fault suite")
    columns = (
        "fault",
        "commands sent",
        "answered once",
        "answered twice",
        "duplicate comments",
        "👀 sent again",
        "deliveries sent",
        "lost deliveries",
        "requests refused",
    )
    terminalreporter.write_line(" | ".join(columns))
    for row in FIGURES:
        terminalreporter.write_line(" | ".join(str(row[c]) for c in columns))
