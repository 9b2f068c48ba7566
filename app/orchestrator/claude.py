"""Talking to Claude: one Messages API call per planning round through the official `anthropic`
SDK (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `ORCHESTRATOR_MODEL`), its failures sorted into
"wait and try again" (`Unavailable`: overloaded, rate limited, 5xx, unreachable) and "this will
not work as configured" (`Refused`: a refused key, an unknown model, a request Anthropic
rejects), and what each call cost.

The SDK's own retries are off: a mission retries from the job queue, so no worker sleeps through
an outage and the mission's status comment can say that it is waiting, and for how long.

The SDK is imported when the first `Claude` is made, not with this module: importing it costs
about 1.2 s of CPU (half of the server's start-up), and a Dispatch without missions never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from app.config import Settings

if TYPE_CHECKING:
    import anthropic

NOT_CONFIGURED = (
    "missions need Claude, and this Dispatch has no Anthropic API key: the operator sets "
    "`ANTHROPIC_API_KEY` in Dispatch's environment (optionally `ORCHESTRATOR_MODEL`, and "
    "`ANTHROPIC_BASE_URL` for a gateway) and restarts it; then ask again."
)


@dataclass(frozen=True)
class Turn:
    """One answer of the model: its content blocks as plain JSON, why it stopped, its usage
    and what it cost."""

    content: list[dict[str, Any]]
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Unavailable(Exception):
    """Anthropic cannot answer now; asking again later may work."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after


class Refused(Exception):
    """Anthropic refused the request in a way asking again will not change."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def cost_of(settings: Settings, usage: Any) -> float:
    """Dollars for one call's usage at the configured prices (cache writes cost 1.25 times input,
    cache reads 0.1 times)."""
    per_input = settings.orchestrator_input_usd_per_mtok / 1_000_000
    per_output = settings.orchestrator_output_usd_per_mtok / 1_000_000
    return (
        (getattr(usage, "input_tokens", 0) or 0) * per_input
        + (getattr(usage, "cache_creation_input_tokens", 0) or 0) * per_input * 1.25
        + (getattr(usage, "cache_read_input_tokens", 0) or 0) * per_input * 0.1
        + (getattr(usage, "output_tokens", 0) or 0) * per_output
    )


class Claude:
    def __init__(self, settings: Settings) -> None:
        if not settings.anthropic_api_key:
            raise Refused(NOT_CONFIGURED)
        import anthropic  # deferred: see the module's docstring

        self.settings = settings
        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            max_retries=0,
            timeout=settings.orchestrator_timeout_seconds,
        )

    async def close(self) -> None:
        await self._client.close()

    async def turn(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: dict[str, Any],
    ) -> Turn:
        settings, sdk = self.settings, self._sdk
        try:
            message = await self._client.messages.create(
                model=settings.orchestrator_model,
                max_tokens=settings.orchestrator_max_tokens,
                system=system,
                # Plain JSON, as stored between rounds; the SDK's TypedDicts describe the same.
                messages=cast(Any, messages),
                tools=cast(Any, tools),
                tool_choice=cast(Any, tool_choice),
            )
        except sdk.APIStatusError as exc:
            raise _sorted(exc, settings) from None
        except sdk.APITimeoutError:
            raise Unavailable(
                f"Anthropic did not answer within {settings.orchestrator_timeout_seconds:g} s"
            ) from None
        except sdk.APIConnectionError:
            raise Unavailable("Anthropic's API could not be reached") from None
        content = [_plain(block) for block in message.content]
        return Turn(
            content=[block for block in content if block is not None],
            stop_reason=message.stop_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            cost_usd=cost_of(settings, message.usage),
        )


def _plain(block: Any) -> dict[str, Any] | None:
    """A content block as the JSON to send back in the next request (text and tool calls;
    anything else the model might add is not part of this conversation)."""
    if block.type == "text":
        return {"type": "text", "text": block.text} if block.text else None
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return None


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) * scale, 0.0)
            except ValueError:
                continue
    return None


def _sorted(exc: anthropic.APIStatusError, settings: Settings) -> Exception:
    status = exc.status_code
    said = f": {exc.api_message}" if exc.api_message else ""
    if status == 529:
        return Unavailable("Anthropic is overloaded (529)", _retry_after(exc))
    if status == 429:
        return Unavailable(
            "Anthropic's rate limit for this API key was reached (429)", _retry_after(exc)
        )
    if status >= 500 or status in (408, 409):
        return Unavailable(f"Anthropic answered {status}", _retry_after(exc))
    if status == 401:
        return Refused("Anthropic refused the API key (401): check `ANTHROPIC_API_KEY`")
    if status == 403:
        return Refused(f"Anthropic refused this API key access (403){said}")
    if status == 404:
        return Refused(
            f"Anthropic does not offer the model `{settings.orchestrator_model}` (404): check "
            "`ORCHESTRATOR_MODEL`"
        )
    if status == 413:
        return Refused("the planning conversation grew too large for Anthropic (413)")
    return Refused(f"Anthropic refused the request ({status}{said})")
