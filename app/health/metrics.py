"""The Prometheus metrics Dispatch exports at `/metrics`."""

from prometheus_client import Counter, Gauge, Histogram

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

# Storage (measured at most once a minute when /metrics is read; see app/retention/service.py).
TABLE_BYTES = Gauge(
    "dispatch_table_size_bytes",
    "Bytes on disk of each table, with its indexes and TOAST",
    ["table"],
)
DATABASE_BYTES = Gauge("dispatch_database_size_bytes", "Bytes on disk of the whole database")
OLDEST_KEPT_AGE = Gauge(
    "dispatch_oldest_kept_age_seconds",
    "Age of the oldest row kept, per kind of retained data (run_logs: since the run ended)",
    ["data"],
)
