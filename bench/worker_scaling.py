"""Worker scaling: commands/s and 👀 latency with 1, 2 and 4 `dispatch worker` processes behind
one `dispatch serve --no-worker`, all on one database (the deployed shape: N web replicas, M
workers); then where GitHub's limits cap it.

Part 1, the work across processes. GITHUB_CONTENT_PER_MINUTE/_PER_HOUR are 100000, so GitHub's
budget is out of the way but every content write still takes its slot from Postgres (the shared
pacing of `app/github/pacing.py`) and every read checks the installation's pause. For each
worker count, the workers are started, every client runs one unmeasured command (permissions
cached), then C clients (default 50) each keep one `/dispatch help` in flight (closed loop, as
in `command_latency.py`: webhook → 👀 → reply → next) for `--per-client` commands. Commenters
are spread over `--installations` installations.

Part 2, the cap. GitHub allows an installation about 80 content writes a minute, and a command
costs two (👀 and the reply): with the real limits (80/minute, 500/hour) and two workers, C2
clients (default 20) of one installation keep commands in flight for `--capped-seconds`; the
answered commands per minute, the 👀 latency and the busiest rolling minute of writes at the
fake GitHub show the ceiling, which no number of workers lifts (more installations do: the
budget is per installation).

    python bench/worker_scaling.py [--quick] [--workers 1 2 4] [--installations N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.command_latency import REPO, Client, Watcher, breakdown, level
from bench.common import (
    UNPACED,
    Child,
    CpuMeter,
    dispatch_env,
    environment,
    install_signal_handlers,
    pct,
    serve,
    wait_for_quiet,
    wait_until,
)


def start_workers(count: int, env: dict[str, str], scratch: Path, tag: str) -> list[Child]:
    return [
        Child(
            [sys.executable, "-m", "app.cli", "worker"],
            env,
            None,
            scratch / f"worker-{tag}-{k}.log",
        )
        for k in range(count)
    ]


async def backends(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


async def workers_up(dsn: str, before: int, count: int) -> None:
    """Wait until `count` new workers are connected: each opens its pools (a connection each)
    and the queue's connection, four in all."""

    async def ready() -> bool:
        return await backends(dsn) >= before + 4 * count

    if not await wait_until(ready, timeout=90, every=0.2):
        print("warning: not every worker connected in 90 s", flush=True)
    await asyncio.sleep(1.0)


class Commenter(Client):
    """A `command_latency` client that reconnects when its keep-alive connection may have
    been closed by the server (uvicorn closes connections idle for 5 s, and a reply can take
    longer than that here)."""

    last_used = 0.0

    async def command(self, text: str = "/dispatch help", timeout: float = 60):  # type: ignore[no-untyped-def]
        if time.monotonic() - self.last_used > 3:
            self.connection.close()
            await self.connection.open()
        # The connection is used for the webhook only, at the start: waiting for the 👀 and the
        # reply leaves it idle.
        self.last_used = time.monotonic()
        return await super().command(text, timeout)


async def reconnect(clients: list[Client]) -> None:
    for client in clients:
        client.close()
        await client.open()


def busiest_minute(times: list[float]) -> int:
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        most = max(most, end - start + 1)
    return most


async def diagnosis(connection: asyncpg.Connection) -> str:
    """Where unanswered commands are: their rows, the queue, and the installation's pacing."""
    lines = []
    for sql in (
        "SELECT state, count(*), count(*) FILTER (WHERE answered_at IS NULL) AS unanswered "
        "FROM command GROUP BY 1",
        "SELECT id, state, attempts, reaction, answered_at, created_at, finished_at FROM command "
        "WHERE answered_at IS NULL OR state = 'pending' ORDER BY id LIMIT 10",
        "SELECT entrypoint, status, count(*), min(execute_after) FROM pgqueuer GROUP BY 1, 2",
        "SELECT entrypoint, status, count(*) FROM pgqueuer_log WHERE status NOT IN "
        "('queued', 'picked', 'successful') GROUP BY 1, 2",
        "SELECT * FROM github_pace",
        "SELECT installation_id, count(*), max(at) FROM github_content_slot GROUP BY 1",
        "SELECT state, count(*) FROM delivery GROUP BY 1",
        "SELECT now()",
    ):
        try:
            rows = await connection.fetch(sql)
        except Exception as exc:  # diagnosis only
            rows = [{"error": repr(exc)}]
        lines.append(f"  {sql}")
        lines += [f"    {dict(row)}" for row in rows]
    return "\n".join(lines)


