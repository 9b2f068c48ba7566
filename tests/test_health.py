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
