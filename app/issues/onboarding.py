"""Preparing a repository the App was just given: create the missing labels of the label set,
cache its issues, read its config. Runs as a job per repository, never inside a webhook."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app import jobs, queue
from app.audit import log as audit
from app.github import rest
from app.issues import backfill, repo_config
from app.issues.labels import LABEL_SET
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def ensure_labels(rt: Runtime, installation_id: int, repository: str) -> list[str]:
    """Create the labels of the label set the repository lacks; never touch existing ones."""
    client = rt.github.installation(installation_id)
    existing = {label["name"].lower() for label in await rest.repo_labels(client, repository)}
    created = []
    for spec in LABEL_SET:
        if spec.name.lower() in existing:
            continue
        if await rest.create_label(client, repository, spec.name, spec.color, spec.description):
            created.append(spec.name)
    if created:
        await audit.record(
            actor=await rt.github.bot_login(),
            action="labels.create",
            target=repository,
            repository=repository,
            installation_id=installation_id,
            after=created,
        )
    return created


# Without a caller to show it to (the install's backfill runs as a job), progress goes to the
# log every this many issues listed.
LOG_EVERY = 1000


def log_progress(step: backfill.Progress) -> None:
    """Progress as log lines: every LOG_EVERY issues listed, and at the end of each phase."""
    if step.done or (step.listed and step.listed % LOG_EVERY == 0):
        log.info(
            "backfill progress",
            extra={
                "repository": step.repository,
                "phase": step.phase,
                "listed": step.listed,
                "expected": step.expected,
                "cached": step.cached,
            },
        )


async def onboard(
    rt: Runtime,
    installation_id: int,
    repository: str,
    progress: Callable[[backfill.Progress], None] | None = None,
) -> int:
    await ensure_labels(rt, installation_id, repository)
    await repo_config.refresh(rt, installation_id, repository)
    count = await backfill.fill(rt, installation_id, repository, progress or log_progress)
    if rt.embeddings is not None:
        repository_id = (
            await rest.get_repository(rt.github.installation(installation_id), repository)
        )["id"]
        await queue.enqueue(
            jobs.EMBED_REPOSITORY,
            {"repository_id": repository_id},
            dedupe_key=f"embed-repo:{repository_id}",
        )
    log.info("repository onboarded", extra={"repository": repository, "issues": count})
    return count
