"""A stateful fake of GitHub's REST API (version 2026-03-10), served over real HTTP on loopback.

Dispatch talks to it through its normal githubkit client with `GITHUB_API_URL` pointing here, so a
test runs the real request path: App JWTs signed with the fake App's key, installation tokens,
URL-encoded label names, `Link` pagination, GitHub-shaped errors and rate-limit headers. Tests seed
state and assert outcomes directly on the object (labels, comments, reactions, workflow dispatches,
redeliveries).

It is as strict as GitHub's own API description (`tests/fakes/openapi/`): every request is checked
against the operation it is for (path and method, query parameters and their limits, the JSON body),
and what GitHub would refuse or ignore is recorded in `violations`; an exception inside the fake is
recorded in `server_errors`. The test harness fails the test during which either happened
(`take_problems()`). It answers like GitHub for what the description cannot say: installation
permissions (403 "Resource not accessible by integration"), deleted issues (410), bodies over
65,536 characters (422), dispatches of an unknown ref or undeclared inputs (422).

Faults, each for the next `n` matching requests (`method`, `path` as in `calls_to`; `n=None`: until
`clear_faults()`): `fail_next` (5xx), `rate_limit_next` (secondary limit: 403/429 + `retry-after`),
`timeout_next` (the request is held, then the connection dropped), `drop_next` (the connection is
closed without an answer); and `exhaust_primary_limit(reset_in=...)` (403/429 with
`x-ratelimit-remaining: 0` until `x-ratelimit-reset`, on `gh.clock`).

    with FakeGitHub() as gh:
        installation = gh.add_installation("octo-org")
        gh.add_repo(installation, "octo-org/widgets")
        gh.add_issue("octo-org/widgets", "Crash on save", labels=["status/ready"])
        ...  # point the app at gh.url
        assert gh.label_names("octo-org/widgets", 1) == ["status/in-progress"]

The server is uvicorn on its own event loop in a background thread; every request and every seed or
accessor call holds `gh.lock`, so the main thread can read and seed state while requests are served.

Ids (installations, repositories, issues, comments, ...) are unique in the whole process, across
fakes and `reset()`: githubkit caches installation tokens process-wide by (app id, installation
id), and reused ids would hand one fake's token to another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import string
import threading
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode

import httpx
import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.openapi.description import RestDescription, Violation
from tests.fakes.serving import LoopbackServer

API_VERSION = "2026-03-10"
# What GitHub assumes when a request sends no X-GitHub-Api-Version header.
DEFAULT_API_VERSION = "2022-11-28"
SUPPORTED_API_VERSIONS = frozenset({DEFAULT_API_VERSION, API_VERSION})
DOCS_URL = "https://docs.github.com/rest"
WEB_URL = "https://github.com"
REACTION_CONTENTS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
ROLES = ("admin", "maintain", "write", "triage", "read", "none")
# `permission` in the collaborator answer is the legacy five-level scale; `role_name` is precise.
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
DEFAULT_LABEL_COLOR = "ededed"
# What Dispatch's App manifest asks for: installations grant it unless a test takes some away.
_MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "app.yml").read_text())
DEFAULT_APP_PERMISSIONS: dict[str, str] = dict(_MANIFEST["default_permissions"])
DEFAULT_APP_EVENTS: tuple[str, ...] = tuple(_MANIFEST["default_events"])
ACCESS_LEVELS = ("read", "write", "admin")
NOT_ACCESSIBLE = "Resource not accessible by integration"
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
SECONDARY_RATE_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
PRIMARY_RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
RATE_LIMIT = 5000
UNAUTHENTICATED_RATE_LIMIT = 60
MAX_PER_PAGE = 100
MAX_LABEL_NAME = 50
MAX_LABEL_DESCRIPTION = 100
MAX_WORKFLOW_INPUTS = 25
MAX_BODY = 65536

_ids = itertools.count(1001)
_key_lock = threading.Lock()
_private_key_pem: str | None = None


def app_private_key_pem() -> str:
    """The fake App's RSA key, made once per process: generating one takes a noticeable moment."""
    global _private_key_pem
    with _key_lock:
        if _private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _private_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode()
        return _private_key_pem


def _next_id() -> int:
    return next(_ids)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _as_datetime(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _node_id(kind: str, ident: int | str) -> str:
    """GitHub's legacy global node ids: base64 of `0<len>:<Kind><id>`."""
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _random_token(prefix: str, length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 3, 4, 4, 3))


def _content_base64(data: bytes) -> str:
    """Base64 the way the contents API sends it: a newline every 60 characters."""
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


