"""Who may report for a run: the run's own GitHub Actions job (its OIDC token: our audience,
GitHub's issuer, the repository and workflow run Dispatch dispatched), or a harness holding an
agent API token for the run's repository. Anything else is refused before anything is written.

A workflow run can be run again (GitHub's "Re-run jobs"): same workflow run id, `run_attempt`
one higher in its OIDC tokens. The first request of a newer attempt makes it the run's attempt
(`lifecycle.new_attempt`); from then on the older attempts are refused (409)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)

from app.agents import lifecycle, runs
from app.agents.dispatcher import is_our_workflow_run, workflow_file
from app.agents.runs import Run
from app.github import rest
from app.github.oidc import TokenRejected
from app.runtime import Runtime
from app.tokens import service as tokens


@dataclass(frozen=True)
class Reporter:
    """A report's run and the workflow run attempt it comes from (a harness with an API token
    reports for the run's latest attempt); `oidc`: from the run's own Actions job."""

    run: Run
    attempt: int
    oidc: bool = False


async def authorize(request: Request, rt: Runtime, run_id: int) -> Reporter:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise NotAuthorizedException(
            "send the run's GitHub Actions OIDC token (or an agent API token) as a Bearer token"
        )
    if credential.startswith(tokens.PREFIX):
        run = await _by_api_token(credential, run_id)
        return Reporter(run, run.attempt)
    try:
        claims = await rt.oidc.verify(credential)
    except TokenRejected as exc:
        raise NotAuthorizedException(str(exc)) from None
    run = await _run(run_id)
    if str(claims["repository_id"]) != str(run.repository_id):
        raise PermissionDeniedException("this token belongs to another repository")
    workflow_run_id = int(str(claims["run_id"]))
    if run.workflow_run_id is None:
        run = await _bind(rt, run, workflow_run_id, claims)
    elif workflow_run_id != run.workflow_run_id:
        raise PermissionDeniedException(
            f"this token belongs to another workflow run, not run #{run.id}'s"
        )
    attempt = attempt_of(claims)
    if attempt > run.attempt:
        try:
            run = await lifecycle.new_attempt(rt, run, attempt)
        except lifecycle.AttemptRefused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
    if attempt < run.attempt:
        raise HTTPException(
            status_code=409,
            detail=f"attempt {attempt} of this workflow run was superseded by attempt "
            f"{run.attempt}: only the latest attempt reports for run #{run.id}",
        )
    return Reporter(run, attempt, oidc=True)


def attempt_of(claims: dict[str, Any]) -> int:
    """The workflow run attempt an OIDC token was issued to (1 for the first run)."""
    try:
        return max(int(str(claims.get("run_attempt", 1))), 1)
    except ValueError:
        raise NotAuthorizedException("the token's run_attempt is not a number") from None


async def _by_api_token(credential: str, run_id: int) -> Run:
    token = await tokens.authenticate(credential)
    if token is None:
        raise NotAuthorizedException("the API token is unknown or revoked")
    run = await _run(run_id)
    if not token.permits(tokens.AGENT) or not token.allows(run.repository):
        raise PermissionDeniedException(f"this token is not allowed on {run.repository}")
    return run


async def _run(run_id: int) -> Run:
    run = await runs.get(run_id)
    if run is None:
        raise NotFoundException(f"no run {run_id}")
    return run


async def _bind(rt: Runtime, run: Run, workflow_run_id: int, claims: dict[str, Any]) -> Run:
    """GitHub did not return the workflow run's id at dispatch (older API); accept the token's
    run only if both the token and GitHub say it is the workflow Dispatch dispatched for this
    run (same repository, a `workflow_dispatch` of the run's workflow, its run-name)."""
    if claims.get("event_name") != "workflow_dispatch" or workflow_file(
        claims.get("workflow_ref")
    ) != workflow_file(f".github/workflows/{run.workflow or 'dispatch-agent.yml'}"):
        raise PermissionDeniedException("this token is not from the run's agent workflow")
    client = rt.github.installation(run.installation_id)
    data = await rest.get_workflow_run(client, run.repository, workflow_run_id)
    if data is None:
        raise PermissionDeniedException("this token's workflow run is unknown to GitHub")
    if not is_our_workflow_run(
        run,
        repository_id=(data.get("repository") or {}).get("id"),
        event=data.get("event"),
        workflow=workflow_file(data.get("path")),
        title=data.get("display_title") or "",
    ):
        raise PermissionDeniedException("this token's workflow run was not dispatched for this run")
    return await runs.update(
        run.id, workflow_run_id=workflow_run_id, workflow_run_url=data.get("html_url")
    )