async def scaling(args: argparse.Namespace) -> list[str]:
    rows = []
    with environment() as (dsn, fake, scratch):
        targets = []
        for k in range(args.installations):
            installation = fake.add_installation(f"octo-org{k}" if k else "octo-org")
            name = f"octo-org{k}/widgets" if k else REPO
            targets.append((installation, fake.add_repo(installation, name)))
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            **UNPACED,
            # Five processes under PostgreSQL's 100 connections (each also has 4 + 4 for
            # intake and pacing, and the queue's).
            DATABASE_POOL_SIZE="10",
        )
        web = serve(env, scratch, "--no-worker")
        watcher = Watcher(asyncio.get_running_loop())
        fake.on_call = watcher.on_call
        connection = await asyncpg.connect(dsn)
        made: list[Client] = []

        def commenters(step: int) -> list[Client]:
            # New people each step: the app lets a commenter without write permission send 20
            # commands in 10 minutes (then 😕 and no reply), and a step sends each 1 + per-client.
            base = step * args.concurrency
            clients = [
                Commenter(fake, *targets[i % len(targets)], web.port, watcher, base + i)
                for i in range(args.concurrency)
            ]
            made.extend(clients)
            return clients

        offset = time.time() - time.perf_counter()
        try:
            print(
                f"part 1: 1 web process (--no-worker), {args.concurrency} concurrent commands, "
                f"{args.installations} installation(s), pacing limits 100000/min"
            )
            print(
                f"{'workers':>7}  {'n':>5}  {'cmd/s':>6}  {'👀 p50':>8} {'👀 p99':>8}  "
                f"{'reply p50':>9} {'reply p99':>9}  cpu (% of one core)"
            )
            for step, count in enumerate(args.workers):
                clients = commenters(step)
                # The steps together can pass GitHub's 5,000 requests an hour per installation
                # (the fake counts them and says `x-ratelimit-remaining: 0`, which pauses every
                # process until the reset): each starts an hour of its own.
                fake.new_rate_hour()
                before = await backends(dsn)
                workers = start_workers(count, env, scratch, f"{count}")
                await workers_up(dsn, before, count)
                await reconnect(clients)  # uvicorn closes keep-alive connections idle for 5 s
                await level(clients, 1)  # warm-up: permissions cached, connections open
                pids = {"web": web.pid, "postgres": 0, "bench+fake": os.getpid()}
                pids.update({f"worker{k + 1}": w.pid for k, w in enumerate(workers)})
                await reconnect(clients)  # the fast ones idled while the slowest warmed up
                requests = len(fake.calls)
                with CpuMeter(pids) as cpu:
                    samples, elapsed = await level(clients, args.per_client)
                requests = len(fake.calls) - requests
                for worker in workers:
                    worker.stop()
                eyes = [s.eyes * 1000 for s in samples]
                replies = [s.reply * 1000 for s in samples]
                shares = cpu.result
                worker_cpu = sum(v for k, v in shares.items() if k.startswith("worker"))
                each = " + ".join(
                    f"{v * 100:.0f}" for k, v in shares.items() if k.startswith("worker")
                )
                line = (
                    f"{count:>7}  {len(samples):>5}  {len(samples) / elapsed:6.1f}  "
                    f"{pct(eyes, 50):6.1f}ms {pct(eyes, 99):6.1f}ms  {pct(replies, 50):7.1f}ms "
                    f"{pct(replies, 99):7.1f}ms  web {shares['web'] * 100:.0f}%, workers "
                    f"{worker_cpu * 100:.0f}% ({each}), "
                    f"postgres {shares['postgres'] * 100:.0f}%, bench+fake "
                    f"{shares['bench+fake'] * 100:.0f}%, other {shares['other'] * 100:.0f}%"
                )
                print(line, flush=True)
                print(f"         {await breakdown(connection, samples, offset)}", flush=True)
                print(
                    f"         GitHub requests: {requests} "
                    f"({requests / max(len(samples), 1):.1f} per command)",
                    flush=True,
                )
                rows.append(line)
        except Exception:
            print(f"diagnosis:\n{await diagnosis(connection)}", flush=True)
            print(f"web log:\n{web.log.read_text()[-3000:]}", flush=True)
            for path in sorted(scratch.glob("worker-*.log")):
                print(f"{path.name}:\n{path.read_text()[-3000:]}", flush=True)
            raise
        finally:
            fake.on_call = None
            for client in made:
                client.close()
            await connection.close()
            web.stop()
    return rows


