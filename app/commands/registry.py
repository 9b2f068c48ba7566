"""The verb registry, Prow-style: a verb registers its handler, its default minimum permission
and its help line together, so `/dispatch help` is generated from what actually runs.

Each verb module has its own registry; `app/commands/verbs.py` combines them in one place."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.github.permissions import Permission

if TYPE_CHECKING:
    from app.commands.context import CommandContext, Result

VerbHandler = Callable[["CommandContext"], Awaitable["Result"]]


@dataclass(frozen=True)
class Verb:
    name: str
    handler: VerbHandler
    permission: Permission
    help: str
    usage: str


class Registry:
    def __init__(self, *registries: Registry) -> None:
        self.verbs: dict[str, Verb] = {}
        for other in registries:
            for name, verb in other.verbs.items():
                if name in self.verbs:
                    raise ValueError(f"the verb {name!r} is registered twice")
                self.verbs[name] = verb

    def verb(
        self, name: str, *, permission: Permission, help: str, usage: str = ""
    ) -> Callable[[VerbHandler], VerbHandler]:
        def register(handler: VerbHandler) -> VerbHandler:
            self.verbs[name] = Verb(name, handler, permission, help, f"{name} {usage}".strip())
            return handler

        return register

    def get(self, name: str) -> Verb | None:
        return self.verbs.get(name)

    def closest(self, name: str) -> str | None:
        matches = difflib.get_close_matches(name, list(self.verbs), n=1, cutoff=0.5)
        return matches[0] if matches else None

    def listing(self) -> list[Verb]:
        return sorted(self.verbs.values(), key=lambda verb: (verb.permission, verb.name))
