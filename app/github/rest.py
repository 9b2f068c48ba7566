"""Every REST call Dispatch makes, as one intent-named function each (`add_label`,
`dispatch_workflow`, `collaborator_permission` …). They know GitHub's paths and quirks
(URL-encoded label names, 404 on removing an absent label, 422 when a label exists, 204 or 200 on
a workflow dispatch) and map status codes once, so areas read as intent and never build a path.

Every path segment that comes from data (owner, name, label, workflow file, ref, file path) is
quoted, so a name cannot walk the request to another endpoint. Label edits are always targeted
(add one, remove one), never a whole-set replace, so concurrent human edits survive.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app.db import engine
from app.github.repo import Repo

API_VERSION = "2026-03-10"

RepoLike = Repo | str


def api_headers() -> dict[str, str]:
    return {"X-GitHub-Api-Version": API_VERSION}


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


async def _call(client: GitHub, method: str, path: str, **kwargs: Any) -> Any:
    response = await client.arequest(method, path, headers=api_headers(), **kwargs)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def status_of(exc: RequestFailed) -> int:
    return exc.response.status_code


def _error_codes(exc: RequestFailed) -> set[str]:
    """The `errors[].code` values of a 422 (`already_exists`, `invalid`, `missing_field` …)."""
    try:
        body = exc.response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(e.get("code")) for e in errors or [] if isinstance(e, dict)}


# --- the App


async def get_app(client: GitHub) -> dict[str, Any]:
    """The authenticated App (`GET /app`): id, slug, owner, permissions, events."""
    return await _call(client, "GET", "/app")


async def app_webhook_config(client: GitHub) -> dict[str, Any]:
    """The App's webhook settings (`GET /app/hook/config`): `url`, `content_type`, `secret`
    (masked when set), `insecure_ssl`."""
    return await _call(client, "GET", "/app/hook/config")


async def app_installations(client: GitHub) -> list[dict[str, Any]]:
    """Every installation of the App (as the App, JWT), with its account and permissions."""
    found: list[dict[str, Any]] = []
    async for page in _pages(client, "/app/installations", {}):
        found += page
    return found


async def installation_repositories(client: GitHub) -> list[dict[str, Any]]:
    """The repositories an installation can reach (as the installation: this is also how to
    learn whether an installation token can be had)."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        response = await client.arequest(
            "GET",
            "/installation/repositories",
            params={"per_page": 100, "page": page},
            headers=api_headers(),
        )
        repositories = response.json().get("repositories") or []
        found += repositories
        if 'rel="next"' not in response.headers.get("link", "") or not repositories:
            return found
        page += 1


async def convert_manifest(client: GitHub, code: str) -> dict[str, Any]:
    """Trade the manifest flow's one-time code for the new App's credentials."""
    return await _call(client, "POST", f"/app-manifests/{_seg(code)}/conversions")


@dataclass(frozen=True)
class DeliveryPage:
    attempts: list[dict[str, Any]]
    next_cursor: str | None


async def webhook_deliveries(client: GitHub, cursor: str | None = None) -> DeliveryPage:
    """One page (newest first) of the App's webhook delivery attempts."""
    params: dict[str, Any] = {"per_page": 100}
    if cursor:
        params["cursor"] = cursor
    response = await client.arequest(
        "GET", "/app/hook/deliveries", params=params, headers=api_headers()
    )
    return DeliveryPage(response.json(), _link_cursor(response.headers.get("link", "")))


def _link_cursor(link: str) -> str | None:
    for part in link.split(","):
        if 'rel="next"' in part:
            url = part.split(";")[0].strip().strip("<>")
            cursor = parse_qs(urlsplit(url).query).get("cursor")
            return cursor[0] if cursor else None
    return None


async def redeliver(client: GitHub, delivery_id: int) -> None:
    await _call(client, "POST", f"/app/hook/deliveries/{_seg(delivery_id)}/attempts")


# --- repositories and permissions


async def get_repository(client: GitHub, repository: RepoLike) -> dict[str, Any]:
    return await _call(client, "GET", Repo.of(repository).api_path)


async def collaborator_permission(
    client: GitHub, repository: RepoLike, login: str
) -> dict[str, Any] | None:
    """`{"permission", "role_name", …}` of a user on a repository; None if GitHub does not know
    the user there (404)."""
    path = f"{Repo.of(repository).api_path}/collaborators/{_seg(login)}/permission"
    try:
        return await _call(client, "GET", path)
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return None
        raise


# --- labels


async def issue_labels(client: GitHub, repository: RepoLike, number: int) -> list[str]:
    data = await _call(
        client,
        "GET",
        f"{Repo.of(repository).api_path}/issues/{number}/labels",
        params={"per_page": 100},
    )
    return [label["name"] for label in data]


