"""Every setting, read once from the environment (12-factor), typed and validated.

Nothing else in `app/` reads `os.environ`. `load_settings()` turns the environment into a frozen
`Settings`; a bad value raises `ConfigError` whose message names the variable and what is wrong,
which the CLI prints without a traceback.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.logs import register_secret
from app.modes import Mode

# Piccolo's migration runner finds its engine through this module name.
os.environ.setdefault("PICCOLO_CONF", "app.db.piccolo_conf")

# How long after a delivery GitHub lets anyone redeliver it: 3 days on github.com, 7 on GitHub
# Enterprise Server. A redelivery carries the same guid, so the journal must know the guid at
# least this long to answer it as a duplicate instead of running its handlers twice.
REDELIVERY_WINDOW_DAYS = 7


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it, and
    `problems` lists each variable's problem on its own."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


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
    # A GitHub request that has not answered after this long is abandoned (and retried later).
    github_timeout_seconds: float = Field(30.0, gt=0)
    # While GitHub is unavailable (5xx, timeouts, lost connections, rate limits), deliveries and
    # jobs keep retrying this long, however many attempts that takes; other errors get
    # DELIVERY_MAX_ATTEMPTS.
    github_outage_retry_hours: float = Field(24.0, ge=0)

    # --- database and queue
    database_pool_size: int = Field(20, ge=2, le=500)
    worker_concurrency: int = Field(10, ge=1, le=500)
    job_heartbeat_seconds: float = Field(30.0, gt=0)
    delivery_max_attempts: int = Field(5, ge=1, le=50)
    delivery_retry_base_seconds: float = Field(2.0, ge=0)
    # The longest wait between two attempts of a delivery or job (backoff doubles up to it).
    delivery_retry_max_seconds: float = Field(900.0, gt=0)
    # How long an idle worker waits for a job notification before looking at the queue again
    # (retries and delayed jobs become due without a notification).
    worker_poll_seconds: float = Field(5.0, gt=0)
    delivery_sweep_schedule: str = "*/10 * * * *"
    reconcile_schedule: str = "17 * * * *"
    watchdog_schedule: str = "* * * * *"
    fix_verification_schedule: str = "*/5 * * * *"
    embedding_backfill_schedule: str = "41 * * * *"
    # After a stop signal, running jobs and requests get this long before they are handed back
    # to the queue (or cut short); under Kubernetes' default 30 s termination grace period.
    shutdown_grace_seconds: float = Field(25.0, ge=0, le=3600)
    claim_expiry_schedule: str = "* * * * *"

    # --- webhook intake for alert sources
    grafana_webhook_token: str | None = None
    sentry_client_secret: str | None = None
    dispatch_alerts_repo: str | None = None
    dispatch_alerts_repo_map: str | None = None
    # Links in alerts (dashboards, Sentry issues) are clickable only on these hosts (and their
    # subdomains), and only over https; others are shown as text.
    alert_link_hosts: str = "grafana.net,grafana.com,sentry.io"

    # --- agents: OIDC and spawn gates
    dispatch_oidc_issuer: str = "https://token.actions.githubusercontent.com"
    dispatch_oidc_audience: str | None = None
    spawn_kill_switch: bool = False
    max_concurrent_spawns_investigate: int = Field(3, ge=0)
    max_concurrent_spawns_implement: int = Field(2, ge=0)
    max_concurrent_spawns_qa: int = Field(2, ge=0)
    max_concurrent_spawns_research: int = Field(2, ge=0)
    max_concurrent_spawns_auto_investigate: int = Field(2, ge=0)
    max_concurrent_spawns_revise: int = Field(2, ge=0)
    daily_spawn_budget_investigate: int = Field(20, ge=0)
    daily_spawn_budget_implement: int = Field(10, ge=0)
    daily_spawn_budget_qa: int = Field(10, ge=0)
    daily_spawn_budget_research: int = Field(10, ge=0)
    daily_spawn_budget_auto_investigate: int = Field(10, ge=0)
    daily_spawn_budget_revise: int = Field(10, ge=0)
    daily_cost_limit_usd: float = Field(50.0, ge=0)
    max_agent_cost_per_run: float = Field(5.0, ge=0)
    spawn_cooldown_hours: float = Field(6.0, ge=0)
    min_event_count_to_spawn: int = Field(1, ge=1)
    spawn_delay_minutes: float = Field(0.0, ge=0)
    run_silence_timeout_minutes: float = Field(20.0, gt=0)
    stream_token_days: float = Field(7.0, gt=0)
    stream_viewers_per_run: int = Field(500, ge=1)

    # --- claims: ready issues as a queue for any harness
    claim_lease_minutes: float = Field(30.0, gt=0)

    # --- search and remediation
    dispatch_embeddings: Literal["local", "openai", "off"] = "local"
    embeddings_url: str | None = None
    embeddings_api_key: str | None = None
    embeddings_model: str = "text-embedding-3-small"
    fix_verification_hours: float = Field(48.0, gt=0)

    # --- the customer portal: requests per minute, counted in Postgres (every replica shares them)
    portal_rate_per_token: int = Field(600, ge=1)
    portal_rate_per_address: int = Field(120, ge=1)

    # --- the orchestrator: missions planned by Claude (app/orchestrator)
    anthropic_api_key: str | None = None
    # As the anthropic SDK reads it; unset: the SDK's default endpoint.
    anthropic_base_url: str | None = None
    orchestrator_model: str = "claude-sonnet-5-5"
    orchestrator_max_tool_rounds: int = Field(10, ge=1, le=50)
    orchestrator_max_tokens: int = Field(8192, ge=256, le=64000)
    # What one mission's planning may spend; a mission that would take the installation's daily
    # cost budget past DAILY_COST_LIMIT_USD is refused before it starts.
    orchestrator_max_cost_usd: float = Field(2.0, gt=0)
    orchestrator_input_usd_per_mtok: float = Field(3.0, ge=0)
    orchestrator_output_usd_per_mtok: float = Field(15.0, ge=0)
    # Anthropic overloaded (529), rate limits (429), 5xx, unreachable: attempts and backoff base.
    orchestrator_attempts: int = Field(6, ge=1, le=20)
    orchestrator_retry_base_seconds: float = Field(15.0, ge=0)
    orchestrator_retry_max_seconds: float = Field(600.0, ge=0)
    orchestrator_timeout_seconds: float = Field(120.0, gt=0)

    # --- retention: how long what is kept (app/retention prunes it, in small batches)
    delivery_retention_days: int = Field(14, ge=1)
    delivery_row_retention_days: int = 90
    run_log_retention_days: int = Field(30, ge=1)
    queue_history_retention_days: int = Field(7, ge=1)
    spawn_decision_retention_days: int = Field(30, ge=1)
    audit_retention_days: int | None = Field(None, ge=1)
    prune_schedule: str = "*/15 * * * *"
    prune_batch_size: int = Field(500, ge=1, le=10_000)

    @field_validator(
        "dispatch_url",
        "github_api_url",
        "github_web_url",
        "dispatch_oidc_issuer",
        "anthropic_base_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
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
        return _no_placeholder(value)

    @field_validator("github_webhook_secret", "grafana_webhook_token", "sentry_client_secret")
    @classmethod
    def _shared_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("must be at least 16 characters (try: openssl rand -hex 20)")
        return _no_placeholder(value)

    @field_validator("delivery_row_retention_days")
    @classmethod
    def _guid_outlives_redelivery(cls, value: int) -> int:
        if value < REDELIVERY_WINDOW_DAYS:
            raise ValueError(
                f"must be at least {REDELIVERY_WINDOW_DAYS}: GitHub can redeliver a delivery for "
                f"{REDELIVERY_WINDOW_DAYS} days (GitHub Enterprise Server; 3 on github.com) and "
                "the journal must still know its guid to recognise the redelivery"
            )
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
        if self.delivery_row_retention_days < self.delivery_retention_days:
            raise ValueError(
                "DELIVERY_ROW_RETENTION_DAYS must be at least DELIVERY_RETENTION_DAYS (a "
                "delivery's row outlives its payload)"
            )
        return self

    # --- derived values

    @property
    def oidc_audience(self) -> str:
        return self.dispatch_oidc_audience or self.dispatch_url

    def alerts_repo_for(self, source: str) -> str | None:
        """Where alerts from `source` become issues: the per-source map, else the default."""
        mapping = _parse_repo_map(self.dispatch_alerts_repo_map or "")
        return mapping.get(source.lower()) or self.dispatch_alerts_repo

    @property
    def alert_hosts(self) -> list[str]:
        return [host.strip().lower() for host in self.alert_link_hosts.split(",") if host.strip()]

    def spawn_concurrency(self, mode: Mode) -> int:
        return int(getattr(self, f"max_concurrent_spawns_{Mode(mode).value}"))

    def spawn_budget(self, mode: Mode) -> int:
        return int(getattr(self, f"daily_spawn_budget_{Mode(mode).value}"))


_PLACEHOLDERS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "your-secret")


def _no_placeholder(value: str | None) -> str | None:
    if value is not None and any(word in value.lower() for word in _PLACEHOLDERS):
        raise ValueError("is still the template's placeholder; set a real secret")
    return value


# Names the first generation of Dispatch (the seed) read, and the settings they are now: still
# read (with a warning) so an upgrade does not silently drop an operator's limits. Its `error`
# mode is `auto_investigate` here.
SEED_ALIASES: dict[str, str] = {
    "MAX_CONCURRENT_SPAWNS_ERROR": "MAX_CONCURRENT_SPAWNS_AUTO_INVESTIGATE",
    "DAILY_SPAWN_BUDGET_ERROR": "DAILY_SPAWN_BUDGET_AUTO_INVESTIGATE",
}
# Under these prefixes a name Dispatch does not know is probably a misspelt setting.
CHECKED_PREFIXES = (
    "DISPATCH_",
    "SPAWN_",
    "GITHUB_",
    "MAX_CONCURRENT_SPAWNS_",
    "DAILY_SPAWN_BUDGET_",
)
# Names with those prefixes that are someone else's: GitHub Actions' default variables,
# Codespaces', the GitHub CLI's, and the agent workflow's (the reporter's).
FOREIGN_NAMES = frozenset(
    {
        *(
            f"GITHUB_{name}"
            for name in (
                "ACTION", "ACTION_PATH", "ACTION_REF", "ACTION_REPOSITORY", "ACTION_STATUS",
                "ACTIONS", "ACTOR", "ACTOR_ID", "BASE_REF", "ENV", "EVENT_NAME", "EVENT_PATH",
                "GRAPHQL_URL", "HEAD_REF", "JOB", "OUTPUT", "PATH", "REF", "REF_NAME",
                "REF_PROTECTED", "REF_TYPE", "REPOSITORY", "REPOSITORY_ID", "REPOSITORY_OWNER",
                "REPOSITORY_OWNER_ID", "RETENTION_DAYS", "RUN_ATTEMPT", "RUN_ID", "RUN_NUMBER",
                "SERVER_URL", "SHA", "STATE", "STEP_SUMMARY", "TRIGGERING_ACTOR", "WORKFLOW",
                "WORKFLOW_REF", "WORKFLOW_SHA", "WORKSPACE", "TOKEN", "USER", "CODESPACE_TOKEN",
                "CODESPACES", "CODESPACES_PORT_FORWARDING_DOMAIN", "ENTERPRISE_TOKEN",
                "HOST",
            )
        ),
        *(
            f"DISPATCH_{name}"
            for name in (
                "TOKEN", "AUDIENCE", "BACKOFF_BASE", "MODE", "BRANCH", "BASE_BRANCH",
                "ISSUE_NUMBER", "COST_CAP", "MAX_TURNS", "ALLOWED_TOOLS", "PR_TITLE",
                "CHECKOUT_SHA", "REPORTER_SHA256",
            )
        ),
    }
)  # fmt: skip


def known_variables() -> set[str]:
    """Every environment variable Dispatch reads as a setting."""
    return {name.upper() for name in Settings.model_fields}


def _aliased(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Settings given under a seed name, unless the current name is set too."""
    found: dict[str, Any] = {}
    for old, new in SEED_ALIASES.items():
        field = new.lower()
        if old in environ and new not in environ and field not in overrides:
            found[field] = environ[old]
    return found


