"""A fake of Anthropic's Messages API (`POST /v1/messages`), served over real HTTP on loopback.

Dispatch reaches it through the official `anthropic` SDK with `ANTHROPIC_BASE_URL` pointing here,
so a test runs the real request path: the SDK's headers and JSON, its error classes built from
the real error shapes, its parsing of the answer. Tests script the model's side of the
conversation, one answer per request, in order:

    with FakeAnthropic() as claude:
        claude.reply(tool_use("search_issues", {"query": "rate limit"}))
        claude.overloaded()                       # the next request answers 529
        claude.reply(lambda request: tool_use("read_issue", {"number": first_hit(request)}))
        claude.reply(tool_use("propose", {...}), usage=(1200, 300))
        ...  # point the app at claude.url with claude.api_key
        assert claude.requests[-1].tool_results() == [...]

A scripted answer may be a function of the request (to answer with what a tool returned).

**Strict like the API.** Every request is checked the way the Messages API checks it, and what the
API would refuse is answered with its real status and error body and recorded in `violations`
(the test harness fails the test): the `x-api-key` and `anthropic-version` headers; `model`
(unknown models are a 404 `not_found_error`), `max_tokens` (required, at most the model's
output limit); `messages` (roles, content blocks, a conversation that starts with the user and
does not end with the assistant — current models refuse prefill — consecutive turns of one role
combined into one turn as the API combines them, every `tool_use` answered by a `tool_result`
in the next turn and every `tool_result` answering a `tool_use` of the turn before, tool_use ids
unique); `system`; `tools` (names, `input_schema`, unique names); `tool_choice` (only with tools,
a named tool must exist); unknown fields. A script that answers what the API never would (no
tool call under `tool_choice` `any`, a tool the request did not offer under `any` or `tool`,
two calls when parallel tool use is off, a call under `none`) is a bug in the test: recorded in
`server_errors` and answered 500. Under `auto` a scripted model may call a tool nobody offered,
as a real model can.

**Faults**, each taking the place of the next answer: `overloaded()` (529
`overloaded_error`), `rate_limited(retry_after=...)` (429 `rate_limit_error` with `retry-after`
and the `anthropic-ratelimit-*` headers), `server_error()` (500 `api_error`), `drop()` (the
connection closes without an answer). Answers carry `usage` (scripted, or estimated from the
sizes of request and answer) and a `request-id` header. The app does not stream; a request with
`stream: true` is recorded as a server error (the fake would need a script for it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import string
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, get_args

from anthropic._constants import ANTHROPIC_API_VERSION
from anthropic.types.model_param import ModelParam

from tests.fakes.serving import LoopbackServer

# The first public version, and the one this SDK sends.
API_VERSIONS = frozenset({"2023-06-01", ANTHROPIC_API_VERSION})
# The models the SDK knows by name; any other name is a 404, as for a model that does not exist.
KNOWN_MODELS = frozenset(m for arg in get_args(ModelParam) for m in get_args(arg))
MAX_OUTPUT_TOKENS = 64_000
BODY_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_k",
        "top_p",
        "thinking",
        "service_tier",
        "container",
        "cache_control",
        "output_config",
        "inference_geo",
        "diagnostics",
        "speed",
    }
)
TOOL_FIELDS = frozenset(
    {"name", "description", "input_schema", "cache_control", "strict", "type", "input_examples"}
)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ALPHABET = string.ascii_letters + string.digits
RATE_LIMIT_MESSAGE = (
    "This request would exceed the rate limit for your organization of 50 requests per minute. "
    "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
    "headers for current usage. Please reduce the prompt length or the maximum tokens requested, "
    "or try again later."
)


def _ident(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


# ----------------------------------------------------------------------------- what tests script


def text(value: str) -> dict[str, Any]:
    """A text block of the model's answer."""
    return {"type": "text", "text": value}


