"""GitHub's REST API description, trimmed to the operations the fake GitHub implements: the
committed subset (`github-rest-api.json`), the script that regenerates it from the npm package
`@octokit/openapi` (`regenerate.py`), and the checks the fake runs on every request
(`description.py`)."""
