"""Webhook ingest, side by side with Probot and two floors, in one run on one machine.

Signed GitHub deliveries (real `issue_comment.created` / `issues.labeled` payloads, 12-14 KB)
are posted on loopback, closed loop, by N concurrent senders (default 1, 16 and 64), each
either opening a new connection per delivery (as GitHub does) or keeping one alive, to:

- Dispatch: `dispatch serve` as a user starts it (worker included; fsync and synchronous_commit
  on: a 202 means the delivery's journal row is committed);
- Probot with a no-op handler, installed by this script into a temporary folder from the npm
  registry (skipped with a message when npm is absent; `--no-probot` skips it too);
- the HMAC-only floor (`floor_server.py`: the same Litestar + uvicorn, signature check only);
- the durable floor: the same journal rows inserted and committed, one per statement, by a bare
  asyncpg loop at the same concurrency (no HTTP, no queue; the same figures in both rows).

Each table cell: acknowledged/s, ack latency p50 and p99 (new connections: from before the
connect). Targets of each row are measured back to back, so load from other work on the machine
falls on all of them alike; the load average before and after is printed. After Dispatch's run:
the backlog the worker had left and how long it took to drain, and the CPU Dispatch and
PostgreSQL used per delivery. Then an open loop (default 500/s for 60 s, keep-alive; latency from
the scheduled send time) with the largest backlog seen, the same schedule committed by the
durable floor (with synchronous_commit on, then off: the stalls that are the disk's fsync), a
developer's `/dispatch help` every 2 s meanwhile (webhook → 👀 at the fake GitHub), and the loss
check: the guid of every 202
is in the journal and every journaled delivery ends `processed`.

    python bench/webhook_ingest.py [--quick] [--total 3000] [--levels 1 16 64] [--rate 500]
                                   [--seconds 60] [--no-probot] [--profile] [--no-worker]
                                   [--worker-in-process]

Targets (issue 16): at 16 senders Dispatch acknowledges >= Probot's rate with p99 <= 50 ms; the
open loop at 500/s is acknowledged with p99 <= 25 ms, the backlog never above 2,000 and drained
within 10 s, while a command's 👀 p50 stays under 100 ms; zero lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intake import journal
from app.intake.signatures import github_signature
from bench import loadgen
from bench.command_latency import Client as Commenter
from bench.command_latency import Sample, Watcher
from bench.common import (
    UNPACED,
    Child,
    CpuMeter,
    PySpy,
    dispatch_env,
    environment,
    install_signal_handlers,
    leaf_frames,
    pct,
    pg_top_statements,
    serve,
    top_frames,
    wait_for_quiet,
)
from tests.harness import free_port
from tests.webhooks import example

LEVELS = (1, 16, 64)
PROBOT = "14"
TARGET_P99_16_MS = 50.0
TARGET_P99_MS = 25.0
TARGET_BACKLOG = 2000
TARGET_DRAIN_S = 10.0
TARGET_COMMAND_P50_MS = 100.0
COMMAND_EVERY_S = 2.0  # one `/dispatch help` (two GitHub writes) per 2 s: under 80 writes a minute


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

    def __init__(
        self, secret: str, kinds: list[tuple[str, list[bytes]]], port: int, keep_alive: bool
    ) -> None:
        self.kinds, self.port, self.keep_alive = kinds, port, keep_alive
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
        if not self.keep_alive:
            headers["Connection"] = "close"
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


def acknowledged(result: loadgen.Result) -> int:
    """Answers that acknowledge the delivery (Dispatch says 202, Probot 200)."""
    return sum(count for status, count in result.statuses.items() if 200 <= status < 300)


def fmt(result: loadgen.Result) -> str:
    accepted = acknowledged(result) / result.elapsed if result.elapsed else 0.0
    return f"{accepted:7.0f}/s  p50 {result.pct(50):6.2f} ms  p99 {result.pct(99):6.2f} ms"


async def main(args: argparse.Namespace) -> int:
    total = args.total
    load_before = os.getloadavg()
    with environment(pg_stats=args.pg_stats) as (dsn, fake, scratch):
        installation = fake.add_installation("Codertocat", "User")
        repository = fake.add_repo(installation, "Codertocat/Hello-World")
        # The commands measured during the open loop (and their warm-up) write to GitHub more
        # than its 80 content writes a minute: paced, their 👀 would wait for the next minute
        # (as `command_latency.py` does, the windows are set out of the way).
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            **UNPACED,
        )
        server_args = ["--no-worker"] if args.no_worker else []
        if args.worker_in_process:
            server_args.append("--worker-in-process")
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
        probot = None if args.no_probot else start_probot(scratch, fake.webhook_secret, env)
        kinds = payloads(installation)
        acked: list[str] = []
        other_statuses: dict[int, int] = {}
        connection = await asyncpg.connect(dsn)
        durable = DurableFloor(dsn, kinds)
        ok = True
        try:
            await durable.prepare()
            print(
                f"payloads {[len(b[0]) for _, b in kinds]} bytes about {ISSUES} issues; "
                f"{total} requests per cell; "
                f"server {'without' if args.no_worker else 'with'} the worker"
                f"{' in the web process' if args.worker_in_process else ''}; "
                f"Probot {probot.version if probot else 'skipped'}; "
                f"load average before {load_before[0]:.2f} {load_before[1]:.2f}"
            )
            targets: dict[str, Child] = {"dispatch": dispatch, "hmac": floor}
            if probot is not None:
                targets["probot"] = probot.child
            # Warm-up (not reported, but Dispatch's count in the loss check).
            for name, child in targets.items():
                for keep_alive in (True, False):
                    warm = Deliveries(fake.webhook_secret, kinds, child.port, keep_alive)
                    result = await loadgen.closed_loop(
                        "127.0.0.1", child.port, warm.make, 300, 16, keep_alive=keep_alive
                    )
                    if name == "dispatch":
                        acked += warm.acknowledged(result)
            await durable.run(200, 16)
            if not args.no_worker:
                await drain(connection)

            rows: list[Row] = []
            profiles: list[tuple[Path, str]] = []
            print(
                f"{'senders':<16}  {'Dispatch accepted/s, ack p50/p99':<36}  "
                f"{'Probot (no-op handler)':<36}  {'HMAC-only floor':<36}  "
                f"{'durable floor (asyncpg)':<36}  {'D/Probot':>8}  {'D/durable':>9}  "
                "backlog→drain  Dispatch CPU (server+postgres) per delivery"
            )
            for keep_alive in (False, True):
                for level in args.levels:
                    row = Row(keep_alive, level)
                    for name, child in targets.items():
                        batch = Deliveries(fake.webhook_secret, kinds, child.port, keep_alive)
                        pids = {name: child.pid, "postgres": 0, "client": os.getpid()}
                        profiled = args.profile and name == "dispatch" and level == 16
                        out = scratch / f"ingest-16-{keep_alive}.txt"
                        with (
                            CpuMeter(pids) as cpu,
                            PySpy(child.pid, out) if profiled else nullcontext(),
                        ):
                            result = await loadgen.closed_loop(
                                "127.0.0.1",
                                child.port,
                                batch.make,
                                total,
                                level,
                                keep_alive=keep_alive,
                            )
                        if profiled:
                            profiles.append((out, f"Dispatch, 16 senders, keep-alive {keep_alive}"))
                        row.results[name] = result
                        row.cpu[name] = cpu
                        if name == "dispatch":
                            acked += batch.acknowledged(result)
                            for status, count in result.statuses.items():
                                if status != 202:
                                    other_statuses[status] = other_statuses.get(status, 0) + count
                            if not args.no_worker:
                                row.backlog = await backlog(connection)
                                row.drained = await drain(connection)
                    if level not in durable_rows:
                        durable_rows[level] = await durable.run(total, level)
                    row.results["durable"] = durable_rows[level]
                    rows.append(row)
                    print(row.line(), flush=True)

            for out, label in profiles:
                report_profile(out, label)

            # A developer's command while the flood goes on: webhook → 👀 at the fake GitHub.
            watcher = Watcher(asyncio.get_running_loop())
            fake.on_call = watcher.on_call
            commenters = [
                Commenter(fake, installation, repository, dispatch.port, watcher, i)
                for i in range(int(args.seconds / COMMAND_EVERY_S) + 1)
            ]
            for commenter in commenters:  # each one's permission cached, as in command_latency
                await commenter.open()
                await commenter.command()
                commenter.close()
            await durable.close()  # its connections idle from here on
            steady_batch = Deliveries(fake.webhook_secret, kinds, dispatch.port, True)
            spy = PySpy(dispatch.pid, scratch / "ingest-steady.txt") if args.profile else None
            pids = {"server": dispatch.pid, "postgres": 0, "client+fake": os.getpid()}
            peak = Peak(await asyncpg.connect(dsn))
            with CpuMeter(pids) as cpu:
                if spy:
                    spy.__enter__()
                watching = asyncio.create_task(peak.watch())
                steady, commands = await asyncio.gather(
                    loadgen.open_loop(
                        "127.0.0.1",
                        dispatch.port,
                        steady_batch.make,
                        rate=args.rate,
                        seconds=args.seconds,
                    ),
                    commands_meanwhile(commenters, args.seconds),
                )
                if spy:
                    spy.__exit__()
            acked += steady_batch.acknowledged(steady)
            for status, count in steady.statuses.items():
                if status != 202:
                    other_statuses[status] = other_statuses.get(status, 0) + count
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            left = 0 if args.no_worker else await backlog(connection)
            after = 0.0 if args.no_worker else await drain(connection)
            peak.most = max(peak.most, left)
            print(
                f"steady {args.rate:.0f}/s for {args.seconds:.0f} s (open loop, keep-alive): sent "
                f"{steady.count} in {steady.elapsed:.1f} s, p50 {steady.pct(50):.2f} ms, "
                f"p99 {steady.pct(99):.2f} ms, max {max(steady.latencies) * 1000:.1f} ms, "
                f"statuses {steady.statuses}; backlog peak {peak.most}, at the end {left}, "
                f"drained {after:.1f} s after; cpu {cpu.summary()}"
            )
            for line in stalls(steady, args.rate):
                print(f"  {line}")
            eyes = [sample.eyes * 1000 for sample in commands]
            worst = max(eyes, default=float("nan"))
            print(
                f"meanwhile {len(commands)} commands (one per {COMMAND_EVERY_S:.0f} s): "
                f"webhook → 👀 p50 {pct(eyes, 50):.1f} ms, max {worst:.1f} ms; "
                f"ack p50 {pct([sample.ack * 1000 for sample in commands], 50):.1f} ms; reply p50 "
                f"{pct([sample.reply * 1000 for sample in commands], 50):.0f} ms"
            )
            # The same schedule straight into PostgreSQL: the stalls a durable acknowledgement
            # cannot avoid on this disk (fsync on), and what is left without waiting for fsync.
            for synchronous in (True, False):
                floor_steady = await durable.open_loop(
                    args.rate, args.seconds, synchronous_commit=synchronous
                )
                print(
                    f"durable floor, same open loop, synchronous_commit "
                    f"{'on' if synchronous else 'off'}: p50 {floor_steady.pct(50):.2f} ms, "
                    f"p99 {floor_steady.pct(99):.2f} ms, "
                    f"max {max(floor_steady.latencies) * 1000:.1f} ms"
                )
                for line in stalls(floor_steady, args.rate):
                    print(f"  {line}")
            if spy:
                report_profile(scratch / "ingest-steady.txt", f"steady {args.rate:.0f}/s")

            # Loss check: every acknowledged delivery is journaled, and (with the worker) all
            # of them end up processed.
            if not args.no_worker:
                await drain(connection)
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
            lost_ok = not missing and (args.no_worker or unprocessed == 0)
            if args.pg_stats:
                print("database time by statement, whole run:")
                for line in await pg_top_statements(dsn, limit=12):
                    print(f"  {line}")
            ok = report_targets(rows, steady, peak.most, after, lost_ok, args)
            command_ok = pct(eyes, 50) < TARGET_COMMAND_P50_MS
            print(
                f"target command → 👀 p50 < {TARGET_COMMAND_P50_MS:.0f} ms during the open loop: "
                f"{'met' if command_ok else 'NOT met'} (p50 {pct(eyes, 50):.1f} ms)"
            )
            ok = ok and command_ok
            load_after = os.getloadavg()
            print(
                f"load average after {load_after[0]:.2f} {load_after[1]:.2f} "
                f"(before {load_before[0]:.2f} {load_before[1]:.2f}; 2 cores)"
            )
        finally:
            await connection.close()
            await durable.close()
            dispatch.stop()
            floor.stop()
            if probot is not None:
                probot.child.stop()
    return 0 if ok else 1


async def commands_meanwhile(commenters: list[Commenter], seconds: float) -> list[Sample]:
    """`/dispatch help` every COMMAND_EVERY_S seconds for `seconds`, each from its own commenter
    on its own issue and a new connection (as GitHub delivers), none waiting for the one before
    (a reply can lag far behind its 👀 under the flood): each one's timings."""

    async def one(commenter: Commenter, delay: float) -> Sample:
        await asyncio.sleep(delay)
        await commenter.open()
        try:
            return await commenter.command(timeout=seconds + 120)
        finally:
            commenter.close()

    count = min(len(commenters), int(seconds / COMMAND_EVERY_S))
    return list(
        await asyncio.gather(*(one(commenters[i], i * COMMAND_EVERY_S) for i in range(count)))
    )


