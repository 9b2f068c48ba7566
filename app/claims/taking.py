"""Taking the next claim: a ready issue, or a pull request whose change requests wait.

**Issue.** In one transaction: the most urgent, oldest open `status/ready` issue with no `agent/*`
label in the token's repositories is locked in the issue cache (`FOR UPDATE SKIP LOCKED`, so
fifty concurrent claimers each get a different issue and none waits), its live labels are re-read
at GitHub (the cache can be behind: a drifted issue is re-cached and the next one tried), the
claim row is written (a unique index allows one active claim per issue, across replicas), and the
issue gets `agent/<name>` and `status/in-progress` with targeted edits. The transaction holds the
row lock while GitHub answers, on purpose: nobody else may take that issue meanwhile.

**Pull-request follow-ups.** A harness that asks for `kinds: ["pr_follow_up", ...]` may also
be given an open pull request whose change requests wait (no run, no claim on it; see
`app.claims.follow_ups`). Its claim (`kind = 'pr_follow_up'`) labels the pull request
`agent/<name>` and nothing else. The answer carries the pull request (head ref and sha to build
on) and the review feedback, writers' words only.

Every claim is audited with the token's name (`token:<name>`) as the actor.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from litestar.exceptions import PermissionDeniedException

from app.audit import log as audit
from app.claims.follow_ups import ISSUE, KINDS, PR_FOLLOW_UP, FollowUpSource, PullFollowUp
from app.claims.records import Claim, Claimed
from app.db import engine
from app.github import rest
from app.github.repo import InvalidRepo, Repo
from app.installations import service as installations
from app.issues import cache, state
from app.issues.cache import CachedIssue
from app.issues.labels import (
    AGENT_NAME,
    AGENT_NAME_RULE,
    AGENT_PREFIX,
    DYNAMIC_COLORS,
    Kind,
    Status,
)
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import require_scope
from app.tokens.service import ApiToken
from app.web.errors import github_trouble, invalid

log = logging.getLogger(__name__)


# Issues one claim request walks past because GitHub's labels differ from the cache's, before it
# answers that nothing is ready (each is re-cached, so the next request does not meet them).
MAX_DRIFTED = 50


async def claim_next(
    rt: Runtime,
    token: ApiToken,
    agent: str,
    *,
    repositories: list[str] | None = None,
    types: list[str] | None = None,
    kinds: list[str] | None = None,
    follow_ups: FollowUpSource | None = None,
) -> Claimed | None:
    """Claim the next item for `agent`, trying `kinds` in the order given (`issue` only by
    default): a ready issue, or a pull request whose change requests wait (`pr_follow_up`,
    found through `follow_ups`). None when nothing is waiting."""
    require_scope(token, tokens.AGENT)
    if not AGENT_NAME.match(agent or ""):
        raise invalid("agent", f"`agent` must be a name made of {AGENT_NAME_RULE}")
    scope = _repositories(token, repositories)
    issue_types = _types(types)
    wanted = _kinds(kinds)
    lease = timedelta(minutes=rt.settings.claim_lease_minutes)
    with github_trouble("claiming (nothing was claimed)"):
        for kind in wanted:
            if kind == PR_FOLLOW_UP:
                if follow_ups is None:
                    raise RuntimeError("claiming a pr_follow_up needs a FollowUpSource")
                claimed = await _claim_follow_up(rt, token, agent, scope, follow_ups, lease)
            else:
                claimed = await _claim_issue(rt, token, agent, scope, issue_types, lease)
            if claimed is not None:
                return claimed
    return None


async def _claim_issue(
    rt: Runtime,
    token: ApiToken,
    agent: str,
    scope: list[str] | None,
    types: list[str] | None,
    lease: timedelta,
) -> Claimed | None:
    skip: list[str] = []
    for _ in range(MAX_DRIFTED):
        result = await _claim_one(rt, token, agent, scope, types, skip, lease)
        if result is None or isinstance(result, Claimed):
            return result
        skip.append(result)
    return None


def _kinds(kinds: list[str] | None) -> list[str]:
    if kinds is None:
        return [ISSUE]
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise invalid("kinds", f"`kinds` must be a non-empty list of: {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


async def waiting_follow_ups(
    rt: Runtime, token: ApiToken, scope: list[str] | None, source: FollowUpSource
) -> list[PullFollowUp]:
    """The `pr_follow_up` items of the claim queue this token may take, oldest request first:
    pull requests of its repositories (`scope`, else all it is allowed on) whose change requests
    wait, with no run and no claim on them."""
    wanted = {name.lower() for name in scope} if scope is not None else None
    by_installation: dict[int, list[str]] = {}
    for repository in await installations.active_repositories():
        name = repository["full_name"]
        if (wanted is None or name.lower() in wanted) and token.allows(name):
            by_installation.setdefault(repository["installation_id"], []).append(name)
    found: list[PullFollowUp] = []
    for installation_id, names in by_installation.items():
        found += await source.pending(rt, installation_id, names)
    found.sort(key=lambda item: (item.requested_at or "", item.repository, item.pull_number))
    return found


async def _claim_follow_up(
    rt: Runtime,
    token: ApiToken,
    agent: str,
    scope: list[str] | None,
    source: FollowUpSource,
    lease: timedelta,
) -> Claimed | None:
    """Claim the oldest waiting follow-up: its pull request still open on the head it was found
    at (checked at GitHub), one active claim per pull request (the unique index decides a race),
    `agent/<name>` on the pull request."""
    for item in await waiting_follow_ups(rt, token, scope, source):
        client = rt.github.installation(item.installation_id)
        live = await rest.get_pull(client, item.repository, item.pull_number)
        if (
            live is None
            or live.get("state") != "open"
            or ((live.get("head") or {}).get("sha")) != item.head_sha
        ):
            continue  # moved since it was listed: the next one
        claim = await _take_follow_up(rt, client, token, agent, item, lease)
        if claim is None:
            continue  # another claimer took it first
        feedback = await source.feedback(rt, item)
        return Claimed(claim, None, item.url, follow_up=item, feedback=feedback)
    return None


async def _take_follow_up(
    rt: Runtime, client: Any, token: ApiToken, agent: str, item: PullFollowUp, lease: timedelta
) -> Claim | None:
    async with engine.transaction():
        now = rt.clock.now()
        claim = await _insert_follow_up(item, agent, token, now, now + lease)
        if claim is None:
            return None
        try:
            await _label(client, item.repository, item.pull_number, claim.label)
        except Exception:
            with contextlib.suppress(Exception):
                await rest.remove_label(client, item.repository, item.pull_number, claim.label)
            raise
        await audit.record(
            actor=token.actor,
            action="claim.create",
            repository=item.repository,
            issue_number=item.pull_number,
            installation_id=item.installation_id,
            after={
                "claim": claim.id,
                "kind": PR_FOLLOW_UP,
                "agent": agent,
                "head_sha": item.head_sha,
                "lease_expires_at": claim.lease_expires_at.isoformat(),
            },
        )
    return claim


async def _insert_follow_up(
    item: PullFollowUp, agent: str, token: ApiToken, now: datetime, expires: datetime
) -> Claim | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            """
            INSERT INTO claim (installation_id, repository_id, repository, issue_number, agent,
                token_id, token_name, claimed_at, heartbeat_at, lease_expires_at, kind, head_sha)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, 'pr_follow_up', $10)
            ON CONFLICT (repository_id, issue_number) WHERE state = 'active' DO NOTHING
            RETURNING *
            """,
            item.installation_id,
            item.repository_id,
            item.repository,
            item.pull_number,
            agent,
            token.id,
            token.name,
            now,
            expires,
            item.head_sha,
        )
    return Claim.from_row(row) if row else None


async def _label(client: Any, repository: str, number: int, label: str) -> None:
    """The agent's label on an issue or pull request, created when the repository lacks it."""
    if not await rest.label_exists(client, repository, label):
        await rest.create_label(
            client, repository, label, DYNAMIC_COLORS[AGENT_PREFIX], "Agent working on it"
        )
    await rest.add_label(client, repository, number, label)


