"""First run: registering the GitHub App through GitHub's manifest flow, from `app.yml`, and
storing its credentials so the running server uses them at once."""