durable_rows: dict[int, loadgen.Result] = {}


class Row:
    """One line of the side-by-side table: one sender mode and concurrency, every target."""

    def __init__(self, keep_alive: bool, level: int) -> None:
        self.keep_alive, self.level = keep_alive, level
        self.results: dict[str, loadgen.Result] = {}
        self.cpu: dict[str, CpuMeter] = {}
        self.backlog, self.drained = 0, 0.0

    def rate(self, name: str) -> float:
        result = self.results.get(name)
        if result is None or not result.elapsed:
            return float("nan")
        return acknowledged(result) / result.elapsed

    def line(self) -> str:
        mode = "keep-alive" if self.keep_alive else "new conn"
        cells = [f"{mode:<10} {self.level:>5}"]
        for name in ("dispatch", "probot", "hmac", "durable"):
            result = self.results.get(name)
            cells.append(f"{fmt(result) if result else 'skipped':<36}")
        cells.append(f"{self.rate('dispatch') / self.rate('probot'):8.2f}")
        cells.append(f"{self.rate('dispatch') / self.rate('durable'):9.2f}")
        cells.append(f"{self.backlog:>6}→{self.drained:4.1f}s")
        cpu = self.cpu["dispatch"].result
        count = self.results["dispatch"].count
        wall = self.results["dispatch"].elapsed
        per = (cpu["dispatch"] + cpu["postgres"]) * wall / count * 1000 if count else 0.0
        cells.append(
            f"{per:.2f} ms ({cpu['dispatch'] * 100:.0f}%+{cpu['postgres'] * 100:.0f}%, "
            f"other {cpu['other'] * 100:.0f}%)"
        )
        return "  ".join(cells)


