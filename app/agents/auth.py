"""Who may report for a run: the run's own GitHub Actions job (its OIDC token: our audience,
GitHub's issuer, the repository and workflow run Dispatch dispatched), or a harness holding an
agent API token for the run's repository. Anything else is refused before anything is written."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from app.agents import runs
from app.agents.dispatcher import is_our_workflow_run, workflow_file
from app.agents.runs import Run
from app.github import rest
from app.github.oidc import TokenRejected
from app.runtime import Runtime
from app.tokens import service as tokens


async def authorize(request: Request, rt: Runtime, run_id: int) -> Run:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise NotAuthorizedException(
            "send the run's GitHub Actions OIDC token (or an agent API token) as a Bearer token"
        )
    if credential.startswith(tokens.PREFIX):
        return await _by_api_token(credential, run_id)
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
    return run


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
