"""The GitHub App's identity and secrets: from the environment, or from the file `/setup`
writes into the data directory (mode 0600) when the App is registered through the manifest flow.

The store re-reads the file when it changes, so a server and a separate worker both pick up an
App registered through `/setup` without a restart.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from app.config import Settings
from app.logs import register_secret

CREDENTIALS_FILE = "github-app.json"


@dataclass(frozen=True)
class AppCredentials:
    app_id: int
    private_key: str
    webhook_secret: str
    slug: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    html_url: str | None = None
    owner: str | None = None

    @property
    def bot_login(self) -> str | None:
        return f"{self.slug}[bot]" if self.slug else None


class CredentialStore:
    """Where the current credentials come from. Environment wins over the setup file."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._path = settings.dispatch_data_dir / CREDENTIALS_FILE
        self._from_env = self._load_env()
        self._cached: AppCredentials | None = None
        self._cached_mtime: float | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _load_env(self) -> AppCredentials | None:
        s = self._settings
        if s.github_app_id is None or s.github_private_key is None or not s.github_webhook_secret:
            return None
        return AppCredentials(
            app_id=s.github_app_id,
            private_key=s.github_private_key,
            webhook_secret=s.github_webhook_secret,
            slug=s.github_app_slug,
        )

    def current(self) -> AppCredentials | None:
        creds = self._from_env if self._from_env is not None else self._load_file()
        if creds is not None:
            for secret in (creds.private_key, creds.webhook_secret, creds.client_secret):
                register_secret(secret)
        return creds

    def _load_file(self) -> AppCredentials | None:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return None
        if self._cached is not None and mtime == self._cached_mtime:
            return self._cached
        data = json.loads(self._path.read_text())
        self._cached = AppCredentials(**data)
        self._cached_mtime = mtime
        return self._cached

    @property
    def configured(self) -> bool:
        return self.current() is not None

    def save(self, credentials: AppCredentials) -> None:
        """Write the setup file with mode 0600 (it holds the private key), whole or not at all,
        and only if there is none yet: of two registrations racing, one is kept and the other
        gets AlreadyConfigured."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f".{self._path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(asdict(credentials), handle, indent=2)
            try:
                os.link(tmp, self._path)  # fails if the file exists: an exclusive create
            except FileExistsError:
                raise AlreadyConfigured("a GitHub App was registered already") from None
        finally:
            tmp.unlink(missing_ok=True)


class AlreadyConfigured(Exception):
    """Credentials exist; registration does not replace them."""