def report_targets(
    rows: list[Row],
    steady: loadgen.Result,
    peak: int,
    drained: float,
    lost_ok: bool,
    args: argparse.Namespace,
) -> bool:
    """Issue 16's targets: at 16 senders Dispatch acknowledges at least Probot's rate with p99
    <= 50 ms; the open loop is acknowledged with p99 <= 25 ms, the backlog stays <= 2,000 and
    drains within 10 s; nothing is lost."""
    verdicts = []
    for row in rows:
        if row.level != 16 or "probot" not in row.results:
            continue
        p99 = row.results["dispatch"].pct(99)
        met = row.rate("dispatch") >= row.rate("probot") and p99 <= TARGET_P99_16_MS
        mode = "keep-alive" if row.keep_alive else "new conn"
        verdicts.append(met)
        print(
            f"target 16 senders, {mode}: >= Probot and p99 <= {TARGET_P99_16_MS:.0f} ms: "
            f"{'met' if met else 'NOT met'} ({row.rate('dispatch'):.0f}/s vs "
            f"{row.rate('probot'):.0f}/s, p99 {p99:.1f} ms)"
        )
    steady_ok = (
        steady.pct(99) <= TARGET_P99_MS
        and peak <= TARGET_BACKLOG
        and drained <= TARGET_DRAIN_S
        and steady.statuses.get(202, 0) == steady.count
    )
    print(
        f"target open loop {args.rate:.0f}/s: p99 <= {TARGET_P99_MS:.0f} ms, backlog <= "
        f"{TARGET_BACKLOG}, drained <= {TARGET_DRAIN_S:.0f} s: "
        f"{'met' if steady_ok else 'NOT met'} (p99 {steady.pct(99):.1f} ms, peak {peak}, "
        f"drained {drained:.1f} s)"
    )
    print(f"target zero lost: {'met' if lost_ok else 'NOT met'}")
    return all(verdicts) and steady_ok and lost_ok


