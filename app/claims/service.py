"""Claiming, renewing and releasing issues.

**Claim.** In one transaction: the most urgent, oldest open `status/ready` issue with no `agent/*`
label in the token's repositories is locked in the issue cache (`FOR UPDATE SKIP LOCKED`, so
fifty concurrent claimers each get a different issue and none waits), its live labels are re-read
at GitHub (the cache can be behind: a drifted issue is re-cached and the next one tried), the
claim row is written (a unique index allows one active claim per issue, across replicas), and the
issue gets `agent/<name>` and `status/in-progress` with targeted edits. The transaction holds the
row lock while GitHub answers, on purpose: nobody else may take that issue meanwhile.

**Lease.** `CLAIM_LEASE_MINUTES` (30) from the claim or the last heartbeat. A scheduled job ends
claims whose lease ran out as `abandoned`: the issue goes back to `status/ready`.

**Release.** `abandoned` → `status/ready`; `blocked` → `dispatch/blocked` and the reason as a
comment (the status stays, a person decides); `done` → `status/in-review` with a pull request,
`status/done` without. Each removes the agent's label. A person removing the `agent/<name>` label
ends the claim too (nothing else is touched: they are taking it over).

Every change is audited with the token's name (`token:<name>`) as the actor.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from litestar.exceptions import NotFoundException, PermissionDeniedException

from app.audit import log as audit
from app.db import engine
from app.events import Event, is_own_change
from app.github import markdown, rest
from app.github.repo import InvalidRepo, Repo
from app.issues import cache, state
from app.issues.cache import CachedIssue
from app.issues.labels import (
    AGENT_NAME,
    AGENT_NAME_RULE,
    AGENT_PREFIX,
    DYNAMIC_COLORS,
    Kind,
    Signal,
    Status,
    agent_label,
)
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import require_scope
from app.tokens.service import ApiToken
from app.web.errors import conflict, github_trouble, invalid

log = logging.getLogger(__name__)

# Issues one claim request walks past because GitHub's labels differ from the cache's, before it
# answers that nothing is ready (each is re-cached, so the next request does not meet them).
MAX_DRIFTED = 50


class ClaimState(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"  # by its holder, with an outcome
    EXPIRED = "expired"  # its lease ran out (outcome `abandoned`)
    REVOKED = "revoked"  # a person removed the agent's label


class Outcome(StrEnum):
    DONE = "done"
    BLOCKED = "blocked"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Claim:
    id: int
    installation_id: int
    repository_id: int
    repository: str
    issue_number: int
    agent: str
    token_id: int | None
    token_name: str
    state: ClaimState
    outcome: Outcome | None
    reason: str | None
    pr_url: str | None
    run_id: int | None
    claimed_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    ended_at: datetime | None
    ended_by: str | None

    @classmethod
    def from_row(cls, row: Any) -> Claim:
        data = dict(row)
        data["state"] = ClaimState(data["state"])
        data["outcome"] = Outcome(data["outcome"]) if data["outcome"] else None
        return cls(**data)

    @property
    def label(self) -> str:
        return agent_label(self.agent)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "repository": self.repository,
            "issue": self.issue_number,
            "state": self.state.value,
            "outcome": self.outcome.value if self.outcome else None,
            "reason": self.reason,
            "pr_url": self.pr_url,
            "run": self.run_id,
            "token": self.token_name,
            "claimed_at": self.claimed_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "lease_expires_at": self.lease_expires_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
        }


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    issue: CachedIssue
    url: str | None


# --- reading


# Claim ids are bigint: a larger one (from a URL) names no claim.
MAX_CLAIM_ID = 2**63 - 1


async def get(claim_id: int, *, lock: bool = False) -> Claim | None:
    if not 0 < claim_id <= MAX_CLAIM_ID:
        return None
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM claim WHERE id = $1" + (" FOR UPDATE" if lock else ""), claim_id
        )
    return Claim.from_row(row) if row else None


async def active_on(repository_id: int, issue_number: int) -> Claim | None:
    """The claim holding an issue now, if any."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM claim WHERE repository_id = $1 AND issue_number = $2 "
            "AND state = 'active'",
            repository_id,
            issue_number,
        )
    return Claim.from_row(row) if row else None


