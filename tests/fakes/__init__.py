"""Stateful fakes of the services Dispatch cannot reach from tests: GitHub, the Actions OIDC issuer,
Anthropic."""
