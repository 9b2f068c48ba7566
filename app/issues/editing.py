"""Issues created, edited and commented on with an API token (MCP clients, harnesses), under the
App's name.

Whatever such a client writes is text Dispatch did not write: it goes through
`app/github/markdown.py` like an agent's report (no @-mentions, no remote images, links only to
GitHub, credentials scrubbed) and is signed with the token's name, so readers know who posted it.
Labels follow the label rules with targeted edits: one `status/*` (through `state.move_to`), one
`priority/*`, one `type/*`. Every change is audited with the token's name as the actor.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import NotFoundException

from app.audit import log as audit
from app.github import addresses, markdown, rest
from app.installations import service as installations
from app.issues import cache, state
from app.issues.cache import CachedIssue
from app.issues.labels import Kind, Priority, Status
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import require_repository, require_scope
from app.tokens.service import ApiToken
from app.web.errors import github_trouble, invalid

MAX_TITLE = 256
# GitHub refuses bodies over 65,536 characters; leave room for the signature.
MAX_BODY = 60_000


def parse_status(value: str | None) -> Status | None:
    return _member(Status, "status", value)


def parse_priority(value: str | None) -> Priority | None:
    return _member(Priority, "priority", value)


def parse_kind(value: str | None) -> Kind | None:
    return _member(Kind, "type", value)


def _member(family: Any, field: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    name = value if value.startswith(f"{field}/") else f"{field}/{value}"
    if name not in family._value2member_map_:
        allowed = ", ".join(member.value.removeprefix(f"{field}/") for member in family)
        raise invalid(field, f"`{field}` must be one of {allowed}")
    return family(name)


def _title(value: str) -> str:
    title = " ".join((value or "").split())
    if not title:
        raise invalid("title", "the `title` is empty")
    if len(title) > MAX_TITLE:
        raise invalid("title", f"the `title` is longer than GitHub allows ({MAX_TITLE} characters)")
    return markdown.no_mentions(title)


def _text(rt: Runtime, token: ApiToken, value: str, what: str) -> str:
    text = markdown.agent_markdown(
        (value or "").strip(), addresses.github_hosts(rt.settings.github_web_url)
    )
    text = markdown.cut(text, MAX_BODY, "_(cut: the text was longer than GitHub allows)_")
    signature = f"_{what} through Dispatch by API token {markdown.code_span(token.name)}._"
    return f"{text}\n\n---\n{signature}" if text else signature


async def _repository(token: ApiToken, repository: str) -> dict[str, Any]:
    require_repository(token, repository)
    found = await installations.repository_by_name(repository)
    if found is None:
        raise NotFoundException(f"Dispatch is not installed on {repository}")
    return found


async def create(
    rt: Runtime,
    token: ApiToken,
    repository: str,
    title: str,
    body: str = "",
    *,
    status: str | None = "backlog",
    priority: str | None = None,
    kind: str | None = None,
) -> tuple[CachedIssue, str | None]:
    """Open an issue (`status/backlog` unless told otherwise); returns it as cached, and its
    address on GitHub."""
    require_scope(token, tokens.DISPATCH)
    repo = await _repository(token, repository)
    labels = [
        label.value
        for label in (parse_status(status), parse_priority(priority), parse_kind(kind))
        if label is not None
    ]
    clean_title = _title(title)
    client = rt.github.installation(repo["installation_id"])
    with github_trouble("opening the issue"):
        issue = await rest.create_issue(
            client, repo["full_name"], clean_title, _text(rt, token, body, "Opened"), labels
        )
    await cache.store(
        repo["installation_id"], {"id": repo["id"], "full_name": repo["full_name"]}, issue
    )
    await audit.record(
        actor=token.actor,
        action="issue.create",
        target=f"{repo['full_name']}#{issue['number']}",
        repository=repo["full_name"],
        issue_number=issue["number"],
        installation_id=repo["installation_id"],
        after={"title": clean_title, "labels": labels},
    )
    cached = await cache.get(repo["full_name"], issue["number"])
    assert cached is not None
    return cached, issue.get("html_url")


async def update(
    rt: Runtime,
    token: ApiToken,
    repository: str,
    number: int,
    *,
    title: str | None = None,
    body: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    kind: str | None = None,
) -> CachedIssue:
    """Change an issue's title or body, or move its status, priority or type (each a targeted
    label edit that keeps one label per family)."""
    require_scope(token, tokens.DISPATCH)
    repo = await _repository(token, repository)
    new_status, new_priority, new_kind = (
        parse_status(status),
        parse_priority(priority),
        parse_kind(kind),
    )
    fields: dict[str, Any] = {}
    if title is not None:
        fields["title"] = _title(title)
    if body is not None:
        fields["body"] = _text(rt, token, body, "Edited")
    if not fields and not (new_status or new_priority or new_kind):
        raise invalid("title", "nothing to change: give a title, body, status, priority or type")
    name, installation_id = repo["full_name"], repo["installation_id"]
    client = rt.github.installation(installation_id)
    with github_trouble(f"updating {name}#{number}"):
        current = await rest.get_issue(client, name, number)
        before = sorted(label["name"] for label in current.get("labels") or [])
        if fields:
            await rest.update_issue(client, name, number, **fields)
        if new_status is not None:
            await state.move_to(
                client,
                rt,
                name,
                number,
                new_status,
                actor=token.actor,
                reason="update_issue",
                installation_id=installation_id,
            )
        for label, prefix in ((new_priority, "priority/"), (new_kind, "type/")):
            if label is None:
                continue
            if label.value not in before:
                await rest.add_label(client, name, number, label.value)
            for other in before:
                if other.startswith(prefix) and other != label.value:
                    await rest.remove_label(client, name, number, other)
        refreshed = await cache.refresh(rt, installation_id, repo["id"], name, number)
    await audit.record(
        actor=token.actor,
        action="issue.update",
        repository=name,
        issue_number=number,
        installation_id=installation_id,
        before={"title": current.get("title"), "labels": before},
        after={
            "title": refreshed.get("title"),
            "labels": sorted(label["name"] for label in refreshed.get("labels") or []),
            "body_changed": body is not None,
        },
    )
    cached = await cache.get(name, number)
    assert cached is not None
    return cached


async def comment(
    rt: Runtime, token: ApiToken, repository: str, number: int, body: str
) -> dict[str, Any]:
    """Post a comment (an agent's report, a question) under the App's name, signed with the
    token's name. Returns GitHub's comment."""
    require_scope(token, tokens.AGENT)
    repo = await _repository(token, repository)
    if not (body or "").strip():
        raise invalid("body", "the comment `body` is empty")
    client = rt.github.installation(repo["installation_id"])
    with github_trouble(f"commenting on {repo['full_name']}#{number}"):
        if await cache.get(repo["full_name"], number) is None:
            await rest.get_issue(client, repo["full_name"], number)
        posted = await rest.comment(
            client, repo["full_name"], number, _text(rt, token, body, "Posted")
        )
    await audit.record(
        actor=token.actor,
        action="issue.comment",
        target=f"{repo['full_name']}#{number}",
        repository=repo["full_name"],
        issue_number=number,
        installation_id=repo["installation_id"],
        after={"comment": posted.get("id")},
    )
    return posted
