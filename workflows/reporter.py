#!/usr/bin/env python3
"""Dispatch reporter: the agent side of Dispatch's agent API, and nothing more.

A workflow run (or any local harness) uses this one file to fetch its brief and prompt (both made
by Dispatch), to stream the agent's terminal output to Dispatch, and to report events (started,
plan, blocker, pr, completed). It adds no instructions of its own. It imports nothing outside the
standard library (Python >= 3.10); the agent workflow downloads it from `GET /agent/reporter.py`
and checks it against the SHA-256 the workflow file pins.

    reporter.py brief    [--from FILE] [--out FILE] [--prompt-out FILE] [--env-out FILE]
    reporter.py token    --output FILE --seal-key-env NAME
    reporter.py stream   [--result-out FILE] [--interval 3] -- COMMAND...
    reporter.py replay   FILE.ndjson [--result-out FILE] [--interval 3]
    reporter.py verdict  [--result FILE]
    reporter.py complete [--result FILE] [--outcome OUTCOME | --no-changes] [--summary TEXT]
    reporter.py event    TYPE [--message] [--body-file] [--reason] [--category] [--number]
                              [--url] [--json JSON]

Every subcommand takes `--url` (default `$DISPATCH_URL`), `--run-id` (default `$RUN_ID`),
`--token-file` and `--seal-key-env`. Credentials, first found: `--token-file` (read once, then
deleted; a sealed token is opened with the secret in the variable `--seal-key-env` names),
`$DISPATCH_TOKEN` (an agent API token or a run's stream token), or the GitHub Actions OIDC token
for the audience `$DISPATCH_AUDIENCE` (default: the Dispatch URL), fetched again on a 401.

In the agent workflow the agent runs in a job without `id-token: write`: `token` (in an earlier job,
with OIDC) gets a stream token that can only post log chunks and `started`/`progress` for this run
while it is active, `stream` runs the agent with it, and `complete` (in the publish job, with OIDC
again) reports the agent's result, which it reads as untrusted data: its plan (investigations),
its blocker, and for QA and research its whole report with the completion. The stream token
travels between the jobs sealed with a secret both jobs hold: GitHub prints a step's `env:`
values in its log before any `::add-mask::` could hide them, and a job output that is masked is
dropped.
`stream` refuses to start a command where the OIDC request token is in its environment, since
the command could read it from `/proc/<reporter>/environ`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

USER_AGENT = "dispatch-reporter/1"
TIMEOUT_SECONDS = 30
# Backoff before each retry of a call that failed on the network, a 5xx or a 429. The base is an
# environment knob so tests and impatient local runs can shrink it.
BACKOFF_STEPS = (1, 2, 4, 8)
MAX_RETRY_AFTER_SECONDS = 30
# Dispatch relays a chunk of up to ~7000 bytes inside its Postgres NOTIFY (larger ones are
# fetched again by seq), so bursts are cut small enough to stay on the fast path.
LOG_CHUNK_MAX_CHARS = 2000
SUMMARY_MAX_CHARS = 1500
# A QA or research report goes to Dispatch whole, up to this (Dispatch's own limit).
REPORT_MAX_CHARS = 200_000
PR_TITLE_MAX_CHARS = 200

INVESTIGATE_MODES = frozenset({"investigate", "auto_investigate"})
# Modes whose final answer Dispatch posts in full on the issue.
REPORT_MODES = frozenset({"qa", "research"})
# A commit id, as the brief names the pull request head QA checks out (SHA-1 or SHA-256).
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
OUTCOMES = (
    "completed",
    "no_changes_needed",
    "blocked",
    "needs_human_decision",
    "investigation_complete",
    "failed",
)
BLOCKER_CATEGORIES = (
    "missing_env",
    "unclear_requirement",
    "missing_dependency",
    "test_failure",
    "design_decision",
    "out_of_scope",
)
EVENT_TYPES = ("started", "progress", "plan", "blocker", "pr", "completed")
# With these the agent could mint OIDC tokens for any audience (cloud roles trusting this
# repository): `stream` refuses to run it next to them (not even stripped: its parent's environ
# stays readable in /proc).
OIDC_REQUEST_ENV = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
# What the agent process does not inherit (it reads untrusted issue text).
SECRET_ENV_FOR_CHILD = (*OIDC_REQUEST_ENV, "ACTIONS_RUNTIME_TOKEN", "DISPATCH_TOKEN", "GH_TOKEN")
# Why a run failed, by Claude Code's result subtype.
FAILURE_REASONS = {
    "error_max_budget_usd": "The agent stopped at its cost cap (${cost:.2f} spent).",
    "error_max_turns": "The agent stopped at its turn limit ({turns} turns).",
    "error_during_execution": "The agent failed while running (exit code {exit_code}).",
}


class ReporterError(Exception):
    """A failure the user should read: printed on stderr, exit status 1."""


class Refused(ReporterError):
    """Dispatch answered 4xx: the request will never be accepted as it is."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"Dispatch refused the request ({status}): {json.dumps(body)}")


