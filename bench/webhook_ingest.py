"""Webhook ingest: signed deliveries posted to a running `dispatch serve` (worker included) on
loopback, from a raw-asyncio keep-alive client (`bench/loadgen.py`).

Prints, for concurrency 1/10/50/100 (closed loop: that many requests in flight):
- accepted/s (202s per second) and acknowledgement latency p50/p99 for Dispatch;
- the same for the floor (`bench/floor_server.py`: same framework and server, HMAC check only)
  and the ratio Dispatch/floor;
- how long the worker then took to drain the backlog, and the CPU split (server process,
  PostgreSQL, this client) during the run;
then a steady open loop at 200/s for 10 s (latency from the scheduled send time, so a stall
counts fully), and the loss check: every acknowledged delivery must be in the `delivery` journal
and eventually `processed`.

Payloads are real GitHub examples (~13 KB): `issue_comment.created` without a command and
`issues.labeled` (label `bug`, so no GitHub call): each is journaled, queued, and processed by
the worker (issue cache upsert, command parsing). Deliveries are not paced by anything.

    python bench/webhook_ingest.py [--quick] [--total 3000] [--rate 200] [--seconds 10]
                                   [--profile] [--no-worker]

Targets: >= 500 accepted/s, p99 < 25 ms at 200/s, zero lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intake.signatures import github_signature
from bench import loadgen
from bench.common import (
    Child,
    CpuMeter,
    PySpy,
    dispatch_env,
    environment,
    install_signal_handlers,
    leaf_frames,
    pg_top_statements,
    serve,
    top_frames,
    wait_for_quiet,
)
from tests.harness import free_port
from tests.webhooks import example

CONCURRENCIES = (1, 10, 50, 100)
TARGET_RATE = 500.0
TARGET_P99_MS = 25.0


ISSUES = 1000  # distinct issues the deliveries are about (and comments, one per issue)


def payloads(installation_id: int) -> list[tuple[str, list[bytes]]]:
    """For each event kind, ISSUES bodies that differ in the issue (and comment) they are about,
    so the worker's issue-cache upserts do not all queue on one row."""
    kinds: list[tuple[str, list[bytes]]] = []
    for event, name in (("issue_comment", "issue_comment/created"), ("issues", "issues/labeled")):
        base = example(name, installation_id=installation_id)
        bodies = []
        for n in range(ISSUES):
            payload = dict(base)
            payload["issue"] = {**base["issue"], "number": 1000 + n, "id": 900000 + n}
            if "comment" in base:
                payload["comment"] = {**base["comment"], "id": 800000 + n}
            bodies.append(json.dumps(payload).encode())
        kinds.append((event, bodies))
    return kinds


_signed: dict[int, list[list[str]]] = {}


def _signatures(secret: str, kinds: list[tuple[str, list[bytes]]]) -> list[list[str]]:
    key = id(kinds)
    if key not in _signed:
        _signed[key] = [[github_signature(secret, body) for body in bodies] for _, bodies in kinds]
    return _signed[key]


class Deliveries:
    """Builds signed requests and remembers each one's guid by request index."""

    def __init__(self, secret: str, kinds: list[tuple[str, list[bytes]]], port: int) -> None:
        self.kinds, self.port = kinds, port
        self.guids: dict[int, str] = {}
        # Signatures are over the body only: computed once per body, so the client stays cheap.
        self.signatures = _signatures(secret, kinds)

    def make(self, i: int) -> bytes:
        kind = i % len(self.kinds)
        event, bodies = self.kinds[kind]
        which = (i // len(self.kinds)) % len(bodies)
        guid = str(uuid.uuid4())
        self.guids[i] = guid
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-Hub-Signature-256": self.signatures[kind][which],
        }
        return loadgen.build_request(
            f"127.0.0.1:{self.port}", "/webhooks/github", bodies[which], headers
        )

    def acknowledged(self, result: loadgen.Result) -> list[str]:
        return [self.guids[i] for i, status in result.by_index.items() if status == 202]


