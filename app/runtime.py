"""What one running Dispatch process holds and hands to handlers and jobs: its settings, the App
credentials, the GitHub clients, the signer, the clock and the permission cache (its entries live
in Postgres, shared with the other processes). Built once by a composition root
(`app/worker.py`), never global."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.clock import Clock, SystemClock
from app.config import Settings
from app.github.clients import GitHubClients
from app.github.credentials import CredentialStore
from app.github.oidc import OIDCVerifier
from app.github.permissions import PermissionCache
from app.signing import Signer, load_secret_key


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into L2-normalised vectors of `dimensions` floats, one per text, in order
    (app/search has the implementations)."""

    name: str
    dimensions: int

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


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
    def build(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        embeddings: EmbeddingProvider | None = None,
    ) -> Runtime:
        credentials = CredentialStore(settings)
        clock = clock or SystemClock()
        # The system clock is the database's too; a test's movable clock paces GitHub as well.
        pace_clock = None if isinstance(clock, SystemClock) else clock.now
        return cls(
            settings=settings,
            credentials=credentials,
            github=GitHubClients(settings, credentials, pace_clock=pace_clock),
            signer=Signer(load_secret_key(settings), now=lambda: clock.now().timestamp()),
            oidc=OIDCVerifier(settings.dispatch_oidc_issuer, settings.oidc_audience),
            clock=clock,
            embeddings=embeddings,
        )

    async def close(self) -> None:
        await self.github.close()