def normalize_mode(mode: str | None) -> str:
    return (mode or "").strip().lower().replace("-", "_")


def backoff_delays() -> list[float]:
    try:
        base = float(os.environ.get("DISPATCH_BACKOFF_BASE", "0.5"))
    except ValueError:
        base = 0.5
    return [base * step for step in BACKOFF_STEPS]


def log_warning(message: str) -> None:
    print(f"dispatch-reporter: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# HTTP


def _http(
    method: str, url: str, headers: dict[str, str], body: Any | None = None
) -> tuple[int, Any, dict[str, str]]:
    """One HTTP exchange: (status, decoded JSON or text, headers); network errors raise."""
    data = None
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status, raw, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, response_headers = error.code, error.read(), error.headers
    text = raw.decode("utf-8", "replace")
    try:
        decoded: Any = json.loads(text) if text.strip() else None
    except ValueError:
        decoded = text
    return status, decoded, dict(response_headers or {})


def _retry_after(headers: dict[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return min(float(value), MAX_RETRY_AFTER_SECONDS)
            except ValueError:
                return None
    return None


def _with_retries(call: Callable[[], tuple[int, Any, dict[str, str]]], what: str) -> tuple:
    """Run `call`, retrying connection errors, 5xx and 429 with backoff."""
    delays = backoff_delays()
    for attempt in range(len(delays) + 1):
        last_try = attempt == len(delays)
        try:
            status, body, headers = call()
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            if last_try:
                raise ReporterError(f"{what}: could not reach Dispatch: {error}") from error
            log_warning(f"{what}: {error}; retrying in {delays[attempt]:g}s")
            time.sleep(delays[attempt])
            continue
        if status == 429 or status >= 500:
            if last_try:
                raise ReporterError(f"{what}: Dispatch answered {status}: {json.dumps(body)}")
            delay = max(delays[attempt], _retry_after(headers) or 0)
            log_warning(f"{what}: Dispatch answered {status}; retrying in {delay:g}s")
            time.sleep(delay)
            continue
        return status, body, headers
    raise AssertionError("unreachable")


class Credentials:
    """The bearer token: a given one (token file, `DISPATCH_TOKEN`), or a GitHub Actions OIDC
    token fetched on demand."""

    def __init__(self, audience: str, static: str | None = None) -> None:
        self.audience = audience
        self.static = static or os.environ.get("DISPATCH_TOKEN") or None
        self._token: str | None = None
        self._lock = threading.Lock()

    @property
    def refreshable(self) -> bool:
        return self.static is None

    def token(self, stale: str | None = None) -> str:
        """The current token; with `stale`, a fresh one unless another thread already got it."""
        if self.static:
            return self.static
        with self._lock:
            if self._token is None or self._token == stale:
                self._token = self._fetch_oidc()
            return self._token

    def _fetch_oidc(self) -> str:
        request_url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if not request_url or not request_token:
            raise ReporterError(
                "no credentials: pass --token-file, set DISPATCH_TOKEN (a `dispatch token create` "
                "API token), or run inside GitHub Actions with `permissions: id-token: write`"
            )
        separator = "&" if urllib.parse.urlsplit(request_url).query else "?"
        url = f"{request_url}{separator}audience={urllib.parse.quote(self.audience, safe='')}"
        headers = {"Authorization": f"bearer {request_token}"}
        status, body, _ = _with_retries(lambda: _http("GET", url, headers), "OIDC token")
        if status != 200 or not isinstance(body, dict) or not body.get("value"):
            raise ReporterError(f"could not get a GitHub OIDC token ({status}): {body}")
        return str(body["value"])


class Client:
    """Dispatch's agent API for one run."""

    def __init__(self, base_url: str, run_id: int, credentials: Credentials) -> None:
        self.base_url = base_url.rstrip("/")
        self.run_id = run_id
        self.credentials = credentials

    def call(self, method: str, path: str, body: Any | None = None) -> tuple[int, Any]:
        """Send one request; returns (status, body) for 2xx, raises Refused for 4xx."""
        url = f"{self.base_url}/api/runs/{self.run_id}/{path}"
        what = f"{method} {path}"
        token = self.credentials.token()
        status, answer, _ = self._send(method, url, body, token, what)
        if status == 401 and self.credentials.refreshable:
            # OIDC tokens live ~5 minutes; a long run outlives the one we fetched.
            token = self.credentials.token(stale=token)
            status, answer, _ = self._send(method, url, body, token, what)
        if 200 <= status < 300:
            return status, answer
        raise Refused(status, answer)

    def _send(self, method: str, url: str, body: Any, token: str, what: str) -> tuple:
        headers = {"Authorization": f"Bearer {token}"}
        return _with_retries(lambda: _http(method, url, headers, body), what)

    def brief(self) -> dict[str, Any]:
        _, body = self.call("GET", "brief")
        if not isinstance(body, dict):
            raise ReporterError(f"the brief is not a JSON object: {body!r}")
        return body

    def event(self, event: dict[str, Any]) -> Any:
        return self.call("POST", "events", event)[1]

    def log(self, seq: int, data: str) -> None:
        self.call("POST", "log", {"seq": seq, "data": data})

    def stream_token(self) -> str:
        _, body = self.call("POST", "stream-token")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise ReporterError("Dispatch did not answer with a stream token")
        return token


def post_event(client: Client, event: dict[str, Any]) -> None:
    """Post an event; a 409 on `completed` means the run is already finished, which is fine."""
    try:
        client.event(event)
    except Refused as refused:
        if refused.status == 409 and event.get("type") == "completed":
            log_warning(f"run already finished; ignoring: {json.dumps(refused.body)}")
            return
        raise


# --------------------------------------------------------------------------------------------
# Log shipping


class LogShipper:
    """Batches terminal text into numbered chunks and posts them from a background thread.

    A chunk keeps its seq until Dispatch accepts it, so a failed post is retried as the same
    chunk later (the endpoint is idempotent per seq) and nothing is lost or reordered.
    """

    def __init__(self, client: Client, interval: float) -> None:
        self.client = client
        self.interval = interval
        self._buffer: list[str] = []
        self._buffered = 0
        self._pending: list[tuple[int, str]] = []
        self._next_seq = 1
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatch-log", daemon=True)

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self._buffer.append(text)
            self._buffered += len(text)
            full = self._buffered >= LOG_CHUNK_MAX_CHARS
        if full or self.interval <= 0:
            self._wake.set()

    def close(self) -> None:
        """Stop the thread and post everything still buffered or pending."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._cut()
        for _ in range(3):
            if self._send_pending():
                return
        with self._lock:
            lost = len(self._pending)
        if lost:
            log_warning(f"{lost} log chunk(s) could not be delivered to Dispatch")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval if self.interval > 0 else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._cut()
            self._send_pending()

    def _cut(self) -> None:
        with self._lock:
            text = "".join(self._buffer)
            self._buffer, self._buffered = [], 0
            while text:
                data, text = text[:LOG_CHUNK_MAX_CHARS], text[LOG_CHUNK_MAX_CHARS:]
                self._pending.append((self._next_seq, data))
                self._next_seq += 1

    def _send_pending(self) -> bool:
        """Post pending chunks in order; stop at the first that cannot be delivered."""
        while True:
            with self._lock:
                if not self._pending:
                    return True
                seq, data = self._pending[0]
            try:
                self.client.log(seq, data)
            except Refused as refused:
                # A refusal will not change on retry; say so and go on with the next chunk.
                log_warning(f"log chunk {seq} refused: {refused}")
            except ReporterError as error:
                log_warning(f"log chunk {seq} kept for a later retry: {error}")
                return False
            with self._lock:
                self._pending.pop(0)


# --------------------------------------------------------------------------------------------
# stream-json rendering

TOOL_RESULT_LINES = 5
LINE_MAX_CHARS = 240
INPUT_SUMMARY_MAX_CHARS = 100
# The input field that best says what a tool call does, for Claude Code's built-in tools.
TOOL_INPUT_KEYS = (
    "command",
    "file_path",
    "notebook_path",
    "path",
    "pattern",
    "url",
    "query",
    "description",
    "prompt",
)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _input_summary(tool_input: Any) -> str:
    if not isinstance(tool_input, dict):
        return _one_line(json.dumps(tool_input), INPUT_SUMMARY_MAX_CHARS) if tool_input else ""
    for key in TOOL_INPUT_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return _one_line(value, INPUT_SUMMARY_MAX_CHARS)
    if not tool_input:
        return ""
    return _one_line(json.dumps(tool_input, ensure_ascii=False), INPUT_SUMMARY_MAX_CHARS)


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type"):
                parts.append(f"[{block['type']}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


def _render_tool_result(block: dict[str, Any]) -> str:
    lines = _tool_result_text(block.get("content")).rstrip("\n").splitlines()
    marker = "  ✗ " if block.get("is_error") else "    "
    if not lines:
        return f"{marker}(no output)\n"
    out = []
    for line in lines[:TOOL_RESULT_LINES]:
        clipped = line if len(line) <= LINE_MAX_CHARS else line[: LINE_MAX_CHARS - 1] + "…"
        out.append(f"{marker}{clipped}\n")
    if len(lines) > TOOL_RESULT_LINES:
        out.append(f"    … ({len(lines) - TOOL_RESULT_LINES} more lines)\n")
    return "".join(out)


def _content_blocks(message: Any) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def render(message: dict[str, Any]) -> str:
    """Readable terminal text for one stream-json message ('' for what a reader can skip)."""
    kind = message.get("type")
    if kind == "system" and message.get("subtype") == "init":
        tools = message.get("tools")
        count = len(tools) if isinstance(tools, list) else 0
        return f"● session started (model {message.get('model', '?')}, {count} tools)\n"
    if kind == "assistant":
        out = []
        for block in _content_blocks(message.get("message")):
            if block.get("type") == "text":
                text = str(block.get("text", ""))
                if text.strip():
                    out.append(text if text.endswith("\n") else text + "\n")
            elif block.get("type") == "tool_use":
                summary = _input_summary(block.get("input"))
                out.append(f"→ {block.get('name', '?')}({summary})\n")
            elif block.get("type") in ("thinking", "redacted_thinking"):
                out.append("… thinking\n")
        return "".join(out)
    if kind == "user":
        blocks = _content_blocks(message.get("message"))
        return "".join(_render_tool_result(b) for b in blocks if b.get("type") == "tool_result")
    if kind == "result":
        cost = _number(message.get("total_cost_usd"), float)
        turns = _number(message.get("num_turns"), int)
        return f"■ done: {message.get('subtype', '?')}, {turns} turns, ${cost:.4f}\n"
    return ""


def _number(value: Any, kind: type) -> Any:
    try:
        return kind(value) if value is not None else kind(0)
    except (TypeError, ValueError):
        return kind(0)


class StreamConsumer:
    """Turns stream-json lines into terminal text and remembers the final `result`."""

    def __init__(self, shipper: LogShipper, echo: TextIO) -> None:
        self.shipper = shipper
        self.echo = echo
        self.result: dict[str, Any] | None = None

    def output(self, text: str) -> None:
        if not text:
            return
        self.echo.write(text)
        self.echo.flush()
        self.shipper.write(text)

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        try:
            message = json.loads(stripped)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            # Not stream-json (a warning, a crash trace): show it as it is.
            self.output(line if line.endswith("\n") else line + "\n")
            return
        if message.get("type") == "result":
            self.result = message
        try:
            self.output(render(message))
        except Exception as error:  # a new message shape must never stop the run
            log_warning(f"could not render a {message.get('type')!r} message: {error}")

    def summary(self, exit_code: int) -> dict[str, Any]:
        result = self.result or {}
        return {
            "cost_usd": _number(result.get("total_cost_usd"), float),
            "turns": _number(result.get("num_turns"), int),
            "result": result.get("result") if isinstance(result.get("result"), str) else "",
            # No `result` line at all means the agent died before it could report one.
            "is_error": bool(result.get("is_error")) if self.result else True,
            "subtype": result.get("subtype"),
            "exit_code": exit_code,
        }


# --------------------------------------------------------------------------------------------
# Environment for later workflow steps

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def env_value(value: Any) -> str:
    """A single-line value: a newline here would let issue text set any variable in GITHUB_ENV."""
    return _CONTROL.sub(" ", str(value if value is not None else "")).strip()


def pr_title(brief: dict[str, Any]) -> str:
    issue = brief.get("issue") or {}
    title = env_value(issue.get("title")) or f"Dispatch run {brief.get('run_id')}"
    if len(title) > PR_TITLE_MAX_CHARS:
        title = title[: PR_TITLE_MAX_CHARS - 1] + "…"
    return title


def checkout_sha(brief: dict[str, Any]) -> str:
    """The commit the agent job checks out instead of the dispatch ref: the head of the pull
    request a QA run checks (nothing when the brief names none, or names it oddly)."""
    pull = brief.get("pull_request")
    sha = str(pull.get("head_sha") or "") if isinstance(pull, dict) else ""
    return sha if _COMMIT.match(sha) else ""


def env_lines(brief: dict[str, Any]) -> list[str]:
    issue = brief.get("issue") or {}
    values = {
        "DISPATCH_MODE": normalize_mode(brief.get("mode")),
        "DISPATCH_BRANCH": brief.get("branch"),
        "DISPATCH_BASE_BRANCH": brief.get("base_branch"),
        "DISPATCH_ISSUE_NUMBER": issue.get("number"),
        "DISPATCH_COST_CAP": brief.get("cost_cap_usd"),
        "DISPATCH_MAX_TURNS": brief.get("max_turns"),
        "DISPATCH_ALLOWED_TOOLS": ",".join(map(str, brief.get("allowed_tools") or [])),
        "DISPATCH_PR_TITLE": pr_title(brief),
        "DISPATCH_CHECKOUT_SHA": checkout_sha(brief),
    }
    return [f"{key}={env_value(value)}" for key, value in values.items()]


# --------------------------------------------------------------------------------------------
# Commands


def _client(args: argparse.Namespace) -> Client:
    url = args.dispatch_url or os.environ.get("DISPATCH_URL")
    if not url:
        raise ReporterError("no Dispatch URL: pass --url or set DISPATCH_URL")
    run_id = args.run_id or os.environ.get("RUN_ID")
    try:
        run = int(str(run_id))
    except ValueError:
        raise ReporterError(
            f"no valid run id: pass --run-id or set RUN_ID (got {run_id!r})"
        ) from None
    audience = os.environ.get("DISPATCH_AUDIENCE") or url
    return Client(url, run, Credentials(audience, _read_token_file(args)))


def _read_token_file(args: argparse.Namespace) -> str | None:
    """The token in `--token-file`, which is deleted at once: the agent started after this
    finds it neither on disk nor in this process's environment."""
    name = getattr(args, "token_file", None)
    if not name:
        return None
    path = Path(name)
    try:
        token = path.read_text(encoding="utf-8").strip()
        path.unlink()
    except OSError as error:
        raise ReporterError(f"cannot read the token file: {error}") from None
    if not token:
        raise ReporterError(f"the token file {name} is empty")
    if token.startswith(SEAL_PREFIX):
        token = unseal(token, _seal_key(args))
    return token


# --------------------------------------------------------------------------------------------
# Sealing: encrypt-then-MAC with keys derived from a shared secret (HMAC-SHA256 as the keystream
# and as the tag), so that only a job holding the secret can open a token another job sealed.

SEAL_PREFIX = "sealed1."


def _seal_keys(secret: str) -> tuple[bytes, bytes]:
    root = hashlib.sha256(b"dispatch stream token seal v1\0" + secret.encode()).digest()
    return (
        hmac.new(root, b"encrypt", hashlib.sha256).digest(),
        hmac.new(root, b"authenticate", hashlib.sha256).digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    return b"".join(
        hmac.new(key, nonce + n.to_bytes(8, "big"), hashlib.sha256).digest() for n in range(blocks)
    )[:length]


def seal(plain: str, secret: str) -> str:
    encrypt, authenticate = _seal_keys(secret)
    nonce = secrets.token_bytes(16)
    data = plain.encode()
    cipher = bytes(a ^ b for a, b in zip(data, _keystream(encrypt, nonce, len(data)), strict=True))
    tag = hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()[:16]
    return SEAL_PREFIX + base64.urlsafe_b64encode(nonce + cipher + tag).decode().rstrip("=")


def unseal(sealed: str, secret: str) -> str:
    encrypt, authenticate = _seal_keys(secret)
    body = sealed.removeprefix(SEAL_PREFIX)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raw = b""
    nonce, cipher, tag = raw[:16], raw[16:-16], raw[-16:]
    expected = hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()[:16]
    if len(raw) <= 32 or not hmac.compare_digest(tag, expected):
        raise ReporterError(
            "the sealed token does not open with this key: both jobs must get the same secret"
        )
    stream = _keystream(encrypt, nonce, len(cipher))
    return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()


def _seal_key(args: argparse.Namespace) -> str:
    name = getattr(args, "seal_key_env", None)
    secret = os.environ.get(name) if name else None
    if not secret:
        raise ReporterError(
            "the token is sealed: pass --seal-key-env with the name of a variable holding the "
            "secret it was sealed with"
        )
    return secret


def _mode(args: argparse.Namespace) -> str:
    return normalize_mode(getattr(args, "mode", None) or os.environ.get("DISPATCH_MODE"))


def _default_result_path() -> Path:
    runner_temp = os.environ.get("RUNNER_TEMP")
    return Path(runner_temp or ".") / "dispatch-result.json"


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def _load_brief(args: argparse.Namespace) -> dict[str, Any]:
    if not args.source:
        return _client(args).brief()
    try:
        brief = json.loads(Path(args.source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReporterError(f"cannot read the brief from {args.source}: {error}") from None
    if not isinstance(brief, dict):
        raise ReporterError(f"{args.source} does not hold a brief")
    return brief


def cmd_brief(args: argparse.Namespace) -> int:
    brief = _load_brief(args)
    started_as = normalize_mode(os.environ.get("DISPATCH_MODE"))
    mode = normalize_mode(brief.get("mode"))
    if started_as and mode and started_as != mode:
        # The workflow branches on the mode it was started with; a mismatch means it was started
        # by hand or by something other than Dispatch, and would run the wrong steps.
        raise ReporterError(f"this workflow was started as {started_as!r}, but run is {mode!r}")
    text = json.dumps(brief, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        _write(args.out, text)
    elif not args.prompt_out and not args.env_out:
        sys.stdout.write(text)
    if args.prompt_out:
        prompt = brief.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ReporterError(
                "the brief carries no prompt: this Dispatch server is older than this reporter"
            )
        _write(args.prompt_out, prompt)
    if args.env_out:
        with open(args.env_out, "a", encoding="utf-8") as env_file:
            env_file.write("\n".join(env_lines(brief)) + "\n")
    issue = brief.get("issue") or {}
    print(
        f"dispatch-reporter: run {brief.get('run_id')} ({normalize_mode(brief.get('mode'))}) "
        f"for {brief.get('repository')}#{issue.get('number')}",
        file=sys.stderr,
    )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Ask Dispatch for this run's stream token and hand it to later jobs as a step output,
    sealed: job outputs are not secrets, and the job reading one shows it in its log."""
    key = _seal_key(args)
    client = _client(args)
    token = seal(client.stream_token(), key)
    with open(args.output, "a", encoding="utf-8") as output:
        output.write(f"stream_token={token}\n")
    print(f"dispatch-reporter: stream token issued for run {client.run_id}", file=sys.stderr)
    return 0


def _finish_stream(consumer: StreamConsumer, exit_code: int, result_out: str | None) -> int:
    """Write what the agent ended with; the publish job reads it (as untrusted data) and
    reports the plan, blocker and completion."""
    summary = consumer.summary(exit_code)
    summary["blocker"] = find_blocker(summary["result"])
    path = Path(result_out) if result_out else _default_result_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return exit_code


def _consume(
    client: Client, args: argparse.Namespace, lines: Callable[[StreamConsumer], int]
) -> int:
    client.event({"type": "started"})
    shipper = LogShipper(client, args.interval).start()
    consumer = StreamConsumer(shipper, sys.stdout)
    try:
        exit_code = lines(consumer)
    finally:
        shipper.close()
    return _finish_stream(consumer, exit_code, args.result_out)


def cmd_stream(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ReporterError("stream needs a command after `--`")
    exposed = [name for name in OIDC_REQUEST_ENV if os.environ.get(name)]
    if exposed:
        raise ReporterError(
            f"refusing to start the agent next to {', '.join(exposed)}: it could read them from "
            "/proc/<reporter>/environ and mint OIDC tokens. Run the agent in a job without "
            "`id-token: write` and give the reporter a stream token (--token-file)."
        )
    client = _client(args)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_FOR_CHILD}

    def run(consumer: StreamConsumer) -> int:
        try:
            process = subprocess.Popen(  # noqa: S603 - the command is the caller's own
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as error:
            consumer.output(f"dispatch-reporter: cannot run {command[0]}: {error}\n")
            return 127

        def pump_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                consumer.shipper.write(line if line.endswith("\n") else line + "\n")

        stderr_thread = threading.Thread(target=pump_stderr, daemon=True)
        stderr_thread.start()
        previous = signal.getsignal(signal.SIGTERM)

        def forward(signum: int, _frame: Any) -> None:
            # A cancelled job: let the agent stop, keep reading so its last words are logged.
            process.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                consumer.feed(line)
            code = process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            code = process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        stderr_thread.join(timeout=5)
        return 128 - code if code < 0 else code

    return _consume(client, args, run)


def cmd_replay(args: argparse.Namespace) -> int:
    client = _client(args)
    source = Path(args.file)
    if not source.is_file():
        raise ReporterError(f"no such file: {source}")

    def run(consumer: StreamConsumer) -> int:
        with source.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                consumer.feed(line)
        return 0

    return _consume(client, args, run)


def derive_outcome(result: dict[str, Any] | None, mode: str, *, no_changes: bool = False) -> str:
    if result is None or result.get("is_error") or result.get("exit_code", 0) != 0:
        return "failed"
    blocker = find_blocker(str(result.get("result") or ""))
    if blocker is not None:
        return "needs_human_decision" if blocker["category"] == "design_decision" else "blocked"
    if mode in INVESTIGATE_MODES:
        return "investigation_complete"
    return "no_changes_needed" if no_changes else "completed"


def failure_reason(result: dict[str, Any] | None) -> str:
    """One sentence a person reads in the status comment: why the agent failed."""
    if result is None:
        return "The agent did not produce a result."
    subtype = str(result.get("subtype") or "")
    values = {
        "cost": _number(result.get("cost_usd"), float),
        "turns": _number(result.get("turns"), int),
        "exit_code": _number(result.get("exit_code"), int),
    }
    if subtype in FAILURE_REASONS:
        return FAILURE_REASONS[subtype].format(**values)
    if subtype and subtype != "success":
        return f"The agent failed ({subtype}, exit code {values['exit_code']})."
    if values["exit_code"]:
        return f"The agent exited with code {values['exit_code']}."
    return "The agent reported an error."


_BLOCKED = re.compile(r"^\s*`?DISPATCH-BLOCKED\s+([a-z_]+)\s*:\s*(.+?)`?\s*$", re.MULTILINE)


def find_blocker(text: str) -> dict[str, str] | None:
    """The agent's own `DISPATCH-BLOCKED <category>: <reason>` line, if it wrote one."""
    for match in reversed(list(_BLOCKED.finditer(text or ""))):
        category, reason = match.group(1), match.group(2).strip()
        if category in BLOCKER_CATEGORIES and reason:
            return {"category": category, "reason": reason[:2000]}
    return None


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def cmd_verdict(args: argparse.Namespace) -> int:
    """Print the outcome the agent's result file amounts to (no network): the publish job
    publishes changes only when it is `completed`."""
    result = _read_result(Path(args.result) if args.result else _default_result_path())
    print(derive_outcome(result, _mode(args)))
    return 0


def _report(client: Client, event: dict[str, Any]) -> None:
    """Post a plan or blocker; if Dispatch refuses it, completion is still reported."""
    try:
        client.event(event)
    except ReporterError as error:
        log_warning(f"the {event['type']} was not recorded: {error}")


def cmd_complete(args: argparse.Namespace) -> int:
    """Report how the run ended, from the agent's result file (untrusted: it is the agent's own
    account): its blocker, or its plan for an investigation, then `completed`. An explicit
    `--outcome` (the workflow's own verdict, such as a refused patch) reports only that."""
    client = _client(args)
    mode = _mode(args)
    result = _read_result(Path(args.result) if args.result else _default_result_path())
    text = str((result or {}).get("result") or "")
    summary = args.summary
    if args.outcome:
        outcome = args.outcome
    else:
        outcome = derive_outcome(result, mode, no_changes=args.no_changes)
        blocker = find_blocker(text)
        if outcome in ("blocked", "needs_human_decision") and blocker is not None:
            _report(client, {"type": "blocker", **blocker})
        elif outcome == "investigation_complete" and text.strip():
            _report(client, {"type": "plan", "body": text})
    if summary is None:
        summary = _clip(text, SUMMARY_MAX_CHARS)
        if outcome == "failed":
            reason = failure_reason(result)
            summary = _clip(f"{reason}\n\n{text}".strip(), SUMMARY_MAX_CHARS)
        elif outcome == "no_changes_needed" and not summary:
            summary = "The agent made no changes."
    event = {
        "type": "completed",
        "outcome": outcome,
        "summary": summary,
        "cost_usd": _number((result or {}).get("cost_usd"), float),
        "turns": _number((result or {}).get("turns"), int),
    }
    if mode in REPORT_MODES and text.strip() and not args.outcome:
        # The whole report: Dispatch posts it on the issue (the summary is only its start).
        event["report"] = _clip(text, REPORT_MAX_CHARS)
    post_event(client, event)
    print(f"dispatch-reporter: run {client.run_id} completed: {outcome}", file=sys.stderr)
    return 0


_PULL_NUMBER = re.compile(r"/pull/(\d+)(?:[/?#]|$)")


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    event: dict[str, Any] = {"type": args.type}
    if args.message is not None:
        event["message"] = args.message
    if args.body_file is not None:
        body_file = args.body_file
        event["body"] = sys.stdin.read() if body_file == "-" else Path(body_file).read_text()
    if args.reason is not None:
        event["reason"] = args.reason
    if args.category is not None:
        event["category"] = args.category
    if args.pr_url is not None:
        event["url"] = args.pr_url
    if args.number is not None:
        event["number"] = args.number
    elif args.type == "pr" and args.pr_url:
        match = _PULL_NUMBER.search(args.pr_url)
        if match:
            event["number"] = int(match.group(1))
    if args.json:
        try:
            extra = json.loads(args.json)
        except ValueError as error:
            raise ReporterError(f"--json is not valid JSON: {error}") from error
        if not isinstance(extra, dict):
            raise ReporterError("--json must be a JSON object")
        event.update(extra)
        event["type"] = args.type
    if args.type == "pr" and "number" not in event:
        raise ReporterError("a pr event needs --number or a --url ending in /pull/<number>")
    return event


def cmd_event(args: argparse.Namespace) -> int:
    event = build_event(args)
    post_event(_client(args), event)
    return 0


# --------------------------------------------------------------------------------------------
# CLI


def _target_options(parser: argparse.ArgumentParser, *, top: bool, url_flag: bool) -> None:
    # Subcommand copies default to SUPPRESS so they do not overwrite a value given before the
    # subcommand. `event` keeps `--url` for the pull request URL; it takes `--dispatch-url`.
    default = None if top else argparse.SUPPRESS
    flags = ["--url", "--dispatch-url"] if url_flag else ["--dispatch-url"]
    parser.add_argument(
        *flags, dest="dispatch_url", default=default, help="Dispatch URL (default: $DISPATCH_URL)"
    )
    parser.add_argument("--run-id", default=default, help="Dispatch run id (default: $RUN_ID)")
    parser.add_argument(
        "--token-file", default=default, help="read the bearer token from this file, then delete it"
    )
    parser.add_argument(
        "--seal-key-env",
        default=default,
        metavar="NAME",
        help="the variable holding the secret a token is sealed with",
    )


def _streaming_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--result-out", help="where to write the result summary JSON")
    parser.add_argument(
        "--interval", type=float, default=3.0, help="seconds between log posts (0: every line)"
    )
    parser.add_argument("--mode", help="run mode (default: $DISPATCH_MODE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reporter.py", description="Talk to Dispatch's agent API from a workflow run."
    )
    _target_options(parser, top=True, url_flag=True)
    sub = parser.add_subparsers(dest="command_name", required=True)

    brief = sub.add_parser("brief", help="fetch the brief, write the prompt and env lines")
    _target_options(brief, top=False, url_flag=True)
    brief.add_argument("--from", dest="source", help="read a saved brief instead of fetching it")
    brief.add_argument("--out", help="write the brief JSON here (default: stdout)")
    brief.add_argument("--prompt-out", help="write the Claude Code prompt (Markdown) here")
    brief.add_argument("--env-out", help="append KEY=value lines here (pass $GITHUB_ENV)")
    brief.set_defaults(func=cmd_brief)

    token = sub.add_parser("token", help="get the run's stream token (as a step output)")
    _target_options(token, top=False, url_flag=True)
    token.add_argument("--output", required=True, help="append `stream_token=…` here")
    token.set_defaults(func=cmd_token)

    stream = sub.add_parser("stream", help="run the agent and stream its output to Dispatch")
    _target_options(stream, top=False, url_flag=True)
    _streaming_options(stream)
    stream.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    stream.set_defaults(func=cmd_stream)

    replay = sub.add_parser("replay", help="like stream, reading a recorded ndjson file")
    _target_options(replay, top=False, url_flag=True)
    _streaming_options(replay)
    replay.add_argument("file")
    replay.set_defaults(func=cmd_replay)

    verdict = sub.add_parser("verdict", help="print the outcome the result file amounts to")
    verdict.add_argument("--result", help="result file written by stream (default: as stream)")
    verdict.add_argument("--mode", help="run mode (default: $DISPATCH_MODE)")
    verdict.set_defaults(func=cmd_verdict)

    complete = sub.add_parser("complete", help="post the completed event from the result file")
    _target_options(complete, top=False, url_flag=True)
    complete.add_argument("--result", help="result file written by stream (default: as stream)")
    given = complete.add_mutually_exclusive_group()
    given.add_argument("--outcome", choices=OUTCOMES, help="report this outcome as it is")
    given.add_argument(
        "--no-changes", action="store_true", help="the agent changed nothing (implement)"
    )
    complete.add_argument("--summary")
    complete.add_argument("--mode", help="run mode (default: $DISPATCH_MODE)")
    complete.set_defaults(func=cmd_complete)

    event = sub.add_parser("event", help="post one event")
    _target_options(event, top=False, url_flag=False)
    event.add_argument("type", choices=EVENT_TYPES)
    event.add_argument("--message", help="progress text")
    event.add_argument("--body-file", help="plan body file ('-' for stdin)")
    event.add_argument("--reason", help="blocker reason")
    event.add_argument("--category", choices=BLOCKER_CATEGORIES, help="blocker category")
    event.add_argument("--number", type=int, help="pull request number")
    event.add_argument("--url", dest="pr_url", help="pull request URL (number from /pull/<n>)")
    event.add_argument("--json", help="extra event fields as a JSON object")
    event.set_defaults(func=cmd_event)
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    # The agent's output is shown as it is; an odd terminal encoding must not stop the run.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.func(args))
    except Refused as refused:
        print(json.dumps(refused.body), file=sys.stderr)
        log_warning(str(refused))
        return 1
    except ReporterError as error:
        log_warning(str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
