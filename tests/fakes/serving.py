"""Serving a fake's ASGI app over real HTTP on loopback, from a background thread with its own
event loop, so tests (and the app under test, in-process or as a subprocess) reach it by URL."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn


class LoopbackServer:
    """Base of the fakes: `url` (port reserved on first use), `start()`, `stop()`, `with`."""

    server_name = "fake"

    def __init__(self) -> None:
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def asgi_app(self) -> Any:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`; the port is reserved on first use, served by `start()`."""
        if self._socket is None:
            # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says
            # TCP, and without it every answer waits out a 40 ms delayed ACK.
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            self._socket.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def start(self) -> Any:
        if self._server is not None:
            return self
        self.url  # noqa: B018 - reserves the port
        assert self._socket is not None
        config = uvicorn.Config(
            self.asgi_app(),
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        sock = self._socket
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"{self.server_name}{self.url[16:]}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.server_name} server did not start")
            time.sleep(0.002)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
