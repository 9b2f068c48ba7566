"""First run: a server with no GitHub App offers `/setup`, registers the App through GitHub's
manifest flow against the fake GitHub, stores the credentials (0600) and uses them at once."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from app.config import load_settings
from app.github.credentials import CREDENTIALS_FILE
from app.logs import JsonFormatter
from app.runtime import Runtime
from app.setup import code as setup_code
from app.worker import build_runtime
from tests.harness import free_port, serve_in_process
from tests.webhooks import example, signed

pytestmark = pytest.mark.slow

DISPATCH_URL = "https://dispatch.example.org"
GITHUB_WEB_URL = "https://github.example"
APP_YML = Path(__file__).resolve().parents[2] / "app.yml"
CONVERSIONS = r"^/app-manifests/[^/]+/conversions$"


@dataclass
class Server:
    http: httpx.AsyncClient
    rt: Runtime
    data_dir: Path


class ServerLog(logging.Handler):
    """Everything the server logs, down to DEBUG: each line as the server writes it (JSON,
    scrubbed) and, besides, the record's raw message and fields, so a secret that only the
    scrubber keeps out of the output still counts as logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(record.getMessage())
        self.lines += [repr(v) for k, v in vars(record).items() if k not in _PLAIN_RECORD]

    def text(self) -> str:
        return "\n".join(self.lines)


_PLAIN_RECORD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    handler = ServerLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.asynccontextmanager
async def unconfigured(
    data_dir: Path, dsn: str, api_url: str, dispatch_url: str = DISPATCH_URL
) -> AsyncIterator[Server]:
    """Dispatch served in-process with no GitHub App configured at all."""
    settings = load_settings(
        dispatch_data_dir=data_dir,
        dispatch_url=dispatch_url,
        dispatch_secret_key="k" * 32,
        github_api_url=api_url,
        github_web_url=GITHUB_WEB_URL,
    )
    rt = build_runtime(settings)
    try:
        async with serve_in_process(rt, dsn, worker=False) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                yield Server(http, rt, data_dir)
    finally:
        await rt.close()


@pytest.fixture
async def server(tmp_path, database, github, server_log) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    async with unconfigured(tmp_path, database, github.url) as running:
        yield running
    # Checked once the server has shut down, so its last lines are in.
    assert_no_private_key(server_log.text(), github.private_key_pem)


def assert_no_private_key(log: str, pem: str) -> None:
    # Line by line: JSON log lines escape the PEM's newlines, so the whole PEM never matches.
    key_lines = [line for line in pem.splitlines() if "-----" not in line]
    leaked = [line for line in key_lines if line in log]
    if leaked:  # not an assert: pytest would print the key lines it compared
        pytest.fail(f"{len(leaked)} lines of the private key are in the server log")


class _Page(HTMLParser):
    """The forms and inputs of a page, attribute values unescaped."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "input":
            values = dict(attrs)
            self.inputs[values.get("name") or ""] = values


async def unlock(server: Server) -> None:
    """Enter the setup code the operator was shown; the server answers with the session cookie,
    which this client keeps (it is Secure: httpx would not send it back over plain http)."""
    response = await server.http.post(
        "/setup", data={"code": setup_code.ensure(server.data_dir)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    name, _, rest = response.headers["set-cookie"].partition("=")
    server.http.headers["cookie"] = f"{name}={rest.split(';')[0]}"


async def registration_form(server: Server) -> tuple[str, dict]:
    """The form's target URL and the manifest it would post, once setup is unlocked."""
    if "cookie" not in server.http.headers:
        await unlock(server)
    response = await server.http.get("/setup")
    assert response.status_code == 200
    page = _Page(response.text)
    assert len(page.forms) == 1
    assert page.forms[0]["method"] == "post"
    manifest = page.inputs["manifest"]
    assert manifest["type"] == "hidden"
    return str(page.forms[0]["action"]), json.loads(str(manifest["value"]))


def state_of(action: str) -> str:
    return parse_qs(urlsplit(action).query)["state"][0]


async def callback(http: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await http.get("/setup/callback", params=params, follow_redirects=False)


def credentials_file(server: Server) -> Path:
    return server.data_dir / CREDENTIALS_FILE


async def test_unconfigured_server_offers_registration_from_the_manifest(server):
    health = await server.http.get("/healthz")
    action, manifest = await registration_form(server)

    assert health.json()["github_app"] == "unconfigured"
    target = urlsplit(action)
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{GITHUB_WEB_URL}/settings/apps/new"
    )
    server.rt.signer.verify("setup-state", state_of(action))
    assert manifest["hook_attributes"]["url"] == f"{DISPATCH_URL}/webhooks/github"
    assert manifest["hook_attributes"]["active"] is True
    assert manifest["redirect_url"] == f"{DISPATCH_URL}/setup/callback"
    assert manifest["public"] is False
    assert manifest["default_permissions"] == {
        "issues": "write",
        "pull_requests": "write",
        "actions": "write",
        "contents": "read",
        "metadata": "read",
        "deployments": "read",
        # QA's verdict is the `dispatch/qa` check run on the pull request's head.
        "checks": "write",
    }
    assert manifest["default_events"] == yaml.safe_load(APP_YML.read_text())["default_events"]
    assert len(manifest["default_events"]) == 10