def sign_webhook(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Call:
    """One request the fake received. `path` is as sent on the wire (percent-encoding kept);
    `status` 0: the connection was lost before an answer (`timeout_next`, `drop_next`);
    `operation`: the operation id in GitHub's description, None for an unknown endpoint."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    installation_id: int | None
    auth: str
    status: int
    operation: str | None = None

    @property
    def decoded_path(self) -> str:
        return unquote(self.path)


@dataclass
class _User:
    login: str
    id: int
    type: str = "User"


@dataclass
class _Label:
    id: int
    name: str
    color: str
    description: str | None


@dataclass
class _Pull:
    id: int
    head: str
    base: str
    head_sha: str
    merged: bool
    merge_commit_sha: str | None
    merged_at: datetime | None
    # The fork the head branch lives in (None: the repository itself).
    head_repo: _Repo | None = None


@dataclass
class _Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: _User
    state: str
    state_reason: str | None
    labels: list[str]
    assignees: list[_User]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    pull: _Pull | None = None
    locked: bool = False


@dataclass
class _Comment:
    id: int
    number: int
    body: str
    user: _User
    created_at: datetime
    updated_at: datetime
    review: bool = False


@dataclass
class _Reaction:
    id: int
    user: _User
    content: str
    created_at: datetime


@dataclass
class _Workflow:
    id: int
    file: str
    name: str
    created_at: datetime
    # `on.workflow_dispatch.inputs` of the workflow file; None: no workflow_dispatch trigger.
    inputs: dict[str, dict[str, Any]] | None = None
    run_name: str | None = None

    @property
    def path(self) -> str:
        return f".github/workflows/{self.file}"


@dataclass
class _Run:
    id: int
    workflow: _Workflow
    name: str
    head_branch: str
    head_sha: str
    run_number: int
    inputs: dict[str, str]
    created_at: datetime
    updated_at: datetime
    status: str = "queued"
    conclusion: str | None = None


@dataclass
class _CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    external_id: str | None
    details_url: str | None
    started_at: datetime | None
    completed_at: datetime | None
    output: dict[str, Any]
    check_suite_id: int


@dataclass
class _Repo:
    id: int
    owner: _User
    name: str
    private: bool
    default_branch: str
    installation_id: int
    description: str | None
    created_at: datetime
    labels: dict[str, _Label] = field(default_factory=dict)
    issues: dict[int, _Issue] = field(default_factory=dict)
    comments: dict[int, _Comment] = field(default_factory=dict)
    reactions: dict[tuple[str, int], list[_Reaction]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    files: dict[tuple[str, str], str] = field(default_factory=dict)
    workflows: dict[str, _Workflow] = field(default_factory=dict)
    runs: dict[int, _Run] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    parents: dict[str, str | None] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    check_runs: dict[int, _CheckRun] = field(default_factory=dict)
    fork: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def next_number(self) -> int:
        return max([*self.issues, *self.deleted], default=0) + 1


@dataclass
class _Installation:
    id: int
    account: _User
    permissions: dict[str, str]
    events: list[str]
    created_at: datetime
    suspended_at: datetime | None = None


@dataclass
class _Delivery:
    id: int
    guid: str
    event: str
    action: str | None
    status_code: int
    status: str
    delivered_at: datetime
    redelivery: bool
    installation_id: int | None
    repository_id: int | None
    payload: dict[str, Any]
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    duration: float = 0.1


def _delivery_status(code: int) -> str:
    if 200 <= code < 300:
        return "OK"
    return f"Invalid HTTP Response: {code}" if code else "failed to connect to host"


# --------------------------------------------------------------------------------------- errors


class GitHubError(Exception):
    """An answer in GitHub's error shape; handlers raise it, the server renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        documentation_url: str = DOCS_URL,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.documentation_url = documentation_url
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return body


def _not_found(message: str = "Not Found") -> GitHubError:
    return GitHubError(404, message)


def _validation_failed(resource: str, code: str, field_name: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": resource, "code": code, "field": field_name}],
    )


def _invalid_request(detail: str) -> GitHubError:
    return GitHubError(422, f"Invalid request.\n\n{detail}")


# --------------------------------------------------------------------------------------- routing


@dataclass
class _Req:
    method: str
    raw_path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    auth: str
    installation_id: int | None
    params: dict[str, Any] = field(default_factory=dict)
    repo: _Repo | None = None
    operation: str | None = None
    docs_url: str = DOCS_URL
    # The API version the answer follows when it is not the requested one (an older server).
    answered_as: str | None = None

    def int_arg(self, name: str, default: int, *, maximum: int | None = None) -> int:
        try:
            value = int(self.query.get(name, default))
        except ValueError:
            value = default
        value = max(value, 1)
        return min(value, maximum) if maximum is not None else value

    def json_object(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        return self.body

    @property
    def the_repo(self) -> _Repo:
        assert self.repo is not None
        return self.repo


@dataclass
class _Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    background: Callable[[], Awaitable[None]] | None = None
    # Set: no answer is sent, the connection is held (`hold` seconds) and then dropped.
    lost: _Fault | None = None


_Handler = Callable[["FakeGitHub", _Req], _Answer]
# Permission sets, any one of which suffices: ((("issues", "write"),), (("pull_requests", "write"),)).
_Permissions = tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    operation: str
    auth: str
    permissions: _Permissions
    handler: _Handler
    ints: frozenset[str]

    @property
    def accepted(self) -> str:
        """The permissions as GitHub's `x-accepted-github-permissions` header spells them."""
        return "; ".join(", ".join(f"{k}={v}" for k, v in group) for group in self.permissions)


_ROUTES: list[_Route] = []
_PARAM = re.compile(r"\{(\w+)(?::(int|path))?\}")
_SEGMENT = {"int": "[0-9]+", "path": ".+", None: "[^/]+"}


def _parse_permissions(text: str | None) -> _Permissions:
    """`"issues=write; pull_requests=write"`: sets separated by `;`, within a set by `,`."""
    if not text:
        return ()
    return tuple(
        tuple(
            (name.strip(), level.strip())
            for name, _, level in (item.partition("=") for item in group.split(","))
        )
        for group in text.split(";")
    )


def _route(
    method: str, template: str, op: str, auth: str = "repo", permissions: str | None = None
) -> Callable[[_Handler], _Handler]:
    """Register a handler for GitHub's operation `op` (its id in the REST description).

    `auth`: none | app | app_or_installation | installation | repo. `permissions`: what an
    installation needs, as GitHub's `x-accepted-github-permissions` header lists it (sets separated
    by `;`, any one suffices), from GitHub's "Permissions required for GitHub Apps".

    `{name}` matches one percent-encoded path segment (so `status%2Fready` is one label name),
    `{name:int}` digits, `{name:path}` the rest of the path.
    """

    def register(handler: _Handler) -> _Handler:
        regex, position, ints = "", 0, set()
        for match in _PARAM.finditer(template):
            regex += re.escape(template[position : match.start()])
            regex += f"(?P<{match.group(1)}>{_SEGMENT[match.group(2)]})"
            if match.group(2) == "int":
                ints.add(match.group(1))
            position = match.end()
        regex += re.escape(template[position:])
        _ROUTES.append(
            _Route(
                method,
                template,
                re.compile(regex),
                op,
                auth,
                _parse_permissions(permissions),
                handler,
                frozenset(ints),
            )
        )
        return handler

    return register


def implemented_operations() -> list[str]:
    """Operation ids of GitHub's REST API the fake serves, in registration order."""
    return [r.operation for r in _ROUTES]


def _match(method: str, raw_path: str) -> tuple[_Route, dict[str, Any]] | None:
    for candidate in _ROUTES:
        if candidate.method != method:
            continue
        found = candidate.pattern.fullmatch(raw_path)
        if found:
            params: dict[str, Any] = {
                name: int(value) if name in candidate.ints else unquote(value)
                for name, value in found.groupdict().items()
            }
            return candidate, params
    return None


# The job permission a write needs, by a path part (first match wins).
_WRITE_SCOPES = (
    ("/pulls", "pull-requests"),
    ("/issues", "issues"),
    ("/labels", "issues"),
    ("/actions/", "actions"),
    ("/contents/", "contents"),
    ("/git/", "contents"),
)


def _credential(header: str | None) -> str:
    return (header or "").strip().partition(" ")[2].strip()


def _is_token_endpoint(method: str, raw_path: str) -> bool:
    return method == "POST" and bool(
        re.fullmatch(r"/app/installations/\d+/access_tokens", raw_path)
    )


# --------------------------------------------------------------------------------------- faults


class Clock(Protocol):
    """What the fake reads the time from for rate limits: the app's clock fits (`now()`)."""

    def now(self) -> datetime: ...


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class _Target:
    """Which requests a fault hits: `method` and `path` (as in `calls_to`), None for any. Without
    a path the token endpoint is spared, so a client that has to fetch a token first still
    reaches the request under test."""

    method: str | None
    path: str | re.Pattern[str] | None

    def matches(self, req: _Req) -> bool:
        if self.method is not None and self.method.upper() != req.method:
            return False
        if self.path is None:
            return not _is_token_endpoint(req.method, req.raw_path)
        return any(_path_matches(self.path, p) for p in (req.raw_path, unquote(req.raw_path)))


@dataclass
class _Fault:
    """An injected fault for the next `remaining` requests `target` matches (None: until
    `clear_faults()`)."""

    kind: str  # "status" | "secondary" | "timeout" | "drop"
    remaining: int | None
    target: _Target
    status: int = 502
    retry_after: int = 1
    hold: float = 0.0
    applied: bool = False


@dataclass
class _PrimaryLimit:
    """The primary rate limit used up until `reset` (epoch seconds on the fake's clock), for the
    App and installation credentials (or one installation's) on the requests `target` matches."""

    reset: int
    status: int
    installation_id: int | None
    target: _Target

    def matches(self, req: _Req) -> bool:
        if req.auth not in ("app", "installation"):
            return False
        if self.installation_id is not None and req.installation_id != self.installation_id:
            return False
        return self.target.matches(req)


# --------------------------------------------------------------------------------------- the fake


class FakeGitHub(LoopbackServer):
    """GitHub's REST API for one GitHub App, with the state tests seed and assert on.

    Toggles: `dispatch_supports_run_details` (False: workflow dispatches always answer 204, like
    servers older than API 2026-03-10); `clock` (what rate-limit windows and resets are read from;
    a test hands the app's clock here to move both together); the faults (see the module).
    `check_answers`: also check each answer against GitHub's response schema, recording a
    mismatch in `server_errors` (the fake's own tests turn it on).
    """

    server_name = "fake-github"
    _live: ClassVar[weakref.WeakSet[FakeGitHub]] = weakref.WeakSet()

    def __init__(
        self,
        *,
        app_id: int = 424242,
        app_slug: str = "dispatch-test",
        app_name: str = "Dispatch Test",
        webhook_secret: str = "fake-webhook-secret",
        private_key_pem: str | None = None,
        check_answers: bool = False,
    ) -> None:
        self.check_answers = check_answers
        self.description = RestDescription.load()
        self.violations: list[Violation] = []
        self.server_errors: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        FakeGitHub._live.add(self)
        self.app_id = app_id
        self.app_slug = app_slug
        self.app_name = app_name
        self.webhook_secret = webhook_secret
        self.private_key_pem = private_key_pem or app_private_key_pem()
        self.client_id = "Iv23li" + secrets.token_hex(7)
        self.client_secret = secrets.token_hex(20)
        self._public_key = serialization.load_pem_private_key(
            self.private_key_pem.encode(), password=None
        ).public_key()
        self.lock = threading.RLock()
        self.bot = _User(f"{app_slug}[bot]", _next_id(), "Bot")
        self._app_owner = _User("dispatch-dev", _next_id(), "Organization")
        self._app_created = _now()
        super().__init__()
        self._clear_state()

    # ---------------------------------------------------------------- lifecycle

    def _clear_state(self) -> None:
        self._users: dict[str, _User] = {}
        self._installations: dict[int, _Installation] = {}
        self._repos: dict[str, _Repo] = {}
        self._tokens: dict[str, tuple[int, datetime]] = {}
        # Workflow jobs' GITHUB_TOKENs: the permissions the job declared, and who acts with it.
        self._job_tokens: dict[str, tuple[dict[str, str], _User]] = {}
        self._manifest_codes: set[str] = set()
        self._deliveries: dict[int, _Delivery] = {}
        self._redeliveries: list[int] = []
        self._webhook_target: str | None = None
        # The App's own settings, as GitHub keeps them (`GET /app`, `GET /app/hook/config`).
        self.app_permissions: dict[str, str] = dict(DEFAULT_APP_PERMISSIONS)
        self.app_events: list[str] = list(DEFAULT_APP_EVENTS)
        self.hook_config: dict[str, Any] = {
            "url": "https://dispatch.example.com/webhooks/github",
            "content_type": "json",
            "secret": "********",
            "insecure_ssl": "0",
        }
        self._rate_windows: dict[str, tuple[int, int]] = {}
        self._faults: list[_Fault] = []
        self._primary_limits: list[_PrimaryLimit] = []
        self._inflight = 0
        self.calls: list[Call] = []
        self.dispatch_supports_run_details = True
        self.clock: Clock = _SystemClock()
        # The API version of the request being answered; accessors render the newest.
        self._version = API_VERSION

    def reset(self) -> None:
        """Forget all state (installations, repos, calls, tokens, faults, toggles); keep the
        server. Recorded problems stay until `take_problems()`: they belong to a test."""
        with self.lock:
            self._clear_state()

    # ---------------------------------------------------------------- problems

    @classmethod
    def live(cls) -> list[FakeGitHub]:
        """Every fake GitHub of this process that has not been garbage-collected."""
        return list(cls._live)

    def take_problems(self) -> list[str]:
        """The violations and internal errors recorded so far, forgotten once taken."""
        with self.lock:
            violations, errors = self.take_violations(), self.take_server_errors()
        return [describe_violation(v) for v in violations] + [
            f"error inside the fake GitHub: {e}" for e in errors
        ]

    def take_violations(self) -> list[Violation]:
        """The violations recorded so far, forgotten once taken (for tests that provoke them)."""
        with self.lock:
            taken = list(self.violations)
            self.violations.clear()
        return taken

    def take_server_errors(self) -> list[str]:
        """The errors inside the fake recorded so far, forgotten once taken."""
        with self.lock:
            taken = list(self.server_errors)
            self.server_errors.clear()
        return taken

    # ---------------------------------------------------------------- faults

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("n must be at least 1 (or None: until clear_faults())")
        with self.lock:
            self._faults.append(fault)

    def fail_next(
        self,
        n: int | None = 1,
        status: int = 502,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Answer the next `n` matching requests with `status` and GitHub's error body.

        `method`, `path`: which requests count (`path` as in `calls_to`); by default every request
        except `POST /app/installations/{id}/access_tokens`. `n=None`: until `clear_faults()`.
        """
        self._add_fault(_Fault("status", n, _Target(method, path), status=status))

    def rate_limit_next(
        self,
        n: int | None = 1,
        retry_after: int = 1,
        *,
        status: int = 403,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Answer the next `n` matching requests with GitHub's secondary rate limit: 403 (or
        429) with `retry-after`.

        `retry_after` must be >= 1: githubkit reads a zero wait as "unknown" and sleeps a minute.
        """
        if retry_after < 1:
            raise ValueError("retry_after must be at least 1 second")
        if status not in (403, 429):
            raise ValueError("GitHub answers a secondary rate limit with 403 or 429")
        self._add_fault(
            _Fault("secondary", n, _Target(method, path), status=status, retry_after=retry_after)
        )

    def exhaust_primary_limit(
        self,
        reset_in: float = 3600,
        *,
        status: int = 403,
        installation_id: int | None = None,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> int:
        """Use up the primary rate limit until `reset_in` seconds from now on `clock`: matching
        requests (of `installation_id`, or of any App or installation credential) answer 403 (or
        429) with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`. Returns the reset (epoch
        seconds); the limit lifts by itself once `clock` passes it."""
        if status not in (403, 429):
            raise ValueError("GitHub answers an exhausted primary rate limit with 403 or 429")
        with self.lock:
            reset = math.ceil(self.clock.now().timestamp() + reset_in)
            self._primary_limits.append(
                _PrimaryLimit(reset, status, installation_id, _Target(method, path))
            )
            return reset

    def timeout_next(
        self,
        n: int | None = 1,
        *,
        hold: float = 35.0,
        applied: bool = False,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Never answer the next `n` matching requests: hold each for `hold` seconds (longer
        than the client's timeout, or until the client gives up), then drop the connection.

        `applied`: the request takes effect before the answer is lost (a comment is posted, a
        workflow dispatched) — what makes a blind retry post twice.
        """
        self._add_fault(_Fault("timeout", n, _Target(method, path), hold=hold, applied=applied))

    def drop_next(
        self,
        n: int | None = 1,
        *,
        applied: bool = False,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Close the connection of the next `n` matching requests without an answer
        (`applied` as in `timeout_next`)."""
        self._add_fault(_Fault("drop", n, _Target(method, path), applied=applied))

    def clear_faults(self) -> None:
        """GitHub recovers: forget every injected fault and exhausted limit."""
        with self.lock:
            self._faults.clear()
            self._primary_limits.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every installation token issued so far (the next use answers 401)."""
        with self.lock:
            self._tokens.clear()

    # ---------------------------------------------------------------- Actions job tokens

    def mint_job_token(self, installation_id: int, permissions: Mapping[str, str]) -> str:
        """A workflow job's `GITHUB_TOKEN`: an installation token limited to the permissions the
        job declares (`contents`, `pull-requests`, `issues`, `actions` …: read or write); writes
        outside them answer 403 like GitHub does. It acts as `github-actions[bot]`."""
        with self.lock:
            token = _random_token("ghs_", 36)
            self._tokens[token] = (installation_id, _now() + timedelta(hours=1))
            self._job_tokens[token] = (dict(permissions), self._user("github-actions[bot]"))
            return token

    def token_grants(self, token: str) -> tuple[int, dict[str, str]] | None:
        """(installation id, permissions) of a live token, or None. An App installation token
        has the installation's permissions (with GitHub's `pull_requests` spelled as a job's)."""
        with self.lock:
            issued = self._tokens.get(token)
            if issued is None or issued[1] <= datetime.now(UTC):
                return None
            if token in self._job_tokens:
                return issued[0], dict(self._job_tokens[token][0])
            permissions = self._installations[issued[0]].permissions
            return issued[0], {k.replace("_", "-"): v for k, v in permissions.items()}

    def revoke_token(self, token: str) -> None:
        """The job ended: its token no longer works."""
        with self.lock:
            self._tokens.pop(token, None)

    # ---------------------------------------------------------------- seeding

    def _user(self, login: str, kind: str | None = None) -> _User:
        user = self._users.get(login.lower())
        if user is None:
            kind = kind or ("Bot" if login.endswith("[bot]") else "User")
            user = self._users[login.lower()] = _User(login, _next_id(), kind)
        return user

    def add_installation(
        self,
        account: str = "octo-org",
        account_type: str = "Organization",
        *,
        permissions: Mapping[str, str] | None = None,
        events: Iterable[str] | None = None,
    ) -> int:
        with self.lock:
            installation = _Installation(
                id=_next_id(),
                account=self._user(account, account_type),
                permissions=dict(permissions or DEFAULT_APP_PERMISSIONS),
                events=list(events if events is not None else DEFAULT_APP_EVENTS),
                created_at=_now(),
            )
            self._installations[installation.id] = installation
            return installation.id

    def set_installation_permissions(self, installation_id: int, **changes: str | None) -> None:
        """Change what an installation grants, e.g. `issues="read"`, `actions=None` (none).

        Takes effect at once, tokens already issued included (GitHub fixes a token's permissions
        when it is issued; tests would otherwise wait out githubkit's token cache)."""
        with self.lock:
            permissions = self._installations[installation_id].permissions
            for name, level in changes.items():
                if level is None:
                    permissions.pop(name, None)
                elif level not in ACCESS_LEVELS:
                    raise ValueError(f"{name}: level must be one of {ACCESS_LEVELS} or None")
                else:
                    permissions[name] = level

    def suspend_installation(self, installation_id: int) -> None:
        """An owner suspends the installation: no installation token can be had (403)."""
        with self.lock:
            self._installations[installation_id].suspended_at = _now()
            for token, (owner, _) in list(self._tokens.items()):
                if owner == installation_id:
                    del self._tokens[token]

    def add_repo(
        self,
        installation_id: int,
        full_name: str,
        private: bool = False,
        default_branch: str = "main",
        *,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A repository the installation can reach, with one root commit on `default_branch`."""
        owner, _, name = full_name.partition("/")
        with self.lock:
            if installation_id not in self._installations:
                raise KeyError(f"unknown installation {installation_id}")
            if full_name.lower() in self._repos:
                raise ValueError(f"{full_name} already exists")
            repo = _Repo(
                id=_next_id(),
                owner=self._user(owner, self._installations[installation_id].account.type),
                name=name,
                private=private,
                default_branch=default_branch,
                installation_id=installation_id,
                description=description,
                created_at=_now(),
            )
            self._repos[full_name.lower()] = repo
            self._commit(repo, default_branch, None)
            return self._repo_json(repo)

    def _find_repo(self, repo: str | Mapping[str, Any]) -> _Repo:
        key = repo if isinstance(repo, str) else str(repo["full_name"])
        found = self._repos.get(key.lower())
        if found is None:
            raise KeyError(f"unknown repository {key}")
        return found

    def _ensure_label(self, repo: _Repo, name: str) -> _Label:
        label = repo.labels.get(name.lower())
        if label is None:
            label = _Label(_next_id(), name, DEFAULT_LABEL_COLOR, None)
            repo.labels[name.lower()] = label
        return label

    def add_label(
        self,
        repo: str | Mapping[str, Any],
        name: str,
        color: str = DEFAULT_LABEL_COLOR,
        description: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            found = self._find_repo(repo)
            label = self._ensure_label(found, name)
            label.color, label.description = color, description
            return self._label_json(found, label)

    def add_issue(
        self,
        repo: str | Mapping[str, Any],
        title: str,
        body: str = "",
        labels: Iterable[str] = (),
        user: str = "alice",
        state: str = "open",
        closed_at: str | datetime | None = None,
        updated_at: str | datetime | None = None,
        is_pull: bool = False,
        *,
        created_at: str | datetime | None = None,
        assignees: Iterable[str] = (),
        state_reason: str | None = None,
    ) -> dict[str, Any]:
        """An issue (or, with `is_pull`, the issue half of a pull request); labels are created."""
        with self.lock:
            found = self._find_repo(repo)
            issue = self._new_issue(found, title, body, labels, self._user(user), assignees)
            created = _as_datetime(created_at) or issue.created_at
            issue.created_at = created
            issue.state = state
            issue.state_reason = state_reason
            if state == "closed":
                issue.closed_at = _as_datetime(closed_at) or created
                issue.state_reason = state_reason or "completed"
            issue.updated_at = _as_datetime(updated_at) or issue.closed_at or created
            if is_pull:
                issue.pull = self._new_pull(found, f"issue-{issue.number}", found.default_branch)
            return self.issue(found.full_name, issue.number)

    def _new_issue(
        self,
        repo: _Repo,
        title: str,
        body: str | None,
        labels: Iterable[str],
        user: _User,
        assignees: Iterable[str] = (),
    ) -> _Issue:
        now = _now()
        issue = _Issue(
            id=_next_id(),
            number=repo.next_number(),
            title=title,
            body=body,
            user=user,
            state="open",
            state_reason=None,
            labels=[],
            assignees=[self._user(login) for login in assignees],
            created_at=now,
            updated_at=now,
            closed_at=None,
        )
        self._add_issue_labels(repo, issue, labels)
        repo.issues[issue.number] = issue
        return issue

    def _new_pull(self, repo: _Repo, head: str, base: str, head_sha: str | None = None) -> _Pull:
        sha = head_sha or hashlib.sha1(f"{repo.id}:{head}".encode()).hexdigest()
        # The head commit exists (on the head branch, forked from the default branch).
        repo.parents.setdefault(sha, repo.branches.get(repo.default_branch))
        return _Pull(
            id=_next_id(),
            head=head,
            base=base,
            head_sha=sha,
            merged=False,
            merge_commit_sha=None,
            merged_at=None,
        )

    def _fork_of(self, repo: _Repo, owner: str) -> _Repo:
        """A fork of `repo` owned by `owner`: served inside pull requests, never installed."""
        return _Repo(
            id=_next_id(),
            owner=self._user(owner),
            name=repo.name,
            private=repo.private,
            default_branch=repo.default_branch,
            installation_id=0,
            description=repo.description,
            created_at=_now(),
            fork=True,
        )

    def add_pull(
        self,
        repo: str | Mapping[str, Any],
        head: str,
        base: str = "main",
        body: str = "",
        user: str = "alice",
        merged: bool = False,
        merge_commit_sha: str | None = None,
        *,
        title: str | None = None,
        labels: Iterable[str] = (),
        head_sha: str | None = None,
        fork_owner: str | None = None,
        state: str = "open",
    ) -> dict[str, Any]:
        """A pull request; like on GitHub it is also an issue with the same number. With
        `fork_owner`, its head branch lives in that user's fork."""
        with self.lock:
            found = self._find_repo(repo)
            issue = self._new_issue(found, title or f"Merge {head}", body, labels, self._user(user))
            issue.pull = self._new_pull(found, head, base, head_sha)
            if fork_owner is not None:
                issue.pull.head_repo = self._fork_of(found, fork_owner)
            if state == "closed":
                issue.state, issue.state_reason, issue.closed_at = "closed", None, _now()
            if merged:
                issue.pull.merged = True
                issue.pull.merged_at = issue.closed_at = issue.created_at
                issue.pull.merge_commit_sha = merge_commit_sha or secrets.token_hex(20)
                issue.state = "closed"
            return self._pull_json(found, issue)

    def add_comment(
        self, repo: str | Mapping[str, Any], number: int, body: str, user: str = "alice"
    ) -> dict[str, Any]:
        with self.lock:
            found = self._find_repo(repo)
            comment = self._new_comment(
                found, self._issue_of(found, number), body, self._user(user)
            )
            return self._comment_json(found, comment)

    def add_review_comment(
        self, repo: str | Mapping[str, Any], pull_number: int, body: str, user: str = "alice"
    ) -> int:
        """A pull request review comment (only its reactions are served); returns its id."""
        with self.lock:
            found = self._find_repo(repo)
            now = _now()
            comment = _Comment(_next_id(), pull_number, body, self._user(user), now, now, True)
            found.comments[comment.id] = comment
            return comment.id

    def add_label_to_issue(
        self, repo: str | Mapping[str, Any], number: int, *names: str
    ) -> list[str]:
        """A person adds labels on github.com (not a recorded API call); returns the names."""
        with self.lock:
            found = self._find_repo(repo)
            issue = self._issue_of(found, number)
            self._add_issue_labels(found, issue, names)
            issue.updated_at = _now()
            return list(issue.labels)

    def remove_label_from_issue(
        self, repo: str | Mapping[str, Any], number: int, name: str
    ) -> list[str]:
        """A person removes a label on github.com; returns the remaining names."""
        with self.lock:
            issue = self._issue_of(self._find_repo(repo), number)
            issue.labels = [n for n in issue.labels if n.lower() != name.lower()]
            issue.updated_at = _now()
            return list(issue.labels)

    def delete_issue(self, repo: str | Mapping[str, Any], number: int) -> None:
        """An admin deletes an issue on github.com: from now on the API answers 410 Gone for
        it (and for its comments, labels and reactions), and its number is never reused."""
        with self.lock:
            found = self._find_repo(repo)
            issue = self._issue_of(found, number)
            del found.issues[number]
            found.deleted.add(number)
            for comment_id in [c.id for c in found.comments.values() if c.number == number]:
                del found.comments[comment_id]
                found.reactions.pop(("comment", comment_id), None)
            found.reactions.pop(("issue", issue.number), None)

    def update_issue(
        self, repo: str | Mapping[str, Any], number: int, **changes: Any
    ) -> dict[str, Any]:
        """A person edits an issue on github.com: `title`, `body`, `state`, `state_reason`,
        `labels`, `assignees` (closing sets `closed_at`), like `PATCH` but not recorded."""
        unknown = set(changes) - {"title", "body", "state", "state_reason", "labels", "assignees"}
        if unknown:
            raise TypeError(f"update_issue() cannot change {sorted(unknown)}")
        with self.lock:
            found = self._find_repo(repo)
            _edit_issue(self, found, self._issue_of(found, number), changes)
            return self.issue(found.full_name, number)

    def set_permission(self, repo: str | Mapping[str, Any], login: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        with self.lock:
            self._find_repo(repo).roles[login.lower()] = role
            self._user(login)

    def add_file(
        self, repo: str | Mapping[str, Any], path: str, text: str, ref: str | None = None
    ) -> None:
        """A file at `ref` (a branch name, default the default branch) for the contents API."""
        with self.lock:
            found = self._find_repo(repo)
            found.files[(ref or found.default_branch, path.strip("/"))] = text

    def add_workflow(
        self,
        repo: str | Mapping[str, Any],
        file_name: str,
        text: str = "on: workflow_dispatch\n",
        *,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Commit `.github/workflows/<file_name>` with `text` (YAML) on the default branch.

        Like GitHub, the fake reads the workflow's `name` and its `on.workflow_dispatch.inputs`
        from the text, and refuses a dispatch of a workflow without that trigger or with inputs
        it does not declare."""
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{file_name} is not valid YAML: {error}") from None
        if not isinstance(spec, dict):
            raise ValueError(f"{file_name} is not a workflow (a YAML mapping)")
        with self.lock:
            found = self._find_repo(repo)
            path = f".github/workflows/{file_name}"
            found.files[(found.default_branch, path)] = text
            workflow = _Workflow(
                _next_id(),
                file_name,
                name or str(spec.get("name") or path),
                _now(),
                _dispatch_inputs_declared(spec),
                spec.get("run-name"),
            )
            found.workflows[file_name] = workflow
            return self._workflow_json(found, workflow)

    def push_commit(
        self, repo: str | Mapping[str, Any], *, branch: str | None = None, message: str = "commit"
    ) -> str:
        """Add a commit on `branch` (default: the default branch; a new branch forks from it)."""
        with self.lock:
            found = self._find_repo(repo)
            branch = branch or found.default_branch
            parent = found.branches.get(branch) or found.branches[found.default_branch]
            return self._commit(found, branch, parent, message)

    def _commit(self, repo: _Repo, branch: str, parent: str | None, message: str = "") -> str:
        sha = hashlib.sha1(f"{repo.id}:{parent}:{_next_id()}:{message}".encode()).hexdigest()
        repo.parents[sha] = parent
        repo.branches[branch] = sha
        return sha

    def manifest_code(self) -> str:
        """A one-time code for `POST /app-manifests/{code}/conversions`."""
        code = secrets.token_hex(10)
        with self.lock:
            self._manifest_codes.add(code)
        return code

    def add_hook_delivery(
        self,
        guid: str,
        event: str,
        action: str | None = None,
        status_code: int = 502,
        installation_id: int | None = None,
        delivered_at: str | datetime | None = None,
        payload: Mapping[str, Any] | None = None,
        *,
        repository_id: int | None = None,
    ) -> int:
        """A past delivery attempt of the App's webhook; returns its id."""
        with self.lock:
            delivery = self._new_delivery(
                guid, event, action, installation_id, repository_id, payload, redelivery=False
            )
            delivery.status_code, delivery.status = status_code, _delivery_status(status_code)
            delivery.delivered_at = _as_datetime(delivered_at) or delivery.delivered_at
            return delivery.id

    def _new_delivery(
        self,
        guid: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository_id: int | None,
        payload: Mapping[str, Any] | None,
        *,
        redelivery: bool,
    ) -> _Delivery:
        if payload is None:
            payload = {"action": action} if action else {}
            if installation_id is not None:
                payload = {**payload, "installation": {"id": installation_id}}
        delivery = _Delivery(
            id=_next_id(),
            guid=guid,
            event=event,
            action=action,
            status_code=0,
            status="pending",
            delivered_at=_now(),
            redelivery=redelivery,
            installation_id=installation_id,
            repository_id=repository_id,
            payload=dict(payload),
        )
        self._deliveries[delivery.id] = delivery
        return delivery

    def set_webhook_target(self, url: str | None) -> None:
        """Where redeliveries (and `deliver_webhook`) POST the payload."""
        with self.lock:
            self._webhook_target = url

    def set_branch(
        self,
        repo: str | Mapping[str, Any],
        branch: str,
        sha: str,
        parents: Mapping[str, str | None] | None = None,
    ) -> None:
        """Point `branch` at `sha`, learning commits (`sha -> first parent`) pushed to a real git
        repository standing for this one (so dispatches, compares and PRs see real shas)."""
        with self.lock:
            found = self._find_repo(repo)
            found.parents.update(parents or {})
            found.parents.setdefault(sha, None)
            found.branches[branch] = sha

    def set_hook_config(self, **changes: Any) -> None:
        """Change the App's webhook settings (`url`, `content_type`, `secret`, `insecure_ssl`)."""
        with self.lock:
            self.hook_config.update(changes)

    def set_run_status(
        self, repo: str | Mapping[str, Any], run_id: int, status: str, conclusion: str | None = None
    ) -> None:
        with self.lock:
            run = self._find_repo(repo).runs[run_id]
            run.status, run.conclusion, run.updated_at = status, conclusion, _now()

    # ---------------------------------------------------------------- accessors

    def issue(self, repo: str | Mapping[str, Any], number: int) -> dict[str, Any]:
        """The issue exactly as the API renders it (label objects; `label_names()` for names),
        so it can stand in for the `issue` of a webhook payload."""
        with self.lock:
            found = self._find_repo(repo)
            return self._issue_json(found, self._issue_of(found, number))

    def issues(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every issue and pull request of the repository, by number, as the API renders it."""
        with self.lock:
            found = self._find_repo(repo)
            return [self._issue_json(found, found.issues[n]) for n in sorted(found.issues)]

    def label_names(self, repo: str | Mapping[str, Any], number: int) -> list[str]:
        with self.lock:
            return list(self._issue_of(self._find_repo(repo), number).labels)

    def bot_comments(self, repo: str | Mapping[str, Any], number: int) -> list[str]:
        """Bodies of the comments the App posted on an issue, oldest first."""
        return [
            c["body"] for c in self.comments(repo, number) if c["user"]["login"] == self.bot.login
        ]

    def comments(self, repo: str | Mapping[str, Any], number: int) -> list[dict[str, Any]]:
        with self.lock:
            found = self._find_repo(repo)
            return [
                self._comment_json(found, c)
                for c in found.comments.values()
                if c.number == number and not c.review
            ]

    def comment(self, repo: str | Mapping[str, Any], comment_id: int) -> dict[str, Any]:
        with self.lock:
            found = self._find_repo(repo)
            return self._comment_json(found, found.comments[comment_id])

    def reactions(self, repo: str | Mapping[str, Any], comment_id: int) -> list[str]:
        """Reaction contents on an issue comment (or review comment), oldest first."""
        with self.lock:
            found = self._find_repo(repo)
            comment = found.comments.get(comment_id)
            kind = "review" if comment is not None and comment.review else "comment"
            return [r.content for r in found.reactions.get((kind, comment_id), [])]

    def issue_reactions(self, repo: str | Mapping[str, Any], number: int) -> list[str]:
        with self.lock:
            return [r.content for r in self._find_repo(repo).reactions.get(("issue", number), [])]

    def repo_labels(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            found = self._find_repo(repo)
            return [self._label_json(found, label) for label in found.labels.values()]

    def dispatches(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Workflow dispatches: `workflow`, `ref`, `inputs`, `run_id` (the Actions run id)."""
        with self.lock:
            return [dict(d) for d in self._find_repo(repo).dispatches]

    def check_runs(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """The repository's check runs, oldest first, as `GET` would show them."""
        with self.lock:
            found = self._find_repo(repo)
            return [self._check_run_json(found, c) for c in found.check_runs.values()]

    def installation_of(self, repo: str | Mapping[str, Any]) -> int:
        with self.lock:
            return self._find_repo(repo).installation_id

    def pulls(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every pull request of a repository, oldest first, as the API renders it."""
        with self.lock:
            found = self._find_repo(repo)
            return [self._pull_json(found, i) for i in found.issues.values() if i.pull]

    def runs(self, repo: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            found = self._find_repo(repo)
            return [self._run_json(found, run) for run in found.runs.values()]

    @property
    def redeliveries(self) -> list[int]:
        """Ids of the deliveries the App asked to redeliver, in order."""
        with self.lock:
            return list(self._redeliveries)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt, newest first, as `GET /app/hook/deliveries/{id}` shows it."""
        with self.lock:
            return [self._delivery_json(d, detail=True) for d in self._deliveries_newest_first()]

    def calls_to(self, method: str | None, path_pattern: str | re.Pattern[str]) -> list[Call]:
        """Calls with `method` (None: any) whose path starts with `path_pattern` or contains a
        match of it as a regex (`re.search`: anchor with `^`/`$` as needed). The raw
        (percent-encoded) and the decoded path are both tried."""
        with self.lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method.upper())
            and any(_path_matches(path_pattern, p) for p in (c.path, c.decoded_path))
        ]

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until background webhook redeliveries have finished."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if self._inflight == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("webhook redeliveries still in flight")
            time.sleep(0.005)

    def deliver_webhook(
        self,
        event: str,
        payload: Mapping[str, Any],
        *,
        guid: str | None = None,
        installation_id: int | None = None,
    ) -> httpx.Response:
        """POST a fresh webhook to the target now, signed like GitHub, and record the attempt.

        It blocks the calling thread, so the target must be served from another thread.
        """
        with self.lock:
            target = self._webhook_target
            delivery = self._new_delivery(
                guid or secrets.token_hex(16),
                event,
                payload.get("action"),
                installation_id or (payload.get("installation") or {}).get("id"),
                (payload.get("repository") or {}).get("id"),
                payload,
                redelivery=False,
            )
            body, headers = self._webhook_request(delivery)
        if target is None:
            raise RuntimeError("set_webhook_target() first")
        started = time.perf_counter()
        response = httpx.post(target, content=body, headers=headers, timeout=30)
        with self.lock:
            self._record_attempt(delivery, response, time.perf_counter() - started)
        return response

    # ---------------------------------------------------------------- HTTP plumbing

    def asgi_app(self) -> Any:
        return self._asgi

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A bare ASGI app: the fake must be able to hold a request and drop its connection,
        which a framework would turn into a 500."""
        if scope["type"] != "http":
            return
        try:
            raw = b""
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            answer = self._serve(scope["method"], raw_path, scope["query_string"], headers, raw)
            if answer.lost is not None:
                await self._lose_connection(answer.lost, receive, send)
                return
            await self._send(answer, send)
        except Exception:
            with self.lock:
                self.server_errors.append(traceback.format_exc())
            await self._send(_Answer(500, GitHubError(500, "Server Error").body()), send)

    async def _send(self, answer: _Answer, send: Any) -> None:
        content = b"" if answer.body is None else json.dumps(answer.body).encode()
        headers = [(b"content-length", str(len(content)).encode())]
        if answer.status != 204:
            headers.append((b"content-type", b"application/json; charset=utf-8"))
        headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if answer.background is not None:
            task = asyncio.create_task(self._background(answer.background))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _background(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            with self.lock:
                self.server_errors.append(traceback.format_exc())

    async def _lose_connection(self, fault: _Fault, receive: Any, send: Any) -> None:
        """Hold the request (until `fault.hold` passes or the client gives up), then close the
        connection without a byte of answer."""
        if fault.hold > 0:
            waiting = asyncio.ensure_future(receive())  # completes when the client disconnects
            try:
                await asyncio.wait_for(asyncio.shield(waiting), fault.hold)
            except TimeoutError:
                pass
            finally:
                waiting.cancel()
        # uvicorn hands the app its per-request cycle's `send`; the cycle owns the transport.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("dropping a connection needs uvicorn's HTTP protocol")
        transport.abort()
        await asyncio.sleep(0)  # let uvicorn see the connection lost before the app returns

    def _serve(
        self, method: str, raw_path: str, query_string: bytes, headers: dict[str, str], raw: bytes
    ) -> _Answer:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        query = dict(pairs)
        with self.lock:
            auth, installation_id = self._authenticate(headers.get("authorization"))
            req = _Req(method, raw_path, query, None, headers, auth, installation_id)
            self._version = headers.get("x-github-api-version", DEFAULT_API_VERSION)
            try:
                answer = self._answer(req, raw, pairs)
            finally:
                self._version = API_VERSION
            answer.headers = {**self._common_headers(req), **answer.headers}
            self.calls.append(
                Call(
                    method=method,
                    path=raw_path,
                    query=query,
                    body=req.body,
                    headers=headers,
                    installation_id=installation_id if auth == "installation" else None,
                    auth=auth if auth in ("app", "installation") else "none",
                    status=0 if answer.lost is not None else answer.status,
                    operation=req.operation,
                )
            )
            if self.check_answers and req.operation and answer.lost is None:
                self.server_errors += self.description.check_answer(
                    req.answered_as or self._version_of(req),
                    req.operation,
                    answer.status,
                    answer.body,
                )
            return answer

    def _version_of(self, req: _Req) -> str:
        return req.headers.get("x-github-api-version", DEFAULT_API_VERSION)

    def _answer(self, req: _Req, raw: bytes, pairs: list[tuple[str, str]]) -> _Answer:
        fault: _Fault | None = None
        try:
            parsed, body = self._parse_body(raw)
            req.body = body
            version = self._version_of(req)
            if raw and parsed:
                check = self.description.check(version, req.method, req.raw_path, pairs, body)
            else:
                check = self.description.check(version, req.method, req.raw_path, pairs)
            if check.operation is not None:
                req.operation = check.operation.id
                req.docs_url = check.operation.docs_url or DOCS_URL
            self.violations += check.violations
            if not parsed:
                self.violations.append(
                    Violation(req.method, req.raw_path, req.operation or "", "body", "", "not JSON")
                )
                raise GitHubError(400, "Problems parsing JSON")
            fault = self._take_fault(req)
            if fault is not None and fault.kind in ("timeout", "drop") and not fault.applied:
                return _Answer(lost=fault)
            injected = self._fault_answer(req, fault)
            if injected is not None:
                return injected
            self._check_api_version(req)
            matched = _match(req.method, req.raw_path)
            if matched is None:
                raise _not_found()
            found, req.params = matched
            self._authorize(found.auth, req)
            self._check_job_token(req)
            self._check_permissions(found, req)
            if check.refusal is not None:
                raise GitHubError(*check.refusal)
            answer = found.handler(self, req)
            if req.auth == "installation" and found.permissions:
                answer.headers.setdefault("x-accepted-github-permissions", found.accepted)
        except GitHubError as error:
            if error.documentation_url == DOCS_URL and req.operation is not None:
                error.documentation_url = req.docs_url
            answer = _Answer(error.status, error.body(), dict(error.headers))
        except Exception:
            self.server_errors.append(traceback.format_exc())
            answer = _Answer(500, GitHubError(500, "Server Error").body())
        if fault is not None and fault.kind in ("timeout", "drop"):
            answer.lost = fault  # `applied`: the request took effect, its answer is lost
        return answer

    @staticmethod
    def _parse_body(raw: bytes) -> tuple[bool, Any]:
        """(parsed, JSON): (True, None) for no body; (False, None) for a body that is not JSON."""
        if not raw:
            return True, None
        try:
            return True, json.loads(raw)
        except ValueError:
            return False, None

    def _take_fault(self, req: _Req) -> _Fault | None:
        for fault in self._faults:
            if fault.target.matches(req):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _fault_answer(self, req: _Req, fault: _Fault | None) -> _Answer | None:
        limit = self._primary_limit(req)
        if limit is not None:
            who = (
                f"installation ID {req.installation_id}"
                if req.auth == "installation"
                else f"integration ID {self.app_id}"
            )
            error = GitHubError(
                limit.status,
                f"API rate limit exceeded for {who}.",
                documentation_url=PRIMARY_RATE_LIMIT_DOCS,
            )
            return _Answer(limit.status, error.body(), dict(error.headers))
        if fault is None:
            return None
        if fault.kind == "secondary":
            error = GitHubError(
                fault.status,
                SECONDARY_RATE_LIMIT_MESSAGE,
                documentation_url=SECONDARY_RATE_LIMIT_DOCS,
                headers={"retry-after": str(fault.retry_after)},
            )
            return _Answer(fault.status, error.body(), dict(error.headers))
        if fault.kind == "status":
            error = GitHubError(fault.status, HTTPStatus(fault.status).phrase)
            return _Answer(fault.status, error.body())
        return None

    def _primary_limit(self, req: _Req) -> _PrimaryLimit | None:
        now = self.clock.now().timestamp()
        self._primary_limits = [limit for limit in self._primary_limits if limit.reset > now]
        return next((limit for limit in self._primary_limits if limit.matches(req)), None)

    def _check_api_version(self, req: _Req) -> None:
        version = req.headers.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            raise GitHubError(
                400,
                f"No X-GitHub-Api-Version {version!r} found. Supported: "
                + ", ".join(sorted(SUPPORTED_API_VERSIONS)),
            )

    def _common_headers(self, req: _Req) -> dict[str, str]:
        key = f"installation:{req.installation_id}" if req.auth == "installation" else req.auth
        limit = RATE_LIMIT if req.auth in ("app", "installation") else UNAUTHENTICATED_RATE_LIMIT
        now = int(self.clock.now().timestamp())
        reset, used = self._rate_windows.get(key, (now + 3600, 0))
        if reset <= now:
            reset, used = now + 3600, 0
        used += 1
        self._rate_windows[key] = (reset, used)
        remaining = max(limit - used, 0)
        exhausted = self._primary_limit(req)
        if exhausted is not None:
            reset, used, remaining = exhausted.reset, limit, 0
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
            "x-github-request-id": _request_id(),
            "x-github-api-version-selected": req.headers.get(
                "x-github-api-version", DEFAULT_API_VERSION
            ),
            "x-github-media-type": "github.v3; format=json",
        }

    # ---------------------------------------------------------------- authentication

    def _authenticate(self, header: str | None) -> tuple[str, int | None]:
        """('app' | 'installation' | 'none' | 'bad-jwt' | 'bad-token', installation id)."""
        if not header:
            return "none", None
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("bearer", "token"):
            return "bad-token", None
        if credential.startswith("ghs_"):
            issued = self._tokens.get(credential)
            if issued is None or issued[1] <= datetime.now(UTC):
                return "bad-token", None
            return "installation", issued[0]
        if scheme.lower() == "bearer" and credential.count(".") == 2:
            return ("app", None) if self._valid_jwt(credential) else ("bad-jwt", None)
        return "bad-token", None

    def _valid_jwt(self, token: str) -> bool:
        try:
            claims = jwt.decode(
                token,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                leeway=60,
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError:
            return False
        if str(claims["iss"]) not in (str(self.app_id), self.client_id):
            return False
        # GitHub refuses JWTs that claim to live more than ten minutes.
        return float(claims["exp"]) - time.time() <= 600 + 60

    def _authorize(self, auth: str, req: _Req) -> None:
        if auth == "none":
            return
        if auth in ("app", "app_or_installation"):
            if req.auth == "app" or (auth == "app_or_installation" and req.auth == "installation"):
                return
            raise GitHubError(401, "A JSON web token could not be decoded")
        if req.auth == "none":
            raise GitHubError(401, "Requires authentication")
        if req.auth == "app":
            raise GitHubError(403, NOT_ACCESSIBLE)
        if req.auth != "installation":
            raise GitHubError(401, "Bad credentials")
        if auth == "repo":
            full_name = f"{req.params['owner']}/{req.params['repo']}".lower()
            repo = self._repos.get(full_name)
            if repo is None or repo.installation_id != req.installation_id:
                raise _not_found()
            req.repo = repo

    def _check_permissions(self, route: _Route, req: _Req) -> None:
        """403 unless the installation grants one of the route's permission sets."""
        if not route.permissions or req.auth != "installation":
            return
        repo = req.repo
        # "Some endpoints can also be used to access public resources without these permissions."
        if repo is not None and not repo.private and req.method == "GET":
            return
        sets = route.permissions
        number = req.params.get("number")
        issue = repo.issues.get(number) if repo is not None and number is not None else None
        if issue is not None and issue.pull is None:
            # Pull requests are issues, but `pull_requests` does not reach a plain issue.
            sets = tuple(s for s in sets if all(name != "pull_requests" for name, _ in s)) or sets
        granted = self._installations[req.installation_id or 0].permissions
        if any(all(_grants(granted.get(name), level) for name, level in s) for s in sets):
            return
        raise GitHubError(
            403, NOT_ACCESSIBLE, headers={"x-accepted-github-permissions": route.accepted}
        )

    # ---------------------------------------------------------------- domain operations

    def _issue_of(self, repo: _Repo, number: int) -> _Issue:
        issue = repo.issues.get(number)
        if issue is None:
            if number in repo.deleted:
                raise GitHubError(410, "This issue was deleted")
            raise _not_found()
        return issue

    def _add_issue_labels(self, repo: _Repo, issue: _Issue, names: Iterable[str]) -> None:
        for name in names:
            if not name or len(name) > MAX_LABEL_NAME:
                raise _validation_failed("Label", "invalid", "name")
            label = self._ensure_label(repo, name)
            if label.name not in issue.labels:
                issue.labels.append(label.name)

    def _new_comment(self, repo: _Repo, issue: _Issue, body: str, user: _User) -> _Comment:
        now = _now()
        comment = _Comment(_next_id(), issue.number, body, user, now, now)
        repo.comments[comment.id] = comment
        issue.updated_at = now
        return comment

    def _actor(self, req: _Req) -> _User:
        job = self._job_tokens.get(_credential(req.headers.get("authorization")))
        if job is not None:
            return job[1]
        return self.bot if req.auth == "installation" else self._user("ghost")

    def _check_job_token(self, req: _Req) -> None:
        job = self._job_tokens.get(_credential(req.headers.get("authorization")))
        if job is None or req.method in ("GET", "HEAD"):
            return
        scope = next((s for part, s in _WRITE_SCOPES if part in req.raw_path), None)
        if scope is None or job[0].get(scope) != "write":
            raise GitHubError(403, "Resource not accessible by integration")

    def _role(self, repo: _Repo, login: str) -> str:
        role = repo.roles.get(login.lower())
        if role is not None:
            return role
        if login.lower() == repo.owner.login.lower() and repo.owner.type == "User":
            return "admin"
        return "none" if repo.private else "read"

    def _association(self, repo: _Repo, user: _User) -> str:
        if user.login.lower() == repo.owner.login.lower():
            return "OWNER"
        if repo.roles.get(user.login.lower(), "none") != "none":
            return "COLLABORATOR"
        return "NONE"

    def _resolve_commit(self, repo: _Repo, ref: str) -> str:
        if ref in repo.branches:
            return repo.branches[ref]
        matches = [sha for sha in repo.parents if len(ref) >= 7 and sha.startswith(ref)]
        if len(matches) != 1:
            raise _not_found()
        return matches[0]

    def _ancestry(self, repo: _Repo, sha: str) -> list[str]:
        chain: list[str] = []
        current: str | None = sha
        while current is not None:
            chain.append(current)
            current = repo.parents[current]
        return chain

    def _deliveries_newest_first(self) -> list[_Delivery]:
        return sorted(self._deliveries.values(), key=lambda d: (d.delivered_at, d.id), reverse=True)

    def _webhook_request(self, delivery: _Delivery) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(delivery.payload).encode()
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Hook-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature": "sha1="
            + hmac.new(self.webhook_secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": sign_webhook(self.webhook_secret, body),
        }
        delivery.request_headers = headers
        return body, headers

    def _record_attempt(
        self, delivery: _Delivery, response: httpx.Response | None, duration: float
    ) -> None:
        delivery.duration = round(duration, 3)
        if response is None:
            delivery.status_code, delivery.status = 0, _delivery_status(0)
            return
        delivery.status_code = response.status_code
        delivery.status = _delivery_status(response.status_code)
        delivery.response_headers = dict(response.headers)
        delivery.response_body = response.text

    async def _post_redelivery(self, attempt_id: int) -> None:
        """Runs on the fake's loop after the 202 went out: the App's server may be the caller."""
        try:
            with self.lock:
                attempt = self._deliveries[attempt_id]
                target = self._webhook_target
                body, headers = self._webhook_request(attempt)
            started = time.perf_counter()
            response: httpx.Response | None = None
            if target is not None:
                try:
                    async with httpx.AsyncClient(timeout=30) as client:
                        response = await client.post(target, content=body, headers=headers)
                except httpx.HTTPError:
                    response = None
            with self.lock:
                self._record_attempt(attempt, response, time.perf_counter() - started)
        finally:
            with self.lock:
                self._inflight -= 1

    # ---------------------------------------------------------------- paging

    def _page(
        self, req: _Req, items: list[Any], *, default: int = 30
    ) -> tuple[list[Any], dict[str, str]]:
        per_page = req.int_arg("per_page", default, maximum=MAX_PER_PAGE)
        page = req.int_arg("page", 1)
        last = max(1, math.ceil(len(items) / per_page))
        links: list[tuple[str, int]] = []
        if page < last:
            links += [("next", page + 1), ("last", last)]
        if page > 1:
            links += [("first", 1), ("prev", min(page - 1, last))]
        chunk = items[(page - 1) * per_page : page * per_page]
        if not links:
            return chunk, {}
        link = ", ".join(
            f'<{self.url}{req.raw_path}?{urlencode({**req.query, "page": n})}>; rel="{rel}"'
            for rel, n in links
        )
        return chunk, {"link": link}

    # ---------------------------------------------------------------- JSON shapes

    def _user_json(self, user: _User) -> dict[str, Any]:
        api = f"{self.url}/users/{quote(user.login)}"
        kind = {"Bot": "Bot", "Organization": "Organization"}.get(user.type, "User")
        html = (
            f"{WEB_URL}/apps/{user.login.removesuffix('[bot]')}"
            if user.type == "Bot"
            else f"{WEB_URL}/{user.login}"
        )
        return {
            "login": user.login,
            "id": user.id,
            "node_id": _node_id(kind, user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def _app_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": _node_id("Integration", self.app_id),
            "client_id": self.client_id,
            "owner": self._user_json(self._app_owner),
            "name": self.app_name,
            "description": "Runs AI coding agents on GitHub issues (fake).",
            "external_url": "https://dispatch.example.com",
            "html_url": f"{WEB_URL}/apps/{self.app_slug}",
            "created_at": _iso(self._app_created),
            "updated_at": _iso(self._app_created),
            "permissions": dict(self.app_permissions),
            "events": list(self.app_events),
            "installations_count": len(self._installations),
        }

    def _installation_json(self, installation: _Installation) -> dict[str, Any]:
        account = installation.account
        settings = (
            f"{WEB_URL}/organizations/{account.login}/settings/installations/{installation.id}"
            if account.type == "Organization"
            else f"{WEB_URL}/settings/installations/{installation.id}"
        )
        return {
            "id": installation.id,
            "client_id": self.client_id,
            "account": self._user_json(account),
            "repository_selection": "all",
            "access_tokens_url": (f"{self.url}/app/installations/{installation.id}/access_tokens"),
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": settings,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": account.id,
            "target_type": account.type,
            "permissions": dict(installation.permissions),
            "events": list(installation.events),
            "created_at": _iso(installation.created_at),
            "updated_at": _iso(installation.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": self._user_json(account) if installation.suspended_at else None,
            "suspended_at": _iso(installation.suspended_at),
        }

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        urls = {key: template.replace("{api}", api) for key, template in _REPO_URLS.items()}
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        pushed = _iso(repo.created_at)
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": _node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self._user_json(repo.owner),
            "html_url": f"{WEB_URL}/{repo.full_name}",
            "description": repo.description,
            "fork": repo.fork,
            "url": api,
            **urls,
            "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{WEB_URL}/{repo.full_name}.git",
            "svn_url": f"{WEB_URL}/{repo.full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "open_issues_count": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": pushed,
            "created_at": _iso(repo.created_at),
            "updated_at": pushed,
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": True,
                "triage": True,
                "pull": True,
            },
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "subscribers_count": 0,
            "network_count": 0,
            "license": None,
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
        }
        if self._version != API_VERSION:
            data["has_downloads"] = True
        return data

    def _label_json(self, repo: _Repo, label: _Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": _node_id("Label", label.id),
            "url": f"{self.url}/repos/{repo.full_name}/labels/{quote(label.name, safe='')}",
            "name": label.name,
            "color": label.color,
            "default": False,
            "description": label.description,
            "archived_at": None,
            "archived_by": None,
        }

    def _issue_labels_json(self, repo: _Repo, issue: _Issue) -> list[dict[str, Any]]:
        return [self._label_json(repo, repo.labels[name.lower()]) for name in issue.labels]

    def _reaction_rollup(self, repo: _Repo, kind: str, target: int, url: str) -> dict[str, Any]:
        contents = [r.content for r in repo.reactions.get((kind, target), [])]
        rollup: dict[str, Any] = {"url": f"{url}/reactions", "total_count": len(contents)}
        rollup.update({content: contents.count(content) for content in REACTION_CONTENTS})
        return rollup

    def _issue_json(self, repo: _Repo, issue: _Issue) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        url = f"{api}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        comments = sum(
            1 for c in repo.comments.values() if c.number == issue.number and not c.review
        )
        data: dict[str, Any] = {
            "url": url,
            "repository_url": api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{WEB_URL}/{repo.full_name}/{kind}/{issue.number}",
            "id": issue.id,
            "node_id": _node_id("Issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self._user_json(issue.user),
            "labels": self._issue_labels_json(repo, issue),
            "state": issue.state,
            "locked": issue.locked,
            "assignees": [self._user_json(u) for u in issue.assignees],
            "milestone": None,
            "comments": comments,
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at),
            "closed_at": _iso(issue.closed_at),
            "author_association": self._association(repo, issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "closed_by": None,
            "reactions": self._reaction_rollup(repo, "issue", issue.number, url),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason,
        }
        if self._version != API_VERSION:
            data.update(self._legacy_issue_fields(issue))
        if issue.pull is not None:
            pull_url = f"{api}/pulls/{issue.number}"
            html = data["html_url"]
            data["draft"] = False
            data["pull_request"] = {
                "url": pull_url,
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": _iso(issue.pull.merged_at),
            }
            if issue.pull.merged_at is None and self._version == API_VERSION:
                # 2026-03-10 made `merged_at` non-nullable: an unmerged pull request has none.
                del data["pull_request"]["merged_at"]
        return data

    def _legacy_issue_fields(self, issue: _Issue) -> dict[str, Any]:
        """Fields API 2026-03-10 removed (`assignee`, `merge_commit_sha`, `has_downloads`) are
        still served to requests asking for 2022-11-28."""
        legacy: dict[str, Any] = {
            "assignee": self._user_json(issue.assignees[0]) if issue.assignees else None
        }
        if issue.pull is not None:
            legacy["merge_commit_sha"] = issue.pull.merge_commit_sha
        return legacy

    def _comment_json(self, repo: _Repo, comment: _Comment) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        url = f"{api}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": _node_id("IssueComment", comment.id),
            "url": url,
            "html_url": (
                f"{WEB_URL}/{repo.full_name}/issues/{comment.number}#issuecomment-{comment.id}"
            ),
            "body": comment.body,
            "user": self._user_json(comment.user),
            "created_at": _iso(comment.created_at),
            "updated_at": _iso(comment.updated_at),
            "issue_url": f"{api}/issues/{comment.number}",
            "author_association": self._association(repo, comment.user),
            "performed_via_github_app": None,
            "reactions": self._reaction_rollup(repo, "comment", comment.id, url),
        }

    def _reaction_json(self, reaction: _Reaction) -> dict[str, Any]:
        return {
            "id": reaction.id,
            "node_id": _node_id("Reaction", reaction.id),
            "user": self._user_json(reaction.user),
            "content": reaction.content,
            "created_at": _iso(reaction.created_at),
        }

    def _branch_json(self, repo: _Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner.login}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user_json(repo.owner),
            "repo": self._repo_json(repo),
        }

    def _pull_json(self, repo: _Repo, issue: _Issue) -> dict[str, Any]:
        pull = issue.pull
        assert pull is not None
        api = f"{self.url}/repos/{repo.full_name}"
        url = f"{api}/pulls/{issue.number}"
        html = f"{WEB_URL}/{repo.full_name}/pull/{issue.number}"
        issue_url = f"{api}/issues/{issue.number}"
        links = {
            "self": url,
            "html": html,
            "issue": issue_url,
            "comments": f"{issue_url}/comments",
            "review_comments": f"{url}/comments",
            "review_comment": f"{api}/pulls/comments{{/number}}",
            "commits": f"{url}/commits",
            "statuses": f"{api}/statuses/{pull.head_sha}",
        }
        base_sha = repo.branches.get(pull.base) or repo.branches[repo.default_branch]
        issue_data = self._issue_json(repo, issue)
        data: dict[str, Any] = {
            "url": url,
            "id": pull.id,
            "node_id": _node_id("PullRequest", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": issue.number,
            "state": issue.state,
            "locked": issue.locked,
            "title": issue.title,
            "user": issue_data["user"],
            "body": issue.body,
            "labels": issue_data["labels"],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue_data["created_at"],
            "updated_at": issue_data["updated_at"],
            "closed_at": issue_data["closed_at"],
            "merged_at": _iso(pull.merged_at),
            "assignees": issue_data["assignees"],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._branch_json(pull.head_repo or repo, pull.head, pull.head_sha),
            "base": self._branch_json(repo, pull.base, base_sha),
            "_links": {name: {"href": href} for name, href in links.items()},
            "author_association": issue_data["author_association"],
            "auto_merge": None,
            "draft": False,
            "merged": pull.merged,
            "mergeable": None,
            "rebaseable": None,
            "mergeable_state": "unknown",
            "merged_by": None,
            "comments": issue_data["comments"],
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }
        if self._version != API_VERSION:
            data.update(self._legacy_issue_fields(issue))
        return data

    def _check_run_json(self, repo: _Repo, check: _CheckRun) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": check.id,
            "node_id": _node_id("CheckRun", check.id),
            "head_sha": check.head_sha,
            "external_id": check.external_id,
            "url": f"{api}/check-runs/{check.id}",
            "html_url": f"{WEB_URL}/{repo.full_name}/runs/{check.id}",
            "details_url": check.details_url or f"{WEB_URL}/apps/{self.app_slug}",
            "status": check.status,
            "conclusion": check.conclusion,
            "started_at": _iso(check.started_at),
            "completed_at": _iso(check.completed_at),
            "output": {
                "title": check.output.get("title"),
                "summary": check.output.get("summary"),
                "text": check.output.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{api}/check-runs/{check.id}/annotations",
            },
            "name": check.name,
            "check_suite": {"id": check.check_suite_id},
            "app": self._app_json(),
            "pull_requests": [],
        }

    def _workflow_json(self, repo: _Repo, workflow: _Workflow) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": workflow.id,
            "node_id": _node_id("Workflow", workflow.id),
            "name": workflow.name,
            "path": workflow.path,
            "state": "active",
            "created_at": _iso(workflow.created_at),
            "updated_at": _iso(workflow.created_at),
            "url": f"{api}/actions/workflows/{workflow.id}",
            "html_url": f"{WEB_URL}/{repo.full_name}/blob/{repo.default_branch}/{workflow.path}",
            "badge_url": f"{WEB_URL}/{repo.full_name}/workflows/{workflow.file}/badge.svg",
        }

    def _run_json(self, repo: _Repo, run: _Run) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        url = f"{api}/actions/runs/{run.id}"
        repo_data = self._repo_json(repo)
        return {
            "id": run.id,
            "name": run.name,
            "node_id": _node_id("WorkflowRun", run.id),
            "check_suite_id": run.id + 1,
            "check_suite_node_id": _node_id("CheckSuite", run.id + 1),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.workflow.path,
            "display_title": run.name,
            "run_number": run.run_number,
            "run_attempt": 1,
            "event": "workflow_dispatch",
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow.id,
            "url": url,
            "html_url": f"{WEB_URL}/{repo.full_name}/actions/runs/{run.id}",
            "pull_requests": [],
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.updated_at),
            "run_started_at": _iso(run.created_at),
            "actor": self._user_json(self.bot),
            "triggering_actor": self._user_json(self.bot),
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "check_suite_url": f"{api}/check-suites/{run.id + 1}",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": None,
            "workflow_url": f"{api}/actions/workflows/{run.workflow.id}",
            "head_commit": self._simple_commit_json(run.head_sha, run.created_at),
            "repository": repo_data,
            "head_repository": repo_data,
            "referenced_workflows": [],
        }

    def _simple_commit_json(self, sha: str, at: datetime) -> dict[str, Any]:
        person = {"name": "Alice", "email": "alice@example.com"}
        return {
            "id": sha,
            "tree_id": hashlib.sha1(sha.encode()).hexdigest(),
            "message": "commit",
            "timestamp": _iso(at),
            "author": person,
            "committer": person,
        }

    def _commit_json(self, repo: _Repo, sha: str) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        parent = repo.parents[sha]
        person = {"name": "Alice", "email": "alice@example.com", "date": _iso(repo.created_at)}
        tree = hashlib.sha1(sha.encode()).hexdigest()
        return {
            "url": f"{api}/commits/{sha}",
            "sha": sha,
            "node_id": _node_id("Commit", sha[:12]),
            "html_url": f"{WEB_URL}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{sha}",
                "author": person,
                "committer": person,
                "message": "commit",
                "comment_count": 0,
                "tree": {"sha": tree, "url": f"{api}/git/trees/{tree}"},
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": None,
            "committer": None,
            "parents": []
            if parent is None
            else [
                {
                    "sha": parent,
                    "url": f"{api}/commits/{parent}",
                    "html_url": f"{WEB_URL}/{repo.full_name}/commit/{parent}",
                }
            ],
        }

    def _content_json(self, repo: _Repo, ref: str, path: str, text: str | None) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        data = (text or "").encode()
        sha = _blob_sha(data) if text is not None else hashlib.sha1(path.encode()).hexdigest()
        url = f"{api}/contents/{quote(path)}?ref={quote(ref)}"
        kind = "file" if text is not None else "dir"
        html = f"{WEB_URL}/{repo.full_name}/{'blob' if text is not None else 'tree'}/{ref}/{path}"
        git_url = f"{api}/git/{'blobs' if text is not None else 'trees'}/{sha}"
        entry: dict[str, Any] = {
            "type": kind,
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": (
                f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}"
                if text is not None
                else None
            ),
            "_links": {"self": url, "git": git_url, "html": html},
        }
        return entry

    def _delivery_json(self, delivery: _Delivery, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": delivery.id,
            "guid": delivery.guid,
            "delivered_at": _iso(delivery.delivered_at),
            "redelivery": delivery.redelivery,
            "duration": delivery.duration,
            "status": delivery.status,
            "status_code": delivery.status_code,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": delivery.installation_id,
            "repository_id": delivery.repository_id,
            "throttled_at": None,
        }
        if detail:
            data["url"] = ""
            data["request"] = {"headers": delivery.request_headers, "payload": delivery.payload}
            data["response"] = {
                "headers": delivery.response_headers,
                "payload": delivery.response_body,
            }
        return data


def describe_violation(violation: Violation) -> str:
    return f"request outside GitHub's REST description: {violation}"


def _grants(granted: str | None, needed: str) -> bool:
    return granted in ACCESS_LEVELS and ACCESS_LEVELS.index(granted) >= ACCESS_LEVELS.index(needed)


def _path_matches(pattern: str | re.Pattern[str], path: str) -> bool:
    if isinstance(pattern, re.Pattern):
        return pattern.search(path) is not None
    if path.startswith(pattern):
        return True
    try:
        return re.search(pattern, path) is not None
    except re.error:
        return False


_REPO_URLS = {
    "archive_url": "{api}/{archive_format}{/ref}",
    "assignees_url": "{api}/assignees{/user}",
    "blobs_url": "{api}/git/blobs{/sha}",
    "branches_url": "{api}/branches{/branch}",
    "collaborators_url": "{api}/collaborators{/collaborator}",
    "comments_url": "{api}/comments{/number}",
    "commits_url": "{api}/commits{/sha}",
    "compare_url": "{api}/compare/{base}...{head}",
    "contents_url": "{api}/contents/{+path}",
    "contributors_url": "{api}/contributors",
    "deployments_url": "{api}/deployments",
    "downloads_url": "{api}/downloads",
    "events_url": "{api}/events",
    "forks_url": "{api}/forks",
    "git_commits_url": "{api}/git/commits{/sha}",
    "git_refs_url": "{api}/git/refs{/sha}",
    "git_tags_url": "{api}/git/tags{/sha}",
    "hooks_url": "{api}/hooks",
    "issue_comment_url": "{api}/issues/comments{/number}",
    "issue_events_url": "{api}/issues/events{/number}",
    "issues_url": "{api}/issues{/number}",
    "keys_url": "{api}/keys{/key_id}",
    "labels_url": "{api}/labels{/name}",
    "languages_url": "{api}/languages",
    "merges_url": "{api}/merges",
    "milestones_url": "{api}/milestones{/number}",
    "notifications_url": "{api}/notifications{?since,all,participating}",
    "pulls_url": "{api}/pulls{/number}",
    "releases_url": "{api}/releases{/id}",
    "stargazers_url": "{api}/stargazers",
    "statuses_url": "{api}/statuses/{sha}",
    "subscribers_url": "{api}/subscribers",
    "subscription_url": "{api}/subscription",
    "tags_url": "{api}/tags",
    "teams_url": "{api}/teams",
    "trees_url": "{api}/git/trees{/sha}",
}


# ================================================================================ handlers: App


@_route("GET", "/app", "apps/get-authenticated", auth="app_or_installation")
def _get_app(gh: FakeGitHub, req: _Req) -> _Answer:
    return _Answer(200, gh._app_json())


@_route("POST", "/app-manifests/{code}/conversions", "apps/create-from-manifest", auth="none")
def _convert_manifest(gh: FakeGitHub, req: _Req) -> _Answer:
    code = req.params["code"]
    if code not in gh._manifest_codes:
        raise _not_found()
    gh._manifest_codes.discard(code)
    return _Answer(
        201,
        {
            **gh._app_json(),
            "client_secret": gh.client_secret,
            "webhook_secret": gh.webhook_secret,
            "pem": gh.private_key_pem,
        },
    )


@_route("GET", "/app/installations", "apps/list-installations", auth="app")
def _list_installations(gh: FakeGitHub, req: _Req) -> _Answer:
    items = [gh._installation_json(i) for i in gh._installations.values()]
    page, headers = gh._page(req, items)
    return _Answer(200, page, headers)


def _installation(gh: FakeGitHub, installation_id: int) -> _Installation:
    installation = gh._installations.get(installation_id)
    if installation is None:
        raise _not_found()
    return installation


@_route("GET", "/app/installations/{installation_id:int}", "apps/get-installation", auth="app")
def _get_installation(gh: FakeGitHub, req: _Req) -> _Answer:
    return _Answer(200, gh._installation_json(_installation(gh, req.params["installation_id"])))


@_route(
    "POST",
    "/app/installations/{installation_id:int}/access_tokens",
    "apps/create-installation-access-token",
    auth="app",
)
def _create_token(gh: FakeGitHub, req: _Req) -> _Answer:
    installation = _installation(gh, req.params["installation_id"])
    if installation.suspended_at is not None:
        raise GitHubError(403, "This installation has been suspended")
    token = _random_token("ghs_", 36)
    expires = _now() + timedelta(hours=1)
    gh._tokens[token] = (installation.id, expires)
    return _Answer(
        201,
        {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": dict(installation.permissions),
            "repository_selection": "all",
        },
    )


@_route("GET", "/repos/{owner}/{repo}/installation", "apps/get-repo-installation", auth="app")
def _get_repo_installation(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = gh._repos.get(f"{req.params['owner']}/{req.params['repo']}".lower())
    if repo is None:
        raise _not_found()
    return _Answer(200, gh._installation_json(gh._installations[repo.installation_id]))


@_route(
    "GET",
    "/installation/repositories",
    "apps/list-repos-accessible-to-installation",
    auth="installation",
)
def _list_installation_repos(gh: FakeGitHub, req: _Req) -> _Answer:
    repos = [r for r in gh._repos.values() if r.installation_id == req.installation_id]
    page, headers = gh._page(req, [gh._repo_json(r) for r in repos])
    body = {"total_count": len(repos), "repository_selection": "all", "repositories": page}
    return _Answer(200, body, headers)


# ================================================================================ hook deliveries


@_route("GET", "/app/hook/config", "apps/get-webhook-config-for-app", auth="app")
def _get_hook_config(gh: FakeGitHub, req: _Req) -> _Answer:
    return _Answer(200, {k: v for k, v in gh.hook_config.items() if v is not None})


@_route("GET", "/app/hook/deliveries", "apps/list-webhook-deliveries", auth="app")
def _list_deliveries(gh: FakeGitHub, req: _Req) -> _Answer:
    per_page = req.int_arg("per_page", 30, maximum=MAX_PER_PAGE)
    ordered = gh._deliveries_newest_first()
    start = 0
    cursor = req.query.get("cursor")
    if cursor:
        ids = [d.id for d in ordered]
        match = re.fullmatch(r"v1_(\d+)", cursor)
        if match is None or int(match.group(1)) not in ids:
            raise _invalid_request(f"Invalid cursor: {cursor}")
        start = ids.index(int(match.group(1))) + 1
    chunk = ordered[start : start + per_page]
    headers = {}
    if start + per_page < len(ordered):
        query = urlencode({"per_page": per_page, "cursor": f"v1_{chunk[-1].id}"})
        headers["link"] = f'<{gh.url}/app/hook/deliveries?{query}>; rel="next"'
    return _Answer(200, [gh._delivery_json(d) for d in chunk], headers)


def _delivery(gh: FakeGitHub, delivery_id: int) -> _Delivery:
    delivery = gh._deliveries.get(delivery_id)
    if delivery is None:
        raise _not_found()
    return delivery


@_route("GET", "/app/hook/deliveries/{delivery_id:int}", "apps/get-webhook-delivery", auth="app")
def _get_delivery(gh: FakeGitHub, req: _Req) -> _Answer:
    return _Answer(200, gh._delivery_json(_delivery(gh, req.params["delivery_id"]), detail=True))


@_route(
    "POST",
    "/app/hook/deliveries/{delivery_id:int}/attempts",
    "apps/redeliver-webhook-delivery",
    auth="app",
)
def _redeliver(gh: FakeGitHub, req: _Req) -> _Answer:
    original = _delivery(gh, req.params["delivery_id"])
    gh._redeliveries.append(original.id)
    attempt = gh._new_delivery(
        original.guid,
        original.event,
        original.action,
        original.installation_id,
        original.repository_id,
        original.payload,
        redelivery=True,
    )
    gh._inflight += 1
    return _Answer(202, {}, background=lambda: gh._post_redelivery(attempt.id))


# ================================================================================ repositories


@_route("GET", "/repos/{owner}/{repo}", "repos/get", permissions="metadata=read")
def _get_repo(gh: FakeGitHub, req: _Req) -> _Answer:
    return _Answer(200, gh._repo_json(req.the_repo))


@_route(
    "GET",
    "/repos/{owner}/{repo}/collaborators/{username}/permission",
    "repos/get-collaborator-permission-level",
    permissions="metadata=read",
)
def _get_permission(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, login = req.the_repo, req.params["username"]
    role = gh._role(repo, login)
    levels = ROLES[: ROLES.index(role) + 1]
    user = {
        **gh._user_json(gh._user(login)),
        "permissions": {
            "admin": "admin" in levels,
            "maintain": "maintain" in levels,
            "push": "write" in levels,
            "triage": "triage" in levels,
            "pull": "read" in levels,
        },
        "role_name": role,
    }
    return _Answer(200, {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": user})


# ================================================================================ issues


def _since(req: _Req) -> datetime | None:
    value = req.query.get("since")
    if not value:
        return None
    try:
        return _as_datetime(value)
    except ValueError:
        raise _validation_failed("Issue", "invalid", "since") from None


def _issue_sort_key(sort: str) -> Callable[[_Issue], Any]:
    if sort == "updated":
        return lambda i: (i.updated_at, i.number)
    if sort == "comments":
        return lambda i: i.number
    return lambda i: (i.created_at, i.number)


def _issue_filter(req: _Req) -> Callable[[_Issue], bool]:
    state = req.query.get("state", "open")
    since = _since(req)
    wanted = {n.strip().lower() for n in req.query.get("labels", "").split(",") if n.strip()}
    creator = req.query.get("creator", "").lower()
    assignee = req.query.get("assignee", "").lower()

    def keep(issue: _Issue) -> bool:
        assigned = {u.login.lower() for u in issue.assignees}
        return (
            (state == "all" or issue.state == state)
            and (since is None or issue.updated_at >= since)
            and wanted <= {n.lower() for n in issue.labels}
            and (not creator or issue.user.login.lower() == creator)
            and (
                not assignee
                or (assignee == "none" and not assigned)
                or (assignee == "*" and bool(assigned))
                or assignee in assigned
            )
        )

    return keep


@_route(
    "GET",
    "/repos/{owner}/{repo}/issues",
    "issues/list-for-repo",
    permissions="issues=read; pull_requests=read",
)
def _list_issues(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    if req.query.get("state", "open") not in ("open", "closed", "all"):
        raise _validation_failed("Issue", "invalid", "state")
    issues = [i for i in repo.issues.values() if _issue_filter(req)(i)]
    descending = req.query.get("direction", "desc") != "asc"
    issues.sort(key=_issue_sort_key(req.query.get("sort", "created")), reverse=descending)
    page, headers = gh._page(req, issues)
    return _Answer(200, [gh._issue_json(repo, i) for i in page], headers)


@_route("POST", "/repos/{owner}/{repo}/issues", "issues/create", permissions="issues=write")
def _create_issue(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    title = data.get("title")
    if not isinstance(title, str | int) or not str(title).strip():
        raise _validation_failed("Issue", "missing_field", "title")
    _refuse_long_body(gh, req, data.get("body"), "Issue")
    labels = [_label_name(item) for item in data.get("labels") or []]
    issue = gh._new_issue(
        repo, str(title), data.get("body"), labels, gh._actor(req), data.get("assignees") or []
    )
    return _Answer(201, gh._issue_json(repo, issue))


@_route(
    "GET",
    "/repos/{owner}/{repo}/issues/{number:int}",
    "issues/get",
    permissions="issues=read; pull_requests=read",
)
def _get_issue(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    return _Answer(200, gh._issue_json(repo, gh._issue_of(repo, req.params["number"])))


def _apply_state(issue: _Issue, state: Any, reason: Any) -> None:
    if state not in (None, "open", "closed"):
        raise _validation_failed("Issue", "invalid", "state")
    if reason not in (None, "completed", "not_planned", "reopened", "duplicate"):
        raise _validation_failed("Issue", "invalid", "state_reason")
    if state == "closed" and issue.state != "closed":
        issue.state, issue.closed_at = "closed", _now()
        issue.state_reason = reason or "completed"
    elif state == "open" and issue.state != "open":
        issue.state, issue.closed_at, issue.state_reason = "open", None, "reopened"
    elif reason is not None:
        issue.state_reason = reason


@_route(
    "PATCH",
    "/repos/{owner}/{repo}/issues/{number:int}",
    "issues/update",
    permissions="issues=write; pull_requests=write",
)
def _update_issue(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    data = req.json_object()
    _refuse_long_body(gh, req, data.get("body"), "Issue")
    _edit_issue(gh, repo, issue, data)
    return _Answer(200, gh._issue_json(repo, issue))


def _refuse_too_long(
    gh: FakeGitHub, req: _Req, resource: str, name: str, value: Any, limit: int
) -> None:
    """GitHub's length limits on a field, which its description states nowhere: a request over
    them is refused whatever the state, so it is a violation too."""
    if not isinstance(value, str) or len(value) <= limit:
        return
    gh.violations.append(
        Violation(
            req.method,
            req.raw_path,
            req.operation or "",
            "body",
            name,
            f"{len(value):,} characters; GitHub refuses more than {limit:,} (422)",
        )
    )
    error = {
        "resource": resource,
        "code": "custom",
        "field": name,
        "message": f"{name} is too long (maximum is {limit} characters)",
    }
    raise GitHubError(422, "Validation Failed", errors=[error])


def _refuse_long_body(gh: FakeGitHub, req: _Req, body: Any, resource: str) -> None:
    """GitHub refuses an issue or comment body over 65,536 characters, whatever the state; for a
    comment it says so in a shape of its own."""
    if resource != "IssueComment" or not isinstance(body, str) or len(body) <= MAX_BODY:
        _refuse_too_long(gh, req, resource, "body", body, MAX_BODY)
        return
    gh.violations.append(
        Violation(
            req.method,
            req.raw_path,
            req.operation or "",
            "body",
            "body",
            f"{len(body):,} characters; GitHub refuses more than {MAX_BODY:,} (422)",
        )
    )
    error = {
        "resource": resource,
        "code": "unprocessable",
        "field": "data",
        "message": f"Body is too long (maximum is {MAX_BODY} characters)",
    }
    raise GitHubError(422, "Validation Failed", errors=[error])


def _edit_issue(gh: FakeGitHub, repo: _Repo, issue: _Issue, data: Mapping[str, Any]) -> None:
    if "title" in data:
        if not str(data["title"] or "").strip():
            raise _validation_failed("Issue", "missing_field", "title")
        issue.title = str(data["title"])
    if "body" in data:
        issue.body = data["body"]
    _apply_state(issue, data.get("state"), data.get("state_reason"))
    if "labels" in data:
        issue.labels = []
        gh._add_issue_labels(repo, issue, [_label_name(x) for x in data["labels"] or []])
    if "assignees" in data:
        issue.assignees = [gh._user(login) for login in data["assignees"] or []]
    issue.updated_at = _now()


# ================================================================================ labels


def _label_name(item: Any) -> str:
    if isinstance(item, dict):
        item = item.get("name")
    if not isinstance(item, str):
        raise _validation_failed("Label", "invalid", "name")
    return item


def _labels_from_body(body: Any) -> list[str]:
    """`{"labels": [...]}` or a bare list; items are names or `{"name": ...}`."""
    items = body.get("labels") if isinstance(body, dict) else body
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise _invalid_request('"labels" wasn\'t supplied.')
    return [_label_name(item) for item in items]


def _issue_labels_answer(gh: FakeGitHub, repo: _Repo, issue: _Issue) -> _Answer:
    return _Answer(200, gh._issue_labels_json(repo, issue))


@_route(
    "GET",
    "/repos/{owner}/{repo}/issues/{number:int}/labels",
    "issues/list-labels-on-issue",
    permissions="issues=read; pull_requests=read",
)
def _list_issue_labels(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    page, headers = gh._page(req, gh._issue_labels_json(repo, issue))
    return _Answer(200, page, headers)


@_route(
    "POST",
    "/repos/{owner}/{repo}/issues/{number:int}/labels",
    "issues/add-labels",
    permissions="issues=write; pull_requests=write",
)
def _add_issue_labels(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    gh._add_issue_labels(repo, issue, _labels_from_body(req.body))
    issue.updated_at = _now()
    return _issue_labels_answer(gh, repo, issue)


@_route(
    "PUT",
    "/repos/{owner}/{repo}/issues/{number:int}/labels",
    "issues/set-labels",
    permissions="issues=write; pull_requests=write",
)
def _set_issue_labels(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    names = _labels_from_body(req.body if req.body is not None else [])
    issue.labels = []
    gh._add_issue_labels(repo, issue, names)
    issue.updated_at = _now()
    return _issue_labels_answer(gh, repo, issue)


@_route(
    "DELETE",
    "/repos/{owner}/{repo}/issues/{number:int}/labels",
    "issues/remove-all-labels",
    permissions="issues=write; pull_requests=write",
)
def _clear_issue_labels(gh: FakeGitHub, req: _Req) -> _Answer:
    issue = gh._issue_of(req.the_repo, req.params["number"])
    issue.labels, issue.updated_at = [], _now()
    return _Answer(204)


@_route(
    "DELETE",
    "/repos/{owner}/{repo}/issues/{number:int}/labels/{name}",
    "issues/remove-label",
    permissions="issues=write; pull_requests=write",
)
def _remove_issue_label(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    wanted = req.params["name"].lower()
    kept = [n for n in issue.labels if n.lower() != wanted]
    if len(kept) == len(issue.labels):
        raise GitHubError(
            404,
            "Label does not exist",
            documentation_url=f"{DOCS_URL}/issues/labels#remove-a-label-from-an-issue",
        )
    issue.labels, issue.updated_at = kept, _now()
    return _issue_labels_answer(gh, repo, issue)


def _repo_label(repo: _Repo, name: str) -> _Label:
    label = repo.labels.get(name.lower())
    if label is None:
        raise _not_found()
    return label


def _color(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{6}", value):
        raise _validation_failed("Label", "invalid", "color")
    return value.lower()


@_route(
    "GET",
    "/repos/{owner}/{repo}/labels",
    "issues/list-labels-for-repo",
    permissions="issues=read; pull_requests=read",
)
def _list_labels(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    page, headers = gh._page(req, [gh._label_json(repo, x) for x in repo.labels.values()])
    return _Answer(200, page, headers)


@_route(
    "POST",
    "/repos/{owner}/{repo}/labels",
    "issues/create-label",
    permissions="issues=write; pull_requests=write",
)
def _create_label(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _validation_failed("Label", "missing_field", "name")
    _refuse_too_long(gh, req, "Label", "name", name, MAX_LABEL_NAME)
    _refuse_too_long(
        gh, req, "Label", "description", data.get("description"), MAX_LABEL_DESCRIPTION
    )
    if name.lower() in repo.labels:
        raise _validation_failed("Label", "already_exists", "name")
    color = _color(data["color"]) if "color" in data else DEFAULT_LABEL_COLOR
    label = _Label(_next_id(), name, color, data.get("description"))
    repo.labels[name.lower()] = label
    return _Answer(201, gh._label_json(repo, label))


@_route(
    "GET",
    "/repos/{owner}/{repo}/labels/{name}",
    "issues/get-label",
    permissions="issues=read; pull_requests=read",
)
def _get_label(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    return _Answer(200, gh._label_json(repo, _repo_label(repo, req.params["name"])))


@_route(
    "PATCH",
    "/repos/{owner}/{repo}/labels/{name}",
    "issues/update-label",
    permissions="issues=write; pull_requests=write",
)
def _update_label(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    label = _repo_label(repo, req.params["name"])
    _refuse_too_long(gh, req, "Label", "name", data.get("new_name"), MAX_LABEL_NAME)
    _refuse_too_long(
        gh, req, "Label", "description", data.get("description"), MAX_LABEL_DESCRIPTION
    )
    if "color" in data:
        label.color = _color(data["color"])
    if "description" in data:
        label.description = data["description"]
    new_name = data.get("new_name")
    if new_name and new_name != label.name:
        if new_name.lower() in repo.labels and new_name.lower() != label.name.lower():
            raise _validation_failed("Label", "already_exists", "name")
        del repo.labels[label.name.lower()]
        for issue in repo.issues.values():
            issue.labels = [new_name if n == label.name else n for n in issue.labels]
        label.name = new_name
        repo.labels[new_name.lower()] = label
    return _Answer(200, gh._label_json(repo, label))


@_route(
    "DELETE",
    "/repos/{owner}/{repo}/labels/{name}",
    "issues/delete-label",
    permissions="issues=write; pull_requests=write",
)
def _delete_label(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    label = _repo_label(repo, req.params["name"])
    del repo.labels[label.name.lower()]
    for issue in repo.issues.values():
        issue.labels = [n for n in issue.labels if n != label.name]
    return _Answer(204)


# ================================================================================ comments


def _comment_of(repo: _Repo, comment_id: int, *, review: bool = False) -> _Comment:
    comment = repo.comments.get(comment_id)
    if comment is None or comment.review != review:
        raise _not_found()
    return comment


def _comment_body(gh: FakeGitHub, req: _Req) -> str:
    body = req.json_object().get("body")
    if not isinstance(body, str) or not body:
        raise _validation_failed("IssueComment", "missing_field", "body")
    _refuse_long_body(gh, req, body, "IssueComment")
    return body


@_route(
    "GET",
    "/repos/{owner}/{repo}/issues/{number:int}/comments",
    "issues/list-comments",
    permissions="issues=read; pull_requests=read",
)
def _list_comments(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    number = gh._issue_of(repo, req.params["number"]).number
    since = _since(req)
    comments = [
        gh._comment_json(repo, c)
        for c in repo.comments.values()
        if c.number == number and not c.review and (since is None or c.updated_at >= since)
    ]
    page, headers = gh._page(req, comments)
    return _Answer(200, page, headers)


@_route(
    "POST",
    "/repos/{owner}/{repo}/issues/{number:int}/comments",
    "issues/create-comment",
    permissions="issues=write; pull_requests=write",
)
def _create_comment(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    comment = gh._new_comment(repo, issue, _comment_body(gh, req), gh._actor(req))
    return _Answer(201, gh._comment_json(repo, comment))


@_route(
    "GET",
    "/repos/{owner}/{repo}/issues/comments/{comment_id:int}",
    "issues/get-comment",
    permissions="issues=read; pull_requests=read",
)
def _get_comment(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    return _Answer(200, gh._comment_json(repo, _comment_of(repo, req.params["comment_id"])))


@_route(
    "PATCH",
    "/repos/{owner}/{repo}/issues/comments/{comment_id:int}",
    "issues/update-comment",
    permissions="issues=write; pull_requests=write",
)
def _update_comment(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    comment = _comment_of(repo, req.params["comment_id"])
    comment.body, comment.updated_at = _comment_body(gh, req), _now()
    return _Answer(200, gh._comment_json(repo, comment))


@_route(
    "DELETE",
    "/repos/{owner}/{repo}/issues/comments/{comment_id:int}",
    "issues/delete-comment",
    permissions="issues=write; pull_requests=write",
)
def _delete_comment(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    del repo.comments[_comment_of(repo, req.params["comment_id"]).id]
    return _Answer(204)


# ================================================================================ reactions


def _reaction_target(gh: FakeGitHub, req: _Req, kind: str) -> tuple[str, int]:
    repo = req.the_repo
    if kind == "issue":
        return kind, gh._issue_of(repo, req.params["number"]).number
    return kind, _comment_of(repo, req.params["comment_id"], review=kind == "review").id


def _list_reactions(gh: FakeGitHub, req: _Req, kind: str) -> _Answer:
    key = _reaction_target(gh, req, kind)
    content = req.query.get("content")
    reactions = [
        gh._reaction_json(r)
        for r in req.the_repo.reactions.get(key, [])
        if content is None or r.content == content
    ]
    page, headers = gh._page(req, reactions)
    return _Answer(200, page, headers)


def _create_reaction(gh: FakeGitHub, req: _Req, kind: str) -> _Answer:
    key = _reaction_target(gh, req, kind)
    content = req.json_object().get("content")
    if content not in REACTION_CONTENTS:
        raise _validation_failed("Reaction", "invalid", "content")
    user = gh._actor(req)
    reactions = req.the_repo.reactions.setdefault(key, [])
    for existing in reactions:
        if existing.user.id == user.id and existing.content == content:
            return _Answer(200, gh._reaction_json(existing))
    reaction = _Reaction(_next_id(), user, content, _now())
    reactions.append(reaction)
    return _Answer(201, gh._reaction_json(reaction))


def _delete_reaction(gh: FakeGitHub, req: _Req, kind: str) -> _Answer:
    reactions = req.the_repo.reactions.get(_reaction_target(gh, req, kind), [])
    kept = [r for r in reactions if r.id != req.params["reaction_id"]]
    if len(kept) == len(reactions):
        raise _not_found()
    reactions[:] = kept
    return _Answer(204)


def _register_reactions(kind: str, template: str, subject: str, permissions: str) -> None:
    """The three reaction operations on one kind of subject (`issue-comment`, ...)."""
    read = permissions.replace("=write", "=read")
    _route("GET", template, f"reactions/list-for-{subject}", permissions=read)(
        lambda gh, req: _list_reactions(gh, req, kind)
    )
    _route("POST", template, f"reactions/create-for-{subject}", permissions=permissions)(
        lambda gh, req: _create_reaction(gh, req, kind)
    )
    # GitHub names the last one `delete-for-pull-request-comment`, not `...-review-comment`.
    deleted = subject.replace("-review-comment", "-comment")
    _route(
        "DELETE",
        template + "/{reaction_id:int}",
        f"reactions/delete-for-{deleted}",
        permissions=permissions,
    )(lambda gh, req: _delete_reaction(gh, req, kind))


_register_reactions(
    "comment",
    "/repos/{owner}/{repo}/issues/comments/{comment_id:int}/reactions",
    "issue-comment",
    "issues=write; pull_requests=write",
)
_register_reactions(
    "issue",
    "/repos/{owner}/{repo}/issues/{number:int}/reactions",
    "issue",
    "issues=write; pull_requests=write",
)
_register_reactions(
    "review",
    "/repos/{owner}/{repo}/pulls/comments/{comment_id:int}/reactions",
    "pull-request-review-comment",
    "pull_requests=write",
)


# ================================================================================ pulls


def _head_branch(repo: _Repo, head: str) -> str | None:
    """`branch` or `owner:branch` of this repository (forks are not modelled)."""
    owner, colon, branch = head.rpartition(":")
    if colon and owner.lower() != repo.owner.login.lower():
        return None
    return branch


@_route("GET", "/repos/{owner}/{repo}/pulls", "pulls/list", permissions="pull_requests=read")
def _list_pulls(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    state = req.query.get("state", "open")
    head = _head_branch(repo, req.query["head"]) if "head" in req.query else None
    pulls = [
        i
        for i in repo.issues.values()
        if i.pull
        and (state == "all" or i.state == state)
        and ("head" not in req.query or i.pull.head == head)
        and ("base" not in req.query or i.pull.base == req.query["base"])
    ]
    pulls.sort(key=lambda i: i.number, reverse=req.query.get("direction", "desc") != "asc")
    page, headers = gh._page(req, pulls)
    return _Answer(200, [gh._pull_json(repo, i) for i in page], headers)


@_route("POST", "/repos/{owner}/{repo}/pulls", "pulls/create", permissions="pull_requests=write")
def _create_pull(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    for name in ("title", "head", "base"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise _validation_failed("PullRequest", "missing_field", name)
    head = _head_branch(repo, data["head"])
    if head is None or head not in repo.branches:
        raise _validation_failed("PullRequest", "invalid", "head")
    if data["base"] not in repo.branches:
        raise _validation_failed("PullRequest", "invalid", "base")
    for issue in repo.issues.values():
        if issue.pull and issue.state == "open" and issue.pull.head == head:
            raise GitHubError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {repo.owner.login}:{head}.",
                    }
                ],
            )
    if repo.branches[head] == repo.branches[data["base"]]:
        raise GitHubError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {data['base']} and {head}",
                }
            ],
        )
    issue = gh._new_issue(repo, data["title"], data.get("body"), (), gh._actor(req))
    issue.pull = gh._new_pull(repo, head, data["base"], repo.branches[head])
    return _Answer(201, gh._pull_json(repo, issue))


@_route(
    "GET",
    "/repos/{owner}/{repo}/pulls/{number:int}",
    "pulls/get",
    permissions="pull_requests=read",
)
def _get_pull(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    issue = gh._issue_of(repo, req.params["number"])
    if issue.pull is None:
        raise _not_found()
    return _Answer(200, gh._pull_json(repo, issue))


# ================================================================================ actions


def _workflow(repo: _Repo, workflow_id: str) -> _Workflow:
    for workflow in repo.workflows.values():
        if workflow_id in (workflow.file, str(workflow.id), workflow.path):
            return workflow
    raise _not_found()


@_route(
    "GET",
    "/repos/{owner}/{repo}/actions/workflows",
    "actions/list-repo-workflows",
    permissions="actions=read",
)
def _list_workflows(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    workflows = [gh._workflow_json(repo, w) for w in repo.workflows.values()]
    return _Answer(200, {"total_count": len(workflows), "workflows": workflows})


@_route(
    "GET",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}",
    "actions/get-workflow",
    permissions="actions=read",
)
def _get_workflow(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    return _Answer(200, gh._workflow_json(repo, _workflow(repo, req.params["workflow_id"])))


def _dispatch_inputs_declared(spec: Mapping[Any, Any]) -> dict[str, dict[str, Any]] | None:
    """`on.workflow_dispatch.inputs` of a parsed workflow; None without that trigger."""
    triggers = spec.get("on", spec.get(True))  # YAML 1.1 reads a bare `on` key as true
    if isinstance(triggers, str):
        triggers = [triggers]
    if isinstance(triggers, list):
        return {} if "workflow_dispatch" in triggers else None
    if not isinstance(triggers, dict) or "workflow_dispatch" not in triggers:
        return None
    declared = (triggers["workflow_dispatch"] or {}).get("inputs") or {}
    return {str(name): dict(spec or {}) for name, spec in declared.items()}


def _dispatch_inputs(data: dict[str, Any], workflow: _Workflow) -> dict[str, str]:
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise _invalid_request("For 'properties/inputs', it is not an object.")
    if len(inputs) > MAX_WORKFLOW_INPUTS:
        raise _invalid_request(f"you may only define up to {MAX_WORKFLOW_INPUTS} inputs")
    for key, value in inputs.items():
        if not isinstance(value, str):
            raise _invalid_request(f"For 'properties/{key}', {json.dumps(value)} is not a string.")
    declared = workflow.inputs or {}
    unexpected = [name for name in inputs if name not in declared]
    if unexpected:
        raise GitHubError(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
    resolved: dict[str, str] = {}
    for name, spec in declared.items():
        if name in inputs:
            value = inputs[name]
        elif "default" in spec:
            value = (
                str(spec["default"]).lower()
                if isinstance(spec["default"], bool)
                else str(spec["default"])
            )
        elif spec.get("required"):
            raise GitHubError(422, f"Required input '{name}' not provided")
        else:
            continue
        options = spec.get("options")
        if spec.get("type") == "choice" and options and value not in [str(o) for o in options]:
            raise GitHubError(
                422,
                f"Provided value '{value}' for input '{name}' not in the list of allowed values",
            )
        resolved[name] = value
    return resolved


def _run_name(workflow: _Workflow, inputs: Mapping[str, str]) -> str:
    """The run's name: the workflow's `run-name` with `${{ inputs.x }}` filled in."""
    if not workflow.run_name:
        return workflow.name
    return re.sub(
        r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}",
        lambda m: inputs.get(m.group(1), ""),
        str(workflow.run_name),
    )


@_route(
    "POST",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    "actions/create-workflow-dispatch",
    permissions="actions=write",
)
def _dispatch_workflow(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    workflow = _workflow(repo, req.params["workflow_id"])
    if workflow.inputs is None:
        raise GitHubError(422, "Workflow does not have 'workflow_dispatch' trigger")
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        raise _invalid_request('"ref" wasn\'t supplied.')
    branch = ref.removeprefix("refs/heads/")
    if branch not in repo.branches:
        raise GitHubError(422, f"No ref found for: {ref}")
    inputs = _dispatch_inputs(data, workflow)
    run = _Run(
        id=_next_id(),
        workflow=workflow,
        name=_run_name(workflow, inputs),
        head_branch=branch,
        head_sha=repo.branches[branch],
        run_number=1 + sum(1 for r in repo.runs.values() if r.workflow is workflow),
        inputs=inputs,
        created_at=_now(),
        updated_at=_now(),
    )
    repo.runs[run.id] = run
    repo.dispatches.append(
        {"workflow": workflow.file, "ref": ref, "inputs": inputs, "run_id": run.id}
    )
    # API 2026-03-10 always answers with the run; 2022-11-28 only when asked to.
    details = gh._version == API_VERSION or data.get("return_run_details") is True
    if not gh.dispatch_supports_run_details:
        req.answered_as = DEFAULT_API_VERSION
    if not (gh.dispatch_supports_run_details and details):
        return _Answer(204)
    api = f"{gh.url}/repos/{repo.full_name}"
    return _Answer(
        200,
        {
            "workflow_run_id": run.id,
            "run_url": f"{api}/actions/runs/{run.id}",
            "html_url": f"{WEB_URL}/{repo.full_name}/actions/runs/{run.id}",
        },
    )


def _run_of(repo: _Repo, run_id: int) -> _Run:
    run = repo.runs.get(run_id)
    if run is None:
        raise _not_found()
    return run


@_route(
    "GET",
    "/repos/{owner}/{repo}/actions/runs",
    "actions/list-workflow-runs-for-repo",
    permissions="actions=read",
)
def _list_runs(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    status = req.query.get("status")
    runs = [
        r
        for r in sorted(repo.runs.values(), key=lambda r: r.id, reverse=True)
        if status is None or status in (r.status, r.conclusion)
    ]
    page, headers = gh._page(req, runs)
    body = {"total_count": len(runs), "workflow_runs": [gh._run_json(repo, r) for r in page]}
    return _Answer(200, body, headers)


@_route(
    "GET",
    "/repos/{owner}/{repo}/actions/runs/{run_id:int}",
    "actions/get-workflow-run",
    permissions="actions=read",
)
def _get_run(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    return _Answer(200, gh._run_json(repo, _run_of(repo, req.params["run_id"])))


@_route(
    "POST",
    "/repos/{owner}/{repo}/actions/runs/{run_id:int}/cancel",
    "actions/cancel-workflow-run",
    permissions="actions=write",
)
def _cancel_run(gh: FakeGitHub, req: _Req) -> _Answer:
    run = _run_of(req.the_repo, req.params["run_id"])
    if run.status == "completed":
        raise GitHubError(409, "Cannot cancel a workflow run that is completed.")
    run.status, run.conclusion, run.updated_at = "completed", "cancelled", _now()
    return _Answer(202, {})


# ================================================================================ check runs


_CHECK_STATUSES = ("queued", "in_progress", "completed")
_CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
)
MAX_CHECK_OUTPUT = 65535


def _apply_check_fields(check: _CheckRun, data: Mapping[str, Any]) -> None:
    """What create and update share: status and conclusion rules, output limits."""
    status = data.get("status", check.status)
    conclusion = data.get("conclusion", check.conclusion)
    if status not in _CHECK_STATUSES:
        raise _validation_failed("CheckRun", "invalid", "status")
    if conclusion is not None and conclusion not in _CHECK_CONCLUSIONS:
        raise _validation_failed("CheckRun", "invalid", "conclusion")
    if "conclusion" in data and conclusion is not None:
        status = "completed"  # providing a conclusion completes the check run
    if status == "completed" and conclusion is None:
        raise GitHubError(422, "Invalid request.\n\nNo conclusion given for a completed check run.")
    output = data.get("output")
    if output is not None:
        if not isinstance(output, dict) or not output.get("title") or not output.get("summary"):
            raise _invalid_request("For 'output', title and summary are required.")
        for key in ("summary", "text"):
            if len(str(output.get(key) or "")) > MAX_CHECK_OUTPUT:
                raise _validation_failed("CheckRun", "invalid", f"output.{key}")
        check.output = {k: output.get(k) for k in ("title", "summary", "text")}
    check.status, check.conclusion = status, conclusion if status == "completed" else None
    for name in ("external_id", "details_url"):
        if name in data:
            setattr(check, name, data[name])
    if "started_at" in data:
        check.started_at = _as_datetime(data["started_at"])
    if status == "completed":
        check.completed_at = _as_datetime(data.get("completed_at")) or _now()


@_route("POST", "/repos/{owner}/{repo}/check-runs", "checks/create", permissions="checks=write")
def _create_check_run(gh: FakeGitHub, req: _Req) -> _Answer:
    repo, data = req.the_repo, req.json_object()
    for name in ("name", "head_sha"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise _validation_failed("CheckRun", "missing_field", name)
    if data["head_sha"] not in repo.parents:
        raise GitHubError(422, f"No commit found for SHA: {data['head_sha']}")
    check = _CheckRun(
        id=_next_id(),
        name=data["name"],
        head_sha=data["head_sha"],
        status="queued",
        conclusion=None,
        external_id=None,
        details_url=None,
        started_at=_now(),
        completed_at=None,
        output={},
        check_suite_id=_next_id(),
    )
    _apply_check_fields(check, data)
    repo.check_runs[check.id] = check
    return _Answer(201, gh._check_run_json(repo, check))


@_route(
    "PATCH",
    "/repos/{owner}/{repo}/check-runs/{check_run_id:int}",
    "checks/update",
    permissions="checks=write",
)
def _update_check_run(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    check = repo.check_runs.get(req.params["check_run_id"])
    if check is None:
        raise _not_found()
    _apply_check_fields(check, req.json_object())
    return _Answer(200, gh._check_run_json(repo, check))


@_route(
    "GET",
    "/repos/{owner}/{repo}/commits/{ref}/check-runs",
    "checks/list-for-ref",
    permissions="checks=read",
)
def _list_check_runs(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    sha = gh._resolve_commit(repo, req.params["ref"])
    name = req.query.get("check_name")
    found = [
        gh._check_run_json(repo, c)
        for c in sorted(repo.check_runs.values(), key=lambda c: c.id, reverse=True)
        if c.head_sha == sha and (name is None or c.name == name)
    ]
    page, headers = gh._page(req, found)
    return _Answer(200, {"total_count": len(found), "check_runs": page}, headers)


# ================================================================================ contents, compare


@_route(
    "GET",
    "/repos/{owner}/{repo}/contents/{path:path}",
    "repos/get-content",
    permissions="contents=read",
)
def _get_contents(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    ref = req.query.get("ref") or repo.default_branch
    path = req.params["path"].strip("/")
    text = repo.files.get((ref, path))
    if text is not None:
        data = gh._content_json(repo, ref, path, text)
        data.update(encoding="base64", content=_content_base64(text.encode()))
        return _Answer(200, data)
    entries: dict[str, str | None] = {}
    for file_ref, file_path in repo.files:
        if file_ref == ref and file_path.startswith(path + "/"):
            child, _, rest = file_path[len(path) + 1 :].partition("/")
            full = f"{path}/{child}"
            entries[full] = None if rest else repo.files[(ref, full)]
    if not entries:
        raise _not_found()
    listing = [gh._content_json(repo, ref, p, t) for p, t in sorted(entries.items())]
    return _Answer(200, listing)


# GitHub cuts a recursive tree at 100,000 entries (and 7 MB); the fake keeps the flag honest.
MAX_TREE_ENTRIES = 100_000


@_route(
    "GET",
    "/repos/{owner}/{repo}/git/trees/{tree_sha}",
    "git/get-tree",
    permissions="contents=read",
)
def _get_tree(gh: FakeGitHub, req: _Req) -> _Answer:
    """The files at a branch (`tree_sha` is a branch name here; the fake keeps files by branch)
    as GitHub's tree: blobs and, with `recursive`, every directory on the way as a tree."""
    repo = req.the_repo
    ref = req.params["tree_sha"]
    if ref not in repo.branches and not any(file_ref == ref for file_ref, _ in repo.files):
        raise _not_found()
    recursive = req.query.get("recursive") not in (None, "", "0", "false")
    api = f"{gh.url}/repos/{repo.full_name}/git"
    entries: dict[str, dict[str, Any]] = {}
    for file_ref, path in sorted(repo.files):
        if file_ref != ref:
            continue
        parts = path.split("/")
        if not recursive and len(parts) > 1:
            top = parts[0]
            sha = hashlib.sha1(f"{ref}:{top}".encode()).hexdigest()
            entries.setdefault(
                top,
                {
                    "path": top,
                    "mode": "040000",
                    "type": "tree",
                    "sha": sha,
                    "url": f"{api}/trees/{sha}",
                },
            )
            continue
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            sha = hashlib.sha1(f"{ref}:{folder}".encode()).hexdigest()
            entries.setdefault(
                folder,
                {
                    "path": folder,
                    "mode": "040000",
                    "type": "tree",
                    "sha": sha,
                    "url": f"{api}/trees/{sha}",
                },
            )
        data = repo.files[(file_ref, path)].encode()
        sha = _blob_sha(data)
        entries[path] = {
            "path": path,
            "mode": "100644",
            "type": "blob",
            "sha": sha,
            "size": len(data),
            "url": f"{api}/blobs/{sha}",
        }
    listed = [entries[key] for key in sorted(entries)]
    tree_sha = hashlib.sha1(f"{ref}:".encode()).hexdigest()
    return _Answer(
        200,
        {
            "sha": tree_sha,
            "url": f"{api}/trees/{tree_sha}",
            "tree": listed[:MAX_TREE_ENTRIES],
            "truncated": len(listed) > MAX_TREE_ENTRIES,
        },
    )


@_route(
    "GET",
    "/repos/{owner}/{repo}/compare/{basehead:path}",
    "repos/compare-commits",
    permissions="contents=read",
)
def _compare(gh: FakeGitHub, req: _Req) -> _Answer:
    repo = req.the_repo
    base_ref, dots, head_ref = req.params["basehead"].partition("...")
    if not dots:
        raise _not_found()
    base_chain = gh._ancestry(repo, gh._resolve_commit(repo, base_ref))
    head_chain = gh._ancestry(repo, gh._resolve_commit(repo, head_ref))
    merge_base = next(sha for sha in head_chain if sha in set(base_chain))
    ahead_by, behind_by = head_chain.index(merge_base), base_chain.index(merge_base)
    status = (
        "identical"
        if ahead_by == behind_by == 0
        else "ahead"
        if behind_by == 0
        else "behind"
        if ahead_by == 0
        else "diverged"
    )
    api = f"{gh.url}/repos/{repo.full_name}"
    basehead = f"{base_ref}...{head_ref}"
    return _Answer(
        200,
        {
            "url": f"{api}/compare/{basehead}",
            "html_url": f"{WEB_URL}/{repo.full_name}/compare/{basehead}",
            "permalink_url": (
                f"{WEB_URL}/{repo.full_name}/compare/{base_chain[0]}...{head_chain[0]}"
            ),
            "diff_url": f"{WEB_URL}/{repo.full_name}/compare/{basehead}.diff",
            "patch_url": f"{WEB_URL}/{repo.full_name}/compare/{basehead}.patch",
            "base_commit": gh._commit_json(repo, base_chain[0]),
            "merge_base_commit": gh._commit_json(repo, merge_base),
            "status": status,
            "ahead_by": ahead_by,
            "behind_by": behind_by,
            "total_commits": ahead_by,
            "commits": [gh._commit_json(repo, sha) for sha in reversed(head_chain[:ahead_by])],
            "files": [],
        },
    )
