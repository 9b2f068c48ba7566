"""The per-process stream bus: one connection LISTENs on the stream channel and hands each
notification to the viewers of that run connected to this process. Every web process runs one,
so a viewer on one replica sees chunks posted to another.

The database stays the source of truth: a viewer that falls behind (its queue fills) or a bus
that lost its connection gets a `resync` message and re-reads from the last seq it sent. When the
process stops, every viewer gets a `closing` message and ends its stream; the browser reconnects
(with `Last-Event-ID`) to a process that is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import asyncpg
import msgspec

from app.stream import chunks
from app.stream.chunks import CHANNEL

log = logging.getLogger(__name__)

QUEUE_SIZE = 2000
RESYNC: dict[str, Any] = {"resync": True}
CLOSING: dict[str, Any] = {"closing": True}


class StreamBus:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._connection: asyncpg.Connection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._fetches: set[asyncio.Task[None]] = set()
        self._closing = False
        self._streams_ended = False

    async def start(self) -> None:
        await self._connect()
        self._watch = asyncio.create_task(self._keep_connected(), name="stream-bus")

    async def stop(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    def end_streams(self) -> None:
        """The process is stopping: every viewer's stream ends now (and any opened later at once),
        instead of holding the shutdown until its run ends."""
        self._streams_ended = True
        for queues in self._subscribers.values():
            for queue in queues:
                _offer(queue, CLOSING)

    def subscribe(self, run_id: int) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[run_id].add(queue)
        if self._streams_ended:
            _offer(queue, CLOSING)
        return queue

    def unsubscribe(self, run_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subscribers = self._subscribers.get(run_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[run_id]

    def watching(self, run_id: int) -> int:
        """Viewers of one run connected to this process."""
        return len(self._subscribers.get(run_id, ()))

    @property
    def viewers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def _connect(self) -> None:
        self._connection = await asyncpg.connect(self._dsn)
        await self._connection.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        message = msgspec.json.decode(payload)
        run_id = message.get("run")
        if run_id not in self._subscribers:
            return
        if "seq" in message and "data" not in message:
            # Too big to ride in the notification: read it once here for every viewer.
            task = asyncio.create_task(self._fetch_and_fan_out(message))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)
            return
        self._fan_out(message)

    def _fan_out(self, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(int(message.get("run") or 0), ())):
            _offer(queue, message)

    async def _fetch_and_fan_out(self, message: dict[str, Any]) -> None:
        seq = int(message["seq"])
        try:
            found = await chunks.between(int(message["run"]), seq - 1, seq)
        except Exception:
            log.warning("stream bus could not read a chunk", exc_info=True)
            self._fan_out(RESYNC | {"run": message["run"]})
            return
        if found:
            self._fan_out({**message, "data": found[0].data})

    async def _keep_connected(self) -> None:
        while not self._closing:
            await asyncio.sleep(1)
            connection = self._connection
            if connection is not None and not connection.is_closed():
                continue
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("stream bus reconnect failed", extra={"error": str(exc)})
                continue
            # Notifications sent while we were away are gone: everyone re-reads from the table.
            for run_id in list(self._subscribers):
                self._fan_out(RESYNC | {"run": run_id})


def _offer(queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        # A slow viewer: drop what is queued and let it catch up from the database.
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(CLOSING if message is CLOSING else RESYNC)