def environment_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names in the environment that look like Dispatch settings but are not read as such: the
    seed's names (read, under their new name) and unknown names, with the closest known one."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if upper in SEED_ALIASES:
            new = SEED_ALIASES[upper]
            if new in environ:
                found.append(f"{name} is an old name of {new}, which is set too: {name} is ignored")
            else:
                found.append(f"{name} is an old name: read as {new}; rename it")
            continue
        if upper in known or upper in FOREIGN_NAMES or not upper.startswith(CHECKED_PREFIXES):
            continue
        closest = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f": did you mean {closest[0]}?" if closest else ""
        found.append(f"{name} is not a Dispatch setting and is ignored{hint}")
    return found


def warnings_for(settings: Settings) -> list[str]:
    """What is allowed but probably a mistake, for the operator to read at start-up."""
    found = []
    host = urlsplit(settings.dispatch_url).hostname or ""
    if settings.dispatch_url.startswith("http://") and host not in _LOCAL_HOSTS:
        found.append(
            f"DISPATCH_URL is {settings.dispatch_url}: webhooks, agent tokens and viewer links "
            "would cross the network unencrypted; use https:// for anything but a local trial"
        )
    return found


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


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
    if not _is_private_key(pem):
        raise ValueError("is not a PEM-encoded private key without a passphrase")


@functools.lru_cache(maxsize=4)
def _is_private_key(pem: str) -> bool:
    """Whether `pem` loads as a private key; remembered, because loading an RSA key checks it
    (about 40 ms) and settings are read again with the same key (the CLI, each test)."""
    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return False
    return True


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; keyword overrides (used by tests) win over the environment, and
    the seed's names (`SEED_ALIASES`) are read under their current names. Every secret among
    them is registered with the log scrubber."""
    try:
        settings = Settings(**{**_aliased(os.environ, overrides), **overrides})
    except ValidationError as exc:
        problems = _problems(exc)
        raise ConfigError("; ".join(problems), problems) from None
    for secret in (
        settings.dispatch_secret_key,
        settings.github_webhook_secret,
        settings.github_private_key,
        settings.grafana_webhook_token,
        settings.sentry_client_secret,
        settings.embeddings_api_key,
        settings.anthropic_api_key,
        urlsplit(settings.database_url).password if settings.database_url else None,
    ):
        register_secret(secret)
    return settings


def _problems(exc: ValidationError) -> list[str]:
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
    return lines
