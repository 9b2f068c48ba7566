"""The Prometheus metrics Dispatch exports at `/metrics`."""

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "dispatch_webhooks_total", "Inbound webhooks by source and outcome", ["source", "outcome"]
)
DELIVERIES = Counter(
    "dispatch_deliveries_processed_total",
    "Delivery attempts by outcome: processed, retry (an attempt failed), failed (for good)",
    ["outcome"],
)
HANDLER_SECONDS = Histogram(
    "dispatch_delivery_seconds",
    "Time to process one delivery",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
