"""Events and their routing, bedevere-style: each area's handler module has its own router,

    router = Router()

    @router.on("issues", "opened", "edited")
    async def cache_issue(event: Event, rt: Runtime) -> None: ...

and the composition root (`app/worker.py`) combines them in a visible order,
`Router(installations.router, issues.router, …)`. A handler registered without actions gets every
action of its event. The worker calls `router.dispatch(event, rt)`; intake asks
`router.handles(name, action)` to journal events nobody handles as ignored, without queueing them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.github.repo import Repo

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
    def repo(self) -> Repo | None:
        name = self.repository
        return Repo.parse(name) if name else None

    @property
    def sender(self) -> str | None:
        sender = self.payload.get("sender")
        return sender.get("login") if isinstance(sender, dict) else None

    @property
    def sender_is_bot(self) -> bool:
        return is_bot(self.payload.get("sender"))


def is_bot(user: Mapping[str, Any] | None) -> bool:
    """A GitHub account that is an App's bot (by type, or by the `[bot]` suffix of its login)."""
    if not user:
        return False
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


async def is_own_change(event: Event, rt: Runtime) -> bool:
    """Whether Dispatch itself caused this event (its rules never react to their own edits)."""
    return await rt.github.is_self(event.sender)


Handler = Callable[[Event, "Runtime"], Awaitable[None]]


class Router:
    """`(event, action)` → handlers, in registration order; `Router(a, b)` combines routers,
    a's handlers first."""

    def __init__(self, *routers: Router) -> None:
        self._handlers: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        for other in routers:
            for key, handlers in other._handlers.items():
                for handler in handlers:
                    if handler not in self._handlers[key]:
                        self._handlers[key].append(handler)

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
