"""How `serve` and `worker` stop: alike on SIGTERM, SIGINT and SIGHUP, gracefully on the first,
at once on the second, and always through their clean-up, which ends with releasing the embedded
database (`app/db/embedded.py` decides whether that stops it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

log = logging.getLogger("app.cli")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StopSignals:
    """SIGTERM, SIGINT and SIGHUP for `serve` and `worker`: the first stops gracefully (`graceful`),
    the second at once (`hurry`: running jobs go back to the queue), later ones change nothing.
    None of them ends the process by itself: it always runs its clean-up. Until the event loop
    takes them over (`handled_by`), they are only remembered, so a start that is under way (the
    embedded database, migrations) completes and the process then stops cleanly."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.received = 0
        self._graceful: Callable[[], None] | None = None
        self._hurry: Callable[[], None] | None = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._received(signum)

    def _received(self, signum: int) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            log.info("stopping", extra={"signal": name, "grace_seconds": self.grace})
            if self._graceful is not None:
                self._graceful()
        elif self.received == 2:
            log.warning("stopping now: running jobs go back to the queue", extra={"signal": name})
            if self._hurry is not None:
                self._hurry()
        else:
            log.info("already stopping", extra={"signal": name})

    @contextlib.contextmanager
    def handled_by(
        self,
        loop: asyncio.AbstractEventLoop,
        graceful: Callable[[], None],
        hurry: Callable[[], None],
    ) -> Iterator[None]:
        """While inside, signals call `graceful` and `hurry` on the loop (at once for any that
        came before)."""
        with signals_blocked():
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self._received, signum)
        self._graceful, self._hurry = graceful, hurry
        if self.received >= 1:
            graceful()
        if self.received >= 2:
            hurry()
        try:
            yield
        finally:
            self._graceful = self._hurry = None
            with signals_blocked():
                for signum in STOP_SIGNALS:
                    loop.remove_signal_handler(signum)  # this restores the default action …
                    signal.signal(signum, self._on_signal)  # … which must never run


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Signals arriving while handlers are swapped wait (pending) for the new handler."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