def _repositories(token: ApiToken, wanted: list[str] | None) -> list[str] | None:
    if wanted is None:
        return token.repositories or None
    if not isinstance(wanted, list) or not wanted:
        raise invalid("repositories", "`repositories` must be a non-empty list of owner/name")
    for name in wanted:
        try:
            Repo.parse(name)
        except InvalidRepo as exc:
            raise invalid("repositories", f"`repositories`: {exc}") from None
        if not token.allows(name):
            raise PermissionDeniedException(f"token {token.name!r} is not allowed on {name}")
    return wanted


def _types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    known = {kind.value.removeprefix("type/") for kind in Kind}
    names = [t.removeprefix("type/") for t in types] if isinstance(types, list) else []
    if not names or any(name not in known for name in names):
        raise invalid("types", f"`types` must be a list of: {', '.join(sorted(known))}")
    return names


async def _claim_one(
    rt: Runtime,
    token: ApiToken,
    agent: str,
    repositories: list[str] | None,
    types: list[str] | None,
    skip: list[str],
    lease: timedelta,
) -> Claimed | str | None:
    """One attempt: the claim, None when nothing is ready, or the key of an issue that turned
    out not to be claimable (for the next attempt to skip)."""
    async with engine.transaction():
        issue = await cache.lock_next_claimable(repositories, types, skip=skip)
        if issue is None:
            return None
        key = cache.issue_key(issue.repository_id, issue.number)
        repository = {"id": issue.repository_id, "full_name": issue.repository}
        client = rt.github.installation(issue.installation_id)
        live = await rest.get_issue(client, issue.repository, issue.number)
        labels = [label["name"] for label in live.get("labels") or []]
        if (
            live.get("state") != "open"
            or Status.READY.value not in labels
            or any(name.startswith(AGENT_PREFIX) for name in labels)
        ):
            # The cache was behind GitHub: keep the truth and try the next issue.
            await cache.store(issue.installation_id, repository, live)
            log.info(
                "claim candidate drifted",
                extra={"repository": issue.repository, "issue": issue.number},
            )
            return key
        now = rt.clock.now()
        claim = await _insert(issue, agent, token, now, now + lease)
        if claim is None:
            return key  # another replica's claim holds it (its cache copy was behind ours)
        label = claim.label
        try:
            # The agent's label first: whatever GitHub shows between the two edits is not
            # claimable (ready *and* without an agent is what a claim needs).
            await _label(client, issue.repository, issue.number, label)
            await state.move_to(
                client,
                rt,
                issue.repository,
                issue.number,
                Status.IN_PROGRESS,
                actor=token.actor,
                reason=f"claimed by {label} (claim #{claim.id})",
                installation_id=issue.installation_id,
            )
            fresh = await rest.get_issue(client, issue.repository, issue.number)
        except Exception:
            await _undo_labels(rt, client, issue, label)
            raise
        await cache.store(issue.installation_id, repository, fresh)
        await audit.record(
            actor=token.actor,
            action="claim.create",
            repository=issue.repository,
            issue_number=issue.number,
            installation_id=issue.installation_id,
            after={
                "claim": claim.id,
                "agent": agent,
                "lease_expires_at": claim.lease_expires_at.isoformat(),
            },
        )
        cached = await cache.get(issue.repository, issue.number)
        claimed = Claimed(claim, cached or issue, fresh.get("html_url"))
    return claimed


async def _insert(
    issue: CachedIssue, agent: str, token: ApiToken, now: datetime, expires: datetime
) -> Claim | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            """
            INSERT INTO claim (installation_id, repository_id, repository, issue_number, agent,
                token_id, token_name, claimed_at, heartbeat_at, lease_expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
            ON CONFLICT (repository_id, issue_number) WHERE state = 'active' DO NOTHING
            RETURNING *
            """,
            issue.installation_id,
            issue.repository_id,
            issue.repository,
            issue.number,
            agent,
            token.id,
            token.name,
            now,
            expires,
        )
    return Claim.from_row(row) if row else None


async def _undo_labels(rt: Runtime, client: Any, issue: CachedIssue, label: str) -> None:
    """GitHub failed half-way through labelling a claim that will not commit: put the issue
    back as it was (ready, without the agent), as far as GitHub lets us now."""
    with contextlib.suppress(Exception):
        await rest.remove_label(client, issue.repository, issue.number, label)
        await state.move_to(
            client,
            rt,
            issue.repository,
            issue.number,
            Status.READY,
            actor=await rt.github.bot_login(),
            reason="a claim failed half-way; the issue goes back to the queue",
            installation_id=issue.installation_id,
        )
