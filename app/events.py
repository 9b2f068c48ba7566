"""The router: `(event, action)` → the handlers registered for it, bedevere-style.

    @router.on("issues", "opened", "edited")
    async def cache_issue(event: Event, rt: Runtime) -> None: ...

A handler registered without actions gets every action of its event. The worker calls
`router.dispatch(event, rt)`; intake asks `router.handles(name, action)` to journal events nobody
handles as ignored, without queueing them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Event:
    """One journaled delivery as handlers see it."""

    name: str
    action: str | None
    delivery: str
    payload: dict[str, Any]
    source: str = "github"
    installation_id: int | None = None
    _after_commit: list[AfterCommit] = field(
        default_factory=list, init=False, compare=False, repr=False
    )

    def after_commit(self, action: AfterCommit) -> None:
        """Run `action` once the delivery's transaction has committed: for GitHub calls that
        should happen at once but must not hold the transaction open. Best effort (a failure is
        logged, not retried), so what it does must also be done by a durable job."""
        self._after_commit.append(action)

    async def run_after_commit(self) -> None:
        for action in self._after_commit:
            try:
                await action()
            except Exception as exc:
                name = getattr(getattr(action, "func", action), "__qualname__", "?")  # partials
                log.warning(
                    "after-commit action failed", extra={"action": name, "error": repr(exc)}
                )
        self._after_commit.clear()

    @property
    def repository(self) -> str | None:
        repo = self.payload.get("repository")
        return repo.get("full_name") if isinstance(repo, dict) else None

    @property
    def sender(self) -> str | None:
        sender = self.payload.get("sender")
        return sender.get("login") if isinstance(sender, dict) else None

    @property
    def sender_is_bot(self) -> bool:
        sender = self.payload.get("sender") or {}
        return sender.get("type") == "Bot" or str(sender.get("login", "")).endswith("[bot]")


Handler = Callable[[Event, "Runtime"], Awaitable[None]]


@dataclass
class Router:
    _handlers: dict[tuple[str, str | None], list[Handler]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def on(self, event: str, *actions: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for action in actions or (None,):
                if handler not in self._handlers[(event, action)]:
                    self._handlers[(event, action)].append(handler)
            return handler

        return register

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        found = list(self._handlers.get((event, None), []))
        if action is not None:
            found += self._handlers.get((event, action), [])
        return found

    def handles(self, event: str, action: str | None) -> bool:
        return bool(self.handlers_for(event, action))

    async def dispatch(self, event: Event, rt: Runtime) -> int:
        """Run every handler for the event in registration order; the first failure propagates."""
        handlers = self.handlers_for(event.name, event.action)
        for handler in handlers:
            log.debug("handler start", extra={"handler": handler.__qualname__})
            await handler(event, rt)
        return len(handlers)


router = Router()