async def add_label(client: GitHub, repository: RepoLike, number: int, label: str) -> list[str]:
    data = await _call(
        client,
        "POST",
        f"{Repo.of(repository).api_path}/issues/{number}/labels",
        json={"labels": [label]},
    )
    return [item["name"] for item in data]


async def remove_label(client: GitHub, repository: RepoLike, number: int, label: str) -> bool:
    """Remove one label; False if it was not there (someone else removed it first)."""
    try:
        await _call(
            client,
            "DELETE",
            f"{Repo.of(repository).api_path}/issues/{number}/labels/{_seg(label)}",
        )
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return False
        raise
    return True


async def repo_labels(client: GitHub, repository: RepoLike) -> list[dict[str, Any]]:
    labels: list[dict[str, Any]] = []
    async for page in _pages(client, f"{Repo.of(repository).api_path}/labels", {}):
        labels += page
    return labels


async def label_exists(client: GitHub, repository: RepoLike, label: str) -> bool:
    """Whether the repository has the label (a read: it costs nothing of the content-creation
    limit that creating it, even when GitHub answers "already exists", does)."""
    try:
        await _call(client, "GET", f"{Repo.of(repository).api_path}/labels/{_seg(label)}")
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return False
        raise
    return True


async def create_label(
    client: GitHub, repository: RepoLike, label: str, color: str, description: str
) -> bool:
    """Create a repository label; False if it already exists (it is never edited). Any other
    refusal (an invalid colour, a name too long) is raised."""
    try:
        await _call(
            client,
            "POST",
            f"{Repo.of(repository).api_path}/labels",
            json={"name": label, "color": color, "description": description},
        )
    except RequestFailed as exc:
        if status_of(exc) == 422 and "already_exists" in _error_codes(exc):
            return False
        raise
    return True


# --- issues


async def get_issue(client: GitHub, repository: RepoLike, number: int) -> dict[str, Any]:
    return await _call(client, "GET", f"{Repo.of(repository).api_path}/issues/{number}")


async def update_issue(client: GitHub, repository: RepoLike, number: int, **fields: Any) -> None:
    await _call(client, "PATCH", f"{Repo.of(repository).api_path}/issues/{number}", json=fields)


async def create_issue(
    client: GitHub, repository: RepoLike, title: str, body: str, labels: list[str]
) -> dict[str, Any]:
    return await _call(
        client,
        "POST",
        f"{Repo.of(repository).api_path}/issues",
        json={"title": title, "body": body, "labels": labels},
    )