def tool_use(name: str, tool_input: Mapping[str, Any] | Any) -> dict[str, Any]:
    """A tool call of the model's answer (the fake gives it its `toolu_` id)."""
    return {"type": "tool_use", "name": name, "input": tool_input}


@dataclass
class Reply:
    """One answer of the model: content blocks, why it stopped (default: `tool_use` when it
    calls a tool, else `end_turn`) and its usage as (input tokens, output tokens)."""

    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: tuple[int, int] | None = None


@dataclass
class Failure:
    """An error answer (`status`), or a dropped connection (`drop`)."""

    status: int = 529
    retry_after: int | None = None
    drop: bool = False


Scripted = Reply | Failure | Callable[["Request"], "Reply | Failure"]


@dataclass
class Request:
    """A request the fake accepted (and answered from the script)."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def tool_results(self) -> dict[str, str]:
        """tool_use id → the text of its result, from the last user turn."""
        found: dict[str, str] = {}
        last = self.messages[-1] if self.messages else {}
        for block in _blocks(last.get("content")):
            if block.get("type") == "tool_result":
                found[block["tool_use_id"]] = _result_text(block)
        return found

    def results(self) -> list[str]:
        """The texts of the last turn's tool results, in order."""
        return list(self.tool_results().values())

    def tool_calls(self) -> list[dict[str, Any]]:
        """Every tool_use block the conversation holds, in order."""
        return [
            block
            for message in self.messages
            if message.get("role") == "assistant"
            for block in _blocks(message.get("content"))
            if block.get("type") == "tool_use"
        ]

    def text(self) -> str:
        """Everything the request says, as one string (system, messages, results)."""
        return json.dumps(self.body, ensure_ascii=False)


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in _blocks(content) if b.get("type") == "text")


