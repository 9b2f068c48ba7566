"""The API for harnesses and operators, with API tokens: `POST /api/runs` registers a run a harness
starts itself; `GET /api/runs`, `GET /api/runs/{id}` (with its events), `GET /api/runs/{id}/log`,
`GET /api/issues/{owner}/{repo}/{number}` (labels, state, runs, plan, claim) and `GET /api/fleet`
read, within the token's repositories."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from app.agents import api_runs, reads
from app.agents.runs import Trigger
from app.runtime import Runtime
from app.tokens.guard import api_token
from app.tokens.service import ApiToken
from app.web.bodies import decode

TOKEN = {"token": Provide(api_token)}


class HarnessRun(msgspec.Struct, forbid_unknown_fields=True):
    repository: str
    issue: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    mode: str
    agent: str
    claim: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None
    notes: str | None = None


@post("/api/runs", status_code=201, dependencies=TOKEN)
async def register_run(request: Request, rt: Runtime, token: ApiToken) -> Response[Any]:
    """Register a run the harness starts itself (agent scope). The spawn gates and budgets apply
    as to every run: a refusal is a 429 with the gate's reason and when it clears. Nothing is
    dispatched to GitHub Actions; report with `/api/runs/{id}/events` and `/log`."""
    body = decode(await request.body(), HarnessRun)
    run = await api_runs.start(
        rt,
        token,
        repository=body.repository,
        number=body.issue,
        mode=api_runs.parse_mode(body.mode),
        trigger=Trigger.HARNESS,
        agent=body.agent,
        notes=body.notes,
        claim_id=body.claim,
    )
    return Response(
        {
            "run": reads.run_json(rt, run),
            "brief": f"/api/runs/{run.id}/brief",
            "events": f"/api/runs/{run.id}/events",
            "log": f"/api/runs/{run.id}/log",
        },
        status_code=201,
    )


@get("/api/runs", dependencies=TOKEN)
async def list_runs(
    rt: Runtime,
    token: ApiToken,
    repo: str | None = None,
    # Issue numbers are Postgres integers; pages bounded so the offset stays one.
    issue: Annotated[int | None, Parameter(ge=1, le=2**31 - 1)] = None,
    run_state: Annotated[str | None, Parameter(query="state")] = None,
    mode: str | None = None,
    page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Parameter(ge=1, le=100)] = 30,
) -> dict[str, Any]:
    """Runs, newest first; `state` is a run state, `active` or `finished`."""
    listed = await reads.run_list(
        rt,
        token,
        repository=repo,
        issue_number=issue,
        state=run_state,
        mode=mode,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return {**listed, "page": page, "per_page": per_page}


@get("/api/runs/{run_id:int}", dependencies=TOKEN)
async def show_run(rt: Runtime, token: ApiToken, run_id: int) -> dict[str, Any]:
    """One run with the events its agent reported."""
    return await reads.run(rt, token, run_id)


@get("/api/runs/{run_id:int}/log", dependencies=TOKEN)
async def read_log(
    token: ApiToken,
    run_id: int,
    after: Annotated[int, Parameter(ge=0, le=2**31 - 1)] = 0,  # chunk seqs are integers
    limit: Annotated[int, Parameter(ge=1, le=reads.MAX_LOG_CHUNKS)] = reads.MAX_LOG_CHUNKS,
) -> dict[str, Any]:
    """The run's terminal output after chunk `after`; pass `next_after` back to continue."""
    return await reads.log(token, run_id, after=after, limit=limit)


@get("/api/issues/{owner:str}/{name:str}/{number:int}", dependencies=TOKEN)
async def show_issue(
    rt: Runtime, token: ApiToken, owner: str, name: str, number: int
) -> dict[str, Any]:
    """One issue: labels, state, its runs, its plan's state and who holds its claim."""
    return await reads.issue(rt, token, f"{owner}/{name}", number)


@get("/api/fleet", dependencies=TOKEN)
async def fleet(rt: Runtime, token: ApiToken) -> dict[str, Any]:
    """Active runs, spawns and spend today per installation and mode against their budgets,
    active claims, and the kill switches."""
    return await reads.fleet(rt, token)


routes = [register_run, list_runs, show_run, read_log, show_issue, fleet]
