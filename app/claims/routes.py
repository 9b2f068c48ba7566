"""`POST /api/claims` (claim the next ready issue), `POST /api/claims/{id}/heartbeat` (renew the
lease) and `POST /api/claims/{id}/release` (end it with an outcome), for agent API tokens, and
`GET /api/claims/{id}` to read one back."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import Provide

from app.claims import holding, records, taking
from app.runtime import Runtime
from app.tokens import service as tokens
from app.tokens.guard import api_token, require_repository, require_scope
from app.tokens.service import ApiToken
from app.web.bodies import decode
from app.web.errors import error


class ClaimRequest(msgspec.Struct, forbid_unknown_fields=True):
    agent: str
    repositories: list[str] | None = None
    types: list[str] | None = None
    kinds: list[str] | None = None


class ReleaseRequest(msgspec.Struct, forbid_unknown_fields=True):
    outcome: str
    reason: str | None = None
    pr_url: str | None = None


def claim_body(claimed: records.Claimed) -> dict[str, Any]:
    claim = claimed.claim
    body: dict[str, Any] = {
        "claim": {
            **claim.as_json(),
            "heartbeat": f"/api/claims/{claim.id}/heartbeat",
            "release": f"/api/claims/{claim.id}/release",
        },
    }
    if claimed.follow_up is not None:
        # Review text is untrusted input for the agent; people without write permission are
        # listed with `shown: false` and no body.
        body["pull_request"] = claimed.follow_up.as_json()
        body["feedback"] = claimed.feedback
    elif claimed.issue is not None:
        body["issue"] = {**claimed.issue.as_json(), "url": claimed.url}
    return body


@post("/api/claims", status_code=201, dependencies={"token": Provide(api_token)})
async def claim_next(
    request: Request, rt: Runtime, token: ApiToken, follow_ups: Any
) -> Response[Any]:
    """Claim the most urgent, oldest `status/ready` issue nobody works on (or, with `kinds`
    naming `pr_follow_up`, a pull request whose change requests wait): 201 with the claim and
    the issue (or the pull request and its review feedback), or 204 when nothing waits."""
    # `follow_ups` is the server's `FollowUpSource` (typed Any: the signature model cannot
    # validate a protocol).
    require_scope(token, tokens.AGENT)
    body = decode(await request.body(), ClaimRequest)
    claimed = await taking.claim_next(
        rt,
        token,
        body.agent,
        repositories=body.repositories,
        types=body.types,
        kinds=body.kinds,
        follow_ups=follow_ups,
    )
    if claimed is None:
        return Response(None, status_code=204)
    return Response(claim_body(claimed), status_code=201)


@post(
    "/api/claims/{claim_id:int}/heartbeat",
    status_code=200,
    dependencies={"token": Provide(api_token)},
)
async def claim_heartbeat(rt: Runtime, token: ApiToken, claim_id: int) -> dict[str, Any]:
    """Keep the claim: its lease runs CLAIM_LEASE_MINUTES from now."""
    claim = await holding.heartbeat(rt, token, claim_id)
    return {"claim": claim.as_json()}


@post(
    "/api/claims/{claim_id:int}/release",
    status_code=200,
    dependencies={"token": Provide(api_token)},
)
async def claim_release(
    request: Request, rt: Runtime, token: ApiToken, claim_id: int
) -> dict[str, Any]:
    """End the claim: `done` (with `pr_url` when a pull request is open), `blocked` (with the
    `reason` a person needs) or `abandoned` (the issue goes back to the queue)."""
    body = decode(await request.body(), ReleaseRequest)
    claim = await holding.release(
        rt, token, claim_id, body.outcome, reason=body.reason, pr_url=body.pr_url
    )
    return {"claim": claim.as_json()}


@get("/api/claims/{claim_id:int}", dependencies={"token": Provide(api_token)})
async def claim_show(token: ApiToken, claim_id: int) -> Response[dict[str, Any]]:
    claim = await records.get(claim_id)
    if claim is None:
        return error(404, f"no claim {claim_id}")
    require_repository(token, claim.repository)
    return Response({"claim": claim.as_json()})


routes = [claim_next, claim_heartbeat, claim_release, claim_show]
