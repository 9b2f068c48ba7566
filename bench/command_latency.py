"""Command latency: an `issue_comment.created` webhook whose comment says `/dispatch help` goes
into a running `dispatch serve` (worker included); the time until the 👀 reaction for that comment
reaches the fake GitHub is the latency people feel ("Dispatch saw my command").

N clients (N = 1, 10, 50) each keep one command in flight: post a fresh comment's webhook, wait
for its 👀 and its reply comment, post the next. Each client has its own issue and its own
commenter (with write permission: people who may only read are limited to a few commands
in a few minutes), so every command is its own issue comment. Before measuring,
every client runs one unmeasured command (so each commenter's permission is cached, as it is
for anyone who commented in the last minute); the very first command after start-up (installation
token, App lookup, repository config) is reported separately as "cold".

Timestamps: the send time is taken just before the request is written; the fake GitHub (a thread
of this process) stamps each request when it has read it. The eyes latency is split, with the
database's clock (same machine), into: send → delivery journaled (`received_at`), journaled →
delivery job started (`processed_at`, the processing transaction's start), and job started →
👀 received (handlers, commit, 👀 sent right after the commit by the delivery's job).

GITHUB_CONTENT_PER_MINUTE / GITHUB_CONTENT_PER_HOUR are set to 100000 for this benchmark: the real
pacing (80 content writes a minute per installation, GitHub's secondary limit) would dominate at
50 concurrent commands. Writes still go one at a time per installation (app/github/pacing.py).

    python bench/command_latency.py [--quick] [--profile]

Targets: 👀 p50 < 100 ms, p99 < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from app.intake.signatures import github_signature
from bench import loadgen
from bench.common import (
    UNPACED,
    Child,
    CpuMeter,
    PySpy,
    TimedFakeGitHub,
    dispatch_env,
    environment,
    install_signal_handlers,
    leaf_frames,
    pct,
    pg_top_statements,
    serve,
    top_frames,
    wait_for_quiet,
    wait_until,
)
from tests.agents.loop import comment as comment_payload

LEVELS = (1, 10, 50)
TARGET_P50_MS = 100.0
TARGET_P99_MS = 500.0
REPO = "octo-org/widgets"
REACTION = re.compile(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)/reactions$")
REPLY = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")


@dataclass
class Sample:
    guid: str
    sent: float  # perf_counter
    sent_wall: float
    ack: float = 0.0
    eyes: float = 0.0
    reply: float = 0.0


@dataclass
class Watcher:
    """Turns the fake's calls (on its thread) into futures the clients await."""

    loop: asyncio.AbstractEventLoop
    eyes: dict[int, asyncio.Future[float]] = field(default_factory=dict)
    replies: dict[tuple[str, int], asyncio.Future[float]] = field(default_factory=dict)
    writes: list[float] = field(default_factory=list)

    def expect(
        self, comment_id: int, repo: str, issue: int
    ) -> tuple[asyncio.Future[float], asyncio.Future[float]]:
        self.eyes[comment_id] = self.loop.create_future()
        self.replies[(repo.lower(), issue)] = self.loop.create_future()
        return self.eyes[comment_id], self.replies[(repo.lower(), issue)]

    def on_call(self, arrived: float, method: str, path: str, body: object) -> None:
        if method != "POST":
            return
        self.writes.append(arrived)
        if (
            (m := REACTION.search(path))
            and isinstance(body, dict)
            and body.get("content") == "eyes"
        ):
            self.loop.call_soon_threadsafe(self._resolve, self.eyes, int(m.group(1)), arrived)
        elif m := REPLY.search(path):
            key = (m.group(1).lower(), int(m.group(2)))
            self.loop.call_soon_threadsafe(self._resolve, self.replies, key, arrived)

    @staticmethod
    def _resolve(table: dict, key: object, arrived: float) -> None:  # type: ignore[type-arg]
        future = table.pop(key, None)
        if future is not None and not future.done():
            future.set_result(arrived)