async def test_callback_registers_the_app_and_the_server_uses_it_at_once(server, github):
    action, _ = await registration_form(server)

    response = await callback(server.http, code=github.manifest_code(), state=state_of(action))

    assert response.status_code == 200
    assert f"App id <code>{github.app_id}</code>, owned by <code>dispatch-dev</code>" in (
        response.text
    )
    assert f"https://github.com/apps/{github.app_slug}/installations/new" in response.text
    assert len(github.calls_to("POST", CONVERSIONS)) == 1
    path = credentials_file(server)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "app_id": github.app_id,
        "slug": github.app_slug,
        "private_key": github.private_key_pem,
        "webhook_secret": github.webhook_secret,
        "client_id": github.client_id,
        "client_secret": github.client_secret,
        "html_url": f"https://github.com/apps/{github.app_slug}",
        "owner": "dispatch-dev",
    }

    # No restart: the same server now knows the App.
    health = await server.http.get("/healthz")
    payload = example("issues/opened", installation_id=1)
    body, headers = signed(github.webhook_secret, "issues", payload)
    accepted = await server.http.post("/webhooks/github", content=body, headers=headers)
    body, headers = signed("some-other-secret", "issues", payload)
    forged = await server.http.post("/webhooks/github", content=body, headers=headers)

    assert health.json()["github_app"] == "configured"
    assert accepted.status_code == 202
    assert forged.status_code == 401


async def test_once_registered_setup_registers_nothing_more(server, github):
    action, _ = await registration_form(server)
    state = state_of(action)
    await callback(server.http, code=github.manifest_code(), state=state)
    saved = credentials_file(server).read_text()

    page = await server.http.get("/setup")
    again = await callback(server.http, code=github.manifest_code(), state=state)

    assert page.status_code == 200
    assert "is configured" in page.text
    assert _Page(page.text).forms == []
    assert "manifest" not in _Page(page.text).inputs
    assert again.status_code == 409
    assert "no longer registers anything" in again.text
    assert len(github.calls_to("POST", CONVERSIONS)) == 1
    assert credentials_file(server).read_text() == saved


@pytest.mark.parametrize(
    "make_state",
    [
        None,
        lambda rt: "",
        lambda rt: "forged.token",
        lambda rt: rt.signer.sign("stream", "run-1", 3600),  # authentic, minted for streams
        lambda rt: rt.signer.sign("setup-state", "register", -1),  # expired
    ],
    ids=["missing", "empty", "forged", "other-purpose", "expired"],
)
async def test_callback_without_a_valid_state_is_refused(server, github, make_state):
    await unlock(server)  # the right browser, the wrong state
    params = {"code": github.manifest_code()}
    if make_state is not None:
        params["state"] = make_state(server.rt)

    response = await callback(server.http, **params)

    assert response.status_code == 400
    assert "not from this setup page in this browser (or it expired)" in response.text
    assert github.calls_to("POST", CONVERSIONS) == []
    assert not credentials_file(server).exists()
    assert (await server.http.get("/healthz")).json()["github_app"] == "unconfigured"


async def test_callback_without_a_code_is_refused(server, github):
    action, _ = await registration_form(server)

    response = await callback(server.http, state=state_of(action))

    assert response.status_code == 400
    assert "did not send a code" in response.text
    assert github.calls_to("POST", CONVERSIONS) == []
    assert not credentials_file(server).exists()


async def test_code_github_refuses_is_a_502_that_says_why(server, github):
    action, _ = await registration_form(server)

    response = await callback(server.http, code="expired0code", state=state_of(action))

    assert response.status_code == 502
    assert "GitHub refused the code (404)" in response.text
    assert "start again from /setup" in response.text
    assert len(github.calls_to("POST", CONVERSIONS)) == 1
    assert not credentials_file(server).exists()
    # The page still offers registration, so the user can start over right there.
    assert "manifest" in _Page(response.text).inputs


async def test_malformed_code_is_refused_without_asking_github(server, github):
    action, _ = await registration_form(server)

    response = await callback(server.http, code="../x", state=state_of(action))

    assert response.status_code == 400
    assert "the code is malformed" in response.text
    assert github.calls == []
    assert not credentials_file(server).exists()


