"""Who may read the portal, and how often.

A portal request presents its token in `?token=` or `Authorization: Bearer`; it is hashed before
anything is looked up (`admit`), and what was looked up is compared in constant time
(`customers.verified`). Requests are counted per token and per client address in fixed one-minute
windows kept in Postgres (`portal_rate`, unlogged), so every replica counts against the same
limits; a request past either limit gets 429 with the seconds left in the window, and the
retention job (`dispatch prune`) forgets finished windows. The counts are taken before the token
is checked, so guessing tokens is limited too.

A portal token also opens the live stream of a run on an issue its customer follows (the run
viewer asks `opens_run`), as long as the run's viewer links are open."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request

from app.agents.runs import Run
from app.db import engine, pruning
from app.installations import service as installations
from app.issues import boards
from app.portal import customers
from app.portal.customers import Customer
from app.runtime import Runtime


@dataclass(frozen=True)
class Presented:
    """What a request presented: the token's hash (of the empty string when none was sent), and
    whether it came in the query string (then links on the page carry it on)."""

    token: str
    token_hash: str
    in_query: bool


def presented(request: Request) -> Presented:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        token, in_query = credential.strip(), False
    else:
        token, in_query = request.query_params.get("token") or "", True
    # Hash whatever came (even nothing), so every answer costs the same work before the lookup.
    return Presented(token, customers.digest(token), in_query and bool(token))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_COUNT = """
INSERT INTO portal_rate (key, window_start, hits)
SELECT key, date_trunc('minute', now()), 1 FROM unnest($1::text[]) AS key ORDER BY key
ON CONFLICT (key, window_start) DO UPDATE SET hits = portal_rate.hits + 1
RETURNING key, hits, 60 - floor(extract(epoch FROM now() - window_start))::int AS seconds_left
"""

# The count and the token's lookup in one round trip (one statement, keys in a fixed order:
# concurrent counts never deadlock).
_ADMIT = f"""
WITH counted AS ({_COUNT})
SELECT (SELECT max(greatest(c.seconds_left, 1)) FROM counted c
        JOIN unnest($1::text[], $2::int[]) AS l(key, allowed) ON c.key = l.key
        WHERE c.hits > l.allowed) AS wait,
    customer.token_hash, {customers.COLUMNS}
FROM (SELECT 1) AS one
LEFT JOIN customer ON customer.token_hash = $3 AND customer.deleted_at IS NULL
"""


def _limits(rt: Runtime, who: Presented, address: str) -> dict[str, int]:
    limits = {f"a:{address}": rt.settings.portal_rate_per_address}
    if who.token:
        limits[f"t:{who.token_hash[:32]}"] = rt.settings.portal_rate_per_token
    return limits


async def admit(rt: Runtime, who: Presented, address: str, slug: str) -> Customer | int | None:
    """Count this request, then: the seconds to wait if it is past a limit, else the customer
    `slug` if the token is theirs, else None (for every other reason alike)."""
    limits = _limits(rt, who, address)
    keys = sorted(limits)
    async with engine.connection() as connection:
        row = await connection.fetchrow(_ADMIT, keys, [limits[k] for k in keys], who.token_hash)
    if row["wait"] is not None:
        return int(row["wait"])
    return customers.verified(row, slug, who.token_hash)


# Windows that have ended, by the database's clock (the one that counts them).
_PRUNE = """
DELETE FROM portal_rate
WHERE (key, window_start) IN (
    SELECT key, window_start FROM portal_rate WHERE window_start < date_trunc('minute', now())
    LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""


async def prune(*, batch: int, dry_run: bool = False) -> pruning.Pruned:
    """Forget finished rate-limit windows (a step of the retention job)."""
    what = "portal rate windows"
    if dry_run:
        rows, _ = await pruning.estimate(
            "SELECT count(*), NULL FROM portal_rate "
            "WHERE window_start < date_trunc('minute', now())"
        )
        return pruning.Pruned(what, rows)
    return pruning.Pruned(what, await pruning.in_batches(_PRUNE, batch=batch))


async def follows(customer: Customer, repository_id: int, repository: str, number: int) -> bool:
    """Whether the customer follows this issue: labelled for them, in a repository their
    installation still gives the App, not deleted or transferred away."""
    if repository_id not in await installations.repository_ids(customer.installation_id):
        return False
    found = await boards.labelled_issue(
        customer.installation_id, repository, number, customer.label
    )
    return found is not None


async def opens_run(token: str, run: Run) -> bool:
    """Whether `token` is a portal token whose customer follows the run's issue."""
    if not token.startswith(customers.TOKEN_PREFIX):
        return False
    customer = await customers.by_token(customers.digest(token))
    if customer is None or customer.installation_id != run.installation_id:
        return False
    return await follows(customer, run.repository_id, run.repository, run.issue_number)
