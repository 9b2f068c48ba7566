"""Alert ingest: Grafana alert webhooks posted to a running `dispatch serve` (worker included, as
deployed) on loopback, from the raw-asyncio keep-alive client in `bench/loadgen.py`.

Every delivery is `/work/shared/fixtures/alerts/grafana-firing.json` (two alerts: billing and
auth) with each alert's `msg` label rewritten: mostly a repeat of an error already sent, with new
ids, order numbers, UUIDs, amounts and timestamps (which normalisation removes, so the
fingerprint is the same), sometimes a new error (different wording). The bench knows which error
each alert is, and checks its count of distinct errors against the app's own `fingerprint()`.

Prints, for concurrency 1/10/50 (closed loop) and then an open loop at a steady rate:
- deliveries accepted/s (and alerts/s, two per delivery), acknowledgement latency p50/p99;
- the backlog left when the load stopped, how long the worker took to drain it (all deliveries
  processed; all new errors' issues opened), the CPU split, and the GitHub calls it made;
then the checks: every acknowledged delivery journaled and processed (lost must be 0), one
`alert_event` per acknowledged alert, and distinct fingerprints = GitHub issues opened = distinct
errors sent.

Agent dispatch is kept out of the way: DAILY_SPAWN_BUDGET_AUTO_INVESTIGATE=0 (the gates still
run and refuse), and the GitHub content budgets are raised (GITHUB_CONTENT_PER_MINUTE/_PER_HOUR)
so issue creation is not throttled. Embeddings are off (as in the other benches).

    python bench/alert_ingest.py [--quick] [--total 1500] [--rate 200] [--seconds 20]
                                 [--new-share 0.03] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import string
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intake.journal import decode
from app.remediation.fingerprint import fingerprint
from bench import loadgen
from bench.common import (
    CpuMeter,
    PySpy,
    TimedFakeGitHub,
    dispatch_env,
    environment,
    leaf_frames,
    serve,
    top_frames,
    wait_for_quiet,
)
from tests.webhooks import example, signed

FIXTURE = Path("/work/shared/fixtures/alerts/grafana-firing.json")
TOKEN = "bench-grafana-token"
ALERTS_REPO = "octo-org/alerts"
CONCURRENCIES = (1, 10, 50)
SEED = 20261121

# Words for new errors: each (slot, k) is one error, its wording picked from three lists (mixed
# radix on k, so two errors never share a wording). Slot 0 is the fixture's billing alert, slot 1
# its auth alert; the volatile parts around the wording vary on every occurrence.
_FAILURES = [
    "card declined",
    "insufficient funds",
    "expired card",
    "issuer unavailable",
    "fraud check rejected",
    "currency not supported",
    "duplicate charge blocked",
    "gateway timeout",
    "invalid billing address",
    "tax service unreachable",
    "refund failed",
    "capture window closed",
    "authorization hold lost",
    "3DS challenge abandoned",
    "mandate revoked",
    "payout account frozen",
    "settlement mismatch",
    "invoice locked",
    "coupon already redeemed",
    "price changed during checkout",
]
_AUTH_FAILURES = [
    "upstream 503",
    "upstream 502",
    "refresh token reused",
    "signing key rotated",
    "clock skew too large",
    "audience mismatch",
    "session store unavailable",
    "consent revoked",
    "MFA state missing",
    "identity provider throttled",
]
_WHERE = [
    "at the acquirer",
    "in the retry queue",
    "after webhook replay",
    "during reconciliation",
    "in the mobile flow",
    "for subscription renewal",
    "on the legacy endpoint",
    "in the EU region",
    "after the schema migration",
    "while splitting the order",
    "for marketplace sellers",
    "on guest checkout",
    "in the nightly batch",
    "via the partner API",
    "for gift cards",
    "after a currency switch",
    "in the admin console",
    "for B2B invoices",
    "on the kiosk terminals",
    "behind the feature flag",
]
_HANDLER = [
    "CheckoutController",
    "BillingWorker",
    "LedgerSync",
    "PaymentsGateway",
    "RefundJob",
    "InvoiceMailer",
    "SessionService",
    "TokenIssuer",
    "AccountLinker",
    "WebhookRelay",
    "CartPricing",
    "TaxEngine",
    "FraudScreen",
    "PayoutScheduler",
    "SubscriptionRenewer",
    "CouponService",
    "ReceiptRenderer",
    "OrderSplitter",
    "CurrencyConverter",
    "AuditTrail",
    "KioskBridge",
    "PartnerProxy",
    "AdminConsole",
    "MobileBff",
    "GuestCheckout",
]


def _phrase(slot: int, k: int) -> str:
    failures = _FAILURES if slot == 0 else _AUTH_FAILURES
    if k >= len(failures) * len(_WHERE) * len(_HANDLER):
        raise ValueError(f"more new errors than wordings for slot {slot}")
    k, failure = divmod(k, len(failures))
    handler, where = divmod(k, len(_WHERE))
    return f"{failures[failure]} {_WHERE[where]} in {_HANDLER[handler]}"


def _cus(rng: random.Random) -> str:
    tail = rng.choices(string.ascii_letters + string.digits, k=7)
    return "cus_" + "".join(tail) + rng.choice(string.digits)


def message(slot: int, k: int, rng: random.Random) -> str:
    """One occurrence of error (slot, k): its wording, with fresh volatile values."""
    if slot == 0:
        return (
            f"Failed to process payment for {_cus(rng)} (order {rng.randint(10000, 99999)}, "
            f"${rng.randint(1, 900)}.{rng.randint(10, 99)}): {_phrase(0, k)}"
        )
    return (
        f"Token refresh failed for user {uuid.UUID(int=rng.getrandbits(128), version=4)} "
        f"at {rng.randint(1_700_000_000, 1_800_000_000)}: {_phrase(1, k)}"
    )


class Alerts:
    """Grafana deliveries for one load level; `make(i)` is the raw HTTP request."""

    def __init__(self, level: str, port: int, new_share: float, catalogue: list[int]) -> None:
        self.level, self.port, self.new_share = level, port, new_share
        # catalogue[slot] = how many distinct errors of that slot exist so far (shared across
        # levels, so later levels repeat the earlier levels' errors too).
        self.catalogue = catalogue
        self.template = json.loads(FIXTURE.read_text())
        self.rng = random.Random(f"{SEED}:{level}")
        self.sent: dict[int, list[tuple[int, int, int, str]]] = {}
        self.host = f"127.0.0.1:{port}"

    def key(self, i: int) -> str:
        return f"{self.level}:{i}"

    def make(self, i: int) -> bytes:
        payload = json.loads(json.dumps(self.template))
        payload["benchDelivery"] = self.key(i)
        alerts = []
        for slot, alert in enumerate(payload["alerts"]):
            if self.catalogue[slot] == 0 or self.rng.random() < self.new_share:
                k = self.catalogue[slot]
                self.catalogue[slot] += 1
            else:
                k = self.rng.randrange(self.catalogue[slot])
            text = message(slot, k, self.rng)
            alert["labels"]["msg"] = text
            alert["annotations"]["description"] = text
            alert["annotations"]["summary"] = f"{alert['labels']['source']}: {text}"
            alert["values"]["A"] = self.rng.randint(1, 9)
            alerts.append((slot, k, alert["values"]["A"], text))
        self.sent[i] = alerts
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        return loadgen.build_request(self.host, "/webhooks/grafana", body, headers)

    def acknowledged(self, result: loadgen.Result) -> dict[str, list[tuple[int, int, int, str]]]:
        return {self.key(i): self.sent[i] for i, status in result.by_index.items() if status == 202}


# ------------------------------------------------------------------------- database views


async def queued_deliveries(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM delivery WHERE source = 'grafana' AND state = 'queued'"
        )
    )


async def errors_without_issue(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval("SELECT count(*) FROM alert_error WHERE issue_number IS NULL")
    )


async def due_jobs(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked') "
            "AND execute_after <= now()"
        )
    )


async def queue_state(connection: asyncpg.Connection) -> dict[str, int]:
    rows = await connection.fetch(
        "SELECT entrypoint, status, execute_after > now() AS later, count(*) FROM pgqueuer "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2"
    )
    return {
        f"{row['entrypoint']} {row['status']}{' (later)' if row['later'] else ''}": row["count"]
        for row in rows
    }


@dataclass
class Drain:
    deliveries_s: float  # until no Grafana delivery is left queued
    issues_s: float  # until every error has its issue number
    jobs_s: float  # until no job is due (delayed summary refreshes may remain)
    timed_out: bool = False


async def drain(connection: asyncpg.Connection, timeout: float = 900) -> Drain:
    start = time.perf_counter()
    marks: dict[str, float] = {}
    while time.perf_counter() - start < timeout:
        now = time.perf_counter() - start
        if "deliveries" not in marks and await queued_deliveries(connection) == 0:
            marks["deliveries"] = now
        if (
            "deliveries" in marks
            and "issues" not in marks
            and await errors_without_issue(connection) == 0
        ):
            marks["issues"] = now
        if "issues" in marks and await due_jobs(connection) == 0:
            marks["jobs"] = now
            break
        await asyncio.sleep(0.05)
    timed_out = "jobs" not in marks
    late = time.perf_counter() - start
    return Drain(
        marks.get("deliveries", late), marks.get("issues", late), marks.get("jobs", late), timed_out
    )


# ------------------------------------------------------------------------- GitHub calls


_ID = re.compile(r"/\d+(?=/|$)")


def github_calls(fake: TimedFakeGitHub, since: int) -> Counter[str]:
    """GitHub API calls after arrival number `since`, by method and path shape."""
    with fake.lock:
        arrivals = fake.arrivals[since:]
    return Counter(
        f"{method} {_ID.sub('/N', path.split('?')[0])}" for _, method, path, _ in arrivals
    )


def calls_summary(calls: Counter[str], limit: int = 6) -> str:
    top = ", ".join(f"{name} {count}" for name, count in calls.most_common(limit))
    return f"{sum(calls.values())} calls ({top})"


# ------------------------------------------------------------------------- main


def fmt(result: loadgen.Result) -> str:
    accepted = result.statuses.get(202, 0) / result.elapsed if result.elapsed else 0.0
    return (
        f"{accepted:6.0f}/s ({2 * accepted:5.0f} alerts/s)  p50 {result.pct(50):6.2f} ms  "
        f"p99 {result.pct(99):6.2f} ms"
    )


async def install(fake: TimedFakeGitHub, port: int, connection: asyncpg.Connection) -> None:
    """Tell Dispatch about the App's installation the way GitHub does: `installation.created`,
    signed, with the alerts repository in it; wait until the worker has recorded it."""
    installation = fake.add_installation("octo-org", "Organization")
    repo = fake.add_repo(installation, ALERTS_REPO)
    payload = example("installation/created")
    payload["installation"]["id"] = installation
    payload["installation"]["account"]["login"] = "octo-org"
    payload["repositories"] = [
        {k: repo[k] for k in ("id", "node_id", "name", "full_name", "private")}
    ]
    body, headers = signed(fake.webhook_secret, "installation", payload)
    answer = httpx.post(
        f"http://127.0.0.1:{port}/webhooks/github", content=body, headers=headers, timeout=10
    )
    if answer.status_code != 202:
        raise RuntimeError(f"installation.created answered {answer.status_code}: {answer.text}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await connection.fetchval(
            "SELECT 1 FROM repository WHERE lower(full_name) = lower($1) AND removed_at IS NULL",
            ALERTS_REPO,
        ):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the worker did not record the installation within 60 s")


async def main(args: argparse.Namespace) -> int:
    wait_for_quiet()
    with environment() as (dsn, fake, scratch):
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            GRAFANA_WEBHOOK_TOKEN=TOKEN,
            DISPATCH_ALERTS_REPO=ALERTS_REPO,
            GITHUB_CONTENT_PER_MINUTE="1000000",
            GITHUB_CONTENT_PER_HOUR="10000000",
            DAILY_SPAWN_BUDGET_AUTO_INVESTIGATE="0",
        )
        dispatch = serve(env, scratch)
        port = dispatch.port
        assert port is not None
        connection = await asyncpg.connect(dsn)
        ok = True
        try:
            await install(fake, port, connection)
            await drain(connection, timeout=60)
            print(
                f"dispatch serve (with its worker) on :{port}; alerts repository "
                f"{ALERTS_REPO} installed via a signed installation.created; "
                "DAILY_SPAWN_BUDGET_AUTO_INVESTIGATE=0, GITHUB_CONTENT_PER_MINUTE=1000000, "
                "GITHUB_CONTENT_PER_HOUR=10000000, DISPATCH_EMBEDDINGS=off"
            )
            catalogue = [0, 0]
            acked: dict[str, list[tuple[int, int, int, str]]] = {}
            other_statuses: Counter[int] = Counter()
            pids = {"server": dispatch.pid, "postgres": 0, "client+fake": os.getpid()}

            # Warm-up (not reported; its deliveries count in the checks).
            warm = Alerts("warm", port, args.new_share, catalogue)
            result = await loadgen.closed_loop("127.0.0.1", port, warm.make, 100, 5)
            acked |= warm.acknowledged(result)
            await drain(connection)

            size = len(FIXTURE.read_bytes())
            print(
                f"{args.total} deliveries per closed-loop level, ~{size / 1024:.1f} KB each, two "
                f"alerts each; a new error for {args.new_share:.0%} of alerts, repeats otherwise"
            )
            print(
                f"{'level':<14} {'accepted deliveries/s, ack latency':<52} {'backlog':>7} "
                f"{'drain: deliv.':>13} {'issues':>6} {'jobs':>6}  new errors  cpu during the load"
            )
            rates: dict[str, float] = {}
            levels: list[tuple[str, int | None]] = [(f"c={c}", c) for c in CONCURRENCIES]
            levels.append((f"open {args.rate:.0f}/s", None))
            for label, concurrency in levels:
                batch = Alerts(label, port, args.new_share, catalogue)
                before_errors = sum(catalogue)
                mark = len(fake.arrivals)
                profile = args.profile and concurrency in (1, 50)
                trace = scratch / f"alerts-c{concurrency}.txt"
                spy = PySpy(dispatch.pid, trace) if profile else None
                with CpuMeter(pids) as cpu:
                    if spy:
                        spy.__enter__()
                    if concurrency is None:
                        result = await loadgen.open_loop(
                            "127.0.0.1", port, batch.make, args.rate, args.seconds
                        )
                    else:
                        total = args.total if concurrency > 1 else max(200, args.total // 3)
                        result = await loadgen.closed_loop(
                            "127.0.0.1", port, batch.make, total, concurrency
                        )
                    if spy:
                        spy.__exit__()
                acked |= batch.acknowledged(result)
                other_statuses.update({s: n for s, n in result.statuses.items() if s != 202})
                left = await queued_deliveries(connection)
                drained = await drain(connection)
                calls = github_calls(fake, mark)
                rates[label] = result.statuses.get(202, 0) / result.elapsed
                extra = (
                    f"; max {max(result.latencies) * 1000:.0f} ms"
                    if concurrency is None and result.latencies
                    else ""
                )
                print(
                    f"{label:<14} {fmt(result) + extra:<52} {left:>7} "
                    f"{drained.deliveries_s:12.1f}s {drained.issues_s:5.1f}s "
                    f"{drained.jobs_s:5.1f}s  {sum(catalogue) - before_errors:>10}  "
                    f"{cpu.summary()}" + ("  (drain TIMED OUT)" if drained.timed_out else "")
                )
                print(f"{'':<14} GitHub during load + drain: {calls_summary(calls)}")
                if spy:
                    report_profile(trace, f"{label} closed loop")

            ok = await checks(connection, fake, acked, other_statuses)
            print(f"jobs left in the queue: {await queue_state(connection) or 'none'}")
            best = max(rates.values())
            print(f"best accepted rate {best:.0f} deliveries/s ({2 * best:.0f} alerts/s)")
        finally:
            await connection.close()
            dispatch.stop()
    return 0 if ok else 1


async def checks(
    connection: asyncpg.Connection,
    fake: TimedFakeGitHub,
    acked: dict[str, list[tuple[int, int, int, str]]],
    other_statuses: Counter[int],
) -> bool:
    rows = await connection.fetch(
        "SELECT body, payload, state, guid FROM delivery WHERE source = 'grafana'"
    )
    # The journal stores bodies compressed (`body`); older rows kept a jsonb `payload`.
    journaled = {
        (decode(row["body"]) if row["body"] is not None else json.loads(row["payload"]))[
            "benchDelivery"
        ]: row
        for row in rows
    }
    lost = [key for key in acked if key not in journaled]
    states = Counter(row["state"] for row in rows)
    unprocessed = sum(n for state, n in states.items() if state != "processed")
    print(
        f"\ndeliveries acknowledged {len(acked)}, journaled {len(rows)}, lost {len(lost)}; "
        f"journal states {dict(states)}; non-202 answers {dict(other_statuses) or 'none'}"
    )

    alerts = [alert for sent in acked.values() for alert in sent]
    events = await connection.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(count), 0) AS total FROM alert_event "
        "WHERE status = 'firing'"
    )
    counted = await connection.fetchval("SELECT coalesce(sum(event_count), 0) FROM alert_error")
    sent_total = sum(count for _, _, count, _ in alerts)
    print(
        f"alerts acknowledged {len(alerts)} (occurrences {sent_total}); alert_event rows "
        f"{events['n']} (occurrences {events['total']}); sum of event_count {counted}"
    )

    errors = {(slot, k) for slot, k, _, _ in alerts}
    # The app's own fingerprint of every alert sent: must give one per error.
    by_error: dict[tuple[int, int], set[str]] = {}
    sources = {0: ("billing", "charge-customer"), 1: ("auth", "token-refresh")}
    for slot, k, _, text in alerts:
        by_error.setdefault((slot, k), set()).add(fingerprint(*sources[slot], text))
    split = sum(len(fps) > 1 for fps in by_error.values())
    expected = {fp for fps in by_error.values() for fp in fps}
    merged = len(by_error) - len(expected) + sum(len(fps) - 1 for fps in by_error.values())
    stored = {
        row["fingerprint"]: row
        for row in await connection.fetch("SELECT fingerprint, issue_number FROM alert_error")
    }
    with fake.lock:
        issues = dict(fake._find_repo(ALERTS_REPO).issues)
    numbers = [row["issue_number"] for row in stored.values() if row["issue_number"] is not None]
    print(
        f"distinct errors sent {len(errors)} (the app's fingerprint() gives {len(expected)}; "
        f"errors split over several fingerprints {split}, merged {merged}); alert_error rows "
        f"{len(stored)}, with an issue {len(numbers)} (distinct numbers {len(set(numbers))}); "
        f"issues on GitHub {len(issues)}"
    )
    ok_lost = not lost and unprocessed == 0
    ok_events = events["n"] == len(alerts) and counted == sent_total
    ok_issues = len(errors) == len(expected) == len(stored) == len(set(numbers)) == len(issues)
    ok_issues = ok_issues and set(stored) == expected
    print(
        f"checks: lost 0 and all processed: {'yes' if ok_lost else 'NO'}; one event per alert: "
        f"{'yes' if ok_events else 'NO'}; fingerprints = issues = distinct errors: "
        f"{'yes' if ok_issues else 'NO'}"
    )
    return ok_lost and ok_events and ok_issues


def report_profile(path: Path, label: str) -> None:
    print(f"  py-spy, {label}: functions of app/ on the stack (share of samples)")
    for frame, share in top_frames(path, limit=12):
        print(f"    {share * 100:5.1f}%  {frame}")
    print("  leaf frames (self time):")
    for frame, share in leaf_frames(path, limit=8):
        print(f"    {share * 100:5.1f}%  {frame}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller levels, 5 s open loop")
    parser.add_argument("--total", type=int, default=None, help="deliveries per closed level")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop deliveries/s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--new-share", type=float, default=0.03)
    parser.add_argument("--profile", action="store_true", help="py-spy the server at c=1, c=50")
    args = parser.parse_args()
    args.total = args.total or (300 if args.quick else 1500)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
