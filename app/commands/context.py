"""The generic comment (every text a person writes, from any source) and what a verb handler
gets: the comment, the parsed command, the repository config, the commenter's permission and an
installation client. A handler answers with a `Result`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from githubkit import GitHub

from app.commands.parser import Command
from app.events import Event, is_bot
from app.github.permissions import Permission
from app.github.rest import ReactionTarget
from app.issues.repo_config import RepoConfig
from app.runtime import Runtime


@dataclass(frozen=True)
class GenericComment:
    installation_id: int
    repository: str
    repository_id: int
    number: int
    is_pull: bool
    author: str
    author_is_bot: bool
    body: str
    target: ReactionTarget
    delivery: str
    html_url: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> GenericComment | None:
        """Issue body on open, issue/PR comment, review body, review comment; else None."""
        p = event.payload
        if event.installation_id is None or "repository" not in p:
            return None
        if event.name == "issues" and event.action == "opened":
            item, text, target = p["issue"], p["issue"].get("body"), "issue"
            author = item.get("user") or {}
            comment_id = None
            url = item.get("html_url")
        elif event.name == "issue_comment" and event.action == "created":
            item, text, target = p["issue"], p["comment"].get("body"), "issue_comment"
            author = p["comment"].get("user") or {}
            comment_id = p["comment"]["id"]
            url = p["comment"].get("html_url")
        elif event.name == "pull_request_review" and event.action == "submitted":
            item, text, target = p["pull_request"], p["review"].get("body"), "none"
            author = p["review"].get("user") or {}
            comment_id = None
            url = p["review"].get("html_url")
        elif event.name == "pull_request_review_comment" and event.action == "created":
            item, text, target = p["pull_request"], p["comment"].get("body"), "review_comment"
            author = p["comment"].get("user") or {}
            comment_id = p["comment"]["id"]
            url = p["comment"].get("html_url")
        else:
            return None
        number = int(item["number"])
        return cls(
            installation_id=event.installation_id,
            repository=p["repository"]["full_name"],
            repository_id=p["repository"]["id"],
            number=number,
            is_pull=event.name.startswith("pull_request") or "pull_request" in item,
            author=author.get("login") or "ghost",
            author_is_bot=is_bot(author),
            body=text or "",
            target=ReactionTarget(kind=target, number=number, comment_id=comment_id),
            delivery=event.delivery,
            html_url=url,
        )


@dataclass(frozen=True)
class Result:
    """A verb's answer. `ok=False` is a refusal: 😕 and a reply quoting the command.
    `reply` (if any) is posted as a comment; `reaction` replaces the default (🚀 on success)."""

    ok: bool
    reply: str | None = None
    reaction: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Why a refusal happened, when it is one a flood repeats (permission, rate limit): then a
    # person gets one reply for it at most, and 😕 on the rest.
    refused_for: str | None = None
    # An answer a flood repeats that is not a refusal (help, status, similar asked by people
    # below write permission): the same rule, one reply at most, then 😕 alone.
    repeats: str | None = None

    @classmethod
    def refuse(cls, reason: str, *, refused_for: str | None = None) -> Result:
        return cls(ok=False, reply=reason, refused_for=refused_for)

    @classmethod
    def done(cls, reply: str | None = None, reaction: str | None = "rocket") -> Result:
        return cls(ok=True, reply=reply, reaction=reaction)


class VerbInfo(Protocol):
    """What `/dispatch help` shows of a verb (`registry.Verb` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def permission(self) -> Permission: ...
    @property
    def help(self) -> str: ...
    @property
    def usage(self) -> str: ...


class VerbListing(Protocol):
    """The verbs a command may list (`registry.Registry` is one; typed here so that the
    registry, which knows the context's type, is not imported by it)."""

    def listing(self) -> Sequence[VerbInfo]: ...


@dataclass
class CommandContext:
    rt: Runtime
    comment: GenericComment
    command: Command
    config: RepoConfig
    permission: Permission
    client: GitHub
    verbs: VerbListing
    command_id: int | None = None

    @property
    def repository(self) -> str:
        return self.comment.repository

    @property
    def number(self) -> int:
        return self.comment.number