async def backlog(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM delivery WHERE state = 'queued'"))


async def drain(connection: asyncpg.Connection, timeout: float = 600) -> float:
    """Seconds until no delivery is left queued."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await backlog(connection) == 0:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


def fmt(result: loadgen.Result) -> str:
    accepted = result.statuses.get(202, 0) / result.elapsed if result.elapsed else 0.0
    return f"{accepted:7.0f}/s  p50 {result.pct(50):6.2f} ms  p99 {result.pct(99):6.2f} ms"


async def main(args: argparse.Namespace) -> int:
    total = args.total
    with environment(pg_stats=args.pg_stats) as (dsn, fake, scratch):
        installation = fake.add_installation("Codertocat", "User")
        fake.add_repo(installation, "Codertocat/Hello-World")
        env = dispatch_env(dsn, fake, scratch)
        server_args = ["--no-worker"] if args.no_worker else []
        dispatch = serve(env, scratch, *server_args)
        floor_port = free_port()
        floor = Child(
            [
                sys.executable,
                str(Path(__file__).parent / "floor_server.py"),
                str(floor_port),
                fake.webhook_secret,
            ],
            env,
            floor_port,
            scratch / "floor.log",
        )
        floor.wait_http("/")
        kinds = payloads(installation)
        acked: list[str] = []
        other_statuses: dict[int, int] = {}
        connection = await asyncpg.connect(dsn)
        ok = True
        try:
            print(
                f"payloads {[len(b[0]) for _, b in kinds]} bytes about {ISSUES} issues; "
                f"{total} requests per level; "
                f"server {'without' if args.no_worker else 'with'} the worker"
            )
            # Warm-up (not reported, but counted in the loss check).
            for port, keep in ((dispatch.port, True), (floor.port, False)):
                warm = Deliveries(fake.webhook_secret, kinds, port)
                result = await loadgen.closed_loop("127.0.0.1", port, warm.make, 200, 10)
                if keep:
                    acked += warm.acknowledged(result)
            if not args.no_worker:
                await drain(connection)

            print(
                f"{'conc':>4}  {'dispatch accepted, ack latency':<40}  {'floor (HMAC only)':<40}  "
                f"{'ratio':>5}  {'backlog':>7}  {'drain':>6}  cpu during the dispatch run"
            )
            rates: dict[int, float] = {}
            for concurrency in CONCURRENCIES:
                batch = Deliveries(fake.webhook_secret, kinds, dispatch.port)
                pids = {"server": dispatch.pid, "postgres": 0, "client+fake": os.getpid()}
                profile = args.profile and concurrency == 50
                spy = PySpy(dispatch.pid, scratch / "ingest-c50.txt") if profile else None
                with CpuMeter(pids) as cpu:
                    if spy:
                        spy.__enter__()
                    ours = await loadgen.closed_loop(
                        "127.0.0.1", dispatch.port, batch.make, total, concurrency
                    )
                    if spy:
                        spy.__exit__()
                acked += batch.acknowledged(ours)
                for status, count in ours.statuses.items():
                    if status != 202:
                        other_statuses[status] = other_statuses.get(status, 0) + count
                left = 0 if args.no_worker else await backlog(connection)
                drained = 0.0 if args.no_worker else await drain(connection)
                if args.pg_stats and concurrency == 50:
                    stats = await pg_top_statements(dsn, limit=12)
                if args.pg_stats and concurrency == 10:
                    await pg_top_statements(dsn)  # reset before c=50
                base_batch = Deliveries(fake.webhook_secret, kinds, floor.port)
                base = await loadgen.closed_loop(
                    "127.0.0.1", floor.port, base_batch.make, total, concurrency
                )
                rates[concurrency] = ours.statuses.get(202, 0) / ours.elapsed
                print(
                    f"{concurrency:>4}  {fmt(ours):<40}  {fmt(base):<40}  "
                    f"{ours.rate / base.rate:5.2f}  {left:>7}  {drained:5.1f}s  {cpu.summary()}"
                )
                if spy:
                    report_profile(scratch / "ingest-c50.txt", "c=50 closed loop")
                if args.pg_stats and concurrency == 50:
                    print("  database time by statement, c=50 run and its drain:")
                    for line in stats:
                        print(f"    {line}")

            steady_batch = Deliveries(fake.webhook_secret, kinds, dispatch.port)
            spy = PySpy(dispatch.pid, scratch / "ingest-steady.txt") if args.profile else None
            pids = {"server": dispatch.pid, "postgres": 0, "client+fake": os.getpid()}
            with CpuMeter(pids) as cpu:
                if spy:
                    spy.__enter__()
                steady = await loadgen.open_loop(
                    "127.0.0.1",
                    dispatch.port,
                    steady_batch.make,
                    rate=args.rate,
                    seconds=args.seconds,
                )
                if spy:
                    spy.__exit__()
            acked += steady_batch.acknowledged(steady)
            for status, count in steady.statuses.items():
                if status != 202:
                    other_statuses[status] = other_statuses.get(status, 0) + count
            left = 0 if args.no_worker else await backlog(connection)
            print(
                f"steady {args.rate:.0f}/s for {args.seconds:.0f} s (open loop): sent "
                f"{steady.count} in {steady.elapsed:.1f} s, p50 {steady.pct(50):.2f} ms, "
                f"p99 {steady.pct(99):.2f} ms, max {max(steady.latencies) * 1000:.1f} ms, "
                f"statuses {steady.statuses}; backlog at the end {left}; cpu {cpu.summary()}"
            )
            for line in stalls(steady, args.rate):
                print(f"  {line}")
            if spy:
                report_profile(scratch / "ingest-steady.txt", "steady 200/s")

            # Loss check: every acknowledged delivery is journaled, and (with the worker) all
            # of them end up processed.
            if not args.no_worker:
                drained = await drain(connection)
            journaled = {
                row["guid"]: row["state"]
                for row in await connection.fetch(
                    "SELECT guid, state FROM delivery WHERE guid = ANY($1)", acked
                )
            }
            missing = [guid for guid in acked if guid not in journaled]
            states: dict[str, int] = {}
            for state in journaled.values():
                states[state] = states.get(state, 0) + 1
            unprocessed = sum(c for s, c in states.items() if s != "processed")
            print(
                f"acknowledged {len(acked)}, journaled {len(journaled)}, lost {len(missing)}; "
                f"journal states {states}; non-202 answers {other_statuses or 'none'}"
            )
            best = max(rates.values())
            rate_ok = best >= TARGET_RATE
            p99_ok = steady.pct(99) < TARGET_P99_MS
            lost_ok = not missing and (args.no_worker or unprocessed == 0)
            print(
                f"targets: >= {TARGET_RATE:.0f} accepted/s: {'met' if rate_ok else 'NOT met'} "
                f"(best {best:.0f}/s, at c=1 {rates[1]:.0f}/s); p99 < {TARGET_P99_MS:.0f} ms at "
                f"{args.rate:.0f}/s: {'met' if p99_ok else 'NOT met'} ({steady.pct(99):.1f} ms); "
                f"zero lost: {'met' if lost_ok else 'NOT met'}"
            )
            ok = rate_ok and p99_ok and lost_ok
        finally:
            await connection.close()
            dispatch.stop()
            floor.stop()
    return 0 if ok else 1


def stalls(result: loadgen.Result, rate: float, threshold: float = 0.02) -> list[str]:
    """Episodes where consecutive requests took longer than `threshold` (by scheduled send
    time): when they started, how long they lasted, the worst latency."""
    episodes: list[list[float]] = []
    for i in sorted(result.latency_by_index):
        latency = result.latency_by_index[i]
        at = i / rate
        if latency <= threshold:
            continue
        if episodes and at - episodes[-1][1] <= 2 / rate:
            episodes[-1][1] = at
            episodes[-1][2] = max(episodes[-1][2], latency)
            episodes[-1][3] += 1
        else:
            episodes.append([at, at, latency, 1])
    if not episodes:
        return [f"no request above {threshold * 1000:.0f} ms"]
    worst = sorted(episodes, key=lambda e: -e[2])[:5]
    lines = [f"{len(episodes)} episode(s) with requests above {threshold * 1000:.0f} ms; worst:"]
    for start, end, top, count in sorted(worst):
        lines.append(
            f"  at {start:6.2f} s: {count} request(s) over {end - start + 1 / rate:.3f} s, "
            f"worst {top * 1000:.0f} ms"
        )
    return lines


def report_profile(path: Path, label: str) -> None:
    print(f"  py-spy, {label}: functions of app/ on the stack (share of samples)")
    for frame, share in top_frames(path, limit=12):
        print(f"    {share * 100:5.1f}%  {frame}")
    print("  leaf frames (self time)")
    for frame, share in leaf_frames(path, limit=12):
        print(f"    {share * 100:5.1f}%  {frame}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--total", type=int, default=3000, help="requests per concurrency level")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the server (c=50, steady)")
    parser.add_argument("--no-worker", action="store_true", help="serve with --no-worker")
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements; print the top statements of the c=50 run",
    )
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.total, parsed.seconds = 300, 2.0
    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(main(parsed)))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