async def attach_run(claim_id: int, run_id: int) -> None:
    """Remember the run a claim's holder registered for its issue (the newest one)."""
    async with engine.connection() as connection:
        await connection.execute("UPDATE claim SET run_id = $2 WHERE id = $1", claim_id, run_id)


async def held(claim_id: int, token: ApiToken) -> Claim:
    """The active claim `claim_id` of this token: 404 unknown, 403 another token's, 409 ended."""
    claim = await get(claim_id)
    _check_holder(claim_id, claim, token)
    assert claim is not None
    if claim.state is not ClaimState.ACTIVE:
        raise conflict(_ended(claim))
    return claim


# --- claiming


async def claim_next(
    rt: Runtime,
    token: ApiToken,
    agent: str,
    *,
    repositories: list[str] | None = None,
    types: list[str] | None = None,
) -> Claimed | None:
    """Claim the next ready issue for `agent`; None when nothing is ready."""
    require_scope(token, tokens.AGENT)
    if not AGENT_NAME.match(agent or ""):
        raise invalid("agent", f"`agent` must be a name made of {AGENT_NAME_RULE}")
    scope = _repositories(token, repositories)
    kinds = _types(types)
    lease = timedelta(minutes=rt.settings.claim_lease_minutes)
    skip: list[str] = []
    with github_trouble("claiming an issue (nothing was claimed)"):
        for _ in range(MAX_DRIFTED):
            result = await _claim_one(rt, token, agent, scope, kinds, skip, lease)
            if result is None or isinstance(result, Claimed):
                return result
            skip.append(result)
    return None


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
            if not await rest.label_exists(client, issue.repository, label):
                await rest.create_label(
                    client,
                    issue.repository,
                    label,
                    DYNAMIC_COLORS[AGENT_PREFIX],
                    "Agent working on it",
                )
            # The agent's label first: whatever GitHub shows between the two edits is not
            # claimable (ready *and* without an agent is what a claim needs).
            await rest.add_label(client, issue.repository, issue.number, label)
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
            target=f"{issue.repository}#{issue.number}",
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


# --- renewing and releasing


def _check_holder(claim_id: int, claim: Claim | None, token: ApiToken) -> None:
    if claim is None:
        raise NotFoundException(f"no claim {claim_id}")
    if claim.token_id != token.id:
        raise PermissionDeniedException(
            f"claim {claim_id} belongs to another token; only its holder may renew or release it"
        )


def _ended(claim: Claim) -> str:
    when = f" at {claim.ended_at:%Y-%m-%d %H:%M:%S} UTC" if claim.ended_at else ""
    how = {
        ClaimState.RELEASED: f"was released ({claim.outcome.value if claim.outcome else '?'})",
        ClaimState.EXPIRED: "expired (no heartbeat before its lease ran out)",
        ClaimState.REVOKED: f"was ended by {claim.ended_by or 'a person'} (who removed "
        f"{claim.label} or closed the issue)",
    }.get(claim.state, claim.state.value)
    return f"claim {claim.id} {how}{when}; claim the next issue instead"


async def heartbeat(rt: Runtime, token: ApiToken, claim_id: int) -> Claim:
    """Extend the lease by CLAIM_LEASE_MINUTES from now."""
    require_scope(token, tokens.AGENT)
    now = rt.clock.now()
    async with engine.transaction():
        claim = await get(claim_id, lock=True)
        _check_holder(claim_id, claim, token)
        assert claim is not None
        if claim.state is not ClaimState.ACTIVE:
            raise conflict(_ended(claim))
        if claim.lease_expires_at <= now:
            raise conflict(
                f"claim {claim.id}'s lease ran out at {claim.lease_expires_at:%Y-%m-%d %H:%M:%S} "
                "UTC; the issue goes back to the queue. Release it, or claim the next issue"
            )
        expires = now + timedelta(minutes=rt.settings.claim_lease_minutes)
        async with engine.connection() as connection:
            row = await connection.fetchrow(
                "UPDATE claim SET heartbeat_at = $2, lease_expires_at = $3 WHERE id = $1 "
                "RETURNING *",
                claim.id,
                now,
                expires,
            )
        await audit.record(
            actor=token.actor,
            action="claim.heartbeat",
            target=f"{claim.repository}#{claim.issue_number}",
            repository=claim.repository,
            issue_number=claim.issue_number,
            installation_id=claim.installation_id,
            after={"claim": claim.id, "lease_expires_at": expires.isoformat()},
        )
    return Claim.from_row(row)


