"""Per-repository configuration: `.github/dispatch.yml` on the default branch.

Read through the contents API and cached in Postgres by blob sha; re-read when a push to the
default branch touches the file. An invalid file never breaks the repository: the defaults stay in
force for everything except commands, which answer with the validation error.

Example (every key is optional):

    permissions:          # minimum permission per verb: read, triage, write, maintain, admin
      investigate: triage
      approve: maintain
    allowed_bots: ["renovate[bot]"]   # bots whose commands run, quoted (others are ignored)
    workflows:
      default: dispatch-agent.yml     # the agent workflow file for every mode...
      implement: dispatch-implement.yml   # ...or per mode
      ref: main                       # branch the workflow runs on (default: default branch)
    budgets:
      daily_spawns: {investigate: 5, implement: 3}
      max_concurrent: {investigate: 2}
      daily_cost_usd: 20
      max_cost_per_run_usd: 3
      cooldown_hours: 6
    duplicates:
      threshold: 0.3                  # rank score (cosine less density) for "possible duplicate"
    plans:
      require_approval: true          # implement refuses without an approved plan
      allow_self_approval: false      # the requester of a plan may not approve it
    auto_dispatch:                    # start a run when an issue matches, once per issue
      - when: {labels: [status/ready, type/bug]}
        mode: investigate
    portal:
      show_body: false                # customers see issue bodies in the portal (never alerts')
    qa:
      allow_forks: false              # QA may check pull requests from forks (their code runs
                                      # with the repository's Anthropic key)
    follow_ups:
      on_changes_requested: false     # a review requesting changes (by a writer) on a pull
                                      # request a Dispatch run opened starts a `revise` run
      any_pr: false                   # `revise` may work on pull requests Dispatch did not open
"""

from __future__ import annotations

import logging
import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.audit import log as audit
from app.db import engine
from app.github import rest
from app.github.permissions import Permission
from app.github.repo import Repo
from app.modes import RULE_MODES, Mode
from app.runtime import Runtime

log = logging.getLogger(__name__)

CONFIG_PATH = ".github/dispatch.yml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_WORKFLOW_FILE = re.compile(r"^(?:[A-Za-z0-9._-]+\.ya?ml|[0-9]+)$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def valid_ref(ref: str) -> bool:
    """git's ref-format rules (`git check-ref-format --branch`), so a ref cannot smuggle a path
    or a query into an API call."""
    if not ref or len(ref) > 255 or ref == "@" or ref.startswith(("-", "/")):
        return False
    if ref.endswith(("/", ".", ".lock")) or _REF_FORBIDDEN.search(ref):
        return False
    return all(part and not part.startswith(".") for part in ref.split("/"))


class Workflows(_Strict):
    default: str = "dispatch-agent.yml"
    investigate: str | None = None
    implement: str | None = None
    qa: str | None = None
    research: str | None = None
    auto_investigate: str | None = None
    revise: str | None = None
    ref: str | None = None

    @field_validator(
        "default", "investigate", "implement", "qa", "research", "auto_investigate", "revise"
    )
    @classmethod
    def _workflow_file(cls, value: str | None) -> str | None:
        if value is not None and not _WORKFLOW_FILE.match(value):
            raise ValueError(
                "a workflow is a file name in .github/workflows (like dispatch-agent.yml) or a "
                "workflow id"
            )
        return value

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None and not valid_ref(value):
            raise ValueError("not a valid branch name")
        return value

    def for_mode(self, mode: str) -> str:
        return getattr(self, mode, None) or self.default


class Budgets(_Strict):
    daily_spawns: dict[Mode, int] = Field(default_factory=dict)
    max_concurrent: dict[Mode, int] = Field(default_factory=dict)
    daily_cost_usd: float | None = Field(default=None, ge=0)
    max_cost_per_run_usd: float | None = Field(default=None, ge=0)
    cooldown_hours: float | None = Field(default=None, ge=0)


class Duplicates(_Strict):
    threshold: float | None = Field(default=None, gt=0, le=1)


class Plans(_Strict):
    require_approval: bool = True
    allow_self_approval: bool = False


class QA(_Strict):
    # A fork's pull request is anyone's code: checking it runs that code next to the
    # repository's Anthropic key. Off unless the repository says so.
    allow_forks: bool = False


class AutoDispatchWhen(_Strict):
    labels: list[str] = Field(min_length=1)


class FollowUps(_Strict):
    # A review that requests changes, by someone with write permission, on a pull request a
    # Dispatch run opened, starts a `revise` run on it.
    on_changes_requested: bool = False
    # `revise` (the command, and reviews when on) may work on any pull request of this
    # repository's own branches, not only those a Dispatch run opened.
    any_pr: bool = False


