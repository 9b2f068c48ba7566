"""Issues as state: the label set and its rules (one status, one priority), the issue cache kept
fresh by webhooks, backfill and reconcile, and the per-repository `.github/dispatch.yml`."""