class Client:
    """One commenter on one issue with one keep-alive connection to Dispatch."""

    def __init__(
        self,
        fake: TimedFakeGitHub,
        installation: int,
        repository: dict,
        port: int,
        watcher: Watcher,
        index: int,
    ) -> None:
        self.fake, self.installation, self.repository = fake, installation, repository
        self.port, self.watcher = port, watcher
        self.user = f"commenter{index}"
        name = repository["full_name"]
        fake.set_permission(name, self.user, "write")
        self.issue = fake.add_issue(name, f"Bench issue {index}")["number"]
        self.connection = loadgen.Connection("127.0.0.1", port)

    async def open(self) -> None:
        await self.connection.open()

    async def command(self, text: str = "/dispatch help", timeout: float = 60) -> Sample:
        payload = comment_payload(
            self.fake, (self.installation, self.repository), self.issue, text, user=self.user
        )
        body = json.dumps(payload).encode()
        guid = str(uuid.uuid4())
        raw = loadgen.build_request(
            f"127.0.0.1:{self.port}",
            "/webhooks/github",
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/bench",
                "X-GitHub-Event": "issue_comment",
                "X-GitHub-Delivery": guid,
                "X-Hub-Signature-256": github_signature(self.fake.webhook_secret, body),
            },
        )
        eyes, reply = self.watcher.expect(
            payload["comment"]["id"], self.repository["full_name"], self.issue
        )
        sample = Sample(guid, time.perf_counter(), time.time())
        status = await self.connection.request(raw)
        sample.ack = time.perf_counter() - sample.sent
        if status != 202:
            raise RuntimeError(f"webhook answered {status}")
        sample.eyes = await asyncio.wait_for(eyes, timeout) - sample.sent
        sample.reply = await asyncio.wait_for(reply, timeout) - sample.sent
        return sample

    def close(self) -> None:
        self.connection.close()


async def level(clients: list[Client], per_client: int) -> tuple[list[Sample], float]:
    async def run(client: Client) -> list[Sample]:
        return [await client.command() for _ in range(per_client)]

    start = time.perf_counter()
    results = await asyncio.gather(*(run(c) for c in clients))
    return [s for r in results for s in r], time.perf_counter() - start


async def breakdown(connection: asyncpg.Connection, samples: list[Sample], offset: float) -> str:
    """Median of each leg, from the journal's timestamps (database clock)."""
    rows = {
        r["guid"]: r
        for r in await connection.fetch(
            "SELECT guid, extract(epoch FROM received_at) AS received, "
            "extract(epoch FROM processed_at) AS started FROM delivery WHERE guid = ANY($1)",
            [s.guid for s in samples],
        )
    }
    journal, pickup, rest = [], [], []
    for s in samples:
        row = rows.get(s.guid)
        if row is None or row["started"] is None:
            continue
        eyes_wall = s.sent_wall + s.eyes
        journal.append(float(row["received"]) - s.sent_wall)
        pickup.append(float(row["started"]) - float(row["received"]))
        rest.append(eyes_wall - float(row["started"]))
    ms = lambda v: f"{pct(v, 50) * 1000:.1f}/{pct(v, 99) * 1000:.1f}"  # noqa: E731
    return (
        f"send→journaled {ms(journal)}  journaled→delivery job {ms(pickup)}  "
        f"job→👀 {ms(rest)} (ms, p50/p99)"
    )