class Peak:
    """The largest backlog (deliveries still queued) seen while watching, every 0.2 s."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.most = 0

    async def watch(self) -> None:
        try:
            while True:
                self.most = max(self.most, await backlog(self.connection))
                await asyncio.sleep(0.2)
        finally:
            await self.connection.close()


class DurableFloor:
    """The durable floor: the same journal rows (columns, zlib-compressed bodies, unique guid)
    inserted and committed one per statement by a bare asyncpg loop, N connections at once: what
    one fsynced commit per delivery costs with nothing else in the way (no HTTP, no queue)."""

    def __init__(self, dsn: str, kinds: list[tuple[str, list[bytes]]]) -> None:
        self.dsn = dsn
        self.bodies = [
            (event, journal.encode(body)) for event, bodies in kinds for body in bodies[:50]
        ]
        self.connections: list[asyncpg.Connection] = []

    async def prepare(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS floor_delivery (LIKE delivery INCLUDING ALL)"
            )
        finally:
            await connection.close()

    async def _insert(self, connection: asyncpg.Connection, i: int) -> None:
        event, body = self.bodies[i % len(self.bodies)]
        await connection.execute(
            "INSERT INTO floor_delivery (guid, source, event, action, installation_id, "
            "repository, state, body, received_at) "
            "VALUES ($1, 'github', $2, 'created', 1, 'Codertocat/Hello-World', "
            "'queued', $3, now()) ON CONFLICT (guid) DO NOTHING",
            str(uuid.uuid4()),
            event,
            body,
        )

    async def run(self, total: int, concurrency: int) -> loadgen.Result:
        while len(self.connections) < concurrency:
            self.connections.append(await asyncpg.connect(self.dsn))
        result = loadgen.Result()
        counter = iter(range(total))

        async def sender(connection: asyncpg.Connection) -> None:
            for i in counter:
                start = time.perf_counter()
                await self._insert(connection, i)
                result.record(i, 202, time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(sender(c) for c in self.connections[:concurrency]))
        result.elapsed = time.perf_counter() - start
        return result

    async def open_loop(
        self, rate: float, seconds: float, *, synchronous_commit: bool = True, pool: int = 16
    ) -> loadgen.Result:
        """The open loop's schedule, each row committed on one of `pool` connections (latency
        from the scheduled time, as for Dispatch). With `synchronous_commit=False` a commit does
        not wait for its WAL fsync: the difference is what the disk's fsync costs."""
        setting = "on" if synchronous_commit else "off"
        connections = [
            await asyncpg.connect(self.dsn, server_settings={"synchronous_commit": setting})
            for _ in range(pool)
        ]
        idle: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
        for connection in connections:
            idle.put_nowait(connection)
        result = loadgen.Result()

        async def one(i: int, scheduled: float) -> None:
            connection = await idle.get()
            try:
                await self._insert(connection, i)
            finally:
                idle.put_nowait(connection)
            result.record(i, 202, time.perf_counter() - scheduled)

        tasks = []
        start = time.perf_counter()
        try:
            for i in range(int(rate * seconds)):
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, scheduled)))
            await asyncio.gather(*tasks)
        finally:
            for connection in connections:
                await connection.close()
        result.elapsed = time.perf_counter() - start
        return result

    async def close(self) -> None:
        """Close the closed loop's connections (the open loop opens its own): up to 64 held
        idle would crowd out `dispatch serve`'s, whose two processes have pools of their own."""
        while self.connections:
            await self.connections.pop().close()