class APIError(Exception):
    """What the Messages API answers instead of a message."""

    def __init__(
        self, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = dict(headers or {})


def _invalid(message: str) -> APIError:
    return APIError(400, "invalid_request_error", message)


# ----------------------------------------------------------------------------------- the fake


class FakeAnthropic(LoopbackServer):
    server_name = "fake-anthropic"
    _live: ClassVar[weakref.WeakSet[FakeAnthropic]] = weakref.WeakSet()

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        FakeAnthropic._live.add(self)
        self.api_key = api_key or "sk-ant-api03-" + secrets.token_urlsafe(32)
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """Forget the script, the requests and the answers; recorded problems stay until taken."""
        with self.lock:
            self.script: list[Scripted] = []
            self.requests: list[Request] = []
            self.answers: list[dict[str, Any]] = []
            self.attempts = 0
            if not hasattr(self, "violations"):
                self.violations: list[str] = []
                self.server_errors: list[str] = []

    # ------------------------------------------------------------ scripting

    def reply(
        self,
        *content: dict[str, Any] | Callable[[Request], Reply | Failure],
        stop_reason: str | None = None,
        usage: tuple[int, int] | None = None,
    ) -> None:
        """Script the next answer: content blocks (`text`, `tool_use`), or one function of the
        request that returns a `Reply` (or `Failure`)."""
        with self.lock:
            if len(content) == 1 and callable(content[0]):
                self.script.append(content[0])
            else:
                blocks = [dict(block) for block in content if isinstance(block, dict)]
                self.script.append(Reply(blocks, stop_reason, usage))

    def overloaded(self, times: int = 1) -> None:
        with self.lock:
            self.script += [Failure(529) for _ in range(times)]

    def rate_limited(self, times: int = 1, *, retry_after: int = 1) -> None:
        with self.lock:
            self.script += [Failure(429, retry_after=retry_after) for _ in range(times)]

    def server_error(self, times: int = 1, *, status: int = 500) -> None:
        with self.lock:
            self.script += [Failure(status) for _ in range(times)]

    def drop(self, times: int = 1) -> None:
        with self.lock:
            self.script += [Failure(0, drop=True) for _ in range(times)]

    @classmethod
    def live(cls) -> list[FakeAnthropic]:
        return list(cls._live)

    def take_problems(self) -> list[str]:
        with self.lock:
            problems = [f"request the Messages API refuses: {v}" for v in self.violations]
            problems += [f"error inside the fake Anthropic: {e}" for e in self.server_errors]
            self.violations, self.server_errors = [], []
            return problems

    def take_violations(self) -> list[str]:
        with self.lock:
            found, self.violations = self.violations, []
            return found

    # ------------------------------------------------------------ serving

    def asgi_app(self) -> Any:
        return self._asgi

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, body, extra = self._serve(scope["method"], scope["path"], headers, raw)
        except _Drop:
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is None:
                raise RuntimeError("dropping a connection needs uvicorn's HTTP protocol") from None
            transport.abort()
            await asyncio.sleep(0)
            return
        except Exception:
            with self.lock:
                self.server_errors.append(traceback.format_exc())
            status, body, extra = self._error(APIError(500, "api_error", "Internal server error"))
        content = json.dumps(body).encode()
        out = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            (b"request-id", _ident("req_011C").encode()),
            (b"anthropic-organization-id", b"00000000-0000-4000-8000-000000000000"),
            *((k.lower().encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})

    def _error(self, error: APIError) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = {
            "type": "error",
            "error": {"type": error.kind, "message": error.message},
            "request_id": _ident("req_011C"),
        }
        return error.status, body, error.headers

    def _serve(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.attempts += 1
            try:
                request = self._accept(method, path, headers, raw)
            except APIError as error:
                self.violations.append(f"{error.status} {error.kind}: {error.message}")
                return self._error(error)
            except _NotScripted as problem:
                self.server_errors.append(str(problem))
                return self._error(APIError(500, "api_error", "Internal server error"))
            if not self.script:
                self.server_errors.append("a request came and nothing was scripted to answer it")
                return self._error(APIError(500, "api_error", "Internal server error"))
            entry = self.script.pop(0)
            answer = entry(request) if callable(entry) else entry
            if isinstance(answer, Failure):
                return self._failure(answer)
            try:
                message = self._message(request, answer)
            except _ScriptError as problem:
                self.server_errors.append(f"the script answers what the API never would: {problem}")
                return self._error(APIError(500, "api_error", "Internal server error"))
            self.requests.append(request)
            self.answers.append(message)
            return 200, message, {}

    def _failure(self, failure: Failure) -> tuple[int, dict[str, Any], dict[str, str]]:
        if failure.drop:
            raise _Drop
        if failure.status == 529:
            return self._error(
                APIError(529, "overloaded_error", "Overloaded", {"x-should-retry": "true"})
            )
        if failure.status == 429:
            wait = failure.retry_after if failure.retry_after is not None else 1
            return self._error(
                APIError(
                    429,
                    "rate_limit_error",
                    RATE_LIMIT_MESSAGE,
                    {
                        "retry-after": str(wait),
                        "anthropic-ratelimit-requests-limit": "50",
                        "anthropic-ratelimit-requests-remaining": "0",
                        "anthropic-ratelimit-requests-reset": "1970-01-01T00:00:00Z",
                        "x-should-retry": "true",
                    },
                )
            )
        kind = {500: "api_error", 503: "api_error", 504: "timeout_error"}.get(
            failure.status, "api_error"
        )
        message = "Internal server error" if failure.status == 500 else "Service unavailable"
        return self._error(APIError(failure.status, kind, message, {"x-should-retry": "true"}))

    # ------------------------------------------------------------ validation

    def _accept(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Request:
        if path.rstrip("/") != "/v1/messages":
            raise APIError(404, "not_found_error", "Not Found")
        if method != "POST":
            raise APIError(405, "invalid_request_error", f"Method {method} not allowed")
        key = headers.get("x-api-key")
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if key is None and not bearer:
            raise APIError(401, "authentication_error", "x-api-key header is required")
        if (key or bearer) != self.api_key:
            raise APIError(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in headers:
            raise _invalid("anthropic-version: header is required")
        if headers["anthropic-version"] not in API_VERSIONS:
            raise _invalid(f"anthropic-version: unknown version {headers['anthropic-version']!r}")
        try:
            body = json.loads(raw)
        except ValueError:
            raise _invalid("There was an error parsing the body of your request") from None
        if not isinstance(body, dict):
            raise _invalid("Input should be a valid dictionary")
        for name in body:
            if name not in BODY_FIELDS:
                raise _invalid(f"{name}: Extra inputs are not permitted")
        self._check_model(body)
        tools = self._check_tools(body)
        self._check_tool_choice(body, tools)
        self._check_system(body.get("system"))
        self._check_messages(body)
        if body.get("stream"):
            raise _NotScripted("a streaming request: the fake answers whole messages only")
        return Request({k: v for k, v in headers.items() if k != "x-api-key"}, body)

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is None:
            raise _invalid("model: Field required")
        if not isinstance(model, str):
            raise _invalid("model: Input should be a valid string")
        if model not in KNOWN_MODELS:
            raise APIError(404, "not_found_error", f"model: {model}")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _invalid("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _invalid("max_tokens: Input should be greater than or equal to 1")
        if max_tokens > MAX_OUTPUT_TOKENS:
            raise _invalid(
                f"max_tokens: {max_tokens} > {MAX_OUTPUT_TOKENS}, which is the maximum allowed "
                f"number of output tokens for {model}"
            )

    def _check_tools(self, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        tools = body.get("tools")
        if tools is None:
            return {}
        if not isinstance(tools, list):
            raise _invalid("tools: Input should be a valid list")
        found: dict[str, dict[str, Any]] = {}
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _invalid(f"tools.{index}: Input should be a valid dictionary")
            for name in tool:
                if name not in TOOL_FIELDS:
                    raise _invalid(f"tools.{index}.{name}: Extra inputs are not permitted")
            name = tool.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                raise _invalid(
                    f"tools.{index}.custom.name: String should match pattern "
                    "'^[a-zA-Z0-9_-]{1,128}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise _invalid(f"tools.{index}.custom.input_schema: Field required")
            if schema.get("type") != "object":
                raise _invalid(f"tools.{index}.custom.input_schema.type: Input should be 'object'")
            if "description" in tool and not isinstance(tool["description"], str):
                raise _invalid(f"tools.{index}.custom.description: Input should be a valid string")
            if name in found:
                raise _invalid("tools: Tool names must be unique.")
            found[name] = tool
        return found

    def _check_tool_choice(self, body: dict[str, Any], tools: dict[str, dict[str, Any]]) -> None:
        choice = body.get("tool_choice")
        if choice is None:
            return
        if not isinstance(choice, dict) or choice.get("type") not in (
            "auto",
            "any",
            "tool",
            "none",
        ):
            raise _invalid(
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', "
                "'tool', 'none'"
            )
        if not tools and choice["type"] != "none":
            raise _invalid("tool_choice may only be specified while providing tools.")
        allowed = {"type", "disable_parallel_tool_use"} | (
            {"name"} if choice["type"] == "tool" else set()
        )
        for name in choice:
            if name not in allowed:
                raise _invalid(
                    f"tool_choice.{choice['type']}.{name}: Extra inputs are not permitted"
                )
        if choice["type"] == "tool":
            if not isinstance(choice.get("name"), str):
                raise _invalid("tool_choice.tool.name: Field required")
            if choice["name"] not in tools:
                raise _invalid(f"Tool '{choice['name']}' not found in provided tools")

    def _check_system(self, system: Any) -> None:
        if system is None or isinstance(system, str):
            return
        if not isinstance(system, list):
            raise _invalid("system: Input should be a valid string or list")
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise _invalid(f"system.{index}.type: Input should be 'text'")
            if not isinstance(block.get("text"), str) or not block["text"]:
                raise _invalid(f"system.{index}.text: text content blocks must be non-empty")

    def _check_messages(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if messages is None:
            raise _invalid("messages: Field required")
        if not isinstance(messages, list):
            raise _invalid("messages: Input should be a valid list")
        if not messages:
            raise _invalid("messages: at least one message is required")
        # The API combines consecutive turns of one role; ids and pairing are checked per turn.
        turns: list[tuple[str, list[tuple[int, int, dict[str, Any]]]]] = []
        seen_ids: set[str] = set()
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise _invalid(f"messages.{index}: Input should be a valid dictionary")
            for name in message:
                if name not in ("role", "content"):
                    raise _invalid(f"messages.{index}.{name}: Extra inputs are not permitted")
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise _invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            if content is None:
                raise _invalid(f"messages.{index}.content: Field required")
            if isinstance(content, str):
                if not content:
                    raise _invalid(f"messages.{index}: text content blocks must be non-empty")
                blocks = [{"type": "text", "text": content}]
            elif isinstance(content, list):
                if not content and index != len(messages) - 1:
                    raise _invalid(
                        f"messages.{index}: all messages must have non-empty content except for "
                        "the optional final assistant message"
                    )
                blocks = content
            else:
                raise _invalid(f"messages.{index}.content: Input should be a valid string or list")
            for position, block in enumerate(blocks):
                self._check_block(index, position, role, block, seen_ids)
            located = [(index, position, block) for position, block in enumerate(blocks)]
            if turns and turns[-1][0] == role:
                turns[-1][1].extend(located)
            else:
                turns.append((role, located))
        if turns[0][0] != "user":
            raise _invalid('messages: first message must use the "user" role')
        if turns[-1][0] == "assistant":
            raise _invalid(
                "This model does not support assistant message prefill. The conversation must "
                "end with a user message."
            )
        for number, (role, blocks) in enumerate(turns):
            if role == "assistant":
                asked = [b["id"] for _, _, b in blocks if b.get("type") == "tool_use"]
                if not asked:
                    continue
                following = turns[number + 1][1]
                leading: list[str] = []
                for _, _, block in following:
                    if block.get("type") != "tool_result":
                        break
                    leading.append(block["tool_use_id"])
                missing = [ident for ident in asked if ident not in leading]
                if missing:
                    raise _invalid(
                        f"messages.{blocks[-1][0]}: `tool_use` ids were found without "
                        f"`tool_result` blocks immediately after: {', '.join(missing)}. Each "
                        "`tool_use` block must have a corresponding `tool_result` block in the "
                        "next message."
                    )
            else:
                previous = turns[number - 1][1] if number else []
                offered = {b["id"] for _, _, b in previous if b.get("type") == "tool_use"}
                for index, position, block in blocks:
                    if block.get("type") == "tool_result" and block["tool_use_id"] not in offered:
                        raise _invalid(
                            f"messages.{index}.content.{position}: unexpected `tool_use_id` found "
                            f"in `tool_result` blocks: {block['tool_use_id']}. Each `tool_result` "
                            "block must have a corresponding `tool_use` block in the previous "
                            "message."
                        )

    def _check_block(
        self, index: int, position: int, role: str, block: Any, seen_ids: set[str]
    ) -> None:
        where = f"messages.{index}.content.{position}"
        if not isinstance(block, dict):
            raise _invalid(f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str) or not block["text"]:
                raise _invalid("messages: text content blocks must be non-empty")
            extra = set(block) - {"type", "text", "cache_control", "citations"}
        elif kind == "tool_use":
            if role != "assistant":
                raise _invalid(f"{where}: `tool_use` blocks can only be in `assistant` messages")
            ident = block.get("id")
            if not isinstance(ident, str) or not re.fullmatch(r"[a-zA-Z0-9_-]+", ident):
                raise _invalid(f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if ident in seen_ids:
                raise _invalid(f"{where}: `tool_use` ids must be unique")
            seen_ids.add(ident)
            if not isinstance(block.get("name"), str):
                raise _invalid(f"{where}.name: Field required")
            if not isinstance(block.get("input"), dict):
                raise _invalid(f"{where}.input: Input should be a valid dictionary")
            extra = set(block) - {"type", "id", "name", "input", "cache_control", "caller"}
        elif kind == "tool_result":
            if role != "user":
                raise _invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
            if not isinstance(block.get("tool_use_id"), str):
                raise _invalid(f"{where}.tool_use_id: Field required")
            content = block.get("content", "")
            valid_list = isinstance(content, list) and all(
                isinstance(b, dict) and b.get("type") == "text" and b.get("text") for b in content
            )
            if not isinstance(content, str) and not valid_list:
                raise _invalid(f"{where}.content: Input should be a valid string or list")
            if "is_error" in block and not isinstance(block["is_error"], bool):
                raise _invalid(f"{where}.is_error: Input should be a valid boolean")
            extra = set(block) - {"type", "tool_use_id", "content", "is_error", "cache_control"}
        else:
            raise _invalid(
                f"{where}: Input tag '{kind}' found using 'type' does not match any of the "
                "expected tags"
            )
        if extra:
            raise _invalid(f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted")

    # ------------------------------------------------------------ answering

    def _message(self, request: Request, reply: Reply) -> dict[str, Any]:
        body = request.body
        offered = {tool["name"] for tool in body.get("tools") or []}
        choice = body.get("tool_choice") or {"type": "auto"}
        content: list[dict[str, Any]] = []
        for block in reply.content:
            if block.get("type") == "tool_use":
                content.append(
                    {
                        "type": "tool_use",
                        "id": _ident("toolu_01"),
                        "name": block["name"],
                        "input": block["input"],
                    }
                )
            elif block.get("type") == "text":
                content.append({"type": "text", "text": block["text"]})
            else:
                raise _ScriptError(f"a {block.get('type')!r} block")
        calls = [block for block in content if block["type"] == "tool_use"]
        stop = reply.stop_reason or ("tool_use" if calls else "end_turn")
        if stop == "tool_use" and not calls:
            raise _ScriptError("stop_reason tool_use without a tool call")
        if calls and stop not in ("tool_use", "max_tokens"):
            raise _ScriptError(f"a tool call with stop_reason {stop}")
        if stop != "max_tokens":
            if choice["type"] in ("any", "tool") and not calls:
                raise _ScriptError(f"no tool call under tool_choice {choice['type']}")
            if choice["type"] == "none" and calls:
                raise _ScriptError("a tool call under tool_choice none")
            if choice["type"] in ("any", "tool"):
                unknown = [c["name"] for c in calls if c["name"] not in offered]
                if unknown:
                    raise _ScriptError(f"a call of {unknown[0]!r}, not offered, under {choice}")
            if choice["type"] == "tool" and any(c["name"] != choice["name"] for c in calls):
                raise _ScriptError(f"a call of another tool than {choice['name']!r}")
            if choice.get("disable_parallel_tool_use") and len(calls) > 1:
                raise _ScriptError("parallel tool calls while disable_parallel_tool_use is set")
        if reply.usage is not None:
            input_tokens, output_tokens = reply.usage
        else:
            input_tokens = max(1, len(json.dumps(body)) // 4)
            output_tokens = max(1, len(json.dumps(content)) // 4)
        return {
            "id": _ident("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }


class _ScriptError(Exception):
    """The test's script answers what the real API never would."""


class _NotScripted(Exception):
    """A valid request the fake cannot answer."""


class _Drop(Exception):
    """Close the connection without answering."""
