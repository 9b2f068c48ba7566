"""Bad input never yields a 5xx: fuzzed requests (seeded, the same every run), each wrong in some way —
a missing or forged signature or token, a header left out, a body that is not JSON, not UTF-8,
not an object, or an object whose fields have the wrong type, size or range, a query parameter
out of bounds, an id nothing has — sent to one real `dispatch serve` process, at least 1,000 per
endpoint: the webhooks, the agent's reports and every token-protected API (issues, audit, and the
harness API: runs, claims, search, issues, fleet). `/mcp` answers bad calls in JSON-RPC and is
tested in tests/mcp.

Every answer is a 4xx with a JSON body that says what is wrong; nothing is journaled (none of
these is a delivery to act on, and nothing without a valid signature ever is); the server's
log holds no traceback and no error. A failure names the example's seed: `Draw(seed)` in
tests/security/malformed.py makes that one request again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from app.agents.runs import RunState
from app.intake.signatures import github_signature, sentry_signature
from app.modes import Mode
from tests.conftest import TEMPLATE_DB, _with_database, make_settings
from tests.harness import ServerProcess, settings_env
from tests.security.malformed import INT64, Draw, dumps

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

EXAMPLES = 1000
GRAFANA_TOKEN = "grafana-fuzz-token"
SENTRY_SECRET = "sentry-fuzz-secret"
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

    def send(
        self, draw: Draw, endpoint: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.statuses.setdefault(endpoint, Counter())[response.status_code] += 1
        sent = f"example {draw.seed!r}: {method} {path} {kwargs!r:.1000}"
        assert 400 <= response.status_code < 500, (
            f"{sent}\nanswered {response.status_code}: {response.text[:500]}"
        )
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
            f"{sent}\nanswered {body!r:.500}"
        )
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


def examples(endpoint: str) -> Iterator[Draw]:
    """EXAMPLES draws for `endpoint`, each seeded by its name and number."""
    for number in range(EXAMPLES):
        yield Draw(f"{endpoint}#{number}")


# ------------------------------------------------------------------------ what bad input looks like


def bad_github_fields(draw: Draw) -> dict[str, Any]:
    """A webhook payload whose fields Dispatch reads have the wrong type or size."""
    none = type(None)
    return draw.one_of(
        lambda: {"action": draw.json_except(str, none)},
        lambda: {
            "installation": draw.one_of(
                lambda: draw.json_except(dict, none),
                lambda: {"id": draw.one_of(draw.huge, draw.text, draw.floating, draw.boolean)},
            )
        },
        lambda: {
            "repository": draw.one_of(
                lambda: draw.json_except(dict, none),
                lambda: {"full_name": draw.json_except(str, none)},
            )
        },
        lambda: {"action": "\ud800"},
    )


def github_delivery(draw: Draw) -> tuple[bytes, dict[str, str]]:
    """A delivery without a signature, event or guid, with a forged signature, or signed but
    with a body that is not an object or whose fields are wrong."""
    flaw = draw.choice(
        ["no signature", "forged signature", "no event", "no guid", "not an object", "fields"]
    )
    if flaw == "not an object":
        body = draw.not_a_json_object()
    elif flaw == "fields":
        body = dumps(bad_github_fields(draw), ensure_ascii=draw.boolean())
    else:
        body = dumps(draw.object())
    headers = {
        "content-type": draw.choice(["application/json", "text/plain", ""]),
        "x-github-event": draw.one_of(
            lambda: draw.choice(["issues", "issue_comment", "ping"]), draw.header_text
        ),
        "x-github-delivery": draw.header_text(min_size=1),
        "x-hub-signature-256": SIGNED,
    }
    if flaw == "no signature":
        del headers["x-hub-signature-256"]
    elif flaw == "forged signature":
        headers["x-hub-signature-256"] = draw.one_of(
            lambda: draw.choice(["", "sha256=", "sha1=abc"]),
            lambda: "sha256=" + draw.header_text(),
        )
    elif flaw == "no event":
        headers.pop("x-github-event")
    elif flaw == "no guid":
        headers.pop("x-github-delivery")
    return body, {k: v for k, v in headers.items() if v or k.startswith("x-hub")}


def grafana_request(draw: Draw) -> tuple[bytes, dict[str, str]]:
    flaw = draw.choice(["no token", "wrong token", "not an object", "no alerts", "alerts"])
    headers = {"authorization": f"Bearer {GRAFANA_TOKEN}", "content-type": "application/json"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw.one_of(
            lambda: f"Bearer {draw.header_text()}".strip(),
            draw.header_text,
            lambda: "Basic Zm9vOmJhcg==",
        )
    if flaw == "not an object":
        body = draw.not_a_json_object()
    elif flaw == "no alerts":
        body = dumps({**draw.object(), "alerts": draw.json_except(list)})
    elif flaw == "alerts":
        alerts = [draw.json() for _ in range(draw.size(4, 1))]
        wrong = draw.one_of(
            draw.not_object,
            lambda: {"labels": draw.not_object()},
            lambda: {"annotations": draw.not_object()},
            lambda: {"labels": {draw.text(): draw.not_string() for _ in range(draw.size(3, 1))}},
        )
        alerts.insert(draw.integer(0, len(alerts)), wrong)
        body = dumps({"alerts": alerts, "status": draw.json()})
    else:
        body = dumps({"alerts": []})
    return body, headers


def sentry_request(draw: Draw) -> tuple[bytes, dict[str, str]]:
    flaw = draw.choice(["no signature", "forged signature", "no resource", "not an object"])
    body = draw.not_a_json_object() if flaw == "not an object" else dumps(draw.object())
    headers = {
        "content-type": "application/json",
        "sentry-hook-resource": draw.one_of(
            lambda: draw.choice(["issue", "event_alert"]), lambda: draw.header_text(min_size=1)
        ),
        "sentry-hook-signature": sentry_signature(SENTRY_SECRET, body),
        "request-id": draw.header_text(),
    }
    if flaw == "no signature":
        del headers["sentry-hook-signature"]
    elif flaw == "forged signature":
        headers["sentry-hook-signature"] = draw.header_text()
    elif flaw == "no resource":
        del headers["sentry-hook-resource"]
    return body, {k: v for k, v in headers.items() if v or k == "sentry-hook-signature"}


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


def bad_event(draw: Draw) -> dict[str, Any]:
    """An agent event that is an object but not one of the six shapes."""
    return draw.one_of(
        lambda: {"type": draw.text_except(lambda t: t in EVENT_TYPES)},
        lambda: {"type": draw.not_string()},
        lambda: {},
        lambda: {"type": "progress", "message": draw.one_of(draw.not_string, lambda: "")},
        lambda: {"type": "plan"},
        lambda: {"type": "plan", "body": draw.one_of(draw.not_string, lambda: "")},
        lambda: {
            "type": "blocker",
            "reason": draw.text(min_size=1),
            "category": draw.text_except(lambda t: t in CATEGORIES),
        },
        lambda: {
            "type": "pr",
            "number": draw.one_of(draw.not_int, lambda: draw.integer(-(2**40), 0), draw.huge),
            "url": draw.text(),
        },
        lambda: {
            "type": "completed",
            "outcome": draw.text_except(lambda t: t in OUTCOMES),
            "summary": draw.text(),
            "cost_usd": draw.random.uniform(0, 10),
            "turns": draw.integer(0, 10),
        },
        lambda: {
            "type": "completed",
            "outcome": "completed",
            "summary": draw.not_string(),
            "cost_usd": draw.one_of(lambda: -draw.random.uniform(0.01, 1e6), draw.not_string),
            "turns": draw.one_of(lambda: draw.integer(-(2**40), -1), draw.huge, draw.floating),
        },
    )


def bad_log_chunk(draw: Draw) -> dict[str, Any]:
    return draw.one_of(
        lambda: {
            "seq": draw.one_of(draw.not_int, lambda: draw.integer(-(2**40), 0), draw.huge),
            "data": draw.text(),
        },
        lambda: {"seq": draw.integer(1, 10), "data": draw.not_string()},
        lambda: {"data": draw.text()},
    )


def agent_request(
    draw: Draw, kind: str, run_id: int, token: str
) -> tuple[str, bytes, dict[str, str]]:
    flaw = draw.choice(["no token", "wrong token", "no run", "body"])
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    path_id: int | str = run_id
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw.one_of(
            lambda: draw.choice(["Bearer", "Bearer dsp_nope", "Basic abc", "Bearer a.b.c"]),
            lambda: f"Bearer {draw.header_text()}".strip(),
        )
    elif flaw == "no run":
        path_id = draw.one_of(lambda: draw.integer(run_id + 1, INT64), draw.huge)
    wrong = bad_event if kind == "events" else bad_log_chunk
    body = draw.one_of(draw.not_a_json_object, lambda: dumps(wrong(draw)))
    return f"/api/runs/{path_id}/{kind}", body, headers


def other_repository(draw: Draw) -> str:
    return draw.text_except(lambda t: not t.strip() or t.strip().lower() == "octo-org/widgets")


def api_request(draw: Draw, path: str, token: str) -> tuple[dict[str, str], dict[str, str]]:
    flaw = draw.choice(["no token", "wrong token", "query"])
    headers = {"authorization": f"Bearer {token}"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw.one_of(
            lambda: f"Bearer {draw.header_text()}".strip(), draw.header_text
        )
    bad: dict[str, Callable[[], str]]
    if path == "/api/issues":
        bad = {
            "state": lambda: draw.text_except(lambda t: t in ("open", "closed", "all")),
            "page": draw.int_text_not_positive,
            "per_page": lambda: draw.one_of(
                draw.int_text_not_positive, lambda: str(draw.integer(101, 10**6))
            ),
            "repo": lambda: draw.text_except(lambda t: t.strip().lower() == "octo-org/widgets"),
        }
    else:
        bad = {
            "limit": lambda: draw.one_of(
                draw.int_text_not_positive, lambda: str(draw.integer(1001, 10**6))
            ),
            "issue": draw.int_text_not_positive,
            "repo": lambda: draw.text_except(lambda t: t.strip().lower() == "octo-org/widgets"),
        }
    name = draw.choice(sorted(bad))
    query = {name: bad[name]()}
    if path == "/api/audit" and name in ("issue", "limit"):
        query["repo"] = "octo-org/widgets"
    return query, headers


# The harness API: runs, claims, search, issues and the fleet, each sent requests wrong in one way.
_MODES = {mode.value for mode in Mode}
_STATES = {state.value for state in RunState} | {"active", "finished"}


def bad_id(draw: Draw) -> int:
    return draw.one_of(lambda: draw.integer(10**6, INT64), draw.huge)


def one_field_wrong(draw: Draw, fields: dict[str, Any], bad: dict[str, Callable[[], Any]]) -> bytes:
    """`fields` with one of them made wrong (or an unknown one added), as JSON."""
    name = draw.choice([*sorted(bad), "unknown field"])
    if name == "unknown field":
        return dumps({**fields, draw.text_except(lambda t: t in fields): draw.json()})
    return dumps({**fields, name: bad[name]()})


def harness_run_body(draw: Draw) -> bytes:
    return one_field_wrong(
        draw,
        {"repository": "octo-org/widgets", "issue": 3, "mode": "investigate", "agent": "fuzz"},
        {
            "repository": lambda: draw.one_of(draw.not_string, lambda: other_repository(draw)),
            "issue": lambda: draw.one_of(
                draw.not_int, lambda: draw.integer(-(2**40), 0), draw.huge
            ),
            "mode": lambda: draw.one_of(draw.not_string, lambda: _word_except(draw, _MODES)),
            "agent": draw.not_string,
            "claim": lambda: draw.one_of(
                lambda: bad_id(draw), lambda: draw.json_except(int, type(None))
            ),
        },
    )


def claim_body(draw: Draw) -> bytes:
    return one_field_wrong(
        draw,
        {"agent": "fuzz"},
        {
            "agent": draw.not_string,
            "repositories": lambda: draw.json_except(list, int, type(None)),
            "types": lambda: draw.one_of(
                draw.huge,
                lambda: [draw.json_except(str, type(None)) for _ in range(draw.size(4, 1))],
            ),
        },
    )


def release_body(draw: Draw) -> bytes:
    return one_field_wrong(
        draw,
        {"outcome": "done"},
        {
            "outcome": lambda: draw.one_of(
                draw.not_string, lambda: _word_except(draw, {"done", "blocked", "abandoned"})
            ),
            "reason": lambda: draw.json_except(str, type(None)),
        },
    )


def _word_except(draw: Draw, taken: set[str]) -> str:
    while (word := draw.word()) in taken:
        pass
    return word


def run_list_query(draw: Draw) -> dict[str, str]:
    return draw.one_of(
        lambda: {"issue": draw.int_text_not_positive(), "repo": "octo-org/widgets"},
        lambda: {"page": draw.int_text_not_positive()},
        lambda: {
            "per_page": draw.one_of(
                draw.int_text_not_positive, lambda: str(draw.integer(101, 10**6))
            )
        },
        lambda: {"state": _word_except(draw, _STATES)},
        lambda: {"mode": _word_except(draw, _MODES)},
        lambda: {"repo": other_repository(draw)},
    )


def search_query(draw: Draw) -> dict[str, str]:
    return draw.one_of(
        lambda: {},
        lambda: {
            "q": draw.text(),
            "limit": draw.one_of(draw.int_text_not_positive, lambda: str(draw.integer(51, 10**6))),
        },
        lambda: {"q": draw.text(), "repo": other_repository(draw)},
    )


def log_query(draw: Draw) -> dict[str, str]:
    return draw.one_of(
        lambda: {"after": str(draw.one_of(lambda: draw.integer(-(2**40), -1), draw.huge))},
        lambda: {
            "limit": draw.one_of(draw.int_text_not_positive, lambda: str(draw.integer(1001, 10**6)))
        },
    )


# method and path -> what is wrong with its input (query or body), if it takes any
HARNESS_INPUTS: dict[str, tuple[str, Callable[[Draw], Any]] | None] = {
    "POST /api/runs": ("body", harness_run_body),
    "GET /api/runs": ("query", run_list_query),
    "GET /api/runs/{run}": None,
    "GET /api/runs/{run}/log": ("query", log_query),
    "GET /api/issues/octo-org/widgets/{id}": None,
    "GET /api/fleet": None,
    "GET /api/search": ("query", search_query),
    "POST /api/claims": (
        "body",
        lambda draw: draw.one_of(draw.not_a_json_object, lambda: claim_body(draw)),
    ),
    "POST /api/claims/{id}/heartbeat": None,
    "POST /api/claims/{id}/release": (
        "body",
        lambda draw: draw.one_of(draw.not_a_json_object, lambda: release_body(draw)),
    ),
    "GET /api/claims/{id}": None,
}

# A body that is right, for requests wrong in their token or id.
HARNESS_BODIES = {
    "POST /api/runs": dumps(
        {"repository": "octo-org/widgets", "issue": 3, "mode": "investigate", "agent": "fuzz"}
    ),
    "POST /api/claims": dumps({"agent": "fuzz"}),
    "POST /api/claims/{id}/release": dumps({"outcome": "done"}),
}


def harness_request(draw: Draw, endpoint: str, token: str, run_id: int) -> dict[str, Any]:
    """One request to `endpoint` that is wrong in some way: the token, the id or the input."""
    method, pattern = endpoint.split(" ")
    inputs = HARNESS_INPUTS[endpoint]
    flaws = ["no token", "wrong token"]
    if "{" in pattern:
        flaws.append("no such id")
    if inputs is not None:
        flaws.append("input")
    flaw = draw.choice(flaws)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    if flaw == "no token":
        del headers["authorization"]
    elif flaw == "wrong token":
        headers["authorization"] = draw.one_of(
            lambda: f"Bearer {draw.header_text()}".strip(), lambda: "Bearer dsp_nope"
        )
    run = bad_id(draw) if flaw == "no such id" else run_id
    # Claims and issues: nothing by those ids exists, whatever else is right.
    path = pattern.replace("{run}", str(run)).replace("{id}", str(bad_id(draw)))
    params: dict[str, str] = {"q": "crash"} if pattern == "/api/search" else {}
    body = HARNESS_BODIES.get(endpoint) if method == "POST" else None
    if flaw == "input":
        assert inputs is not None
        where, wrong = inputs
        if where == "query":
            params = wrong(draw)
        else:
            body = wrong(draw)
    return {"params": params, "headers": headers, "content": body, "path": path}


# ------------------------------------------------------------------------------------ the tests


def test_github_webhooks(target: Target) -> None:
    for draw in examples("/webhooks/github"):
        body, headers = github_delivery(draw)
        if headers.get("x-hub-signature-256") == SIGNED:
            headers["x-hub-signature-256"] = github_signature(target.webhook_secret, body)
        target.send(
            draw, "/webhooks/github", "POST", "/webhooks/github", content=body, headers=headers
        )
    assert sum(target.statuses["/webhooks/github"].values()) == EXAMPLES


def test_grafana_webhooks(target: Target) -> None:
    for draw in examples("/webhooks/grafana"):
        body, headers = grafana_request(draw)
        target.send(
            draw, "/webhooks/grafana", "POST", "/webhooks/grafana", content=body, headers=headers
        )
    assert sum(target.statuses["/webhooks/grafana"].values()) == EXAMPLES


def test_sentry_webhooks(target: Target) -> None:
    for draw in examples("/webhooks/sentry"):
        body, headers = sentry_request(draw)
        target.send(
            draw, "/webhooks/sentry", "POST", "/webhooks/sentry", content=body, headers=headers
        )
    assert sum(target.statuses["/webhooks/sentry"].values()) == EXAMPLES


@pytest.mark.parametrize("kind", ["events", "log"])
def test_agent_reports(target: Target, kind: str) -> None:
    endpoint = f"/api/runs/{{id}}/{kind}"
    for draw in examples(endpoint):
        path, body, headers = agent_request(draw, kind, target.run_id, target.agent_token)
        target.send(draw, endpoint, "POST", path, content=body, headers=headers)
    assert sum(target.statuses[endpoint].values()) == EXAMPLES


@pytest.mark.parametrize("path", ["/api/issues", "/api/audit"])
def test_token_protected_apis(target: Target, path: str) -> None:
    for draw in examples(path):
        query, headers = api_request(draw, path, target.api_token)
        target.send(draw, path, "GET", path, params=query, headers=headers)
    assert sum(target.statuses[path].values()) == EXAMPLES


@pytest.mark.parametrize("endpoint", sorted(HARNESS_INPUTS))
def test_harness_apis(target: Target, endpoint: str) -> None:
    method = endpoint.split(" ")[0]
    for draw in examples(endpoint):
        request = harness_request(draw, endpoint, target.api_token, target.run_id)
        target.send(draw, endpoint, method, request.pop("path"), **request)
    assert sum(target.statuses[endpoint].values()) == EXAMPLES


def test_the_figures(target: Target, request: pytest.FixtureRequest) -> None:
    """Runs last in this module: what every endpoint answered, for the record."""
    total = sum(sum(c.values()) for c in target.statuses.values())
    lines = [f"{endpoint}: {dict(sorted(c.items()))}" for endpoint, c in target.statuses.items()]
    request.node.user_properties.append(("fuzzing", lines))
    print(f"\nmalformed requests: {total}\n" + "\n".join(lines))
    assert all(400 <= status < 500 for c in target.statuses.values() for status in c)
