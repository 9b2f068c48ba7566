"""Bounded storage: what Dispatch keeps, for how long, and what it weighs. Each area prunes its
own tables (`app/intake/retention.py`, `app/agents/retention.py`, `app/audit/log.py`,
`app/queue.py`); this room runs them in order from the schedule or `dispatch prune`, and reports
table sizes and the age of the oldest row kept to `/metrics`."""
