"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams, so that the client costs
little CPU next to the server it measures (both share this machine's two cores).

`closed_loop` keeps N requests in flight; `open_loop` sends at a fixed rate over a pool of
connections and measures latency from the scheduled send time (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    # request index -> status, for checking what was acknowledged against what was stored
    by_index: dict[int, int] = field(default_factory=dict)
    # request index -> latency (s)
    latency_by_index: dict[int, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        """The q-th percentile latency in ms (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, round(q / 100 * len(ordered) + 0.5) - 1)
        return ordered[min(len(ordered) - 1, rank)] * 1000

    def record(self, i: int, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.by_index[i] = status
        self.latency_by_index[i] = latency

    def summary(self) -> str:
        return (
            f"{self.rate:8.0f} req/s  p50 {self.pct(50):6.2f} ms  p99 {self.pct(99):6.2f} ms  "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> int:
        assert self.reader and self.writer
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def closed_loop(
    host: str,
    port: int,
    make: Callable[[int], bytes],
    total: int,
    concurrency: int,
    *,
    keep_alive: bool = True,
) -> Result:
    """`concurrency` senders, `total` requests. `keep_alive=False`: every request on a new
    connection (as GitHub delivers webhooks), its latency counted from before the connect; the
    request should carry `Connection: close`."""
    result = Result()
    counter = iter(range(total))

    async def sender() -> None:
        for i in counter:
            raw = make(i)
            start = time.perf_counter()
            conn = Connection(host, port)
            try:
                await conn.open()
                status = await conn.request(raw)
            finally:
                conn.close()
            result.record(i, status, time.perf_counter() - start)

    async def worker() -> None:
        if not keep_alive:
            return await sender()
        conn = Connection(host, port)
        await conn.open()
        try:
            for i in counter:
                raw = make(i)
                start = time.perf_counter()
                status = await conn.request(raw)
                result.record(i, status, time.perf_counter() - start)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def open_loop(
    host: str, port: int, make: Callable[[int], bytes], rate: float, seconds: float, pool: int = 64
) -> Result:
    result = Result()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        conn = Connection(host, port)
        await conn.open()
        idle.put_nowait(conn)
    total = int(rate * seconds)
    interval = 1.0 / rate
    tasks = []

    async def one(i: int, scheduled: float) -> None:
        raw = make(i)
        conn = await idle.get()
        try:
            status = await conn.request(raw)
        finally:
            idle.put_nowait(conn)
        result.record(i, status, time.perf_counter() - scheduled)

    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