async def release(
    rt: Runtime,
    token: ApiToken,
    claim_id: int,
    outcome: str,
    *,
    reason: str | None = None,
    pr_url: str | None = None,
) -> Claim:
    """End a claim with the holder's outcome and move the issue to match it."""
    require_scope(token, tokens.AGENT)
    try:
        result = Outcome(outcome)
    except ValueError:
        raise invalid("outcome", "`outcome` must be one of done, blocked, abandoned") from None
    reason = (reason or "").strip() or None
    if result is Outcome.BLOCKED and reason is None:
        raise invalid("reason", "a blocked release needs a `reason`: what a person must do")
    if pr_url is not None and not markdown.safe_link(
        pr_url, markdown.github_hosts(rt.settings.github_web_url)
    ):
        raise invalid("pr_url", "`pr_url` must be the https address of a pull request on GitHub")
    with github_trouble("releasing the claim (it is still yours)"):
        async with engine.transaction():
            claim = await get(claim_id, lock=True)
            _check_holder(claim_id, claim, token)
            assert claim is not None
            if claim.state is not ClaimState.ACTIVE:
                raise conflict(_ended(claim))
            ended = await _end(
                rt, claim, ClaimState.RELEASED, result, reason=reason, pr_url=pr_url, by=token.actor
            )
    await _recache(rt, ended)
    return ended


async def _end(
    rt: Runtime,
    claim: Claim,
    new_state: ClaimState,
    outcome: Outcome,
    *,
    reason: str | None,
    pr_url: str | None,
    by: str,
) -> Claim:
    """Inside the caller's transaction (the claim row locked): the labels the outcome means,
    then the row and the audit entry. A failure at GitHub rolls the whole end back, so the claim
    stays active and the next attempt (the holder's retry, the next expiry pass) does it again;
    every label step is idempotent."""
    client = rt.github.installation(claim.installation_id)
    repository, number = claim.repository, claim.issue_number
    target: Status | None = None
    if outcome is Outcome.ABANDONED:
        target = Status.READY
    elif outcome is Outcome.DONE:
        target = Status.IN_REVIEW if pr_url else Status.DONE
    else:
        await rest.add_label(client, repository, number, Signal.BLOCKED)
        await rest.upsert_marked_comment(
            client,
            repository,
            number,
            f"claim:{claim.id}:blocked",
            _blocked_comment(rt, claim, reason or ""),
            bot_login=await rt.github.bot_login(),
        )
    if target is not None:
        # An issue someone finished meanwhile (closed: `status/done`) stays finished.
        await state.move_to(
            client,
            rt,
            repository,
            number,
            target,
            actor=by,
            reason=f"claim #{claim.id} {new_state.value} ({outcome.value})",
            installation_id=claim.installation_id,
            unless=Status.DONE,
        )
    await rest.remove_label(client, repository, number, claim.label)
    now = rt.clock.now()
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            "UPDATE claim SET state = $2, outcome = $3, reason = $4, pr_url = $5, ended_at = $6, "
            "ended_by = $7 WHERE id = $1 RETURNING *",
            claim.id,
            new_state.value,
            outcome.value,
            reason,
            pr_url,
            now,
            by,
        )
    await audit.record(
        actor=by,
        action=f"claim.{'expire' if new_state is ClaimState.EXPIRED else 'release'}",
        target=f"{repository}#{number}",
        repository=repository,
        issue_number=number,
        installation_id=claim.installation_id,
        before={"claim": claim.id, "agent": claim.agent},
        after={"outcome": outcome.value, "status": target.value if target else None},
        reason=reason,
    )
    return Claim.from_row(row)


def _blocked_comment(rt: Runtime, claim: Claim, reason: str) -> str:
    text = markdown.agent_markdown(reason, markdown.github_hosts(rt.settings.github_web_url))
    return (
        f"### 🚧 Blocked · `{claim.label}`\n\n"
        f"The agent that claimed this issue (claim #{claim.id}) stopped and released it:\n\n"
        f"{text}\n\n---\nA person decides what comes next: remove `{Signal.BLOCKED.value}` and "
        f"move the issue to `{Status.READY.value}` to put it back in the queue."
    )


