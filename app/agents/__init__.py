"""Agent runs: the one way to start a run (`spawn.request_run`), spawn gates and budgets,
workflow dispatch, the run lifecycle, plans and their review, the agent API and the run viewer
(live output over Server-Sent Events)."""
