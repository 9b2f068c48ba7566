"""Live output, as a lower layer any area can use: log chunks stored in Postgres and announced
with NOTIFY, the per-process LISTEN bus that fans them out, and signed viewer links. It knows
nothing of runs' meaning; the run viewer (SSE endpoint and page) lives with the agents."""