class Probot:
    def __init__(self, child: Child, version: str) -> None:
        self.child, self.version = child, version


def start_probot(scratch: Path, secret: str, env: dict[str, str]) -> Probot | None:
    """Probot 14 with a no-op handler, installed from the npm registry into a temporary folder
    (None, with a message, when npm or node is missing or the install fails)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        print("Probot skipped: npm/node not found")
        return None
    folder = scratch / "probot"
    folder.mkdir()
    (folder / "package.json").write_text('{"name": "probot-bench", "private": true}')
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"probot@{PROBOT}"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        print(f"Probot skipped: npm install failed: {installed.stderr[-500:]}")
        return None
    version = json.loads((folder / "node_modules/probot/package.json").read_text())["version"]
    shutil.copy(Path(__file__).parent / "probot_server.mjs", folder / "server.mjs")
    port = free_port()
    child = Child(
        [node, str(folder / "server.mjs"), str(port), secret],
        {**env, "NODE_ENV": "production"},
        port,
        scratch / "probot.log",
    )
    child.wait_http("/")
    return Probot(child, version)


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
    parser.add_argument("--total", type=int, default=3000, help="requests per table cell")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-probot", action="store_true", help="leave Probot out")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server (16 senders, open loop)"
    )
    parser.add_argument("--no-worker", action="store_true", help="serve with --no-worker")
    parser.add_argument(
        "--worker-in-process",
        action="store_true",
        help="serve with --worker-in-process (one process, as before the worker had its own)",
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements; print the top statements of the whole run",
    )
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.total, parsed.seconds = 500, 5.0
    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(main(parsed)))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
