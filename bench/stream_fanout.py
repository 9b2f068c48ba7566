"""Stream fan-out: one agent posts log chunks of one run to one `dispatch serve` process while 500
Server-Sent-Events viewers of that run are connected, half to that process (A, with the worker)
and half to a second one (B, `--no-worker`), both on the same database. Every chunk travels
through Postgres NOTIFY to every process's LISTEN connection, then to that process's viewers.

The viewers run in two separate processes (raw asyncio streams on uvloop, a hand-rolled chunked
+ SSE parser), each holding 125 connections to A and 125 to B, so the client side stays cheap;
their CPU is reported. The agent (this process) posts 50 chunks/s for 20 s on a fixed schedule,
with an agent API token, one post at a time on one keep-alive connection like the agent reporter
(`--in-flight N` lets N posts overlap on N connections, as a harness that posts concurrently
would; chunks can then commit out of order); each chunk's data starts with its send time
(CLOCK_MONOTONIC, shared by all processes of the machine). The achieved posting rate is printed:
a post that takes longer than 1/rate delays the next.

Prints the per-chunk delivery lag (send → receipt at each viewer; receipt is stamped when the
viewer's socket read returns) p50/p99/max over all (viewer, chunk) pairs and per server, the
agent's POST latency, and per viewer the chunks lost, duplicated or out of order (all must be 0),
plus the CPU of every process during the posting window.

    python bench/stream_fanout.py [--quick] [--viewers 500] [--rate 50] [--seconds 20]
                                  [--chunk-bytes 200] [--profile]

Target: p99 < 250 ms, zero lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from array import array
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_P99_MS = 250.0


# =============================================================================== viewer process


class Viewer(asyncio.Protocol):
    """One SSE connection as a bare asyncio Protocol (no StreamReader, no coroutine per read):
    parses chunked transfer encoding and SSE events incrementally in `data_received`, and
    reconnects with Last-Event-ID if the server drops it."""

    def __init__(self, host: str, port: int, path: str, total: int) -> None:
        self.host, self.port, self.path, self.total = host, port, path, total
        self.seqs = array("i")
        self.lags = array("d")
        self.last = 0
        self.reconnects = 0
        self.opened = asyncio.Event()
        self.finished = asyncio.Event()
        self.errors: list[str] = []
        self.closed: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self._head = True
        self._raw = bytearray()
        self._sse = bytearray()
        self._need = (
            -1
        )  # bytes of the current chunk still expected (+2 for its CRLF); -1: size line

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.closed = loop.create_future()
            self._head, self._need = True, -1
            self._raw.clear()
            self._sse.clear()
            try:
                await loop.create_connection(lambda: self, self.host, self.port)
                assert self.transport is not None
                last_id = f"Last-Event-ID: {self.last}\r\n" if self.last else ""
                self.transport.write(
                    f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"Accept: text/event-stream\r\n{last_id}\r\n".encode()
                )
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({self.closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
            except (OSError, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            if self.transport is not None:
                self.transport.close()
            if stop.is_set() or self.finished.is_set():
                return
            self.reconnects += 1
            await asyncio.sleep(0.2)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.is_set():
            self.errors.append(f"connection lost: {exc}")
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, why: str) -> None:
        self.errors.append(why)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        raw = self._raw
        raw += data
        pos = 0
        if self._head:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(raw[:end]).lower()
            if head[9:12] != b"200" or b"chunked" not in head:
                self._fail(f"unexpected answer {head[:60]!r}")
                return
            self._head = False
            pos = end + 4
        while True:
            if self._need < 0:
                end = raw.find(b"\r\n", pos)
                if end < 0:
                    break
                size = int(raw[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if size == 0:
                    self.finished.set()
                    break
                self._need = size + 2
            if len(raw) - pos < self._need:
                break
            self._sse += raw[pos : pos + self._need - 2]
            pos += self._need
            self._need = -1
        del raw[:pos]
        self._events(now)

    def _events(self, now: float) -> None:
        sse = self._sse
        start = 0
        while True:
            end = sse.find(b"\r\n\r\n", start)
            if end < 0:
                break
            block = bytes(sse[start:end])
            start = end + 4
            if block.startswith(b":"):
                if b"stream open" in block:
                    self.opened.set()
                continue
            if b"event: log" not in block:
                if b"event: end" in block:
                    self.finished.set()
                continue
            at = block.find(b"id: ")
            seq = int(block[at + 4 : block.find(b"\r\n", at)])
            at = block.find(b"data: ")
            sent = float(block[at + 6 : block.find(b" ", at + 6)])
            self.seqs.append(seq)
            self.lags.append(now - sent)
            if seq > self.last:
                self.last = seq
            if seq >= self.total:
                self.finished.set()
        del sse[:start]


async def viewer_main(args: argparse.Namespace) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    targets = [(int(port), int(count)) for port, count in (t.split(":") for t in args.targets)]
    path = f"/runs/{args.run}/stream?token={args.token}"
    viewers = [
        Viewer("127.0.0.1", port, path, args.total) for port, count in targets for _ in range(count)
    ]
    stop = asyncio.Event()
    tasks = []
    # Open in waves so the servers' `runs.get` and accept queues are not hit by all at once.
    for i in range(0, len(viewers), 25):
        wave = viewers[i : i + 25]
        tasks += [asyncio.create_task(v.run(stop)) for v in wave]
        await asyncio.wait_for(asyncio.gather(*(v.opened.wait() for v in wave)), 60)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()

    async def finished() -> None:
        await asyncio.gather(*(v.finished.wait() for v in viewers))
        print("done", flush=True)

    finishing = asyncio.create_task(finished())
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop" from the coordinator
    stop.set()
    finishing.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out = Path(args.out)
    summary = []
    by_port: dict[int, array] = {}
    seqs_by_port: dict[int, array] = {}
    for v in viewers:
        seqs = list(v.seqs)
        distinct = set(seqs)
        expected = set(range(1, args.total + 1))
        summary.append(
            {
                "port": v.port,
                "received": len(seqs),
                "lost": len(expected - distinct),
                "duplicated": len(seqs) - len(distinct),
                "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b <= a),
                "reconnects": v.reconnects,
                "errors": v.errors[:3],
            }
        )
        by_port.setdefault(v.port, array("d")).extend(v.lags)
        seqs_by_port.setdefault(v.port, array("i")).extend(v.seqs)
    (out / "summary.json").write_text(json.dumps({"viewers": summary, "cpu": time.process_time()}))
    for port, lags in by_port.items():
        with (out / f"lags-{port}.bin").open("wb") as handle:
            lags.tofile(handle)
        with (out / f"seqs-{port}.bin").open("wb") as handle:
            seqs_by_port[port].tofile(handle)
    print("result", flush=True)


# =============================================================================== coordinator


async def post_chunks(
    port: int,
    run_id: int,
    token: str,
    rate: float,
    seconds: float,
    chunk_bytes: int,
    in_flight: int = 1,
) -> tuple[list[float], dict[int, int], float, float]:
    """Chunk `seq` is due at (seq - 1) / rate; up to `in_flight` posts may overlap (on that many
    keep-alive connections); with 1, a slow answer delays the following posts.
    Returns POST latencies, statuses, the posting duration and the worst send delay."""
    from bench import loadgen

    idle: asyncio.Queue[loadgen.Connection] = asyncio.Queue()
    for _ in range(in_flight):
        connection = loadgen.Connection("127.0.0.1", port)
        await connection.open()
        idle.put_nowait(connection)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    late = [0.0]
    total = int(rate * seconds)
    start = time.perf_counter()

    async def post(seq: int, scheduled: float) -> None:
        connection = await idle.get()
        try:
            late[0] = max(late[0], time.perf_counter() - scheduled)
            sent = time.monotonic()
            head = f"{sent:.6f} {seq:06d} "
            data = head + "x" * max(0, chunk_bytes - len(head))
            body = json.dumps({"seq": seq, "data": data}).encode()
            raw = loadgen.build_request(
                f"127.0.0.1:{port}",
                f"/api/runs/{run_id}/log",
                body,
                {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {token}",
                },
            )
            began = time.perf_counter()
            status = await connection.request(raw)
            latencies.append(time.perf_counter() - began)
            statuses[status] = statuses.get(status, 0) + 1
        finally:
            idle.put_nowait(connection)

    tasks = []
    for seq in range(1, total + 1):
        scheduled = start + (seq - 1) / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(seq, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, statuses, elapsed, late[0]


async def coordinator(args: argparse.Namespace) -> int:
    from app.signing import Signer
    from bench.common import (
        SECRET_KEY,
        Child,
        CpuMeter,
        PySpy,
        dispatch_cli,
        dispatch_env,
        environment,
        gc_pauses,
        leaf_frames,
        pct,
        pg_top_statements,
        serve,
        top_frames,
    )

    total = int(args.rate * args.seconds)
    with environment(pg_stats=args.pg_stats) as (dsn, fake, scratch):
        env = dispatch_env(dsn, fake, scratch)
        server_a = serve(env, scratch, gc_log=args.gc_log)
        server_b = serve(env, scratch, "--no-worker", gc_log=args.gc_log)
        token = dispatch_cli(
            env, "token", "create", "--name", "bench", "--scope", "agent", "--all-repos"
        ).strip()
        connection = await asyncpg.connect(dsn)
        run_id = await connection.fetchval(
            "INSERT INTO run (installation_id, repository, repository_id, issue_number, mode, "
            "state) "
            "VALUES (1, 'o/r', 1, 1, 'investigate', 'running') RETURNING id"
        )
        viewer_token = Signer(SECRET_KEY.encode()).sign("stream", f"run:{run_id}", 3600)
        per_process = args.viewers // 2
        subscribers = []
        for k in range(2):
            out = scratch / f"viewers-{k}"
            out.mkdir()
            half = per_process // 2
            child = Child(
                [
                    sys.executable,
                    __file__,
                    "--viewer",
                    "--run",
                    str(run_id),
                    "--token",
                    viewer_token,
                    "--total",
                    str(total),
                    "--out",
                    str(out),
                    "--targets",
                    f"{server_a.port}:{half}",
                    f"{server_b.port}:{per_process - half}",
                ],
                env,
                None,
                scratch / f"viewers-{k}.log",
            )
            subscribers.append((child, out))
        ok = False
        try:
            # The viewer processes talk on stdin (stop) and their log (ready/done/result).
            await wait_for_line(subscribers, "ready", timeout=120)
            await asyncio.sleep(1.0)
            print(
                f"{args.viewers} viewers connected: {per_process} per viewer process, "
                f"{args.viewers // 2} on A (worker, receives the posts) and "
                f"{args.viewers - args.viewers // 2} on B (--no-worker)"
            )
            pids = {
                "server A": server_a.pid,
                "server B": server_b.pid,
                "postgres": 0,
                "viewers 1": subscribers[0][0].pid,
                "viewers 2": subscribers[1][0].pid,
                "agent+bench": os.getpid(),
            }
            spy = PySpy(server_b.pid, scratch / "stream-b.txt") if args.profile else None
            if args.pg_stats:
                await pg_top_statements(dsn)  # reset
            posting_started = time.monotonic()
            with CpuMeter(pids) as cpu:
                if spy:
                    spy.__enter__()
                posts, statuses, posting, late = await post_chunks(
                    server_a.port,
                    run_id,
                    token,
                    args.rate,
                    args.seconds,
                    args.chunk_bytes,
                    args.in_flight,
                )
                if spy:
                    spy.__exit__()
            done = await wait_for_line(subscribers, "done", timeout=15, required=False)
            stats = await pg_top_statements(dsn, limit=8) if args.pg_stats else []
            for child, _ in subscribers:
                child.proc.stdin.write(b"stop\n")
                child.proc.stdin.flush()
            await wait_for_line(subscribers, "result", timeout=60)
            stored = await connection.fetchval(
                "SELECT count(*) FROM log_chunk WHERE run_id = $1", run_id
            )

            viewers = []
            lags_by_server: dict[str, list[float]] = {"A": [], "B": []}
            worst_by_seq: dict[str, dict[int, float]] = {"A": {}, "B": {}}
            names = {server_a.port: "A", server_b.port: "B"}
            cpu_self = []
            for _, out in subscribers:
                summary = json.loads((out / "summary.json").read_text())
                viewers += summary["viewers"]
                cpu_self.append(summary["cpu"])
                for port, name in names.items():
                    path = out / f"lags-{port}.bin"
                    if path.exists():
                        values = array("d")
                        values.frombytes(path.read_bytes())
                        lags_by_server[name] += list(values)
                        seqs = array("i")
                        seqs.frombytes((out / f"seqs-{port}.bin").read_bytes())
                        worst = worst_by_seq[name]
                        for seq, lag in zip(seqs, values, strict=True):
                            if lag > worst.get(seq, 0.0):
                                worst[seq] = lag
            all_lags = lags_by_server["A"] + lags_by_server["B"]
            lost = sum(v["lost"] for v in viewers)
            dups = sum(v["duplicated"] for v in viewers)
            disorder = sum(v["out_of_order"] for v in viewers)
            reconnects = sum(v["reconnects"] for v in viewers)
            worst_lost = max(v["lost"] for v in viewers)
            errors = [e for v in viewers for e in v["errors"]][:5]
            ms = lambda v, q: pct(v, q) * 1000  # noqa: E731
            print(
                f"agent: {len(posts)} chunks of {args.chunk_bytes} B to A in {posting:.2f} s "
                f"({len(posts) / posting:.1f}/s, target {args.rate:.0f}/s; worst send delay "
                f"{late * 1000:.0f} ms); POST p50 {ms(posts, 50):.1f} ms, p99 "
                f"{ms(posts, 99):.1f} ms, max {max(posts) * 1000:.1f} ms; statuses {statuses}; "
                f"stored {stored}"
            )
            print(
                f"delivery lag over {len(all_lags)} (viewer, chunk) pairs: "
                f"p50 {ms(all_lags, 50):.1f} ms, "
                f"p99 {ms(all_lags, 99):.1f} ms, max {max(all_lags) * 1000:.1f} ms"
            )
            for name in ("A", "B"):
                values = lags_by_server[name]
                print(
                    f"  viewers on {name}: p50 {ms(values, 50):.1f} ms, "
                    f"p99 {ms(values, 99):.1f} ms, "
                    f"max {max(values) * 1000:.1f} ms ({len(values)} receipts)"
                )
            for name in ("A", "B"):
                slow = sorted(worst_by_seq[name].items(), key=lambda item: -item[1])[:5]
                print(
                    f"  slowest chunks on {name} (send time, worst viewer's lag): "
                    + ", ".join(
                        f"{(seq - 1) / args.rate:.2f} s {lag * 1000:.0f} ms"
                        for seq, lag in sorted(slow)
                    )
                )
                per_second: dict[int, float] = {}
                for seq, lag in worst_by_seq[name].items():
                    second = int((seq - 1) / args.rate)
                    per_second[second] = max(per_second.get(second, 0.0), lag)
                print(
                    f"  worst lag on {name} per second of posting (ms): "
                    + " ".join(f"{per_second[k] * 1000:.0f}" for k in sorted(per_second))
                )
            if args.gc_log:
                for name, server in (("A", server_a), ("B", server_b)):
                    pauses = gc_pauses(server, posting_started, posting_started + args.seconds + 1)
                    big = [p for p in pauses if p[1] == 2 or p[2] > 5]
                    full = [p for p in pauses if p[1] == 2]
                    print(
                        f"  GC in {name} while posting: {len(full)} full collections, "
                        f"{sum(p[2] for p in full):.0f} ms in all, up to "
                        f"{max((p[4] for p in full), default=0)} objects left tracked; "
                        f"pauses of gen2 or > 5 ms (freed objects): "
                        + ", ".join(
                            f"{at - posting_started:.2f} s gen{g} {ms_:.0f} ms ({freed})"
                            for at, g, ms_, freed, _ in big[:10]
                        )
                    )
            print(
                f"viewers: {len(viewers)}; expected {total} chunks each; lost {lost} "
                f"(worst viewer {worst_lost}), duplicated {dups}, out of order {disorder}, "
                f"reconnects {reconnects}; all finished: {done}"
                + (f"; errors {errors}" if errors else "")
            )
            print(f"cpu during posting (share of one core): {cpu.summary()}")
            if stats:
                print("  database time by statement while posting:")
                for line in stats:
                    print(f"    {line}")
            if spy:
                print("  py-spy of server B: app/ functions on the stack")
                for frame, share in top_frames(scratch / "stream-b.txt", limit=10):
                    print(f"    {share * 100:5.1f}%  {frame}")
                print("  leaf frames")
                for frame, share in leaf_frames(scratch / "stream-b.txt", limit=14):
                    print(f"    {share * 100:5.1f}%  {frame}")
            p99 = ms(all_lags, 99)
            ok = p99 < TARGET_P99_MS and lost == 0 and dups == 0 and len(viewers) == args.viewers
            print(
                f"target p99 < {TARGET_P99_MS:.0f} ms with 0 lost/duplicated: "
                f"{'met' if ok else 'NOT met'} (p99 {p99:.1f} ms, lost {lost}, duplicated {dups})"
            )
        finally:
            await connection.close()
            for child, _ in subscribers:
                child.stop(5)
            server_a.stop()
            server_b.stop()
    return 0 if ok else 1


async def wait_for_line(subscribers, word: str, timeout: float, required: bool = True) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for child, _ in subscribers:
            said = word in child.log.read_text().split()
            if not said and child.proc.poll() is not None:
                raise RuntimeError(f"viewer process exited: {child.log.read_text()[-3000:]}")
            states.append(said)
        if all(states):
            return True
        await asyncio.sleep(0.05)
    if required:
        raise TimeoutError(
            f"viewer processes did not say {word!r}: "
            + " | ".join(c.log.read_text()[-1500:] for c, _ in subscribers)
        )
    return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--chunk-bytes", type=int, default=200)
    parser.add_argument(
        "--in-flight",
        type=int,
        default=1,
        help="posts allowed to overlap (1: sequential, like the reporter)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy server B while posting")
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="load pg_stat_statements; print the top statements while posting",
    )
    parser.add_argument(
        "--gc-log",
        action="store_true",
        help="run the servers through bench/gc_serve.py and list GC pauses",
    )
    # internal: the viewer processes
    parser.add_argument("--viewer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--targets", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewer:
        asyncio.run(viewer_main(args))
        return
    if args.quick:
        args.viewers, args.seconds = 100, 4.0
    from bench.common import install_signal_handlers, wait_for_quiet

    install_signal_handlers()
    try:
        wait_for_quiet()
        sys.exit(asyncio.run(coordinator(args)))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