async def pacing_burst(args: argparse.Namespace) -> int:
    """With the real content pacing, a burst of commands larger than the minute's budget makes
    command jobs wait for the window inside their database transaction. This measures what that
    does to unrelated webhooks: their acknowledgement latency while the burst waits, and how
    many pooled connections sit idle in a transaction."""
    from tests.webhooks import example

    with environment() as (dsn, fake, scratch):
        installation = fake.add_installation("octo-org")
        repository = fake.add_repo(installation, REPO)
        per_minute = args.per_minute
        env = dispatch_env(dsn, fake, scratch, GITHUB_CONTENT_PER_MINUTE=str(per_minute))
        dispatch = serve(env, scratch)
        watcher = Watcher(asyncio.get_running_loop())
        fake.on_call = watcher.on_call
        clients = [
            Client(fake, installation, repository, dispatch.port, watcher, i)
            for i in range(args.pacing_burst)
        ]
        for client in clients:
            await client.open()
        probe = loadgen.Connection("127.0.0.1", dispatch.port)
        await probe.open()
        connection = await asyncpg.connect(dsn)
        try:
            print(
                f"GITHUB_CONTENT_PER_MINUTE={per_minute}; burst of {len(clients)} commands "
                f"(2 content writes each) at once"
            )
            burst = [asyncio.create_task(c.command(timeout=120)) for c in clients]
            await asyncio.sleep(3)
            rows = await connection.fetch(
                "SELECT state, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query, "
                "count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() GROUP BY 1, 2 ORDER BY 3 DESC"
            )
            print("  server connections 3 s into the burst (state, last statement, count):")
            for row in rows:
                print(f"    {row['count']:3d}  {row['state']:<20} {row['query']}")
            body = json.dumps(example("issues/labeled", installation_id=installation)).encode()
            acks = []
            for _ in range(args.probes):
                raw = loadgen.build_request(
                    f"127.0.0.1:{dispatch.port}",
                    "/webhooks/github",
                    body,
                    {
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "issues",
                        "X-GitHub-Delivery": str(uuid.uuid4()),
                        "X-Hub-Signature-256": github_signature(fake.webhook_secret, body),
                    },
                )
                started = time.perf_counter()
                try:
                    await asyncio.wait_for(probe.request(raw), 15)
                    acks.append(time.perf_counter() - started)
                except TimeoutError:
                    acks.append(float("inf"))
                    print("  a probe webhook got no answer in 15 s; giving up the probes")
                    break
                idle_tx = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                )
                print(
                    f"  probe webhook ack {acks[-1] * 1000:8.1f} ms; connections idle in a "
                    f"transaction: {idle_tx}"
                )
                await asyncio.sleep(0.5)
            done = sum(1 for t in burst if t.done())
            eyes = len([1 for c in clients]) - len(watcher.eyes)
            print(
                f"after the probes: {eyes} of {len(clients)} commands got their 👀, "
                f"{done} answered; probe acks p50 {pct(acks, 50) * 1000:.0f} ms, "
                f"max {max(acks) * 1000:.0f} ms (GitHub gives up after 10 s)"
            )
            for task in burst:
                task.cancel()
        finally:
            fake.on_call = None
            for client in clients:
                client.close()
            probe.close()
            await connection.close()
            dispatch.stop()
    return 0


