"""Operating signals: liveness and readiness probes and Prometheus metrics."""
