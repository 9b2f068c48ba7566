"""Portal page latency: one customer following 100 issues (plus 400 issues nobody follows), each
with its status history in the audit trail, some agent runs, pull requests and comment activity,
served by a running `dispatch serve --no-worker` (a web replica) to 50 concurrent viewers.

Requests alternate between the board (`/portal/acme?token=…`) and the issue pages of the 100
issues (`/portal/acme/<owner>/<repo>/<n>?token=…`), all with the same portal token, from one
address, so the limits are raised for the run (`PORTAL_RATE_PER_TOKEN` and
`PORTAL_RATE_PER_ADDRESS` = 10^9): the rate-limit count (one upsert in Postgres per request) is
still done and measured.

Two shapes of load, both with 50 viewers:

- **open loop**, the target: 50 viewers each opening a page every second on average (50 pages/s,
  then 100 and 200 pages/s for headroom); latency from the scheduled send time, so a stall is
  not hidden. Goal: p99 < 50 ms at 50 pages/s.
- **closed loop**: 50 connections each sending its next request as soon as the previous answer
  arrives — the server's throughput; latency there is 50 / throughput by construction.

It also counts the calls the fake GitHub received while the portal was being read: zero.

    python bench/portal.py [--quick] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.agents import runs
from app.agents.runs import NewRun, Trigger
from app.audit import log as audit
from app.db import engine
from app.installations import service as installations
from app.issues import cache
from app.modes import Mode
from app.portal import activity
from bench import loadgen
from bench.common import (
    CpuMeter,
    dispatch_cli,
    dispatch_env,
    environment,
    install_signal_handlers,
    serve,
    wait_for_quiet,
)

FOLLOWED = 100
NOISE = 400
VIEWERS = 50
TARGET_P99_MS = 50.0
REPO = "octo-org/widgets"
STATUSES = ["status/backlog", "status/ready", "status/in-progress", "status/in-review", None]
PRIORITIES = ["priority/p0", "priority/p1", "priority/p2", "priority/p3", None]


def get_request(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def seed(dsn: str, installation: int, repository: dict) -> list[int]:
    """100 followed issues with history, 400 others; returns the followed numbers."""
    await engine.connect(dsn, pool_size=4)
    try:
        await installations.upsert_installation(
            {"id": installation, "account": {"login": "octo-org"}}
        )
        await installations.add_repositories(installation, [repository])
        now = datetime.now(UTC)
        issues = []
        for number in range(1, FOLLOWED + NOISE + 1):
            followed = number <= FOLLOWED
            labels = [
                label
                for label in (
                    STATUSES[number % len(STATUSES)],
                    PRIORITIES[number % len(PRIORITIES)],
                    "customer/acme" if followed else "customer/globex" if number % 3 else None,
                    "type/bug",
                )
                if label
            ]
            created = now - timedelta(days=number % 40, hours=number)
            issues.append(
                {
                    "number": number,
                    "title": f"Issue {number}: export fails for large files in region {number % 7}",
                    "body": "Steps to reproduce …\n" * 20,
                    "state": "open" if number % 10 else "closed",
                    "labels": [{"name": name} for name in labels],
                    "user": {"login": "carol"},
                    "created_at": created.isoformat(),
                    "updated_at": (created + timedelta(hours=5)).isoformat(),
                    "closed_at": None if number % 10 else (created + timedelta(days=1)).isoformat(),
                }
            )
        await cache.store_many(installation, repository, issues)
        for number in range(1, FOLLOWED + 1):
            for status in ("status/backlog", "status/ready", "status/in-progress"):
                await audit.record(
                    actor="dispatch-test[bot]",
                    action="label.add",
                    target=f"{REPO}#{number}",
                    repository=REPO,
                    issue_number=number,
                    installation_id=installation,
                    after={"added": status},
                )
            await activity.record_comment(
                repository["id"], number, now - timedelta(hours=number), by_team=number % 3 == 0
            )
            if number % 4 == 0:
                await activity.record_pull_request(
                    repository["id"],
                    {number},
                    {"number": 1000 + number, "state": "open", "created_at": now.isoformat(),
                     "html_url": f"https://github.com/{REPO}/pull/{1000 + number}"},
                )  # fmt: skip
            if number % 5 == 0:
                run = await runs.create(
                    NewRun(installation, REPO, repository["id"], number, Mode.INVESTIGATE,
                           Trigger.COMMAND, requested_by="alice")
                )  # fmt: skip
                await runs.update(run.id, state="running" if number % 10 else "succeeded")
    finally:
        await engine.disconnect()
    return list(range(1, FOLLOWED + 1))


async def main(args: argparse.Namespace) -> int:
    with environment() as (dsn, fake, scratch):
        installation = fake.add_installation("octo-org")
        repository = fake.add_repo(installation, REPO)
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            PORTAL_RATE_PER_TOKEN="1000000000",
            PORTAL_RATE_PER_ADDRESS="1000000000",
        )
        # A web replica (`--no-worker`): the worker's scheduled jobs (the delivery sweep asks
        # GitHub every 10 minutes) would otherwise land in the count of GitHub calls below.
        dispatch = serve(env, scratch, "--no-worker")
        numbers = await seed(dsn, installation, repository)
        link = dispatch_cli(
            env, "customer", "create", "--installation", str(installation), "--name", "Acme Corp",
            "--slug", "acme", "--color", "#6f42c1",
        ).strip()  # fmt: skip
        token = link.split("token=")[1]
        host = f"127.0.0.1:{dispatch.port}"
        board = get_request(host, f"/portal/acme?token={token}")
        pages = [get_request(host, f"/portal/acme/{REPO}/{n}?token={token}") for n in numbers]

        def make(i: int) -> bytes:
            return board if i % 2 == 0 else pages[(i // 2) % len(pages)]

        warm = await loadgen.closed_loop("127.0.0.1", dispatch.port, make, 400, 10)
        assert set(warm.statuses) == {200}, warm.statuses
        sizes = []
        import httpx

        async with httpx.AsyncClient(base_url=f"http://{host}") as http:
            for path in (f"/portal/acme?token={token}", f"/portal/acme/{REPO}/5?token={token}"):
                sizes.append(len((await http.get(path)).content))
        print(
            f"{FOLLOWED} followed issues (+{NOISE} others), {VIEWERS} viewers, one token; "
            f"board {sizes[0] / 1024:.0f} KB, issue page {sizes[1] / 1024:.0f} KB"
        )
        calls_before = len(fake.calls)
        pids = {"server": dispatch.pid, "postgres": 0, "bench+fake": os.getpid()}
        seconds = 5 if args.quick else args.seconds
        verdict = True
        print(f"{'load':<28} {'pages':>6} {'pages/s':>8} {'p50':>8} {'p99':>8} {'max':>8}  cpu")
        for rate in (50, 100, 200):
            with CpuMeter(pids) as cpu:
                result = await loadgen.open_loop(
                    "127.0.0.1", dispatch.port, make, rate, seconds, pool=VIEWERS
                )
            worst = max(result.latencies) * 1000
            print(
                f"{f'open loop {rate}/s':<28} {result.count:>6} {result.rate:>8.0f} "
                f"{result.pct(50):>6.1f}ms {result.pct(99):>6.1f}ms {worst:>6.1f}ms  "
                f"{cpu.summary()}"
            )
            assert set(result.statuses) == {200}, result.statuses
            if rate == 50:
                verdict = result.pct(99) < TARGET_P99_MS
        total = 1000 if args.quick else 5000
        with CpuMeter(pids) as cpu:
            result = await loadgen.closed_loop("127.0.0.1", dispatch.port, make, total, VIEWERS)
        print(
            f"{f'closed loop, {VIEWERS} in flight':<28} {result.count:>6} {result.rate:>8.0f} "
            f"{result.pct(50):>6.1f}ms {result.pct(99):>6.1f}ms "
            f"{max(result.latencies) * 1000:>6.1f}ms  {cpu.summary()}"
        )
        assert set(result.statuses) == {200}, result.statuses
        per_page = {name: share * 1000 / result.rate for name, share in cpu.result.items()}
        print(
            f"CPU per page (closed loop): server {per_page['server']:.2f} ms, "
            f"postgres {per_page['postgres']:.2f} ms; two quiet cores would serve about "
            f"{2000 / (per_page['server'] + per_page['postgres'] + per_page['bench+fake']):.0f} "
            "pages/s (the server alone: one core, about "
            f"{1000 / per_page['server']:.0f} pages/s)"
        )
        github_calls = len(fake.calls) - calls_before
        print(f"GitHub calls while serving the portal: {github_calls}")
        for call in fake.calls[calls_before:]:
            print(f"  {call.method} {call.path}")
        ok = verdict and github_calls == 0
        print(
            f"target p99 < {TARGET_P99_MS:.0f} ms at 50 viewers opening a page a second: "
            f"{'met' if verdict else 'NOT met'}; zero GitHub calls: "
            f"{'met' if github_calls == 0 else 'NOT met'}"
        )
        dispatch.stop()
        return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each open loop")
    install_signal_handlers()
    try:
        wait_for_quiet()
        started = time.monotonic()
        code = asyncio.run(main(parser.parse_args()))
        print(f"({time.monotonic() - started:.0f} s)")
        sys.exit(code)
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