async def main(args: argparse.Namespace) -> int:
    if args.pacing_burst:
        return await pacing_burst(args)
    with environment(pg_stats=args.pg_stats) as (dsn, fake, scratch):
        targets = []
        for k in range(args.installations):
            installation = fake.add_installation(f"octo-org{k}" if k else "octo-org")
            name = f"octo-org{k}/widgets" if k else REPO
            targets.append((installation, fake.add_repo(installation, name)))
        extra = dict(item.split("=", 1) for item in args.env)
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            **UNPACED,
            **extra,
        )
        if extra:
            print(f"extra environment: {extra}")
        dispatch = serve(env, scratch)
        workers = [
            Child(
                [sys.executable, "-m", "app.cli", "worker"], env, None, scratch / f"worker-{k}.log"
            )
            for k in range(args.workers)
        ]
        if workers:
            await asyncio.sleep(3)  # they migrate (a no-op) and start listening
            print(f"plus {len(workers)} `dispatch worker` process(es)")
        watcher = Watcher(asyncio.get_running_loop())
        fake.on_call = watcher.on_call
        connection = await asyncpg.connect(dsn)
        clients = [
            Client(fake, *targets[i % len(targets)], dispatch.port, watcher, i)
            for i in range(max(LEVELS))
        ]
        for client in clients:
            await client.open()
        offset = time.time() - time.perf_counter()
        ok = True
        try:
            cold = await clients[0].command()
            print(
                f"cold first command: 👀 {cold.eyes * 1000:.0f} ms, "
                f"reply {cold.reply * 1000:.0f} ms "
                f"(installation token, App lookup, repository config, permission)"
            )
            print(
                "GITHUB_CONTENT_PER_MINUTE=GITHUB_CONTENT_PER_HOUR=100000 (pacing windows out of "
                "the way; writes still one at a time per installation)"
            )
            print(
                f"{'conc':>4}  {'n':>4}  {'👀 p50':>8} {'👀 p99':>8} {'👀 max':>8}  "
                f"{'reply p50':>9} {'reply p99':>9}  {'ack p50':>7}  {'cmd/s':>6}  cpu"
            )
            verdicts = []
            for concurrency in args.levels:
                active = clients[:concurrency]
                await level(active, 1)  # warm-up: each commenter's permission gets cached
                if args.quick:
                    per_client = {1: 5, 10: 2, 50: 1}[concurrency]
                else:
                    per_client = {1: 100, 10: 30, 50: 10}[concurrency]
                pids = {"server": dispatch.pid, "postgres": 0, "bench+fake": os.getpid()}
                pids.update({f"worker {k + 1}": w.pid for k, w in enumerate(workers)})
                spy = (
                    PySpy(dispatch.pid, scratch / f"cmd-{concurrency}.txt")
                    if args.profile and concurrency == 50
                    else None
                )
                if args.pg_stats:
                    await pg_top_statements(dsn)  # reset
                first_write = len(watcher.writes)
                with CpuMeter(pids) as cpu:
                    if spy:
                        spy.__enter__()
                    samples, elapsed = await level(active, per_client)
                    if spy:
                        spy.__exit__()
                writes = watcher.writes[first_write:]
                gaps = [b - a for a, b in itertools.pairwise(writes)]
                eyes = [s.eyes for s in samples]
                replies = [s.reply for s in samples]
                acks = [s.ack for s in samples]
                p50, p99 = pct(eyes, 50) * 1000, pct(eyes, 99) * 1000
                verdicts.append((concurrency, p50, p99))
                print(
                    f"{concurrency:>4}  {len(samples):>4}  {p50:6.1f}ms {p99:6.1f}ms "
                    f"{max(eyes) * 1000:6.1f}ms  {pct(replies, 50) * 1000:7.1f}ms "
                    f"{pct(replies, 99) * 1000:7.1f}ms  {pct(acks, 50) * 1000:5.1f}ms  "
                    f"{len(samples) / elapsed:6.1f}  {cpu.summary()}"
                )
                print(f"      {await breakdown(connection, samples, offset)}")
                print(
                    f"      GitHub writes (👀 + reply) {len(writes) / elapsed:.0f}/s, gap between "
                    f"consecutive writes p50 {pct(gaps, 50) * 1000:.2f} ms"
                )
                if args.pg_stats:
                    print("      database time by statement during this level:")
                    for line in await pg_top_statements(dsn, limit=12):
                        print(f"        {line}")
                if spy:
                    print("  py-spy of the server at c=50: app/ functions on the stack")
                    for frame, share in top_frames(scratch / f"cmd-{concurrency}.txt", limit=14):
                        print(f"    {share * 100:5.1f}%  {frame}")
                    print("  leaf frames")
                    for frame, share in leaf_frames(scratch / f"cmd-{concurrency}.txt", limit=12):
                        print(f"    {share * 100:5.1f}%  {frame}")

            # The command row is marked done in the transaction that sent the reply: give the
            # last ones a moment to commit.
            async def settled() -> bool:
                return not await connection.fetchval(
                    "SELECT count(*) FROM command WHERE state = 'pending'"
                )

            await wait_until(settled, timeout=30, every=0.05)
            states = dict(
                await connection.fetch("SELECT state, count(*) FROM command GROUP BY state")
            )
            print(f"commands by state: {states}")
            for concurrency, p50, p99 in verdicts:
                met = p50 < TARGET_P50_MS and p99 < TARGET_P99_MS
                ok = ok and met
                print(
                    f"target at {concurrency:>2} concurrent (p50 < {TARGET_P50_MS:.0f} ms, "
                    f"p99 < {TARGET_P99_MS:.0f} ms): {'met' if met else 'NOT met'} "
                    f"(p50 {p50:.0f} ms, p99 {p99:.0f} ms)"
                )
        finally:
            fake.on_call = None
            for client in clients:
                client.close()
            await connection.close()
            dispatch.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--profile", action="store_true", help="py-spy the server at c=50")
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=list(LEVELS),
        choices=LEVELS,
        help="concurrency levels to run",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for dispatch serve (diagnosis)",
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements and print the top statements per level",
    )
    parser.add_argument(
        "--pacing-burst",
        type=int,
        default=0,
        metavar="N",
        help="instead: a burst of N commands under real pacing, probing the "
        "webhook ack latency meanwhile",
    )
    parser.add_argument(
        "--per-minute", type=int, default=80, help="GITHUB_CONTENT_PER_MINUTE for --pacing-burst"
    )
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument(
        "--workers", type=int, default=0, help="extra `dispatch worker` processes (diagnosis)"
    )
    parser.add_argument(
        "--installations",
        type=int,
        default=1,
        help="spread the commenters over this many installations (diagnosis)",
    )
    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(main(parser.parse_args())))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
