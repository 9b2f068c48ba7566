"""Installations of the App and the repositories each can see, kept true by the `installation`
and `installation_repositories` webhooks."""