async def capped(args: argparse.Namespace) -> None:
    with environment() as (dsn, fake, scratch):
        installation = fake.add_installation("octo-org")
        repository = fake.add_repo(installation, REPO)
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            GITHUB_CONTENT_PER_MINUTE="80",
            GITHUB_CONTENT_PER_HOUR="500",
            GITHUB_MAX_RETRY_WAIT_SECONDS="60",
            DATABASE_POOL_SIZE="10",
        )
        web = serve(env, scratch, "--no-worker")
        before = await backends(dsn)
        workers = start_workers(2, env, scratch, "capped")
        await workers_up(dsn, before, 2)
        watcher = Watcher(asyncio.get_running_loop())
        content: list[tuple[float, str]] = []

        def on_call(arrived: float, method: str, path: str, body: object) -> None:
            # What GitHub counts as creating content, judged here (not by the app).
            if method != "GET" and path.startswith("/repos/") and "/actions/" not in path:
                content.append((arrived, "reaction" if path.endswith("/reactions") else "other"))
            watcher.on_call(arrived, method, path, body)

        fake.on_call = on_call
        clients = [
            Commenter(fake, installation, repository, web.port, watcher, i)
            for i in range(args.capped_concurrency)
        ]
        await reconnect(clients)
        samples = []
        stop_at = time.perf_counter() + args.capped_seconds
        try:

            async def run(client: Client) -> None:
                while time.perf_counter() < stop_at:
                    samples.append(await client.command(timeout=args.capped_seconds + 120))

            started = time.perf_counter()
            await asyncio.gather(*(run(c) for c in clients))
            elapsed = time.perf_counter() - started
            writes = [at for at, _ in content]
            reactions = sum(1 for _, kind in content if kind == "reaction")
            eyes = [s.eyes for s in samples]
            per_minute = [
                sum(1 for s in samples if m * 60 <= s.sent + s.reply - started < (m + 1) * 60)
                for m in range(int(elapsed // 60) + 1)
            ]
            print(
                f"part 2: GITHUB_CONTENT_PER_MINUTE=80, 2 workers, 1 installation, "
                f"{len(clients)} concurrent commands for {args.capped_seconds:.0f} s "
                f"(the last ones finish after it)"
            )
            print(
                f"  {len(samples)} commands answered in {elapsed:.0f} s = "
                f"{len(samples) / elapsed * 60:.1f}/min (per started minute: {per_minute}); "
                f"👀 p50 {pct(eyes, 50):.1f} s, p99 {pct(eyes, 99):.1f} s; "
                f"{len(writes)} content writes ({reactions} reactions), busiest rolling minute "
                f"{busiest_minute(writes)}"
            )
        finally:
            fake.on_call = None
            for client in clients:
                client.close()
            for worker in workers:
                worker.stop()
            web.stop()


async def main(args: argparse.Namespace) -> int:
    if not args.skip_scaling:
        await scaling(args)
    if args.capped_seconds > 0:
        await capped(args)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=8)
    parser.add_argument("--installations", type=int, default=1)
    parser.add_argument("--capped-concurrency", type=int, default=20)
    parser.add_argument("--capped-seconds", type=float, default=150.0)
    parser.add_argument("--skip-scaling", action="store_true", help="only part 2")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.per_client, parsed.capped_seconds = 2, 20.0
    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(main(parsed)))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
