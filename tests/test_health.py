"""Probes and metrics say what operators need to know."""

from __future__ import annotations

from tests.harness import drain
from tests.webhooks import example, signed


async def test_metrics_count_webhooks_and_deliveries(rt, client, github):
    body, headers = signed(github.webhook_secret, "check_suite", example("check_suite/requested"))
    await client.post("/webhooks/github", content=body, headers=headers)
    await client.post("/webhooks/github", content=body, headers=headers)
    await client.post(
        "/webhooks/github", content=b"{}", headers={**headers, "x-hub-signature-256": "sha256=00"}
    )
    await drain(rt)

    text = (await client.get("/metrics")).text

    assert 'dispatch_webhooks_total{outcome="accepted",source="github"}' in text
    assert 'dispatch_webhooks_total{outcome="duplicate",source="github"}' in text
    assert 'dispatch_webhooks_total{outcome="bad_signature",source="github"}' in text


async def test_health_and_readiness(client):
    health = (await client.get("/healthz")).json()
    ready = await client.get("/readyz")

    assert health == {"ok": True, "database": "ok", "version": "0.1.0", "github_app": "configured"}
    assert ready.status_code == 200 and ready.json()["migrated"] is True


async def test_metrics_report_table_sizes_and_the_oldest_row_kept(rt, client, clock, github):
    body, headers = signed(github.webhook_secret, "check_suite", example("check_suite/requested"))
    await client.post("/webhooks/github", content=body, headers=headers)
    clock.advance(days=3)

    text = (await client.get("/metrics")).text

    sizes = _samples(text, "dispatch_table_size_bytes")
    ages = _samples(text, "dispatch_oldest_kept_age_seconds")
    assert sizes['table="delivery"'] > 8192 and sizes['table="log_chunk"'] >= 0
    assert 'table="pgqueuer_log"' in sizes and 'table="audit_log"' in sizes
    assert _samples(text, "dispatch_database_size_bytes")[""] > sum(sizes.values()) / 2
    # Measured on the app's clock: the delivery arrived three days ago.
    assert 3 * 86400 - 60 < ages['data="delivery_payloads"'] < 3 * 86400 + 60
    assert 3 * 86400 - 60 < ages['data="delivery_rows"'] < 3 * 86400 + 60
    assert ages['data="run_logs"'] == 0  # no run has ended


def _samples(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric in Prometheus text format."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels = line[len(name) :].split("}")[0].lstrip("{") if "{" in line else ""
            found[labels] = float(line.rsplit(" ", 1)[1])
    return found
