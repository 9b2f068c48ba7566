"""Keeping issue embeddings current: a job per opened or edited issue (never in the webhook's
request), a backfill job for cached issues without one, their neighbourhood densities
(app/search/density.py), and the duplicate check on new issues."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from app import jobs, queue
from app.audit import log as audit
from app.db import engine
from app.events import Event
from app.github import rest
from app.issues.labels import Signal
from app.runtime import Runtime
from app.search import density, duplicates
from app.search.embeddings import issue_text

log = logging.getLogger(__name__)

BACKFILL_BATCH = 64


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


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def embed_issue(rt: Runtime, payload: dict[str, Any]) -> None:
    provider = rt.embeddings
    if provider is None:
        return
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT id, installation_id, repository, repository_id, number, title, body, "
            "embedded_hash FROM issue WHERE repository_id = $1 AND number = $2",
            payload["repository_id"],
            payload["number"],
        )
    if row is None:
        return
    text = issue_text(row["title"], row["body"])
    if _hash(text) != row["embedded_hash"]:
        [vector] = await provider.embed([text])
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE issue SET embedding = $2, embedded_hash = $3 WHERE id = $1",
                row["id"],
                vector,
                _hash(text),
            )
        await density.measure_with_neighbours(row["id"])
    if payload.get("check_duplicates"):
        await _reply_if_duplicate(rt, dict(row))


async def _reply_if_duplicate(rt: Runtime, issue: dict[str, Any]) -> None:
    found = await duplicates.likely_duplicates(
        rt, issue["installation_id"], issue["repository"], issue["repository_id"], issue["number"]
    )
    if not found:
        return
    client = rt.github.installation(issue["installation_id"])
    listed = "\n".join(f"- #{n.number} {n.title} (similarity {n.score:.2f})" for n in found)
    body = (
        f"👋 This looks like a possible duplicate of #{found[0].number} "
        f"({found[0].score:.2f}):\n\n{listed}\n\nIf it is, close this one in favour of the "
        "original; if not, remove the `dispatch/possible-duplicate` label."
    )
    await rest.upsert_marked_comment(
        client,
        issue["repository"],
        issue["number"],
        "possible-duplicate",
        body,
        bot_login=await rt.github.bot_login(),
    )
    await rest.add_label(client, issue["repository"], issue["number"], Signal.POSSIBLE_DUPLICATE)
    await audit.record(
        actor=await rt.github.bot_login(),
        action="issue.possible_duplicate",
        target=f"{issue['repository']}#{issue['number']}",
        repository=issue["repository"],
        issue_number=issue["number"],
        installation_id=issue["installation_id"],
        after={"candidates": [{"number": n.number, "score": round(n.score, 3)} for n in found]},
    )


async def backfill(rt: Runtime, repository_id: int | None = None) -> int:
    """Embed cached issues that have no embedding yet, everywhere or in one repository; then
    measure the density of those that have none."""
    provider = rt.embeddings
    if provider is None:
        return 0
    total = 0
    while True:
        async with engine.connection() as connection:
            rows = await connection.fetch(
                "SELECT id, title, body FROM issue WHERE embedding IS NULL AND NOT deleted "
                "AND ($2::bigint IS NULL OR repository_id = $2) ORDER BY id LIMIT $1",
                BACKFILL_BATCH,
                repository_id,
            )
        if not rows:
            if total:
                await density.measure_unmeasured(repository_id)
            return total
        texts = [issue_text(row["title"], row["body"]) for row in rows]
        vectors = await provider.embed(texts)
        async with engine.connection() as connection:
            await connection.executemany(
                "UPDATE issue SET embedding = $2, embedded_hash = $3 WHERE id = $1",
                [
                    (row["id"], vector, _hash(text))
                    for row, vector, text in zip(rows, vectors, texts, strict=True)
                ],
            )
        total += len(rows)


async def ensure_embedded(rt: Runtime, repository_id: int, number: int) -> bool:
    """Embed one issue now if it has no embedding (for `/dispatch similar`)."""
    await embed_issue(rt, {"repository_id": repository_id, "number": number})
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT embedding IS NOT NULL FROM issue WHERE repository_id = $1 AND number = $2",
                repository_id,
                number,
            )
        )
