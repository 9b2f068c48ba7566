"""Keeping issue embeddings current in `issue_embedding` (this room's table): a job per opened or
edited issue (never in the webhook's request), listing flags kept in step with the issue's state
(closed, reopened, deleted, transferred), a backfill that walks what changed in the issue cache
since its last pass, the neighbourhood densities (app/search/density.py), and the duplicate check
on new issues. A label change touches only the cache, never a row with an indexed vector."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from app import jobs, queue
from app.audit import log as audit
from app.db import bookmarks, engine
from app.events import Event
from app.github import markdown, rest
from app.issues import cache
from app.issues.cache import IndexableIssue
from app.issues.labels import Signal
from app.runtime import Runtime
from app.search import density, duplicates
from app.search.embeddings import issue_text

log = logging.getLogger(__name__)

BACKFILL_BATCH = 64
BACKFILL_BOOKMARK = "search-backfill"
# Cache writes commit after they stamp `cached_at`: read a little behind the last pass.
BACKFILL_OVERLAP = timedelta(minutes=10)


async def on_issue_changed(event: Event, rt: Runtime) -> None:
    if rt.embeddings is None or event.installation_id is None:
        return
    issue = event.payload["issue"]
    await queue.enqueue(
        jobs.EMBED_ISSUE,
        {
            "repository_id": event.payload["repository"]["id"],
            "number": issue["number"],
            "check_duplicates": event.action == "opened",
        },
        dedupe_key=f"embed:{event.payload['repository']['id']}:{issue['number']}:{event.action}",
    )


async def on_state_changed(event: Event) -> None:
    """Closed issues stop being offered as open duplicates; deleted and transferred ones stop
    being offered at all."""
    issue = event.payload["issue"]
    gone = event.action in ("deleted", "transferred")
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE issue_embedding SET open = $3, deleted = $4 "
            "WHERE repository_id = $1 AND number = $2 AND (open <> $3 OR deleted <> $4)",
            event.payload["repository"]["id"],
            issue["number"],
            issue.get("state") == "open" and not gone,
            gone,
        )


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_UPSERT = """
INSERT INTO issue_embedding (issue_id, repository_id, number, open, deleted, embedding,
    embedded_hash, model, density, embedded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, now())
ON CONFLICT (issue_id) DO UPDATE SET
    repository_id = EXCLUDED.repository_id, number = EXCLUDED.number, open = EXCLUDED.open,
    deleted = EXCLUDED.deleted, embedding = EXCLUDED.embedding,
    embedded_hash = EXCLUDED.embedded_hash, model = EXCLUDED.model, density = NULL,
    embedded_at = now()
