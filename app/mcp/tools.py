"""The MCP tools: each a thin call of the service the HTTP API or the `/dispatch` verb uses, with
the same permission (the token's scope and repositories), the same spawn gates and the same
audit. A refusal is a tool error whose text says why and what to do — never a protocol error and
never a silent success — and every call of a tool that changes something is audited with the
token's name (`mcp.<tool>`), refusals included.

Scopes: `read` lists and reads; `agent` also claims, comments and reports (plans, blockers);
`dispatch` also creates and edits issues and dispatches agents.

`build_server` registers the tools group by group, in this order: reading (`reading_tools`),
changing issues and dispatching (`changing_tools`), claims and reports (`claim_tools`); what every
tool shares (the caller, the argument types, refusals, the audit) is in `tool_calls`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from app import __version__
from app.mcp.changing_tools import register_changing
from app.mcp.claim_tools import register_claims
from app.mcp.reading_tools import register_reading
from app.mcp.tool_calls import ToolFunction

INSTRUCTIONS = """\
Dispatch runs AI agents on GitHub issues. Issue state lives in labels: status/backlog,
status/ready (claimable and dispatchable), status/in-progress, status/in-review, status/done;
priority/p0 (most urgent) to priority/p3; type/bug, feature, chore, research, security.

Work a queue: claim_next_issue gives you the most urgent ready issue and a lease; call
heartbeat_claim well before the lease ends; post_plan or report_blocker with your claim_id; end
with release_claim (done, blocked or abandoned). Or dispatch Dispatch's own agents:
dispatch_investigation ends in a plan a person approves; dispatch_implementation needs that
approved plan. Runs are subject to daily budgets; a refusal says which one and when it clears.
Repositories are named owner/name."""


@functools.lru_cache(maxsize=2)
def build_server(dispatch_url: str) -> MCPServer:
    """The MCP server with every tool, built once per process (each tool's schema is a pydantic
    model: about 50 ms for all of them). A tool finds the runtime and the caller's token in the
    request (`runtime_of`, `token_of`); each app makes its own transport and session manager
    from it (`mount.build`)."""
    server = MCPServer(
        "dispatch",
        title="Dispatch",
        instructions=INSTRUCTIONS,
        version=__version__,
        website_url=dispatch_url,
    )

    def tool(annotations: ToolAnnotations) -> Callable[[ToolFunction], ToolFunction]:
        """Register a tool; its description is its docstring on one line."""

        def register(fn: ToolFunction) -> ToolFunction:
            text = " ".join(inspect.cleandoc(fn.__doc__ or "").split())
            server.add_tool(fn, description=text, annotations=annotations)
            return fn

        return register

    register_reading(tool)
    register_changing(tool)
    register_claims(tool)
    return server
