"""Storage growth: what a delivery and a minute of agent output weigh as stored, and how big the
database gets day after day at a given rate, with and without retention.

Everything goes through the app's own functions against a throwaway embedded PostgreSQL 18:
deliveries through `journal.record` (real GitHub example payloads of the events the App
subscribes to, as `app.yml` lists them), agent output through `chunks.append` (the reporter's
rendering of real Claude Code stream-json captures, posted every 3 s as the reporter does), runs
through `runs.create`/`runs.update`, and pruning through `app/retention` on the app's clock (a
`MovableClock`, so simulated days pass without sleeping).

1. Bytes per delivery as stored (heap + TOAST + indexes), with its payload and after the payload
   is dropped; and what the same payloads took as jsonb, the former way.
2. Bytes per minute of agent output as stored: the reporter's rendering, and a verbose harness
   that posts the raw stream-json.
3. Queue history per job, per spawn decision, per audit entry.
4. A simulated stretch of days at `--scale` of the rate (1/50 by default: 1,000 deliveries and 4
   runs a day), once with the default retention (a prune every 6 simulated hours) and once
   without; database size every day, scaled back to the full rate (fixed size + measured growth
   times scale). Autovacuum cannot keep up with simulated days, so each prune is followed by a plain
   VACUUM of the pruned tables, as autovacuum would do in real time.

    python bench/storage.py [--quick] [--deliveries-per-day 50000] [--runs-per-day 200]
                            [--run-minutes 15] [--days 100] [--scale 50]

Target: the database settles below 5 GB at 50,000 deliveries and 200 runs a day with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.agents import runs, spawn_decisions  # noqa: E402
from app.agents.gates import Decision  # noqa: E402
from app.agents.runs import NewRun, RunState, Trigger  # noqa: E402
from app.audit import log as audit  # noqa: E402
from app.clock import MovableClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.db import engine, migrate  # noqa: E402
from app.intake import journal  # noqa: E402
from app.modes import Mode  # noqa: E402
from app.queue import JobRegistry, RetryPolicy, Worker, enqueue  # noqa: E402
from app.retention import service as retention  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.stream import chunks  # noqa: E402
from bench.common import SECRET_KEY, environment, install_signal_handlers  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
WEBHOOKS = FIXTURES / "github-webhooks"
CAPTURES = FIXTURES / "claude-stream-json"
GOAL_BYTES = 5 * 1024**3
LOG_INTERVAL_SECONDS = 3.0  # the reporter's default --interval
LOG_CHUNK_MAX_CHARS = 2000  # the reporter's cap per chunk
MB = 1024**2
GB = 1024**3


def subscribed_events() -> list[str]:
    """The events the App subscribes to (`default_events` in app.yml)."""
    text = (ROOT / "app.yml").read_text()
    block = text.split("default_events:", 1)[1]
    return re.findall(r"^\s+-\s+(\w+)\s*$", block, flags=re.MULTILINE)


def example_payloads() -> list[tuple[str, str]]:
    events = set(subscribed_events())
    found = [
        (path.parent.name, path.read_text())
        for path in sorted(WEBHOOKS.rglob("*.json"))
        if path.parent.name in events
    ]
    assert found, f"no example payloads under {WEBHOOKS}"
    return found


def reporter_module() -> Any:
    spec = importlib.util.spec_from_file_location("reporter", ROOT / "workflows" / "reporter.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class OutputRate:
    name: str
    text: str  # what gets posted, cycled
    bytes_per_second: float


def output_rates() -> list[OutputRate]:
    """Bytes per second of session time: the reporter's rendering and the raw stream-json."""
    reporter = reporter_module()
    rendered, raw, seconds = [], [], 0.0
    for path in sorted(CAPTURES.glob("*.ndjson")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        messages = [json.loads(line) for line in lines]
        rendered.append("".join(reporter.render(m) for m in messages))
        raw.append("\n".join(lines) + "\n")
        seconds += sum(m.get("duration_ms", 0) for m in messages if m.get("type") == "result") / 1e3
    text, full = "".join(rendered), "".join(raw)
    return [
        OutputRate("reporter (rendered)", text, len(text.encode()) / seconds),
        OutputRate("verbose harness (raw stream-json)", full, len(full.encode()) / seconds),
    ]


# ----------------------------------------------------------------------------------- database


async def database(admin_dsn: str, name: str) -> str:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = re.sub(r"/postgres(\?|$)", f"/{name}\\1", admin_dsn, count=1)
    await engine.connect(dsn, pool_size=4)
    await migrate.migrate()
    await engine.disconnect()
    await engine.connect(dsn, pool_size=4)  # codecs of the migrated schema
    return dsn


async def sql(statement: str, *args: Any) -> Any:
    async with engine.connection() as connection:
        return await connection.fetchval(statement, *args)


async def vacuum(*tables: str) -> None:
    async with engine.connection() as connection:
        for table in tables:
            await connection.execute(f"VACUUM (ANALYZE) {table}")


async def relation_size(table: str) -> int:
    return int(await sql("SELECT pg_total_relation_size($1::regclass)", table))


async def database_size() -> int:
    return int(await sql("SELECT pg_database_size(current_database())"))


def runtime(scratch: Path) -> Runtime:
    settings = load_settings(
        dispatch_data_dir=scratch / "data",
        dispatch_secret_key=SECRET_KEY,
        dispatch_embeddings="off",
    )
    return Runtime.build(settings, clock=MovableClock())


# ----------------------------------------------------------------------------------- writers


async def journal_deliveries(
    payloads: list[tuple[str, str]], count: int, start, spacing: timedelta, cycle: Any
) -> None:
    for i in range(count):
        event, body = next(cycle)
        action, installation, repository = journal.payload_summary(json.loads(body))
        await journal.record(
            journal.Inbound(
                str(uuid.uuid4()),
                event,
                action,
                installation,
                repository,
                body,
                received_at=start + i * spacing,
            ),
            handled=False,
        )


def output_chunks(rate: OutputRate, minutes: float, offset: int) -> list[str]:
    """What the reporter posts over `minutes`: one chunk per interval (cut at its cap)."""
    per_chunk = max(1, round(rate.bytes_per_second * LOG_INTERVAL_SECONDS))
    source = rate.text * (2 + (per_chunk * 2) // max(1, len(rate.text)))
    posts = int(minutes * 60 / LOG_INTERVAL_SECONDS)
    out, position = [], offset % len(rate.text)
    for _ in range(posts):
        piece = source[position : position + per_chunk]
        position = (position + per_chunk) % len(rate.text)
        out += [
            piece[i : i + LOG_CHUNK_MAX_CHARS] for i in range(0, len(piece), LOG_CHUNK_MAX_CHARS)
        ]
    return out


async def agent_run(rt: Runtime, rate: OutputRate, minutes: float, number: int) -> None:
    """One run that talks for `minutes`, then ends (at the app clock's now)."""
    run = await runs.create(
        NewRun(
            installation_id=1,
            repository="octo-org/widgets",
            repository_id=1,
            issue_number=number,
            mode=Mode.INVESTIGATE,
            trigger=Trigger.COMMAND,
            requested_by="alice",
        )
    )
    for seq, data in enumerate(output_chunks(rate, minutes, number * 997), start=1):
        await chunks.append(run.id, seq, data)
    await runs.update(
        run.id,
        state=RunState.SUCCEEDED,
        outcome="completed",
        summary="Found the cause: the cache key ignored the locale. Plan posted.",
        cost_usd=1.25,
        turns=30,
        finished_at=rt.clock.now(),
    )


# ----------------------------------------------------------------------------------- phases


@dataclass
class PerItem:
    delivery_full: float = 0.0
    delivery_row: float = 0.0
    delivery_jsonb: float = 0.0
    output_per_minute: dict[str, float] | None = None
    queue_job: float = 0.0
    spawn_decision: float = 0.0
    audit_entry: float = 0.0


async def measure_deliveries(rt: Runtime, payloads, count: int, per: PerItem) -> None:
    raw = [len(body.encode()) for _, body in payloads]
    compressed = [len(journal.encode(body)) for _, body in payloads]
    print(
        f"example payloads: {len(payloads)} of {len(set(e for e, _ in payloads))} subscribed "
        f"events; raw mean {sum(raw) / len(raw) / 1024:.1f} KB (min {min(raw) / 1024:.1f}, max "
        f"{max(raw) / 1024:.1f}); zlib body mean {sum(compressed) / len(compressed) / 1024:.2f} KB"
    )
    await vacuum("delivery")
    before = await relation_size("delivery")
    cycle = itertools.cycle(payloads)
    await journal_deliveries(payloads, count, rt.clock.now(), timedelta(seconds=1), cycle)
    await vacuum("delivery")
    per.delivery_full = (await relation_size("delivery") - before) / count

    async with engine.connection() as connection:
        await connection.execute("CREATE TABLE bench_jsonb (id bigserial PRIMARY KEY, p jsonb)")
        for i in range(count):
            await connection.execute(
                "INSERT INTO bench_jsonb (p) VALUES ($1::text::jsonb)",
                payloads[i % len(payloads)][1],
            )
    await vacuum("bench_jsonb")
    per.delivery_jsonb = await relation_size("bench_jsonb") / count
    await sql("DROP TABLE bench_jsonb")

    rt.clock.advance(days=15)  # type: ignore[attr-defined]
    await retention.prune(rt)
    async with engine.connection() as connection:
        await connection.execute("VACUUM FULL delivery")
    per.delivery_row = (await relation_size("delivery") - before) / count
    print(
        f"bytes per delivery as stored ({count:,} journaled): {per.delivery_full:,.0f} with its "
        f"payload (jsonb, as before: {per.delivery_jsonb:,.0f} for the payload alone); "
        f"{per.delivery_row:,.0f} once the payload is dropped"
    )


async def measure_output(rt: Runtime, rates: list[OutputRate], minutes: float, per: PerItem):
    per.output_per_minute = {}
    for rate in rates:
        await vacuum("log_chunk")
        before = await relation_size("log_chunk")
        for number in range(10):
            await agent_run(rt, rate, minutes, number)
        await vacuum("log_chunk")
        stored = (await relation_size("log_chunk") - before) / (10 * minutes)
        per.output_per_minute[rate.name] = stored
        print(
            f"agent output, {rate.name}: {rate.bytes_per_second * 60 / 1024:.2f} KB/min posted, "
            f"{stored / 1024:.2f} KB/min stored (10 runs of {minutes:g} min, a post every "
            f"{LOG_INTERVAL_SECONDS:g} s)"
        )


async def measure_small_rows(rt: Runtime, count: int, per: PerItem) -> None:
    registry = JobRegistry()

    async def noop(payload: dict[str, Any]) -> None:
        return None

    registry.job("bench.noop", noop, RetryPolicy(attempts=1))
    history = ("pgqueuer_log", "pgqueuer_statistics")
    await vacuum(*history)
    before = sum([await relation_size(t) for t in history])
    for i in range(count):
        await enqueue("bench.noop", {"guid": str(uuid.uuid4()), "i": i})
    await Worker(registry, concurrency=10, heartbeat_seconds=30).run(drain=True)
    async with engine.connection() as connection:
        # Workers fold the log into statistics in the background; fold it now.
        await Queries(AsyncpgDriver(connection)).aggregate_logs()
    await vacuum(*history)
    per.queue_job = (sum([await relation_size(t) for t in history]) - before) / count

    before = await relation_size("spawn_decision")
    for i in range(count):
        await spawn_decisions.record(
            None,
            Decision(
                False, "daily_spawn_budget", "the daily budget of 20 investigate runs is spent"
            ),
            installation_id=1,
            mode=Mode.INVESTIGATE,
            fingerprint=f"{i:064x}",
        )
    await vacuum("spawn_decision")
    per.spawn_decision = (await relation_size("spawn_decision") - before) / count

    before = await relation_size("audit_log")
    for i in range(count):
        await audit.record(
            actor="dispatch[bot]",
            action="label.add",
            target=f"octo-org/widgets#{i}",
            repository="octo-org/widgets",
            issue_number=i,
            installation_id=1,
            before={"labels": ["status/ready", "type/bug", "priority/p2"]},
            after={"labels": ["status/in-progress", "type/bug", "priority/p2", "agent/claude"]},
            delivery=str(uuid.uuid4()),
        )
    await vacuum("audit_log")
    per.audit_entry = (await relation_size("audit_log") - before) / count
    print(
        f"per queue job (log + statistics): {per.queue_job:,.0f} B; per spawn decision: "
        f"{per.spawn_decision:,.0f} B; per audit entry: {per.audit_entry:,.0f} B"
    )


async def simulate(
    rt: Runtime,
    payloads,
    rate: OutputRate,
    args: argparse.Namespace,
    *,
    prune: bool,
) -> list[tuple[int, int]]:
    """(day, database bytes) at the end of each simulated day, at 1/scale of the rate."""
    per_day = args.deliveries_per_day / args.scale
    runs_per_day = args.runs_per_day / args.scale
    steps = 4  # a prune every 6 simulated hours (the real job runs every 15 minutes)
    cycle = itertools.cycle(payloads)
    runs_due, number, sizes = 0.0, 0, []
    for day in range(1, args.days + 1):
        for _ in range(steps):
            count = round(per_day / steps)
            spacing = timedelta(hours=24 / steps) / max(count, 1)
            await journal_deliveries(payloads, count, rt.clock.now(), spacing, cycle)
            runs_due += runs_per_day / steps
            while runs_due >= 1:
                runs_due -= 1
                number += 1
                await agent_run(rt, rate, args.run_minutes, number)
            rt.clock.advance(hours=24 / steps)  # type: ignore[attr-defined]
            if prune:
                await retention.prune(rt)
            await vacuum("delivery", "log_chunk", "run")
        sizes.append((day, await database_size()))
        if day % 10 == 0 or day == args.days:
            print(f"  day {day:3d}: {sizes[-1][1] / MB:8.1f} MB (at 1/{args.scale:g} of the rate)")
    return sizes


def scaled(size: int, base: int, scale: float) -> float:
    return base + (size - base) * scale


async def main(args: argparse.Namespace) -> int:
    payloads = example_payloads()
    rates = output_rates()
    started = time.monotonic()
    per = PerItem()
    with environment() as (admin_dsn, _fake, scratch):
        rt = runtime(scratch)
        try:
            print("\n== per item ==")
            await database(admin_dsn, "measure")
            await measure_deliveries(rt, payloads, args.sample, per)
            await measure_output(rt, rates, args.run_minutes, per)
            await measure_small_rows(rt, args.sample, per)

            results = {}
            for label, prune in (("with retention", True), ("without retention", False)):
                print(f"\n== {args.days} simulated days, {label} ==")
                rt = runtime(scratch)
                await database(admin_dsn, label.replace(" ", "_"))
                base = await database_size()
                sizes = await simulate(rt, payloads, rates[0], args, prune=prune)
                results[label] = (base, sizes)
        finally:
            await rt.close()
            await engine.disconnect()
    return report(args, per, rates, results, time.monotonic() - started)


def report(args, per: PerItem, rates, results, took: float) -> int:
    deliveries, run_count, minutes = args.deliveries_per_day, args.runs_per_day, args.run_minutes
    assert per.output_per_minute is not None
    print(f"\n== at {deliveries:,} deliveries and {run_count} runs of {minutes:g} min a day ==")
    checkpoints = sorted({1, 7, 14, 30, 60, 90, args.days} & set(range(1, args.days + 1)))
    print(f"{'day':>5} {'with retention':>16} {'without':>12}")
    with_base, with_sizes = results["with retention"]
    without_base, without_sizes = results["without retention"]
    for day in checkpoints:
        kept = scaled(with_sizes[day - 1][1], with_base, args.scale)
        grown = scaled(without_sizes[day - 1][1], without_base, args.scale)
        print(f"{day:>5} {kept / GB:>13.2f} GB {grown / GB:>9.2f} GB")

    # What the simulation leaves out (their rows are stamped by the database's clock, not the
    # app's): queue history (one job per delivery), spawn decisions (3 per run), audit entries.
    queue_kept = deliveries * 7 * per.queue_job
    decisions_kept = run_count * 3 * 30 * per.spawn_decision
    final = scaled(with_sizes[-1][1], with_base, args.scale)
    settled = final + queue_kept + decisions_kept
    audit_per_year = 5000 * 365 * per.audit_entry
    formula = (
        deliveries * 14 * per.delivery_full
        + deliveries * 76 * per.delivery_row
        + run_count * 30 * minutes * per.output_per_minute[rates[0].name]
        + queue_kept
        + decisions_kept
    )
    verbose = (
        formula
        - run_count * 30 * minutes * per.output_per_minute[rates[0].name]
        + run_count * 30 * minutes * per.output_per_minute[rates[1].name]
    )
    print(
        f"\nsettled with the defaults (simulated, day {args.days}): {final / GB:.2f} GB, + queue "
        f"history {queue_kept / GB:.2f} GB + spawn decisions {decisions_kept / MB:.1f} MB = "
        f"{settled / GB:.2f} GB"
    )
    print(
        f"same from the per-item sizes (14 d payloads, 90 d rows, 30 d logs): {formula / GB:.2f} GB"
    )
    print(f"  with a verbose harness posting raw stream-json instead: {verbose / GB:.2f} GB")
    per_day = (
        deliveries * per.delivery_full
        + run_count * minutes * per.output_per_minute[rates[0].name]
        + deliveries * per.queue_job
    )
    print(
        f"without retention it grows by {per_day / GB:.2f} GB a day "
        f"({per_day * 365 / GB:.0f} GB a year)"
    )
    print(
        f"the audit trail (kept for good by default) grows {audit_per_year / GB:.2f} GB a year "
        "at 5,000 entries a day"
    )
    met = settled < GOAL_BYTES
    print(f"\ntarget < 5 GB settled: {'met' if met else 'NOT met'}  (took {took:.0f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--deliveries-per-day", type=float, default=50_000)
    parser.add_argument("--runs-per-day", type=float, default=200)
    parser.add_argument("--run-minutes", type=float, default=15, help="agent output per run")
    parser.add_argument("--days", type=int, default=100, help="simulated days (> 90 to settle)")
    parser.add_argument("--scale", type=float, default=50, help="simulate 1/scale of the rate")
    parser.add_argument("--sample", type=int, default=3000, help="items per per-item measurement")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.days, parsed.scale, parsed.sample = 20, 500, 300
    install_signal_handlers()
    try:
        sys.exit(asyncio.run(main(parsed)))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
