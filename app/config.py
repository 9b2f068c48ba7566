"""Every setting, read once from the environment (12-factor), typed and validated.

Nothing else in `app/` reads `os.environ`. `load_settings()` turns the environment into a frozen
`Settings`; a bad value raises `ConfigError` whose message names the variable and what is wrong,
which the CLI prints without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.modes import Mode

# Piccolo's migration runner finds its engine through this module name.
os.environ.setdefault("PICCOLO_CONF", "app.db.piccolo_conf")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Settings(BaseSettings):
    """The whole configuration of one Dispatch process. Field name = environment variable."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=False, extra="ignore", env_ignore_empty=True
    )

    # --- where things live
    database_url: str | None = None
    dispatch_data_dir: Path = Path(".dispatch")
    dispatch_url: str = "http://localhost:3000"
    dispatch_secret_key: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- the GitHub App
    github_app_id: int | None = None
    github_app_slug: str | None = None
    github_private_key: str | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: str | None = None
    github_api_url: str = "https://api.github.com"
    github_web_url: str = "https://github.com"
    github_max_retries: int = Field(3, ge=0, le=10)
    github_max_retry_wait_seconds: float = Field(60.0, ge=0)
    github_content_per_minute: int = Field(80, ge=1)
    github_content_per_hour: int = Field(500, ge=1)

    # --- database and queue
    database_pool_size: int = Field(20, ge=2, le=500)
    worker_concurrency: int = Field(10, ge=1, le=500)
    job_heartbeat_seconds: float = Field(30.0, gt=0)
    delivery_max_attempts: int = Field(5, ge=1, le=50)
    delivery_retry_base_seconds: float = Field(2.0, ge=0)
    delivery_sweep_schedule: str = "*/10 * * * *"
    reconcile_schedule: str = "17 * * * *"
    watchdog_schedule: str = "* * * * *"
    fix_verification_schedule: str = "*/5 * * * *"
    embedding_backfill_schedule: str = "41 * * * *"
    portal_rate_prune_schedule: str = "*/5 * * * *"

    # --- webhook intake for alert sources
    grafana_webhook_token: str | None = None
    sentry_client_secret: str | None = None
    dispatch_alerts_repo: str | None = None
    dispatch_alerts_repo_map: str | None = None

    # --- agents: OIDC and spawn gates
    dispatch_oidc_issuer: str = "https://token.actions.githubusercontent.com"
    dispatch_oidc_audience: str | None = None
    spawn_kill_switch: bool = False
    max_concurrent_spawns_investigate: int = Field(3, ge=0)
    max_concurrent_spawns_implement: int = Field(2, ge=0)
    max_concurrent_spawns_qa: int = Field(2, ge=0)
    max_concurrent_spawns_research: int = Field(2, ge=0)
    max_concurrent_spawns_auto_investigate: int = Field(2, ge=0)
    daily_spawn_budget_investigate: int = Field(20, ge=0)
    daily_spawn_budget_implement: int = Field(10, ge=0)
    daily_spawn_budget_qa: int = Field(10, ge=0)
    daily_spawn_budget_research: int = Field(10, ge=0)
    daily_spawn_budget_auto_investigate: int = Field(10, ge=0)
    daily_cost_limit_usd: float = Field(50.0, ge=0)
    max_agent_cost_per_run: float = Field(5.0, ge=0)
    spawn_cooldown_hours: float = Field(6.0, ge=0)
    min_event_count_to_spawn: int = Field(1, ge=1)
    spawn_delay_minutes: float = Field(0.0, ge=0)
    run_silence_timeout_minutes: float = Field(20.0, gt=0)
    stream_token_days: float = Field(7.0, gt=0)

    # --- search and remediation
    dispatch_embeddings: Literal["local", "openai", "off"] = "local"
    embeddings_url: str | None = None
    embeddings_api_key: str | None = None
    embeddings_model: str = "text-embedding-3-small"
    fix_verification_hours: float = Field(48.0, gt=0)

    # --- the customer portal: requests per minute, counted in Postgres (every replica shares them)
    portal_rate_per_token: int = Field(600, ge=1)
    portal_rate_per_address: int = Field(120, ge=1)

    @field_validator("dispatch_url", "github_api_url", "github_web_url", "dispatch_oidc_issuer")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("github_private_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Secret stores and .env files often hold the PEM on one line with literal "\n".
        pem = value.replace("\\n", "\n").strip() + "\n"
        _check_pem(pem)
        return pem

    @field_validator("dispatch_secret_key")
    @classmethod
    def _secret_length(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError("must be at least 32 characters (try: openssl rand -hex 32)")
        return value

    @field_validator("dispatch_alerts_repo")
    @classmethod
    def _repo_name(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError("must be owner/name")
        return value

    @field_validator("dispatch_alerts_repo_map")
    @classmethod
    def _repo_map(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_repo_map(value)
        return value

    @model_validator(mode="after")
    def _app_is_whole(self) -> Settings:
        if self.github_private_key_path is not None and self.github_private_key is None:
            path = self.github_private_key_path
            try:
                pem = path.read_text()
            except OSError as exc:
                raise ValueError(
                    f"GITHUB_PRIVATE_KEY_PATH: cannot read {path}: {exc.strerror}"
                ) from None
            try:
                _check_pem(pem)
            except ValueError as exc:
                raise ValueError(f"GITHUB_PRIVATE_KEY_PATH: {path}: {exc}") from None
            object.__setattr__(self, "github_private_key", pem)
        given = {
            "GITHUB_APP_ID": self.github_app_id is not None,
            "GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH)": self.github_private_key is not None,
            "GITHUB_WEBHOOK_SECRET": self.github_webhook_secret is not None,
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, ok in given.items() if not ok)
            raise ValueError(f"the GitHub App is partly configured: set {missing} as well")
        return self

    # --- derived values

    @property
    def oidc_audience(self) -> str:
        return self.dispatch_oidc_audience or self.dispatch_url

    def alerts_repo_for(self, source: str) -> str | None:
        """Where alerts from `source` become issues: the per-source map, else the default."""
        mapping = _parse_repo_map(self.dispatch_alerts_repo_map or "")
        return mapping.get(source.lower()) or self.dispatch_alerts_repo

    def spawn_concurrency(self, mode: Mode) -> int:
        return int(getattr(self, f"max_concurrent_spawns_{Mode(mode).value}"))

    def spawn_budget(self, mode: Mode) -> int:
        return int(getattr(self, f"daily_spawn_budget_{Mode(mode).value}"))


def _parse_repo_map(text: str) -> dict[str, str]:
    """`source=owner/name` pairs separated by commas or newlines."""
    mapping: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        source, sep, repo = item.partition("=")
        if not sep or not source.strip() or repo.strip().count("/") != 1:
            raise ValueError(f"entries look like billing=owner/name; {item.strip()!r} does not")
        mapping[source.strip().lower()] = repo.strip()
    return mapping


def _check_pem(pem: str) -> None:
    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("is not a PEM-encoded private key without a passphrase") from None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; keyword overrides (used by tests) win over the environment."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not field:
            lines.append(message)
            continue
        given = error.get("input")
        shown = "" if "key" in field or "secret" in field or given is None else f" (got {given!r})"
        lines.append(f"{field.upper()}: {message}{shown}")
    return "; ".join(lines)
