"""Bad input never yields a 5xx: property-based requests (hypothesis), each wrong in some way —
a missing or forged signature or token, a header left out, a body that is not JSON, not UTF-8,
not an object, or an object whose fields have the wrong type, size or range, a query parameter
out of bounds, an id nothing has — sent to one real `dispatch serve` process, at least 1,000 per
endpoint: the webhooks, the agent's reports and every token-protected API (issues, audit, and the
harness API: runs, claims, search, issues, fleet). `/mcp` answers bad calls in JSON-RPC and is
tested in tests/mcp.

Every answer is a 4xx with a JSON body that says what is wrong; nothing is journaled (none of
these is a delivery to act on, and nothing without a valid signature ever is); the server's
log holds no traceback and no error.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.agents.runs import RunState
from app.intake.signatures import github_signature, sentry_signature
from app.modes import Mode
from tests.conftest import TEMPLATE_DB, _with_database, make_settings
from tests.harness import ServerProcess, settings_env

EXAMPLES = 1000
GRAFANA_TOKEN = "grafana-fuzz-token"
SENTRY_SECRET = "sentry-fuzz-secret"
INT64 = 2**63 - 1
SIGNED = "(signed with the webhook secret)"


@dataclass
class Target:
    url: str
    http: httpx.Client
    webhook_secret: str
    agent_token: str
    api_token: str
    run_id: int
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def send(self, endpoint: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.statuses.setdefault(endpoint, Counter())[response.status_code] += 1
        assert 400 <= response.status_code < 500, (
            f"{method} {path} answered {response.status_code}: {response.text[:500]}"
        )
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
        return response


@pytest.fixture(scope="module")
def target(pg_server, github_server, oidc_server, tmp_path_factory) -> Iterator[Target]:
    """One `dispatch serve --no-worker` with a run, an agent token and an API token."""
    name = "fuzz_requests"
    dsn = _with_database(pg_server, name)
    seeded = asyncio.run(_create_database(pg_server, name, dsn))
    root = tmp_path_factory.mktemp("fuzz")
    config = make_settings(
        root,
        github_server,
        dispatch_oidc_issuer=oidc_server.url,
        grafana_webhook_token=GRAFANA_TOKEN,
        sentry_client_secret=SENTRY_SECRET,
        dispatch_alerts_repo="octo-org/widgets",
        log_level="INFO",
    )
    server = ServerProcess(settings_env(config, dsn), args=("--no-worker",))
    server.start(root / "server.log")
    try:
        asyncio.run(server.wait_ready())
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Target(
                server.url,
                http,
                github_server.webhook_secret,
                seeded["agent"],
                seeded["api"],
                seeded["run"],
            )
    finally:
        server.stop()
    # What the whole module sent: not one journaled delivery, not one traceback.
    log = server.output()
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if '"level": "error"' in line.lower()]
    assert errors == [], errors[:5]
    assert asyncio.run(_count(dsn, "SELECT count(*) FROM delivery")) == 0
    asyncio.run(_drop_database(pg_server, name))


async def _create_database(admin_dsn: str, name: str, dsn: str) -> dict[str, Any]:
    from app.agents import runs
    from app.agents.runs import NewRun, Trigger
    from app.db import engine
    from app.modes import Mode
    from app.tokens import service as tokens

    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    await engine.connect(dsn, pool_size=2)
    try:
        run = await runs.create(
            NewRun(
                installation_id=1,
                repository="octo-org/widgets",
                repository_id=2,
                issue_number=3,
                mode=Mode.INVESTIGATE,
                trigger=Trigger.COMMAND,
                requested_by="alice",
            )
        )
        await runs.update(run.id, state="running", workflow_run_id=4)
        return {
            "run": run.id,
            "agent": await tokens.create("fuzz-agent", "agent", ["octo-org/widgets"]),
            "api": await tokens.create("fuzz-api", "agent", ["octo-org/widgets"]),
        }
    finally:
        await engine.disconnect()


async def _count(dsn: str, query: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def fuzz(test):  # type: ignore[no-untyped-def]
    """A fixed number of examples, the same ones every run, no example database."""
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )(test)


# ------------------------------------------------------------------------ what bad input looks like

_text = st.text(max_size=40)
# Header values as HTTP allows them (no surrounding whitespace, no line breaks).
_header_text = st.text(alphabet=string.printable.strip(), max_size=60)
_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_huge = st.integers(min_value=INT64 + 1, max_value=2**80) | st.integers(
    max_value=-INT64 - 2, min_value=-(2**80)
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# Bodies that are not a JSON object at all.
_not_json = st.one_of(
    st.binary(max_size=200).filter(lambda raw: not _is_json_object(raw)),
    st.sampled_from([b"", b"{", b"{}}", b'{"a":', b"\xff\xfe{}", b'{"a": "\xff"}', b"[]"]),
    _json.filter(lambda v: not isinstance(v, dict)).map(_dumps),
    # A lone surrogate: valid JSON text, not valid Unicode.
    st.just(b'{"zen": "\\ud800"}'),
)


def _int_like(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


# A webhook payload whose fields Dispatch reads have the wrong type or size.
_bad_github_fields = st.one_of(
    st.fixed_dictionaries(
        {"action": _json.filter(lambda v: not isinstance(v, str) and v is not None)}
    ),
    st.fixed_dictionaries(
        {
            "installation": st.one_of(
                _json.filter(lambda v: not isinstance(v, dict) and v is not None),
                st.fixed_dictionaries(
                    {"id": _huge | _text | st.floats(allow_nan=False) | st.booleans()}
                ),
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "repository": st.one_of(
                _json.filter(lambda v: not isinstance(v, dict) and v is not None),
                st.fixed_dictionaries(
                    {"full_name": _json.filter(lambda v: not isinstance(v, str) and v is not None)}
                ),
            )
        }
    ),
    st.just({"action": "\ud800"}),
)


@dataclass(frozen=True)
class GitHubDelivery:
    body: bytes
    headers: dict[str, str]


@st.composite
def github_deliveries(draw: st.DrawFn) -> GitHubDelivery:
    flaw = draw(
        st.sampled_from(
            ["no signature", "forged signature", "no event", "no guid", "not an object", "fields"]
        )
    )
    if flaw == "not an object":
        body = draw(_not_json)
    elif flaw == "fields":
        value = draw(_bad_github_fields)
        body = json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    else:
        body = _dumps(draw(st.dictionaries(_text, _json, max_size=4)))
    headers = {
        "content-type": draw(st.sampled_from(["application/json", "text/plain", ""])),
        "x-github-event": draw(st.sampled_from(["issues", "issue_comment", "ping"]) | _header_text),
        "x-github-delivery": draw(_header_text.filter(bool)),
        "x-hub-signature-256": SIGNED,
    }
    if flaw == "no signature":
        del headers["x-hub-signature-256"]
    elif flaw == "forged signature":
        headers["x-hub-signature-256"] = draw(
            st.sampled_from(["", "sha256=", "sha1=abc"]) | _header_text.map(lambda t: "sha256=" + t)
        )
    elif flaw == "no event":
        headers.pop("x-github-event")
    elif flaw == "no guid":
        headers.pop("x-github-delivery")
    return GitHubDelivery(body, {k: v for k, v in headers.items() if v or k.startswith("x-hub")})


# ------------------------------------------------------------------------------------ the tests


def test_github_webhooks(target: Target) -> None:
    secret = target.webhook_secret

    @fuzz
    @given(github_deliveries())
    def send(delivery: GitHubDelivery) -> None:
        headers = dict(delivery.headers)
        if headers.get("x-hub-signature-256") == SIGNED:
            headers["x-hub-signature-256"] = github_signature(secret, delivery.body)
        target.send(
            "/webhooks/github", "POST", "/webhooks/github", content=delivery.body, headers=headers
        )

    send()
    assert sum(target.statuses["/webhooks/github"].values()) >= EXAMPLES


@st.composite
def grafana_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    flaw = draw(
        st.sampled_from(["no token", "wrong token", "not an object", "no alerts", "alerts"])
    )
    headers = {"authorization": f"Bearer {GRAFANA_TOKEN}", "content-type": "application/json"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw(
            _header_text.map(lambda t: f"Bearer {t}".strip())
            | _header_text
            | st.just("Basic Zm9vOmJhcg==")
        )
    if flaw == "not an object":
        body = draw(_not_json)
    elif flaw == "no alerts":
        payload = draw(st.dictionaries(_text, _json, max_size=4))
        payload["alerts"] = draw(_json.filter(lambda v: not isinstance(v, list)))
        body = _dumps(payload)
    elif flaw == "alerts":
        alerts = draw(st.lists(_json, min_size=1, max_size=4))
        alerts.insert(
            draw(st.integers(0, len(alerts))),
            draw(
                _json.filter(lambda v: not isinstance(v, dict))
                | st.fixed_dictionaries({"labels": _json.filter(lambda v: not isinstance(v, dict))})
                | st.fixed_dictionaries(
                    {"annotations": _json.filter(lambda v: not isinstance(v, dict))}
                )
                | st.fixed_dictionaries(
                    {
                        "labels": st.dictionaries(
                            _text,
                            _json.filter(lambda v: not isinstance(v, str)),
                            min_size=1,
                            max_size=3,
                        )
                    }
                )
            ),
        )
        body = _dumps({"alerts": alerts, "status": draw(_json)})
    else:
        body = _dumps({"alerts": []})
    return body, headers


def test_grafana_webhooks(target: Target) -> None:
    @fuzz
    @given(grafana_requests())
    def send(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        target.send("/webhooks/grafana", "POST", "/webhooks/grafana", content=body, headers=headers)

    send()
    assert sum(target.statuses["/webhooks/grafana"].values()) >= EXAMPLES


@st.composite
def sentry_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    flaw = draw(
        st.sampled_from(["no signature", "forged signature", "no resource", "not an object"])
    )
    body = (
        draw(_not_json)
        if flaw == "not an object"
        else _dumps(draw(st.dictionaries(_text, _json, max_size=4)))
    )
    headers = {
        "content-type": "application/json",
        "sentry-hook-resource": draw(
            st.sampled_from(["issue", "event_alert"]) | _header_text.filter(bool)
        ),
        "sentry-hook-signature": sentry_signature(SENTRY_SECRET, body),
        "request-id": draw(_header_text),
    }
    if flaw == "no signature":
        del headers["sentry-hook-signature"]
    elif flaw == "forged signature":
        headers["sentry-hook-signature"] = draw(_header_text)
    elif flaw == "no resource":
        del headers["sentry-hook-resource"]
    return body, {k: v for k, v in headers.items() if v or k == "sentry-hook-signature"}


def test_sentry_webhooks(target: Target) -> None:
    @fuzz
    @given(sentry_requests())
    def send(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        target.send("/webhooks/sentry", "POST", "/webhooks/sentry", content=body, headers=headers)

    send()
    assert sum(target.statuses["/webhooks/sentry"].values()) >= EXAMPLES


_not_string = _json.filter(lambda v: not isinstance(v, str))
_not_int = _json.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))

# Agent events that are objects but not one of the six shapes.
_bad_events = st.one_of(
    st.fixed_dictionaries({"type": _text.filter(lambda t: t not in EVENT_TYPES)}),
    st.fixed_dictionaries({"type": _not_string}),
    st.fixed_dictionaries({}),
    st.fixed_dictionaries({"type": st.just("progress"), "message": _not_string | st.just("")}),
    st.fixed_dictionaries({"type": st.just("plan")}),
    st.fixed_dictionaries({"type": st.just("plan"), "body": _not_string | st.just("")}),
    st.fixed_dictionaries(
        {
            "type": st.just("blocker"),
            "reason": _text.filter(bool),
            "category": _text.filter(lambda t: t not in CATEGORIES),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("pr"), "number": _not_int | st.integers(max_value=0) | _huge, "url": _text}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("completed"),
            "outcome": _text.filter(lambda t: t not in OUTCOMES),
            "summary": _text,
            "cost_usd": st.floats(min_value=0, max_value=10),
            "turns": st.integers(0, 10),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("completed"),
            "outcome": st.just("completed"),
            "summary": _not_string,
            "cost_usd": st.floats(max_value=-0.01) | _not_string,
            "turns": st.integers(max_value=-1) | _huge | st.floats(allow_nan=False),
        }
    ),
)
EVENT_TYPES = {"started", "progress", "plan", "blocker", "pr", "completed"}
CATEGORIES = {
    "missing_env",
    "unclear_requirement",
    "missing_dependency",
    "test_failure",
    "design_decision",
    "out_of_scope",
}
OUTCOMES = {
    "completed",
    "no_changes_needed",
    "blocked",
    "needs_human_decision",
    "investigation_complete",
    "failed",
}


@st.composite
def agent_requests(
    draw: st.DrawFn, kind: str, run_id: int, token: str
) -> tuple[str, bytes, dict[str, str]]:
    flaw = draw(st.sampled_from(["no token", "wrong token", "no run", "body"]))
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    path_id: int | str = run_id
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw(
            st.sampled_from(["Bearer", "Bearer dsp_nope", "Basic abc", "Bearer a.b.c"])
            | _header_text.map(lambda t: f"Bearer {t}".strip())
        )
    elif flaw == "no run":
        path_id = draw(st.integers(min_value=run_id + 1, max_value=INT64) | _huge)
    if kind == "events":
        body = draw(_not_json | _bad_events.map(_dumps))
    else:
        body = draw(
            _not_json
            | st.fixed_dictionaries(
                {"seq": _not_int | st.integers(max_value=0) | _huge, "data": _text}
            ).map(_dumps)
            | st.fixed_dictionaries({"seq": st.integers(1, 10), "data": _not_string}).map(_dumps)
            | st.fixed_dictionaries({"data": _text}).map(_dumps)
        )
    return f"/api/runs/{path_id}/{kind}", body, headers


@pytest.mark.parametrize("kind", ["events", "log"])
def test_agent_reports(target: Target, kind: str) -> None:
    @fuzz
    @given(agent_requests(kind, target.run_id, target.agent_token))
    def send(request: tuple[str, bytes, dict[str, str]]) -> None:
        path, body, headers = request
        target.send(f"/api/runs/{{id}}/{kind}", "POST", path, content=body, headers=headers)

    send()
    assert sum(target.statuses[f"/api/runs/{{id}}/{kind}"].values()) >= EXAMPLES


@st.composite
def api_requests(draw: st.DrawFn, path: str, token: str) -> tuple[dict[str, str], dict[str, str]]:
    flaw = draw(st.sampled_from(["no token", "wrong token", "query"]))
    headers = {"authorization": f"Bearer {token}"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw(
            _header_text.map(lambda t: f"Bearer {t}".strip()) | _header_text
        )
    bad_int = st.one_of(
        st.integers(max_value=0).map(str),
        _huge.map(str),
        _text.filter(lambda t: not _int_like(t)),
    )
    if path == "/api/issues":
        bad = {
            "state": _text.filter(lambda t: t not in ("open", "closed", "all")),
            "page": bad_int,
            "per_page": bad_int | st.integers(101, 10**6).map(str),
            "repo": _text.filter(lambda t: t.strip().lower() != "octo-org/widgets"),
        }
    else:
        bad = {
            "limit": bad_int | st.integers(1001, 10**6).map(str),
            "issue": bad_int,
            "repo": _text.filter(lambda t: t.strip().lower() != "octo-org/widgets"),
        }
    name = draw(st.sampled_from(sorted(bad)))
    query = {name: draw(bad[name])}
    if path == "/api/audit" and name == "issue":
        query["repo"] = "octo-org/widgets"
    if path == "/api/audit" and name == "limit":
        query["repo"] = "octo-org/widgets"
    return query, headers


@pytest.mark.parametrize("path", ["/api/issues", "/api/audit"])
def test_token_protected_apis(target: Target, path: str) -> None:
    @fuzz
    @given(api_requests(path, target.api_token))
    def send(request: tuple[dict[str, str], dict[str, str]]) -> None:
        query, headers = request
        target.send(path, "GET", path, params=query, headers=headers)

    send()
    assert sum(target.statuses[path].values()) >= EXAMPLES


# The harness API: runs, claims, search, issues and the fleet, each sent requests wrong in one way.
_bad_id = st.integers(min_value=10**6, max_value=INT64) | _huge
_bad_int = st.one_of(
    st.integers(max_value=0).map(str),
    _huge.map(str),
    _text.filter(lambda t: not _int_like(t)),
)
_other_repo = _text.filter(lambda t: t.strip() and t.strip().lower() != "octo-org/widgets")
_MODES = {mode.value for mode in Mode}
_STATES = {state.value for state in RunState} | {"active", "finished"}
_word = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=20)


@st.composite
def _one_field_wrong(
    draw: st.DrawFn, fields: dict[str, Any], bad: dict[str, st.SearchStrategy[Any]]
) -> bytes:
    """`fields` with one of them made wrong (or an unknown one added), as JSON."""
    name = draw(st.sampled_from([*sorted(bad), "unknown field"]))
    if name == "unknown field":
        return _dumps({**fields, draw(_text.filter(lambda t: t not in fields)): draw(_json)})
    return _dumps({**fields, name: draw(bad[name])})


_harness_run_bodies = _not_json | _one_field_wrong(
    {"repository": "octo-org/widgets", "issue": 3, "mode": "investigate", "agent": "fuzz"},
    {
        "repository": _not_string | _other_repo,
        "issue": _not_int | st.integers(max_value=0) | _huge,
        "mode": _not_string | _word.filter(lambda t: t not in _MODES),
        "agent": _not_string,
        "claim": _bad_id | _not_int.filter(lambda v: v is not None),
    },
)
_claim_bodies = _not_json | _one_field_wrong(
    {"agent": "fuzz"},
    {
        "agent": _not_string,
        "repositories": _not_int.filter(lambda v: not isinstance(v, list) and v is not None),
        "types": _huge | st.lists(_not_string.filter(lambda v: v is not None), min_size=1),
    },
)
_release_bodies = _not_json | _one_field_wrong(
    {"outcome": "done"},
    {
        "outcome": _not_string | _word.filter(lambda t: t not in {"done", "blocked", "abandoned"}),
        "reason": _not_string.filter(lambda v: v is not None),
    },
)
_run_list_queries = st.one_of(
    st.fixed_dictionaries({"issue": _bad_int, "repo": st.just("octo-org/widgets")}),
    st.fixed_dictionaries({"page": _bad_int}),
    st.fixed_dictionaries({"per_page": _bad_int | st.integers(101, 10**6).map(str)}),
    st.fixed_dictionaries({"state": _word.filter(lambda t: t not in _STATES)}),
    st.fixed_dictionaries({"mode": _word.filter(lambda t: t not in _MODES)}),
    st.fixed_dictionaries({"repo": _other_repo}),
)
_search_queries = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"q": _text, "limit": _bad_int | st.integers(51, 10**6).map(str)}),
    st.fixed_dictionaries({"q": _text, "repo": _other_repo}),
)
_log_queries = st.fixed_dictionaries(
    {"after": st.integers(max_value=-1).map(str) | _huge.map(str)}
) | st.fixed_dictionaries({"limit": _bad_int | st.integers(1001, 10**6).map(str)})

# method and path -> what is wrong with its input (query or body), if it takes any
HARNESS_INPUTS: dict[str, tuple[str, st.SearchStrategy[Any]] | None] = {
    "POST /api/runs": ("body", _harness_run_bodies),
    "GET /api/runs": ("query", _run_list_queries),
    "GET /api/runs/{run}": None,
    "GET /api/runs/{run}/log": ("query", _log_queries),
    "GET /api/issues/octo-org/widgets/{id}": None,
    "GET /api/fleet": None,
    "GET /api/search": ("query", _search_queries),
    "POST /api/claims": ("body", _claim_bodies),
    "POST /api/claims/{id}/heartbeat": None,
    "POST /api/claims/{id}/release": ("body", _release_bodies),
    "GET /api/claims/{id}": None,
}

# A body that is right, for requests wrong in their token or id.
HARNESS_BODIES = {
    "POST /api/runs": _dumps(
        {"repository": "octo-org/widgets", "issue": 3, "mode": "investigate", "agent": "fuzz"}
    ),
    "POST /api/claims": _dumps({"agent": "fuzz"}),
    "POST /api/claims/{id}/release": _dumps({"outcome": "done"}),
}


@st.composite
def harness_requests(draw: st.DrawFn, endpoint: str, token: str, run_id: int) -> dict[str, Any]:
    """One request to `endpoint` that is wrong in some way: the token, the id or the input."""
    method, pattern = endpoint.split(" ")
    inputs = HARNESS_INPUTS[endpoint]
    flaws = ["no token", "wrong token"]
    if "{" in pattern:
        flaws.append("no such id")
    if inputs is not None:
        flaws.append("input")
    flaw = draw(st.sampled_from(flaws))
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw(
            _header_text.map(lambda t: f"Bearer {t}".strip()) | st.just("Bearer dsp_nope")
        )
    run = draw(_bad_id) if flaw == "no such id" else run_id
    # Claims and issues: nothing by those ids exists, whatever else is right.
    path = pattern.replace("{run}", str(run)).replace("{id}", str(draw(_bad_id)))
    params: dict[str, str] = {"q": "crash"} if pattern == "/api/search" else {}
    body = HARNESS_BODIES.get(endpoint) if method == "POST" else None
    if flaw == "input":
        assert inputs is not None
        where, wrong = inputs
        if where == "query":
            params = draw(wrong)
        else:
            body = draw(wrong)
    return {"params": params, "headers": headers, "content": body, "path": path}


@pytest.mark.parametrize("endpoint", sorted(HARNESS_INPUTS))
def test_harness_apis(target: Target, endpoint: str) -> None:
    method = endpoint.split(" ")[0]

    @fuzz
    @given(harness_requests(endpoint, target.api_token, target.run_id))
    def send(request: dict[str, Any]) -> None:
        target.send(endpoint, method, request.pop("path"), **request)

    send()
    assert sum(target.statuses[endpoint].values()) >= EXAMPLES


def test_the_figures(target: Target, request: pytest.FixtureRequest) -> None:
    """Runs last in this module: what every endpoint answered, for the record."""
    total = sum(sum(c.values()) for c in target.statuses.values())
    lines = [f"{endpoint}: {dict(sorted(c.items()))}" for endpoint, c in target.statuses.items()]
    request.node.user_properties.append(("fuzzing", lines))
    print(f"\nmalformed requests: {total}\n" + "\n".join(lines))
    assert all(400 <= status < 500 for c in target.statuses.values() for status in c)
