"""The review feedback a `revise` run is asked with, fixed when the run is asked for
(`feedback`): the review that asked, the change requests still standing, the reviews of the
current head, and their inline comments with file and line, each tagged (R1, C1 …) so the agent
answers each one. Only what people with write permission wrote is given to the agent; anyone
else's comment is listed as "not shown". The diff summary comes with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from githubkit import GitHub

from app.github import rest
from app.github.permissions import Permission
from app.runtime import Runtime

CHANGES_REQUESTED = "CHANGES_REQUESTED"
# States that say where a reviewer stands; a later one replaces an earlier one.
_DECISIONS = frozenset({"APPROVED", CHANGES_REQUESTED, "DISMISSED"})
# Reviews of the current head a revision answers (an approval asks for nothing).
_ON_HEAD = frozenset({CHANGES_REQUESTED, "COMMENTED"})
# What one run carries: more would not fit the prompt anyway (it is cut there, with a note).
MAX_REVIEWS = 30
MAX_COMMENTS = 150
MAX_FILES = 300
MAX_TEXT_CHARS = 6_000


def state(review: dict[str, Any]) -> str:
    # The REST API says CHANGES_REQUESTED, webhooks say changes_requested.
    return str(review.get("state") or "").upper()


def login(item: dict[str, Any]) -> str:
    return str((item.get("user") or {}).get("login") or "ghost")


def _text(value: Any) -> str:
    text = str(value or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n… ({len(text) - MAX_TEXT_CHARS} more characters)"
    return text


def standing_change_requests(reviews: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each reviewer's latest decision, where it requests changes (an approval or a dismissal
    after it ends it)."""
    latest: dict[str, dict[str, Any]] = {}
    for review in reviews:
        if state(review) in _DECISIONS:
            latest[login(review).lower()] = review
    return [review for review in latest.values() if state(review) == CHANGES_REQUESTED]


def _selected(
    reviews: list[dict[str, Any]], head_sha: str, review_id: int | None
) -> list[dict[str, Any]]:
    """The reviews a run answers: the one that asked, the change requests still standing, and
    the reviews of the current head that request changes or comment."""
    wanted = {review["id"] for review in standing_change_requests(reviews)}
    wanted |= {
        review["id"]
        for review in reviews
        if review.get("commit_id") == head_sha and state(review) in _ON_HEAD
    }
    if review_id is not None:
        wanted.add(review_id)
    return [review for review in reviews if review["id"] in wanted][-MAX_REVIEWS:]


async def feedback(
    rt: Runtime,
    client: GitHub,
    repository: str,
    pull: dict[str, Any],
    *,
    review_id: int | None = None,
) -> dict[str, Any]:
    """The review feedback and diff summary a revise run is asked with, as stored on the run:
    reviews (`R1` …) and inline comments (`C1` …) with author, file and line; the text only of
    people with write permission (`shown`); and the files the pull request changes."""
    number, head_sha = int(pull["number"]), str(pull["head_sha"])
    reviews = _selected(await rest.pull_reviews(client, repository, number), head_sha, review_id)
    writers: dict[str, bool] = {}

    async def shown(login: str) -> bool:
        key = login.lower()
        if key not in writers:
            level = await rt.permissions.level(client, repository, login)
            writers[key] = level >= Permission.WRITE and not await rt.github.is_self(login)
        return writers[key]

    tags: dict[int, str] = {}
    stored_reviews = []
    for index, review in enumerate(reviews, start=1):
        tags[review["id"]] = f"R{index}"
        author = login(review)
        visible = await shown(author)
        stored_reviews.append(
            {
                "ref": f"R{index}",
                "id": review["id"],
                "author": author,
                "state": state(review),
                "commit_id": review.get("commit_id"),
                "submitted_at": review.get("submitted_at"),
                "url": review.get("html_url"),
                "shown": visible,
                "body": _text(review.get("body")) if visible else None,
            }
        )
    comments = [
        comment
        for comment in await rest.pull_review_comments(client, repository, number)
        if comment.get("pull_request_review_id") in tags
    ][:MAX_COMMENTS]
    stored_comments = []
    for index, comment in enumerate(comments, start=1):
        author = login(comment)
        visible = await shown(author)
        line = comment.get("line")
        stored_comments.append(
            {
                "ref": f"C{index}",
                "id": comment["id"],
                "review": tags[comment["pull_request_review_id"]],
                "author": author,
                "path": comment.get("path"),
                "line": line if line is not None else comment.get("original_line"),
                "start_line": comment.get("start_line"),
                # GitHub no longer places it on the current diff (the code moved under it).
                "outdated": line is None and comment.get("subject_type") != "file",
                "in_reply_to": comment.get("in_reply_to_id"),
                "url": comment.get("html_url"),
                "shown": visible,
                "body": _text(comment.get("body")) if visible else None,
            }
        )
    changed = await rest.pull_files(client, repository, number)
    files = [
        {
            "path": entry.get("filename"),
            "status": entry.get("status"),
            "additions": int(entry.get("additions") or 0),
            "deletions": int(entry.get("deletions") or 0),
            **(
                {"previous_path": entry["previous_filename"]}
                if entry.get("previous_filename")
                else {}
            ),
        }
        for entry in changed[:MAX_FILES]
    ]
    return {
        "review_id": review_id,
        "reviews": stored_reviews,
        "comments": stored_comments,
        "files": files,
        "files_more": max(0, len(changed) - MAX_FILES),
    }


def has_shown_feedback(follow_up: dict[str, Any]) -> bool:
    return any(
        item["shown"] and (item.get("body") or item.get("state") == CHANGES_REQUESTED)
        for item in (*follow_up["reviews"], *follow_up["comments"])
    )


def answerable(follow_up: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The items the agent was shown and must answer (reviews with text, and comments)."""
    if not follow_up:
        return []
    reviews = [r for r in follow_up.get("reviews") or [] if r.get("shown") and r.get("body")]
    comments = [c for c in follow_up.get("comments") or [] if c.get("shown")]
    return [*reviews, *comments]


def not_shown(follow_up: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not follow_up:
        return []
    return [
        item
        for item in (*(follow_up.get("reviews") or []), *(follow_up.get("comments") or []))
        if not item.get("shown")
    ]
