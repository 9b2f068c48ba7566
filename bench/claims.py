"""Claims: how fast harnesses get work. N claimers (N = 1, 10, 50) each keep one
`POST /api/claims` in flight against `dispatch serve` replicas (two by default, `--no-worker`,
one database), over a pool of ready issues in one repository; a claimer that gets an issue asks for
the next at once (closed loop) and keeps what it claimed, so every claim takes a fresh issue.

A claim is: lock the most urgent, oldest ready issue in the cache (`FOR UPDATE SKIP LOCKED`),
re-read it at GitHub, write the claim row, label it (`agent/<name>` added — created first if the
repository lacks it —, `status/in-progress` added, `status/ready` removed, each a targeted edit
after `state.move_to` re-reads the labels), re-read it into the cache, audit: seven GitHub
requests, four reads and three writes, in one transaction that holds the issue's row lock.

Latency: from just before the request is written to the end of the 201. Claims/s: claims
answered per second of the level's wall time. At the end every claim is checked: no issue held
twice, every answered claim labelled at the fake GitHub.

GITHUB_CONTENT_PER_MINUTE / GITHUB_CONTENT_PER_HOUR are 100000 here, as in command_latency.py:
GitHub's secondary limit (80 content-creating requests a minute per installation) would otherwise
be the whole story — about 26 claims a minute per installation, at three writes each (releases
take their own). Writes still go one at a time per installation and process
(app/github/pacing.py).

    python bench/claims.py [--quick] [--servers 1|2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    UNPACED,
    CpuMeter,
    dispatch_env,
    environment,
    install_signal_handlers,
    pct,
    serve,
    wait_for_quiet,
)

LEVELS = (1, 10, 50)
REPO = "octo-org/widgets"


async def seed(dsn: str, env: dict[str, str], installation: int, repository: dict) -> str:
    """The installation's rows, the issue cache (what the installation webhook and onboarding
    do) and an agent token, through Dispatch's own functions."""
    from app.config import load_settings
    from app.db import engine
    from app.installations import service as installations
    from app.issues import onboarding
    from app.tokens import service as tokens
    from app.worker import build_runtime

    settings = load_settings(
        database_url=dsn,
        dispatch_data_dir=env["DISPATCH_DATA_DIR"],
        dispatch_secret_key=env["DISPATCH_SECRET_KEY"],
        github_api_url=env["GITHUB_API_URL"],
        github_app_id=env["GITHUB_APP_ID"],
        github_app_slug=env["GITHUB_APP_SLUG"],
        github_private_key=env["GITHUB_PRIVATE_KEY"],
        github_webhook_secret=env["GITHUB_WEBHOOK_SECRET"],
        dispatch_embeddings="off",
    )
    rt = build_runtime(settings)
    await engine.connect(dsn, pool_size=4)
    try:
        await installations.upsert_installation(
            {"id": installation, "account": {"login": "octo-org"}}
        )
        await installations.add_repositories(installation, [repository])
        await onboarding.onboard(rt, installation, REPO)
        return await tokens.create("bench", "agent", [REPO])
    finally:
        await rt.close()
        await engine.disconnect()


async def claimer(
    base: str, token: str, index: int, count: int, latencies: list[float], claimed: list[int]
) -> None:
    async with httpx.AsyncClient(
        base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=120
    ) as http:
        for _ in range(count):
            started = time.perf_counter()
            got = await http.post("/api/claims", json={"agent": f"bench-{index % 5}"})
            if got.status_code != 201:
                raise RuntimeError(f"claim answered {got.status_code}: {got.text[:300]}")
            latencies.append(time.perf_counter() - started)
            claimed.append(got.json()["issue"]["number"])


async def main(args: argparse.Namespace) -> int:
    per_claimer = {1: 20, 10: 5, 50: 2} if args.quick else {1: 150, 10: 40, 50: 12}
    pool = sum(level * per_claimer[level] for level in LEVELS) + 1
    with environment() as (dsn, fake, scratch):
        installation = fake.add_installation("octo-org")
        repository = fake.add_repo(installation, REPO)
        for i in range(pool):
            fake.add_issue(
                repository,
                f"task {i}",
                labels=["status/ready", f"priority/p{i % 4}", "type/bug"],
                created_at=f"2026-01-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            )
        env = dispatch_env(
            dsn,
            fake,
            scratch,
            **UNPACED,
            CLAIM_LEASE_MINUTES="600",
        )
        servers = [serve(env, scratch, "--no-worker") for _ in range(args.servers)]
        token = await seed(dsn, env, installation, repository)
        print(
            f"{pool} ready issues, {args.servers} `dispatch serve --no-worker` replica(s), "
            "claimers spread over them"
        )
        print(
            f"{'conc':>4}  {'claims':>6}  {'claims/s':>8}  {'p50':>8}  {'p99':>8}  {'max':>8}  cpu"
        )
        everything: list[int] = []
        fake_calls = 0
        for level in args.levels:
            latencies: list[float] = []
            claimed: list[int] = []
            pids = {f"serve {k + 1}": s.pid for k, s in enumerate(servers)}
            pids.update({"postgres": 0, "bench+fake": os.getpid()})
            before = len(fake.calls)
            with CpuMeter(pids) as cpu:
                began = time.perf_counter()
                await asyncio.gather(
                    *(
                        claimer(
                            f"http://127.0.0.1:{servers[i % len(servers)].port}",
                            token,
                            i,
                            per_claimer[level],
                            latencies,
                            claimed,
                        )
                        for i in range(level)
                    )
                )
                elapsed = time.perf_counter() - began
            fake_calls += len(fake.calls) - before
            everything += claimed
            print(
                f"{level:>4}  {len(claimed):>6}  {len(claimed) / elapsed:8.1f}  "
                f"{pct(latencies, 50) * 1000:6.1f}ms  {pct(latencies, 99) * 1000:6.1f}ms  "
                f"{max(latencies) * 1000:6.1f}ms  {cpu.summary()}"
            )
        twice = [number for number, n in Counter(everything).items() if n > 1]
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetchval("SELECT count(*) FROM claim WHERE state = 'active'")
        finally:
            await connection.close()
        unlabelled = [
            n for n in everything if "agent/" not in " ".join(fake.label_names(repository, n))
        ]
        print(
            f"checks: {len(everything)} claims, {len(twice)} issues claimed twice, "
            f"{rows} active claim rows, {len(unlabelled)} claimed issues without an agent label; "
            f"{fake_calls / max(len(everything), 1):.1f} GitHub requests per claim"
        )
        for server in servers:
            server.stop()
        return 0 if not twice and rows == len(everything) and not unlabelled else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--servers", type=int, default=2, help="dispatch serve replicas")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(main(parser.parse_args())))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
