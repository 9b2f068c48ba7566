"""The REST calls Dispatch makes, as small functions over an installation client. They know
GitHub's paths and quirks (URL-encoded label names, 404 on removing an absent label, 422 when a
label exists) so that areas read as intent: `add_label(...)`, `upsert_marked_comment(...)`.

Label edits are always targeted (add one, remove one), never a whole-set replace, so concurrent
human edits survive.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app.github.clients import api_headers


def _split(repository: str) -> tuple[str, str]:
    owner, name = repository.split("/", 1)
    return owner, name


async def _call(client: GitHub, method: str, path: str, **kwargs: Any) -> Any:
    response = await client.arequest(method, path, headers=api_headers(), **kwargs)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def status_of(exc: RequestFailed) -> int:
    return exc.response.status_code


async def get_repository(client: GitHub, repository: str) -> dict[str, Any]:
    owner, name = _split(repository)
    return await _call(client, "GET", f"/repos/{owner}/{name}")


# --- labels


async def issue_labels(client: GitHub, repository: str, number: int) -> list[str]:
    owner, name = _split(repository)
    data = await _call(
        client, "GET", f"/repos/{owner}/{name}/issues/{number}/labels", params={"per_page": 100}
    )
    return [label["name"] for label in data]


async def add_label(client: GitHub, repository: str, number: int, label: str) -> list[str]:
    owner, name = _split(repository)
    data = await _call(
        client,
        "POST",
        f"/repos/{owner}/{name}/issues/{number}/labels",
        json={"labels": [label]},
    )
    return [item["name"] for item in data]


async def remove_label(client: GitHub, repository: str, number: int, label: str) -> bool:
    """Remove one label; False if it was not there (someone else removed it first)."""
    owner, name = _split(repository)
    try:
        await _call(
            client,
            "DELETE",
            f"/repos/{owner}/{name}/issues/{number}/labels/{quote(label, safe='')}",
        )
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return False
        raise
    return True


async def repo_labels(client: GitHub, repository: str) -> list[dict[str, Any]]:
    owner, name = _split(repository)
    labels: list[dict[str, Any]] = []
    async for page in _pages(client, f"/repos/{owner}/{name}/labels", {}):
        labels += page
    return labels


async def create_label(
    client: GitHub, repository: str, label: str, color: str, description: str
) -> bool:
    """Create a repository label; False if it already exists (never edited)."""
    owner, name = _split(repository)
    try:
        await _call(
            client,
            "POST",
            f"/repos/{owner}/{name}/labels",
            json={"name": label, "color": color, "description": description},
        )
    except RequestFailed as exc:
        if status_of(exc) == 422:
            return False
        raise
    return True


# --- issues


async def get_issue(client: GitHub, repository: str, number: int) -> dict[str, Any]:
    owner, name = _split(repository)
    return await _call(client, "GET", f"/repos/{owner}/{name}/issues/{number}")


async def update_issue(client: GitHub, repository: str, number: int, **fields: Any) -> None:
    owner, name = _split(repository)
    await _call(client, "PATCH", f"/repos/{owner}/{name}/issues/{number}", json=fields)


async def create_issue(
    client: GitHub, repository: str, title: str, body: str, labels: list[str]
) -> dict[str, Any]:
    owner, name = _split(repository)
    return await _call(
        client,
        "POST",
        f"/repos/{owner}/{name}/issues",
        json={"title": title, "body": body, "labels": labels},
    )


async def list_issues(
    client: GitHub, repository: str, *, state: str = "open", since: str | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of issues (pull requests included, as GitHub lists them), oldest update first."""
    owner, name = _split(repository)
    params: dict[str, Any] = {"state": state, "sort": "updated", "direction": "asc"}
    if since:
        params["since"] = since
    async for page in _pages(client, f"/repos/{owner}/{name}/issues", params):
        yield page


async def _pages(
    client: GitHub, path: str, params: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    page = 1
    while True:
        response = await client.arequest(
            "GET", path, params={**params, "per_page": 100, "page": page}, headers=api_headers()
        )
        items = response.json()
        if items:
            yield items
        if 'rel="next"' not in response.headers.get("link", "") or not items:
            return
        page += 1


# --- comments and reactions


async def comment(client: GitHub, repository: str, number: int, body: str) -> dict[str, Any]:
    owner, name = _split(repository)
    return await _call(
        client, "POST", f"/repos/{owner}/{name}/issues/{number}/comments", json={"body": body}
    )


async def edit_comment(client: GitHub, repository: str, comment_id: int, body: str) -> None:
    owner, name = _split(repository)
    await _call(
        client, "PATCH", f"/repos/{owner}/{name}/issues/comments/{comment_id}", json={"body": body}
    )


async def comments(client: GitHub, repository: str, number: int) -> list[dict[str, Any]]:
    owner, name = _split(repository)
    found: list[dict[str, Any]] = []
    async for page in _pages(client, f"/repos/{owner}/{name}/issues/{number}/comments", {}):
        found += page
    return found


def marker(name: str) -> str:
    """The hidden HTML comment that lets Dispatch find its own comment again."""
    return f"<!-- dispatch:{name} -->"


async def upsert_marked_comment(
    client: GitHub,
    repository: str,
    number: int,
    name: str,
    body: str,
    *,
    bot_login: str | None,
    comment_id: int | None = None,
) -> int:
    """Edit the comment carrying marker `name` (found by id when known, else by searching the
    issue's comments by the App), or post it. Returns its id."""
    text = f"{marker(name)}\n{body}"
    if comment_id is not None:
        try:
            await edit_comment(client, repository, comment_id, text)
            return comment_id
        except RequestFailed as exc:
            if status_of(exc) != 404:
                raise
    for existing in await comments(client, repository, number):
        author = (existing.get("user") or {}).get("login")
        if marker(name) in (existing.get("body") or "") and (
            bot_login is None or author == bot_login
        ):
            await edit_comment(client, repository, existing["id"], text)
            return int(existing["id"])
    created = await comment(client, repository, number, text)
    return int(created["id"])


@dataclass(frozen=True)
class ReactionTarget:
    """What a reaction goes on: an issue comment, the issue (its body), or a PR review comment.
    Review bodies cannot carry reactions; `kind="none"`."""

    kind: str
    number: int
    comment_id: int | None = None


async def react(client: GitHub, repository: str, target: ReactionTarget, content: str) -> None:
    owner, name = _split(repository)
    base = f"/repos/{owner}/{name}"
    if target.kind == "issue_comment":
        path = f"{base}/issues/comments/{target.comment_id}/reactions"
    elif target.kind == "issue":
        path = f"{base}/issues/{target.number}/reactions"
    elif target.kind == "review_comment":
        path = f"{base}/pulls/comments/{target.comment_id}/reactions"
    else:
        return
    await _call(client, "POST", path, json={"content": content})


# --- contents


@dataclass(frozen=True)
class FileContent:
    sha: str
    text: str


async def file_content(
    client: GitHub, repository: str, path: str, ref: str | None = None
) -> FileContent | None:
    owner, name = _split(repository)
    try:
        data = await _call(
            client,
            "GET",
            f"/repos/{owner}/{name}/contents/{path}",
            params={"ref": ref} if ref else None,
        )
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return None
        raise
    if not isinstance(data, dict) or data.get("type") != "file":
        return None
    text = base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")
    return FileContent(sha=data["sha"], text=text)