class AutoDispatchRule(_Strict):
    when: AutoDispatchWhen
    mode: Mode

    @field_validator("mode")
    @classmethod
    def _rule_mode(cls, value: Mode) -> Mode:
        if value not in RULE_MODES:
            raise ValueError(
                f"a rule cannot start {value.value}: a revision starts from a review "
                "(`follow_ups: {on_changes_requested: true}`) or `/dispatch revise`"
            )
        return value


class Portal(_Strict):
    show_body: bool = False


class RepoConfig(_Strict):
    permissions: dict[str, str] = Field(default_factory=dict)
    allowed_bots: list[str] = Field(default_factory=list)
    workflows: Workflows = Field(default_factory=Workflows)
    budgets: Budgets = Field(default_factory=Budgets)
    duplicates: Duplicates = Field(default_factory=Duplicates)
    plans: Plans = Field(default_factory=Plans)
    auto_dispatch: list[AutoDispatchRule] = Field(default_factory=list)
    portal: Portal = Field(default_factory=Portal)
    qa: QA = Field(default_factory=QA)
    follow_ups: FollowUps = Field(default_factory=FollowUps)

    @field_validator("permissions")
    @classmethod
    def _levels(cls, value: dict[str, str]) -> dict[str, str]:
        for verb, level in value.items():
            Permission.parse(level)
            if not verb.isidentifier():
                raise ValueError(f"{verb!r} is not a verb")
        return {verb.lower(): level for verb, level in value.items()}

    def permission_for(self, verb: str) -> Permission | None:
        level = self.permissions.get(verb)
        return Permission.parse(level) if level else None

    def bot_allowed(self, login: str) -> bool:
        return login.lower() in {bot.lower() for bot in self.allowed_bots}


class LoadedConfig(BaseModel):
    """The config in force and, if the file is invalid, why (commands answer with it)."""

    config: RepoConfig = Field(default_factory=RepoConfig)
    error: str | None = None
    sha: str | None = None


def parse(text: str) -> RepoConfig:
    """Validate the file's text; raises ValueError with a readable message."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{CONFIG_PATH} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{CONFIG_PATH} must be a mapping of keys to values")
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"{CONFIG_PATH} is invalid: {problems}") from None


async def load(rt: Runtime, installation_id: int, repository: str) -> LoadedConfig:
    """The cached config, fetched from GitHub the first time a repository is seen."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT sha, config, error FROM repo_config WHERE lower(repository) = lower($1)",
            repository,
        )
    if row is not None:
        return LoadedConfig(
            config=RepoConfig.model_validate(row["config"] or {}),
            error=row["error"],
            sha=row["sha"],
        )
    return await refresh(rt, installation_id, repository)


async def cached(repository: str) -> RepoConfig:
    """The config in force as far as the cache knows, without asking GitHub: the defaults for a
    repository never read (or whose file is invalid). For pages that must not call GitHub."""
    async with engine.connection() as connection:
        stored = await connection.fetchval(
            "SELECT config FROM repo_config WHERE lower(repository) = lower($1)", repository
        )
    return RepoConfig.model_validate(stored or {})


async def refresh(rt: Runtime, installation_id: int, repository: str) -> LoadedConfig:
    client = rt.github.installation(installation_id)
    found = await rest.file_content(client, repository, CONFIG_PATH)
    if found is None:
        loaded = LoadedConfig()
    else:
        try:
            loaded = LoadedConfig(config=parse(found.text), sha=found.sha)
        except ValueError as exc:
            loaded = LoadedConfig(error=str(exc), sha=found.sha)
    async with engine.connection() as connection:
        await connection.execute(
            """
            INSERT INTO repo_config (repository, sha, config, error, fetched_at)
            VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (repository) DO UPDATE SET sha = EXCLUDED.sha, config = EXCLUDED.config,
                error = EXCLUDED.error, fetched_at = now()
            """,
            Repo.of(repository).key,
            loaded.sha,
            loaded.config.model_dump(mode="json") if loaded.error is None else {},
            loaded.error,
        )
    if loaded.error:
        log.warning(
            "invalid repository config", extra={"repository": repository, "error": loaded.error}
        )
        await audit.record(
            actor="dispatch",
            action="config.invalid",
            target=f"{repository}:{CONFIG_PATH}",
            repository=repository,
            installation_id=installation_id,
            after={"sha": loaded.sha},
            outcome=audit.Outcome.REFUSED,
            reason=loaded.error,
        )
    return loaded


def push_touches_config(payload: dict[str, Any]) -> bool:
    repository = payload.get("repository") or {}
    default = repository.get("default_branch") or repository.get("master_branch")
    if default and payload.get("ref") != f"refs/heads/{default}":
        return False
    for commit in payload.get("commits") or []:
        for key in ("added", "modified", "removed"):
            if CONFIG_PATH in (commit.get(key) or []):
                return True
    head = payload.get("head_commit") or {}
    return any(CONFIG_PATH in (head.get(key) or []) for key in ("added", "modified", "removed"))