async def list_issues(
    client: GitHub,
    repository: RepoLike,
    *,
    state: str = "open",
    since: str | None = None,
    creator: str | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of issues (pull requests included, as GitHub lists them), oldest update first;
    only those opened by `creator` when given."""
    params: dict[str, Any] = {"state": state, "sort": "updated", "direction": "asc"}
    if since:
        params["since"] = since
    if creator:
        params["creator"] = creator
    async for page in _pages(client, f"{Repo.of(repository).api_path}/issues", params):
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


async def get_pull(client: GitHub, repository: RepoLike, number: int) -> dict[str, Any] | None:
    try:
        return await _call(client, "GET", f"{Repo.of(repository).api_path}/pulls/{number}")
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return None
        raise


async def open_pulls(
    client: GitHub, repository: RepoLike, *, max_pages: int = 3
) -> list[dict[str, Any]]:
    """Open pull requests, most recently updated first, at most `max_pages` pages of 100 (the
    newest are the ones a person means)."""
    found: list[dict[str, Any]] = []
    params = {"state": "open", "sort": "updated", "direction": "desc"}
    pages = 0
    async for page in _pages(client, f"{Repo.of(repository).api_path}/pulls", params):
        found += page
        pages += 1
        if pages >= max_pages:
            break
    return found


async def pull_reviews(
    client: GitHub, repository: RepoLike, number: int, *, max_pages: int = 5
) -> list[dict[str, Any]]:
    """A pull request's reviews, oldest first (`state`: APPROVED, CHANGES_REQUESTED, COMMENTED,
    DISMISSED, PENDING; `commit_id`: the head they reviewed), at most `max_pages` pages of 100."""
    return await _first_pages(
        client, f"{Repo.of(repository).api_path}/pulls/{number}/reviews", {}, max_pages
    )


async def pull_review_comments(
    client: GitHub, repository: RepoLike, number: int, *, max_pages: int = 5
) -> list[dict[str, Any]]:
    """A pull request's inline review comments, oldest first, each with its review
    (`pull_request_review_id`), `path` and `line`; at most `max_pages` pages of 100."""
    params = {"sort": "created", "direction": "asc"}
    return await _first_pages(
        client, f"{Repo.of(repository).api_path}/pulls/{number}/comments", params, max_pages
    )


async def pull_files(
    client: GitHub, repository: RepoLike, number: int, *, max_pages: int = 3
) -> list[dict[str, Any]]:
    """The files a pull request changes (`filename`, `status`, `additions`, `deletions`), at
    most `max_pages` pages of 100 (GitHub itself lists at most 3,000)."""
    return await _first_pages(
        client, f"{Repo.of(repository).api_path}/pulls/{number}/files", {}, max_pages
    )


async def _first_pages(
    client: GitHub, path: str, params: dict[str, Any], max_pages: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pages = 0
    async for page in _pages(client, path, params):
        found += page
        pages += 1
        if pages >= max_pages:
            break
    return found


# --- check runs


async def create_check_run(
    client: GitHub, repository: RepoLike, head_sha: str, name: str, **fields: Any
) -> dict[str, Any] | None:
    """A check run on a commit (`status`, `conclusion`, `output`, `external_id`, `details_url`
    …). None when the installation has not granted `checks: write` (403): an App that asked for
    the permission later keeps working without it until an owner accepts it; None too when
    GitHub no longer knows the commit (422: a force-push and a garbage collection)."""
    try:
        return await _call(
            client,
            "POST",
            f"{Repo.of(repository).api_path}/check-runs",
            json={"name": name, "head_sha": head_sha, **fields},
        )
    except RequestFailed as exc:
        if status_of(exc) in (403, 422):
            return None
        raise


async def update_check_run(
    client: GitHub, repository: RepoLike, check_run_id: int, **fields: Any
) -> dict[str, Any] | None:
    """Change a check run; None when GitHub no longer knows it (404) or the installation does
    not grant `checks: write` (403)."""
    path = f"{Repo.of(repository).api_path}/check-runs/{_seg(check_run_id)}"
    try:
        return await _call(client, "PATCH", path, json=fields)
    except RequestFailed as exc:
        if status_of(exc) in (403, 404):
            return None
        raise


async def check_runs_for_ref(
    client: GitHub, repository: RepoLike, ref: str, name: str
) -> list[dict[str, Any]]:
    """The check runs called `name` on a commit (newest first); none when the installation
    cannot read checks (403) or GitHub does not know the commit (404, 422)."""
    try:
        data = await _call(
            client,
            "GET",
            f"{Repo.of(repository).api_path}/commits/{_seg(ref)}/check-runs",
            params={"check_name": name, "filter": "all", "per_page": 100},
        )
    except RequestFailed as exc:
        if status_of(exc) in (403, 404, 422):
            return []
        raise
    return list((data or {}).get("check_runs", []))


# --- comments and reactions


async def comment(client: GitHub, repository: RepoLike, number: int, body: str) -> dict[str, Any]:
    return await _call(
        client,
        "POST",
        f"{Repo.of(repository).api_path}/issues/{number}/comments",
        json={"body": body},
    )


async def edit_comment(client: GitHub, repository: RepoLike, comment_id: int, body: str) -> None:
    await _call(
        client,
        "PATCH",
        f"{Repo.of(repository).api_path}/issues/comments/{comment_id}",
        json={"body": body},
    )


async def comments(client: GitHub, repository: RepoLike, number: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for page in _pages(
        client, f"{Repo.of(repository).api_path}/issues/{number}/comments", {}
    ):
        found += page
    return found


def marker(name: str) -> str:
    """The hidden HTML comment that lets Dispatch find its own comment again."""
    return f"<!-- dispatch:{name} -->"


async def upsert_marked_comment(
    client: GitHub,
    repository: RepoLike,
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
    # Two jobs looking for the same marker at once would both find nothing and both post:
    # one at a time, in every process.
    key = f"marked-comment:{Repo.of(repository).key}#{number}:{name}"
    async with engine.connection() as connection:
        await connection.execute("SELECT pg_advisory_lock(hashtext($1))", key)
        try:
            for existing in await comments(client, repository, number):
                author = (existing.get("user") or {}).get("login")
                if marker(name) in (existing.get("body") or "") and (
                    bot_login is None or author == bot_login
                ):
                    await edit_comment(client, repository, existing["id"], text)
                    return int(existing["id"])
            created = await comment(client, repository, number, text)
            return int(created["id"])
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", key)


@dataclass(frozen=True)
class ReactionTarget:
    """What a reaction goes on: an issue comment, the issue (its body), or a PR review comment.
    Review bodies cannot carry reactions; `kind="none"`."""

    kind: str
    number: int
    comment_id: int | None = None


async def react(client: GitHub, repository: RepoLike, target: ReactionTarget, content: str) -> None:
    base = Repo.of(repository).api_path
    if target.kind == "issue_comment":
        path = f"{base}/issues/comments/{target.comment_id}/reactions"
    elif target.kind == "issue":
        path = f"{base}/issues/{target.number}/reactions"
    elif target.kind == "review_comment":
        path = f"{base}/pulls/comments/{target.comment_id}/reactions"
    else:
        return
    await _call(client, "POST", path, json={"content": content})


# --- contents and commits


@dataclass(frozen=True)
class FileContent:
    sha: str
    text: str


async def file_content(
    client: GitHub, repository: RepoLike, path: str, ref: str | None = None
) -> FileContent | None:
    quoted = "/".join(_seg(part) for part in path.split("/"))
    try:
        data = await _call(
            client,
            "GET",
            f"{Repo.of(repository).api_path}/contents/{quoted}",
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


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # blob (a file), tree (a directory), commit (a submodule)
    size: int


@dataclass(frozen=True)
class FileTree:
    entries: list[TreeEntry]
    # GitHub cuts very large trees (100,000 entries or 7 MB) and says so.
    truncated: bool


async def file_tree(client: GitHub, repository: RepoLike, ref: str) -> FileTree | None:
    """Every path at `ref` (a branch, tag or sha), in one call; None if GitHub knows no such
    ref (404, or 409 for an empty repository)."""
    # One path segment: a branch named `fix/x` goes as `fix%2Fx`, which GitHub decodes.
    path = f"{Repo.of(repository).api_path}/git/trees/{_seg(ref)}"
    try:
        data = await _call(client, "GET", path, params={"recursive": "1"})
    except RequestFailed as exc:
        if status_of(exc) in (404, 409):
            return None
        raise
    entries = [
        TreeEntry(
            str(item.get("path", "")), str(item.get("type", "blob")), int(item.get("size") or 0)
        )
        for item in (data or {}).get("tree", [])
        if isinstance(item, dict)
    ]
    return FileTree(entries, bool((data or {}).get("truncated")))


async def compare_commits(client: GitHub, repository: RepoLike, base: str, head: str) -> str | None:
    """How `head` relates to `base`: `ahead`, `behind`, `identical` or `diverged`; None when
    GitHub knows one of them not (404)."""
    path = f"{Repo.of(repository).api_path}/compare/{_seg(base)}...{_seg(head)}"
    try:
        data = await _call(client, "GET", path)
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return None
        raise
    return str(data.get("status")) if isinstance(data, dict) else None


# --- actions


class WorkflowNotDispatchable(Exception):
    """GitHub refused the dispatch: the workflow file, its inputs or the ref are wrong (404/422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DispatchedRun:
    """What GitHub says about the run a dispatch started: API 2026-03-10 always answers 200 with
    it; older servers (GitHub Enterprise) answer 204, and the run is found by its run-name."""

    workflow_run_id: int | None = None
    html_url: str | None = None


async def dispatch_workflow(
    client: GitHub, repository: RepoLike, workflow: str, ref: str, inputs: dict[str, str]
) -> DispatchedRun:
    path = f"{Repo.of(repository).api_path}/actions/workflows/{_seg(workflow)}/dispatches"
    try:
        response = await client.arequest(
            "POST",
            path,
            json={"ref": ref, "inputs": inputs},
            headers=api_headers(),
        )
    except RequestFailed as exc:
        if status_of(exc) in (404, 422):
            try:
                message = str(exc.response.json().get("message") or "")
            except ValueError:
                message = ""
            raise WorkflowNotDispatchable(status_of(exc), message) from None
        raise
    if response.status_code != 200 or not response.content:
        return DispatchedRun()
    details = response.json()
    run_id = details.get("workflow_run_id")
    return DispatchedRun(int(run_id) if run_id else None, details.get("html_url"))


async def workflow_runs(
    client: GitHub, repository: RepoLike, *, event: str | None = None, per_page: int = 50
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"per_page": per_page}
    if event:
        params["event"] = event
    data = await _call(client, "GET", f"{Repo.of(repository).api_path}/actions/runs", params=params)
    return list((data or {}).get("workflow_runs", []))


async def get_workflow_run(
    client: GitHub, repository: RepoLike, workflow_run_id: int
) -> dict[str, Any] | None:
    path = f"{Repo.of(repository).api_path}/actions/runs/{_seg(workflow_run_id)}"
    try:
        return await _call(client, "GET", path)
    except RequestFailed as exc:
        if status_of(exc) == 404:
            return None
        raise


async def cancel_workflow_run(client: GitHub, repository: RepoLike, workflow_run_id: int) -> bool:
    """False when the workflow run had already finished (409)."""
    path = f"{Repo.of(repository).api_path}/actions/runs/{_seg(workflow_run_id)}/cancel"
    try:
        await _call(client, "POST", path)
    except RequestFailed as exc:
        if status_of(exc) == 409:
            return False
        raise
    return True
