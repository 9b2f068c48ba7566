"""githubkit clients: as the App (JWT) and per installation (installation tokens, cached by
githubkit until a minute before they expire), all against `GITHUB_API_URL`.

Every client shares one HTTP connection pool and retries within bounds (see `retry.py`); each
installation's client is paced through the database, with every process's (see `pacing.py`),
and its answers are read for rate limits on the way back. Request bodies are not validated
client-side: githubkit would otherwise drop fields it does not know yet (`return_run_details`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from githubkit import AppAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.throttling import LocalThrottler

from app import __version__
from app.config import Settings
from app.github import rest, tls
from app.github.credentials import AppCredentials, CredentialStore
from app.github.pacing import InstallationPacer
from app.github.retry import BoundedRetry

USER_AGENT = f"Dispatch/{__version__} (+https://github.com/dispatch-app)"


class GitHubAppNotConfigured(RuntimeError):
    """The App has no credentials yet: register it at /setup or set GITHUB_APP_ID and friends."""


class _SharedTransport(httpx.AsyncBaseTransport):
    """githubkit opens an httpx client per call and closes it after; the pool must outlive it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(
            verify=tls.context(),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:  # closed by GitHubClients.close(), not per call
        return None


class _InstallationTransport(_SharedTransport):
    """The shared pool, telling an installation's pacer what each answer says about limits."""

    def __init__(self, shared: _SharedTransport, pacer: InstallationPacer) -> None:
        self.inner = shared.inner
        self.pacer = pacer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await self.pacer.observe(request, response)
        return response


class GitHubClients:
    def __init__(
        self,
        settings: Settings,
        credentials: CredentialStore,
        *,
        pace_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        # The pacers read the database's clock (one clock for every process) unless a clock is
        # given: tests that move the app's clock move GitHub's limits with it.
        self._pace_clock = pace_clock
        self._transport = _SharedTransport()
        self._retry = BoundedRetry(
            settings.github_max_retries, timedelta(seconds=settings.github_max_retry_wait_seconds)
        )
        self._installations: dict[tuple[int, int], GitHub] = {}
        self._app: tuple[int, GitHub] | None = None
        self._slug: str | None = None

    def _build(self, auth, throttler=None, transport=None) -> GitHub:  # type: ignore[no-untyped-def]
        return GitHub(
            auth,
            base_url=self.settings.github_api_url + "/",
            user_agent=USER_AGENT,
            timeout=httpx.Timeout(
                self.settings.github_timeout_seconds,
                connect=min(10.0, self.settings.github_timeout_seconds),
            ),
            async_transport=transport or self._transport,
            http_cache=False,
            auto_retry=self._retry,
            throttler=throttler or LocalThrottler(100),
            rest_api_validate_body=False,
        )

    def _credentials(self) -> AppCredentials:
        creds = self.credentials.current()
        if creds is None:
            raise GitHubAppNotConfigured(
                "the GitHub App is not configured: open /setup or set GITHUB_APP_ID, "
                "GITHUB_PRIVATE_KEY and GITHUB_WEBHOOK_SECRET"
            )
        return creds

    def app(self) -> GitHub:
        """A client authenticated as the App itself (JWT): /app/... endpoints."""
        creds = self._credentials()
        if self._app is None or self._app[0] != creds.app_id:
            strategy = AppAuthStrategy(
                str(creds.app_id), creds.private_key, creds.client_id, creds.client_secret
            )
            self._app = (creds.app_id, self._build(strategy))
        return self._app[1]

    def installation(self, installation_id: int) -> GitHub:
        """A client acting as one installation, paced with every process's (`pacing.py`)."""
        creds = self._credentials()
        key = (creds.app_id, installation_id)
        client = self._installations.get(key)
        if client is None:
            strategy = AppAuthStrategy(
                str(creds.app_id), creds.private_key, creds.client_id, creds.client_secret
            ).as_installation(installation_id)
            pacer = InstallationPacer(
                installation_id,
                per_minute=self.settings.github_content_per_minute,
                per_hour=self.settings.github_content_per_hour,
                max_wait=self.settings.github_max_retry_wait_seconds,
                clock=self._pace_clock,
            )
            client = self._installations[key] = self._build(
                strategy, pacer, _InstallationTransport(self._transport, pacer)
            )
        return client

    async def bot_login(self) -> str:
        """The login the App comments as (`<slug>[bot]`); asks GitHub once if the slug is unset."""
        creds = self._credentials()
        if creds.slug:
            return f"{creds.slug}[bot]"
        if self._slug is None:
            self._slug = str((await rest.get_app(self.app()))["slug"])
        return f"{self._slug}[bot]"

    def anonymous(self) -> GitHub:
        """No credentials: the manifest conversion during /setup."""
        return self._build(UnauthAuthStrategy())

    async def close(self) -> None:
        await self._transport.inner.aclose()

    async def is_self(self, login: str | None) -> bool:
        """Whether `login` is this App's bot account (Dispatch never reacts to itself)."""
        return bool(login) and str(login).lower() == (await self.bot_login()).lower()