"""


async def _stored(issue_ids: list[int]) -> dict[int, tuple[str, str, bool, bool]]:
    """issue id → (text hash, model, open, deleted) of what is stored."""
    async with engine.connection() as connection:
        rows = await connection.fetch(
            "SELECT issue_id, embedded_hash, model, open, deleted FROM issue_embedding "
            "WHERE issue_id = ANY($1::bigint[])",
            issue_ids,
        )
    return {
        row["issue_id"]: (row["embedded_hash"], row["model"], row["open"], row["deleted"])
        for row in rows
    }


async def _index(rt: Runtime, issues: list[IndexableIssue]) -> list[int]:
    """Embed the issues whose text (or the model) changed and bring every listing flag up to
    date. Returns the ids that were (re)embedded."""
    provider = rt.embeddings
    if provider is None or not issues:
        return []
    stored = await _stored([issue.id for issue in issues])
    texts = {issue.id: issue_text(issue.title, issue.body) for issue in issues}
    stale = [
        issue
        for issue in issues
        if issue.id not in stored or stored[issue.id][:2] != (_hash(texts[issue.id]), provider.name)
    ]
    flags = [
        (issue.id, issue.open, issue.deleted)
        for issue in issues
        if issue.id in stored
        and issue not in stale
        and stored[issue.id][2:] != (issue.open, issue.deleted)
    ]
    if stale:
        vectors = await provider.embed([texts[issue.id] for issue in stale])
        async with engine.connection() as connection:
            await connection.executemany(
                _UPSERT,
                [
                    (
                        issue.id,
                        issue.repository_id,
                        issue.number,
                        issue.open,
                        issue.deleted,
                        vector,
                        _hash(texts[issue.id]),
                        provider.name,
                    )
                    for issue, vector in zip(stale, vectors, strict=True)
                ],
            )
    if flags:
        async with engine.connection() as connection:
            await connection.executemany(
                "UPDATE issue_embedding SET open = $2, deleted = $3 WHERE issue_id = $1", flags
            )
    return [issue.id for issue in stale]


async def embed_issue(rt: Runtime, payload: dict[str, Any]) -> None:
    if rt.embeddings is None:
        return
    issue = await cache.indexable(payload["repository_id"], payload["number"])
    if issue is None:
        return
    if await _index(rt, [issue]):
        await density.measure_with_neighbours(issue.id)
    if payload.get("check_duplicates"):
        await _reply_if_duplicate(rt, issue)


async def _reply_if_duplicate(rt: Runtime, issue: IndexableIssue) -> None:
    found = await duplicates.likely_duplicates(
        rt, issue.installation_id, issue.repository, issue.repository_id, issue.number
    )
    if not found:
        return
    client = rt.github.installation(issue.installation_id)
    # Titles are other people's text: shown escaped, so they cannot mention, link or format.
    listed = "\n".join(
        f"- #{n.number} {markdown.inline_text(n.title, 120)} (similarity {n.score:.2f})"
        for n in found
    )
    body = (
        f"👋 This looks like a possible duplicate of #{found[0].number} "
        f"({found[0].score:.2f}):\n\n{listed}\n\nIf it is, close this one in favour of the "
        "original; if not, remove the `dispatch/possible-duplicate` label."
    )
    await rest.upsert_marked_comment(
        client,
        issue.repository,
        issue.number,
        "possible-duplicate",
        body,
        bot_login=await rt.github.bot_login(),
    )
    await rest.add_label(client, issue.repository, issue.number, Signal.POSSIBLE_DUPLICATE)
    await audit.record(
        actor=await rt.github.bot_login(),
        action="issue.possible_duplicate",
        repository=issue.repository,
        issue_number=issue.number,
        installation_id=issue.installation_id,
        after={"candidates": [{"number": n.number, "score": round(n.score, 3)} for n in found]},
    )


async def backfill(rt: Runtime, repository_id: int | None = None) -> int:
    """Embed what changed in the issue cache since the last pass (every issue of a repository
    when one is given, e.g. after onboarding), then measure the densities still missing.
    Returns how many issues were (re)embedded."""
    if rt.embeddings is None:
        return 0
    started = rt.clock.now()
    since = None
    if repository_id is None:
        last = await bookmarks.last_run(BACKFILL_BOOKMARK)
        since = last - BACKFILL_OVERLAP if last else None
    embedded = 0
    after_id = 0
    while True:
        batch = await cache.changed_since(
            since, after_id=after_id, repository_id=repository_id, limit=BACKFILL_BATCH
        )
        if not batch:
            break
        embedded += len(await _index(rt, batch))
        after_id = batch[-1].id
    if embedded:
        await density.measure_unmeasured(repository_id)
    if repository_id is None:
        await bookmarks.save_run(BACKFILL_BOOKMARK, started)
    return embedded


async def ensure_embedded(rt: Runtime, repository_id: int, number: int) -> bool:
    """Embed one issue now if it has no current embedding (for `/dispatch similar`)."""
    await embed_issue(rt, {"repository_id": repository_id, "number": number})
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM issue_embedding WHERE repository_id = $1 AND number = $2",
                repository_id,
                number,
            )
        )