async def _recache(rt: Runtime, claim: Claim) -> None:
    """Bring the cached copy in line with the labels just changed, so the issue is claimable
    again at once when it went back to the queue (the webhooks would do it a moment later)."""
    try:
        await cache.refresh(
            rt, claim.installation_id, claim.repository_id, claim.repository, claim.issue_number
        )
    except Exception:
        log.warning(
            "could not re-cache a released issue; its webhooks will",
            extra={"repository": claim.repository, "issue": claim.issue_number},
            exc_info=True,
        )


# --- leases nobody renewed, labels people removed


async def expire_due(rt: Runtime, *, limit: int = 200) -> int:
    """End every claim whose lease ran out as `abandoned`: the issue returns to the queue.
    Several workers may run this at once; each claim is ended once (`SKIP LOCKED`)."""
    now = rt.clock.now()
    async with engine.connection() as connection:
        due = await connection.fetch(
            "SELECT id FROM claim WHERE state = 'active' AND lease_expires_at <= $1 "
            "ORDER BY lease_expires_at LIMIT $2",
            now,
            limit,
        )
    expired = 0
    for row in due:
        try:
            async with engine.transaction():
                async with engine.connection() as connection:
                    found = await connection.fetchrow(
                        "SELECT * FROM claim WHERE id = $1 AND state = 'active' "
                        "AND lease_expires_at <= $2 FOR UPDATE SKIP LOCKED",
                        row["id"],
                        now,
                    )
                if found is None:
                    continue
                claim = Claim.from_row(found)
                ended = await _end(
                    rt,
                    claim,
                    ClaimState.EXPIRED,
                    Outcome.ABANDONED,
                    reason=f"no heartbeat for {rt.settings.claim_lease_minutes:g} minutes",
                    pr_url=None,
                    by="dispatch",
                )
        except Exception:
            log.exception(
                "could not expire a claim; the next pass retries", extra={"claim": row["id"]}
            )
            continue
        await _recache(rt, ended)
        expired += 1
    return expired


async def on_unlabeled(event: Event, rt: Runtime) -> None:
    """A person removed the agent's label from a claimed issue: the claim ends (they take over;
    no other label moves)."""
    label = (event.payload.get("label") or {}).get("name") or ""
    if not label.startswith(AGENT_PREFIX) or await is_own_change(event, rt):
        return  # not an agent's label, or Dispatch's own release removed it
    await _revoke(event, rt, label, reason=f"{event.sender or 'someone'} removed {label}")


async def on_closed(event: Event, rt: Runtime) -> None:
    """A claimed issue was closed: the claim ends and the agent's label comes off (closing
    already means `status/done`)."""
    if await is_own_change(event, rt):
        return
    claim = await _revoke(event, rt, None, reason=f"{event.sender or 'someone'} closed the issue")
    if claim is not None and event.installation_id is not None:
        client = rt.github.installation(event.installation_id)
        await rest.remove_label(client, claim.repository, claim.issue_number, claim.label)


async def _revoke(event: Event, rt: Runtime, label: str | None, *, reason: str) -> Claim | None:
    """End the issue's active claim (if `label` is given, only that agent's) as `revoked`."""
    issue = event.payload.get("issue") or {}
    repository = event.payload.get("repository") or {}
    if "id" not in repository:
        return None
    async with engine.transaction():
        async with engine.connection() as connection:
            found = await connection.fetchrow(
                "SELECT * FROM claim WHERE repository_id = $1 AND issue_number = $2 "
                "AND state = 'active' FOR UPDATE",
                repository["id"],
                issue.get("number"),
            )
        if found is None:
            return None
        claim = Claim.from_row(found)
        if label is not None and claim.label != label:
            return None
        person = event.sender or "someone"
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE claim SET state = 'revoked', ended_at = $2, ended_by = $3 WHERE id = $1",
                claim.id,
                rt.clock.now(),
                person,
            )
        await audit.record(
            actor=person,
            action="claim.revoke",
            target=f"{claim.repository}#{claim.issue_number}",
            repository=claim.repository,
            issue_number=claim.issue_number,
            installation_id=claim.installation_id,
            before={"claim": claim.id, "agent": claim.agent, "token": claim.token_name},
            reason=reason,
            delivery=event.delivery,
        )
    return claim


async def active_count(installation_id: int) -> int:
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM claim WHERE installation_id = $1 AND state = 'active'",
                installation_id,
            )
        )
