"""What one running Dispatch process holds and hands to handlers and jobs: its settings, the App
credentials, the GitHub clients, the signer, the clock and per-process caches. Built once by
`server` or `cli`, never global."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.agents.oidc import OIDCVerifier
from app.clock import Clock, SystemClock
from app.commands.permissions import PermissionCache
from app.config import Settings
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from app.search.embeddings import EmbeddingProvider, provider_from_settings
from app.signing import Signer, load_secret_key


@dataclass
class Runtime:
    settings: Settings
    credentials: CredentialStore
    github: GitHubClients
    signer: Signer
    oidc: OIDCVerifier
    clock: Clock = field(default_factory=SystemClock)
    permissions: PermissionCache = field(default_factory=PermissionCache)
    embeddings: EmbeddingProvider | None = None

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        credentials = CredentialStore(settings)
        return cls(
            settings=settings,
            credentials=credentials,
            github=GitHubClients(settings, credentials),
            signer=Signer(load_secret_key(settings)),
            oidc=OIDCVerifier(settings.dispatch_oidc_issuer, settings.oidc_audience),
            clock=clock or SystemClock(),
            embeddings=provider_from_settings(settings),
        )

    async def close(self) -> None:
        await self.github.close()
