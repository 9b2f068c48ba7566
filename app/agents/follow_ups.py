"""Follow-ups on pull requests: review feedback goes back to an agent, on the same branch.

A `revise` run works on an open pull request from one of the repository's own branches — one a
Dispatch run opened, or any with `follow_ups: {any_pr: true}` — and never on a fork's (its commits
could not be pushed there) or on the default branch. The workflow checks out the pull request's
head; its publish job pushes the agent's changes to the pull request's branch as a new commit:
never a force-push, and not at all when the branch moved since the run was asked for.

It starts from `/dispatch revise [notes]` on the pull request or, with `follow_ups:
{on_changes_requested: true}`, from a review requesting changes by someone with write permission
on a pull request a Dispatch run opened. Either way through the one run-starting service
(`spawn.request_run`): the gates and budgets apply, and one run at a time works on a pull request
(the run's issue number is the pull request's, so its status comment is posted there; a link to
it goes on the issue the pull request fixes).

The feedback is fixed when the run is asked for (`feedback`): the review that asked, the change
requests still standing, the reviews of the current head, and their inline comments with file
and line, each tagged (R1, C1 …) so the agent answers each one. Only what people with write
permission wrote is given to the agent; anyone else's comment is listed as "not shown". The diff
summary and the approved plan of the issue the pull request fixes come with it.

`pending()` lists the pull requests whose change requests no run has taken up, for the claim
queue (`SOURCE`, its `pr_follow_up` items): a change request on the current head, by a writer,
and no active run. A pull request a harness holds a claim on is not revised by Dispatch's own
agent meanwhile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub

from app.agents import plans, pull_requests, qa, runs, spawn, status_comment
from app.agents.plans import PlanState
from app.agents.runs import NewRun, Run, RunState, Trigger
from app.audit import log as audit
from app.claims import service as claims
from app.claims.follow_ups import PullFollowUp
from app.events import Event
from app.github import markdown, rest
from app.github.permissions import Permission
from app.github.rest import ReactionTarget
from app.issues import repo_config
from app.issues.repo_config import RepoConfig
from app.modes import Mode
from app.runtime import Runtime

log = logging.getLogger(__name__)

CHANGES_REQUESTED = "CHANGES_REQUESTED"
# States that say where a reviewer stands; a later one replaces an earlier one.
_DECISIONS = frozenset({"APPROVED", CHANGES_REQUESTED, "DISMISSED"})
# Reviews of the current head a revision answers (an approval asks for nothing).
_ON_HEAD = frozenset({CHANGES_REQUESTED, "COMMENTED"})
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# What one run carries: more would not fit the prompt anyway (it is cut there, with a note).
MAX_REVIEWS = 30
MAX_COMMENTS = 150
MAX_FILES = 300
MAX_TEXT_CHARS = 6_000
ANY_PR_HINT = (
    "A maintainer can allow revising any pull request of this repository's own branches with "
    "`follow_ups: {any_pr: true}` in `.github/dispatch.yml`."
)


@dataclass(frozen=True)
class Target:
    """An open pull request a revise run may work on, and what it fixes."""

    pull: dict[str, Any]
    origin_issue: int | None
    plan_id: int | None


# --------------------------------------------------------------------------- which pull request


def _origin_run_id(head: dict[str, Any]) -> int | None:
    match = re.match(r"^dispatch/run-(\d+)(?:-|$)", str(head.get("ref") or ""))
    return int(match.group(1)) if match else None


async def opened_by(pull: dict[str, Any]) -> Run | None:
    """The Dispatch run whose branch the pull request comes from (in the run's repository)."""
    head = pull.get("head") or {}
    run_id = _origin_run_id(head)
    if run_id is None:
        return None
    run = await runs.get(run_id)
    return run if run is not None and pull_requests.is_run_branch(run, head) else None


def revisable(
    pull: dict[str, Any], repository_id: int, *, opened_by_dispatch: bool, any_pr: bool
) -> dict[str, Any] | spawn.Refusal:
    """The pull request as a revise target (`qa.describe`), or why a run may not revise it."""
    number = pull["number"]
    if pull.get("merged") or pull.get("merged_at"):
        return spawn.Refusal(
            f"pull request #{number} is already merged: there is nothing left to revise. Open an "
            "issue for further changes."
        )
    if pull.get("state") != "open":
        return spawn.Refusal(f"pull request #{number} is closed: reopen it to have it revised.")
    head = pull.get("head") or {}
    head_repo = head.get("repo")
    if not head_repo:
        return spawn.Refusal(f"the branch of pull request #{number} is gone.")
    if head_repo.get("id") != repository_id:
        fork = markdown.code_span(str(head_repo.get("full_name") or "a fork"))
        return spawn.Refusal(
            f"pull request #{number} comes from the fork {fork}: Dispatch pushes an agent's "
            "commits only to this repository's own branches."
        )
    default_branch = ((pull.get("base") or {}).get("repo") or {}).get("default_branch")
    if head.get("ref") and head.get("ref") == default_branch:
        branch = markdown.code_span(str(default_branch))
        return spawn.Refusal(
            f"pull request #{number} comes from the default branch {branch}: Dispatch never "
            "pushes to it."
        )
    if not opened_by_dispatch and not any_pr:
        return spawn.Refusal(
            f"pull request #{number} was not opened by a Dispatch run. {ANY_PR_HINT}"
        )
    target = qa.describe(pull)
    if not _SHA.match(target["head_sha"]):
        return spawn.Refusal(f"GitHub gave no head commit for pull request #{number}.")
    return target


async def _not_a_pull(repository: str, number: int) -> spawn.Refusal:
    """What to do when `/dispatch revise` is asked on an issue."""
    opened = next(
        (
            run
            for run in await runs.for_issue(repository, number)
            if run.mode is Mode.IMPLEMENT and run.pr_number
        ),
        None,
    )
    if opened is not None:
        return spawn.Refusal(
            f"`/dispatch revise` works on a pull request, not an issue: comment it on pull "
            f"request #{opened.pr_number}, which this issue's implementation opened, or request "
            "changes in a review there."
        )
    return spawn.Refusal(
        "`/dispatch revise` works on a pull request, not an issue: comment it on the pull "
        "request to revise. To start from this issue, `/dispatch implement` opens one from its "
        "approved plan."
    )


async def target_for(
    client: GitHub,
    *,
    repository: str,
    repository_id: int,
    number: int,
    is_pull: bool,
    config: RepoConfig,
) -> Target | spawn.Refusal:
    """The pull request a revise run on `number` works on, with the issue it fixes and that
    issue's approved plan; or why there is none."""
    if not is_pull:
        return await _not_a_pull(repository, number)
    pull = await rest.get_pull(client, repository, number)
    if pull is None:
        return spawn.Refusal(f"pull request #{number} was not found in {repository}.")
    origin = await opened_by(pull)
    described = revisable(
        pull,
        repository_id,
        opened_by_dispatch=origin is not None,
        any_pr=config.follow_ups.any_pr,
    )
    if isinstance(described, spawn.Refusal):
        return described
    if origin is not None:
        origin_issue: int | None = origin.issue_number
        plan_id = origin.plan_id
    else:
        # Its own branch (forks are refused above): only writers push here, so its text counts.
        closed = sorted(pull_requests.closes(pull.get("body")) - {number})
        origin_issue = closed[0] if closed else None
        plan_id = None
    if plan_id is None and origin_issue is not None:
        approved = await plans.latest(
            repository_id, origin_issue, states=(PlanState.APPROVED.value,)
        )
        plan_id = approved.id if approved is not None else None
    return Target(pull=described, origin_issue=origin_issue, plan_id=plan_id)


# --------------------------------------------------------------------------- the feedback


def _state(review: dict[str, Any]) -> str:
    # The REST API says CHANGES_REQUESTED, webhooks say changes_requested.
    return str(review.get("state") or "").upper()


def _login(item: dict[str, Any]) -> str:
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
        if _state(review) in _DECISIONS:
            latest[_login(review).lower()] = review
    return [review for review in latest.values() if _state(review) == CHANGES_REQUESTED]


def _selected(
    reviews: list[dict[str, Any]], head_sha: str, review_id: int | None
) -> list[dict[str, Any]]:
    """The reviews a run answers: the one that asked, the change requests still standing, and
    the reviews of the current head that request changes or comment."""
    wanted = {review["id"] for review in standing_change_requests(reviews)}
    wanted |= {
        review["id"]
        for review in reviews
        if review.get("commit_id") == head_sha and _state(review) in _ON_HEAD
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
        author = _login(review)
        visible = await shown(author)
        stored_reviews.append(
            {
                "ref": f"R{index}",
                "id": review["id"],
                "author": author,
                "state": _state(review),
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
        author = _login(comment)
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


# --------------------------------------------------------------------------- starting a run


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
    if _state(review) != CHANGES_REQUESTED:
        return None
    reviewer = _login(review)
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
            target=f"{event.repository}#{number}",
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


# --------------------------------------------------------------------------- on the issue


def link_marker(run_id: int) -> str:
    return f"follow-up:{run_id}"


def status_url(rt: Runtime, run: Run) -> str | None:
    if run.status_comment_id is None:
        return None
    web = rt.settings.github_web_url.rstrip("/")
    return f"{web}/{run.repository}/pull/{run.issue_number}#issuecomment-{run.status_comment_id}"


def render_link(rt: Runtime, run: Run) -> str:
    shown = run.state.value.replace("_", " ")
    why = {
        Trigger.REVIEW: f"changes requested in a review by @{run.requested_by}",
        Trigger.COMMAND: f"`/dispatch revise` by @{run.requested_by}",
    }.get(run.trigger, f"asked by @{run.requested_by}" if run.requested_by else "asked")
    url = status_url(rt, run)
    where = f"[its status comment]({url})" if url else "its status comment"
    return (
        f"### {status_comment.ICONS[run.state]} Revision of pull request #{run.issue_number} · "
        f"run #{run.id} · {shown}\n\n"
        f"Review feedback on #{run.issue_number} went back to an agent ({why}). It works on the "
        f"pull request's branch and answers there: see {where}."
    )


async def link(rt: Runtime, run: Run) -> None:
    """Post or edit, on the issue the pull request fixes, the link to the run's status comment."""
    if run.mode is not Mode.REVISE or run.origin_issue is None or run.status_comment_id is None:
        return
    if run.state is RunState.REFUSED:
        return  # never started: the refusal is on the pull request
    client = rt.github.installation(run.installation_id)
    await rest.upsert_marked_comment(
        client,
        run.repository,
        run.origin_issue,
        link_marker(run.id),
        render_link(rt, run),
        bot_login=await rt.github.bot_login(),
    )


# --------------------------------------------------------------------------- for work queues


async def pending(
    rt: Runtime, installation_id: int, repositories: Iterable[str]
) -> list[PullFollowUp]:
    """Pull requests of `repositories` (one installation) whose change requests wait: an open
    pull request a run may revise (`revisable`), a change request standing on its current head
    by someone with write permission, and no active run or claim on it. Oldest request first.

    A claim queue lists these as `pr_follow_up` items; it asks GitHub (a few calls per open
    Dispatch pull request), so call it when listing work, not per heartbeat."""
    client = rt.github.installation(installation_id)
    found: list[PullFollowUp] = []
    for repository in repositories:
        loaded = await repo_config.load(rt, installation_id, repository)
        for pull in await rest.open_pulls(client, repository):
            item = await _pending_pull(rt, client, installation_id, repository, pull, loaded.config)
            if item is not None:
                found.append(item)
    found.sort(key=lambda item: (item.requested_at or "", item.repository, item.pull_number))
    return found


async def _pending_pull(
    rt: Runtime,
    client: GitHub,
    installation_id: int,
    repository: str,
    pull: dict[str, Any],
    config: RepoConfig,
) -> PullFollowUp | None:
    base_repo = (pull.get("base") or {}).get("repo") or {}
    repository_id = int(base_repo.get("id") or 0)
    origin = await opened_by(pull)
    target = revisable(
        pull, repository_id, opened_by_dispatch=origin is not None, any_pr=config.follow_ups.any_pr
    )
    if isinstance(target, spawn.Refusal):
        return None
    if await runs.active_for_issue(repository_id, target["number"]) is not None:
        return None
    if await claims.active_on(repository_id, target["number"]) is not None:
        return None  # a harness holds it
    reviews = await rest.pull_reviews(client, repository, target["number"])
    waiting = []
    for review in standing_change_requests(reviews):
        # A change request of an older head was answered by a push since: it waits for its
        # reviewer now, not for an agent.
        if review.get("commit_id") != target["head_sha"]:
            continue
        level = await rt.permissions.level(client, repository, _login(review))
        if level >= Permission.WRITE:
            waiting.append(review)
    if not waiting:
        return None
    origin_issue = origin.issue_number if origin is not None else None
    if origin_issue is None:
        closed = sorted(pull_requests.closes(pull.get("body")) - {target["number"]})
        origin_issue = closed[0] if closed else None
    return PullFollowUp(
        installation_id=installation_id,
        repository=repository,
        repository_id=repository_id,
        pull_number=target["number"],
        title=str(pull.get("title") or ""),
        url=target["url"],
        head_ref=target["head_ref"],
        head_sha=target["head_sha"],
        base_ref=target["base_ref"],
        origin_issue=origin_issue,
        reviewers=sorted({_login(review) for review in waiting}),
        review_ids=[int(review["id"]) for review in waiting],
        requested_at=min((str(r.get("submitted_at") or "") for r in waiting), default=None),
    )


class _Source:
    """The claim queue's view of follow-ups (`app.claims.follow_ups.FollowUpSource`)."""

    async def pending(
        self, rt: Runtime, installation_id: int, repositories: list[str]
    ) -> list[PullFollowUp]:
        return await pending(rt, installation_id, repositories)

    async def feedback(self, rt: Runtime, item: PullFollowUp) -> dict[str, Any]:
        client = rt.github.installation(item.installation_id)
        pull = {"number": item.pull_number, "head_sha": item.head_sha}
        return await feedback(rt, client, item.repository, pull)


SOURCE = _Source()
