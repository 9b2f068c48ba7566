"""`/mcp`: the MCP server (official SDK) over streamable HTTP, mounted in the Litestar app.

- **Stateless, JSON answers.** Every call is one self-contained POST answered with JSON: any
  replica answers any call (no MCP session lives in one process's memory) and no stream has to
  stay open behind a proxy.
- **API-token auth in front.** `Authorization: Bearer dsp_…`, checked on every request before the
  SDK sees it: a missing, unknown or revoked token is a 401 (with `WWW-Authenticate: Bearer`), so a
  client with a wrong token is refused when it connects. The token, and the app's runtime, ride
  to the tools in the request's ASGI scope.
- **DNS-rebinding protection** (the SDK's): the `Host` header must be `DISPATCH_URL`'s host, or a
  loopback address (which a rebinding attack, coming through a browser with the attacker's host
  name, cannot present); an `Origin`, when sent, must be `DISPATCH_URL`'s or a loopback one.
- **The session manager runs in the app's lifespan** (`McpEndpoint.lifespan`): a mounted app's own
  lifespan never runs. Mounted at `/mcp`, the SDK app sees the path `/`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar, asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from mcp.server.transport_security import TransportSecuritySettings

from app.mcp.tool_calls import RUNTIME_SCOPE_KEY, TOKEN_SCOPE_KEY
from app.mcp.tools import build_server
from app.runtime import Runtime
from app.tokens import service as tokens

PATH = "/mcp"
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def transport_security(dispatch_url: str) -> TransportSecuritySettings:
    """DNS-rebinding protection for the host Dispatch is reached at."""
    parts = urlsplit(dispatch_url)
    host = parts.netloc.lower()
    hosts = [host, f"{parts.hostname}:*"] if parts.hostname else [host]
    origin = f"{parts.scheme}://{host}"
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*dict.fromkeys([*hosts, *LOOPBACK_HOSTS])],
        allowed_origins=[*dict.fromkeys([origin, *LOOPBACK_ORIGINS])],
    )


@dataclass(frozen=True)
class McpEndpoint:
    handler: ASGIRouteHandler
    lifespan: Callable[[Litestar], AbstractAsyncContextManager[None]]


def build(rt: Runtime) -> McpEndpoint:
    """The `/mcp` route handler and the lifespan that runs its session manager."""
    server = build_server(rt.settings.dispatch_url)
    # A new transport and session manager for this app (the server and its tools are shared).
    sdk_app = server.streamable_http_app(
        streamable_http_path="/",
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(rt.settings.dispatch_url),
    )
    session_manager = server.session_manager

    @asgi(PATH, is_mount=True, copy_scope=True, include_in_schema=False)
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        """The MCP server (streamable HTTP) for API tokens."""
        if scope["type"] != "http":
            return
        credential = _bearer(scope)
        token = await tokens.authenticate(credential) if credential else None
        if token is None:
            await _unauthorized(
                send,
                "send a Dispatch API token as `Authorization: Bearer <token>`"
                if not credential
                else "the API token is unknown or revoked",
            )
            return
        call_scope = {**scope, TOKEN_SCOPE_KEY: token, RUNTIME_SCOPE_KEY: rt}
        await sdk_app(call_scope, receive, send)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with session_manager.run():
            yield

    return McpEndpoint(mcp_endpoint, lifespan)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
            return None
    return None


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"error": message, "status": 401}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="dispatch"'),
    ]
    start: Any = {"type": "http.response.start", "status": 401, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
