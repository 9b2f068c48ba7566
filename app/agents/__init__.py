"""Agent runs: spawn gates and budgets, workflow dispatch, the run lifecycle, plans and their
review, the agent API and its OIDC authentication."""
