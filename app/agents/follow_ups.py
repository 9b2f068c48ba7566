"""Follow-ups on pull requests: review feedback goes back to an agent, on the same branch.

A `revise` run works on an open pull request from one of the repository's own branches — one a
Dispatch run opened, or any with `follow_ups: {any_pr: true}` — and never on a fork's (its commits
could not be pushed there) or on the default branch (`revise_targets`). The workflow checks out the
pull request's head; its publish job pushes the agent's changes to the pull request's branch as a
new commit: never a force-push, and not at all when the branch moved since the run was asked for.

This module starts one: from `/dispatch revise [notes]` on the pull request (`start`) or, with
`follow_ups: {on_changes_requested: true}`, from a review requesting changes by someone with write
permission on a pull request a Dispatch run opened (`on_review`). Either way through the one
run-starting service (`spawn.request_run`): the gates and budgets apply, and one run at a time
works on a pull request (the run's issue number is the pull request's, so its status comment is
posted there; a link to it goes on the issue the pull request fixes, `follow_up_links`).

The feedback is fixed when the run is asked for (`review_feedback`), with the approved plan of the
issue the pull request fixes. A pull request a harness holds a claim on is not revised by
Dispatch's own agent meanwhile; the claim queue's pending follow-ups are in `follow_up_queue`.
"""

from __future__ import annotations

import logging

from app.agents import spawn
from app.agents.review_feedback import (
    CHANGES_REQUESTED,
    feedback,
    has_shown_feedback,
    login,
    not_shown,
    state,
)
from app.agents.revise_targets import target_for
from app.agents.runs import NewRun, Run, Trigger
from app.audit import log as audit
from app.claims import records as claims
from app.events import Event
from app.github.permissions import Permission
from app.github.rest import ReactionTarget
from app.issues import repo_config
from app.issues.repo_config import RepoConfig
from app.modes import Mode
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def start(
    rt: Runtime,
    *,
    installation_id: int,
    repository: str,
    repository_id: int,
    number: int,
    is_pull: bool,
    config: RepoConfig,
    trigger: Trigger,
    requested_by: str | None,
    notes: str | None = None,
    review_id: int | None = None,
    command_id: int | None = None,
    command_line: str | None = None,
    reaction_target: ReactionTarget | None = None,
    retry_of: int | None = None,
) -> Run | spawn.Refusal:
    """Ask for a revise run of pull request `number` (the command, a review, a retry, and any
    harness call this): the pull request's checks, its feedback fixed, then `spawn.request_run`."""
    client = rt.github.installation(installation_id)
    target = await target_for(
        client,
        repository=repository,
        repository_id=repository_id,
        number=number,
        is_pull=is_pull,
        config=config,
    )
    if isinstance(target, spawn.Refusal):
        return target
    claim = await claims.active_on(repository_id, number)
    if claim is not None:
        return spawn.Refusal(
            f"pull request #{number} is claimed by `{claim.label}` (claim #{claim.id}, until "
            f"{claim.lease_expires_at:%Y-%m-%d %H:%M} UTC): that agent is revising it."
        )
    follow_up = await feedback(rt, client, repository, target.pull, review_id=review_id)
    if not notes and not has_shown_feedback(follow_up):
        hidden = " (comments by people without write permission are not given to the agent)"
        return spawn.Refusal(
            f"there is nothing to revise: no review on pull request #{number} requests changes"
            f"{hidden if not_shown(follow_up) else ''}. Request changes in a review, or say what "
            "to change: `/dispatch revise <notes>`."
        )
    return await spawn.request_run(
        NewRun(
            installation_id=installation_id,
            repository=repository,
            repository_id=repository_id,
            issue_number=number,
            mode=Mode.REVISE,
            trigger=trigger,
            requested_by=requested_by,
            command_id=command_id,
            command_line=command_line,
            reaction_target=reaction_target,
            notes=notes or None,
            plan_id=target.plan_id,
            retry_of=retry_of,
            target_pull=target.pull,
            origin_issue=target.origin_issue,
            follow_up=follow_up,
        )
    )


async def on_review(event: Event, rt: Runtime) -> Run | None:
    """A submitted review: one that requests changes, by a writer, on a pull request a Dispatch
    run opened (or any, with `any_pr`), starts a revise run when the repository has
    `follow_ups: {on_changes_requested: true}`. Every decision not to is audited."""
    review = event.payload.get("review") or {}
    pull = event.payload.get("pull_request") or {}
    if event.installation_id is None or event.repository is None or not pull:
        return None
    if state(review) != CHANGES_REQUESTED:
        return None
    reviewer = login(review)
    if await rt.github.is_self(reviewer):
        return None
    loaded = await repo_config.load(rt, event.installation_id, event.repository)
    if loaded.error or not loaded.config.follow_ups.on_changes_requested:
        return None
    repository_id = int(event.payload["repository"]["id"])
    number = int(pull["number"])

    async def skipped(reason: str, outcome: audit.Outcome = audit.Outcome.SKIPPED) -> None:
        await audit.record(
            actor=reviewer,
            action="run.follow_up",
            repository=event.repository,
            issue_number=number,
            installation_id=event.installation_id,
            after={"review": review.get("id"), "mode": Mode.REVISE.value},
            outcome=outcome,
            reason=reason,
            delivery=event.delivery,
        )

    client = rt.github.installation(event.installation_id)
    if await rt.permissions.level(client, event.repository, reviewer) < Permission.WRITE:
        await skipped(f"@{reviewer} has no write permission: a review by them starts no run")
        return None
    result = await start(
        rt,
        installation_id=event.installation_id,
        repository=event.repository,
        repository_id=repository_id,
        number=number,
        is_pull=True,
        config=loaded.config,
        trigger=Trigger.REVIEW,
        requested_by=reviewer,
        review_id=int(review["id"]),
        reaction_target=ReactionTarget(kind="none", number=number),
    )
    if isinstance(result, spawn.Refusal):
        await skipped(result.reason, audit.Outcome.REFUSED)
        return None
    return result
