"""Webhook ingest: signed deliveries posted to a running `dispatch serve` (worker included) on
loopback. Prints accepted/s and ack latency p50/p99 at several concurrencies, the same for a
bare HMAC-only endpoint in the same framework (the floor) with the ratio, latency at a steady
200/s, and how many deliveries were lost (journaled and processed vs acknowledged).

    python bench/webhook_ingest.py [--total 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intake.signatures import github_signature  # noqa: E402
from bench import loadgen  # noqa: E402
from bench.common import Child, dispatch_env, environment, serve, wait_until  # noqa: E402
from tests.harness import free_port  # noqa: E402
from tests.webhooks import example  # noqa: E402


def payloads(installation_id: int) -> list[tuple[str, bytes]]:
    comment = example("issue_comment/created", installation_id=installation_id)
    labeled = example("issues/labeled", installation_id=installation_id)
    return [("issue_comment", json.dumps(comment).encode()), ("issues", json.dumps(labeled).encode())]


def maker(secret: str, kinds: list[tuple[str, bytes]], port: int, sent: list[str]):  # type: ignore[no-untyped-def]
    def make(i: int) -> bytes:
        event, body = kinds[i % len(kinds)]
        guid = str(uuid.uuid4())
        sent.append(guid)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-Hub-Signature-256": github_signature(secret, body),
        }
        return loadgen.build_request(f"127.0.0.1:{port}", "/webhooks/github", body, headers)

    return make


async def main(total: int) -> None:
    with environment() as (dsn, fake, scratch):
        installation = fake.add_installation("Codertocat", "User")
        fake.add_repo(installation, "Codertocat/Hello-World")
        env = dispatch_env(dsn, fake, scratch)
        dispatch = serve(env, scratch)
        floor_port = free_port()
        floor = Child(
            [sys.executable, str(Path(__file__).parent / "floor_server.py"), str(floor_port), fake.webhook_secret],
            env,
            floor_port,
            scratch / "floor.log",
        )
        floor.wait_http("/")
        kinds = payloads(installation)
        sent: list[str] = []
        acked = 0
        print(f"payloads: {[len(b) for _, b in kinds]} bytes; total per run {total}")
        print(f"{'concurrency':>11}  {'dispatch':<60}  {'floor (HMAC only)':<60}  ratio")
        try:
            for concurrency in (1, 10, 50, 100):
                ours = await loadgen.closed_loop(
                    "127.0.0.1", dispatch.port, maker(fake.webhook_secret, kinds, dispatch.port, sent), total, concurrency
                )
                acked += ours.statuses.get(202, 0)
                base = await loadgen.closed_loop(
                    "127.0.0.1", floor.port, maker(fake.webhook_secret, kinds, floor.port, []), total, concurrency
                )
                print(f"{concurrency:>11}  {ours.summary():<60}  {base.summary():<60}  {ours.rate / base.rate:5.2f}")
            steady = await loadgen.open_loop(
                "127.0.0.1", dispatch.port, maker(fake.webhook_secret, kinds, dispatch.port, sent), rate=200, seconds=10
            )
            acked += steady.statuses.get(202, 0)
            print(f"steady 200/s for 10 s: {steady.summary()}")

            connection = await asyncpg.connect(dsn)

            async def settled() -> bool:
                pending = await connection.fetchval("SELECT count(*) FROM delivery WHERE state = 'queued'")
                return pending == 0

            await wait_until(settled, timeout=300)
            journaled = await connection.fetchval("SELECT count(*) FROM delivery WHERE guid = ANY($1)", sent)
            states = dict(await connection.fetch("SELECT state, count(*) FROM delivery GROUP BY state"))
            await connection.close()
            print(f"acknowledged {acked}, journaled {journaled}, lost {acked - journaled}; states {states}")
        finally:
            dispatch.stop()
            floor.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=3000)
    asyncio.run(main(parser.parse_args().total))