async def test_unreachable_github_is_a_502_that_says_why(tmp_path, database, github):
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with unconfigured(tmp_path, database, nowhere) as server:
        action, _ = await registration_form(server)

        response = await callback(server.http, code=github.manifest_code(), state=state_of(action))

    assert response.status_code == 502
    assert f"could not reach GitHub at {nowhere}" in response.text
    assert not credentials_file(server).exists()


async def test_setup_is_locked_until_the_setup_code_is_entered(server, github):
    page = await server.http.get("/setup")

    assert page.status_code == 200
    assert "setup code" in page.text
    assert "manifest" not in _Page(page.text).inputs  # nothing to register with yet
    wrong = await server.http.post("/setup", data={"code": "AAAAA-BBBBB-CCCCC-DDDDD"})
    assert wrong.status_code == 403
    assert "set-cookie" not in wrong.headers
    assert "manifest" not in _Page(wrong.text).inputs


def session_cookie(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The cookie the setup page sets: its name, and its attributes (lowercase; flags as "")."""
    [header] = response.headers.get_list("set-cookie")
    first, *attributes = [part.strip() for part in header.split(";")]
    name = first.partition("=")[0]
    found = {}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        found[key.lower()] = value.lower()
    return name, found


async def test_the_setup_session_cookie_is_host_only_secure_and_out_of_scripts_reach(server):
    response = await server.http.post(
        "/setup", data={"code": setup_code.ensure(server.data_dir)}, follow_redirects=False
    )

    assert response.status_code == 303
    name, attributes = session_cookie(response)
    # `__Host-`: Secure, Path=/, no Domain, so no subdomain can set or read it.
    assert name.startswith("__Host-")
    assert "secure" in attributes and attributes.get("path") == "/"
    assert "domain" not in attributes
    assert "httponly" in attributes  # no script of any page reads it
    assert attributes.get("samesite") == "lax"  # not sent on another site's POST


async def test_over_plain_http_the_session_cookie_is_still_out_of_scripts_reach(
    tmp_path, database, github
):
    # Browsers keep `__Host-` and Secure cookies only over https: a local http server sets a
    # plain one, with the rest of the protections.
    async with unconfigured(tmp_path, database, github.url, "http://localhost:8000") as server:
        response = await server.http.post(
            "/setup", data={"code": setup_code.ensure(server.data_dir)}, follow_redirects=False
        )

    assert response.status_code == 303
    name, attributes = session_cookie(response)
    assert name == "dispatch-setup" and "secure" not in attributes
    assert "httponly" in attributes and attributes.get("samesite") == "lax"


async def test_a_stranger_with_a_valid_state_but_not_the_session_is_refused(
    server, github, tmp_path
):
    """The state travels in a URL (a referrer, a shared screen); the session cookie does not."""
    action, _ = await registration_form(server)
    stranger = httpx.AsyncClient(base_url=str(server.http.base_url), timeout=30)
    async with stranger:
        response = await stranger.get(
            "/setup/callback",
            params={"code": github.manifest_code(), "state": state_of(action)},
        )

    assert response.status_code == 400
    assert github.calls_to("POST", CONVERSIONS) == []
    assert not credentials_file(server).exists()


async def test_two_overlapping_callbacks_register_one_app(server, github):
    import asyncio

    action, _ = await registration_form(server)
    state = state_of(action)

    first, second = await asyncio.gather(
        callback(server.http, code=github.manifest_code(), state=state),
        callback(server.http, code=github.manifest_code(), state=state),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert json.loads(credentials_file(server).read_text())["app_id"] == github.app_id
    assert not (server.data_dir / setup_code.CODE_FILE).exists()


async def test_setup_pages_forbid_framing_and_sniffing(server):
    page = await server.http.get("/setup")

    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_serve_prints_the_setup_code_and_keeps_it_private(tmp_path, database, github):
    from tests.harness import ServerProcess

    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DISPATCH_"))}
    env.update(
        DATABASE_URL=database,
        DISPATCH_DATA_DIR=str(data_dir),
        DISPATCH_URL=DISPATCH_URL,
        DISPATCH_SECRET_KEY="k" * 32,
        GITHUB_API_URL=github.url,
        DISPATCH_EMBEDDINGS="off",
    )
    process = ServerProcess(env).start(tmp_path / "serve.log")
    try:
        await process.wait_ready()
    finally:
        process.stop()

    # `--port 0` (the harness's): the port the system chose, named once it is bound.
    assert f"listening on {process.url}\n" in process.output()
    assert not process.url.endswith(":0")
    code_file = data_dir / setup_code.CODE_FILE
    assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
    assert f"enter the setup code {code_file.read_text().strip()}" in process.output()
