"""`dispatch` run with a log of its garbage-collector pauses (diagnosis only; the app is
unchanged): `python bench/gc_serve.py <log file> serve --port N ...`.

Each line: CLOCK_MONOTONIC seconds, generation, pause in ms, objects collected, and after a
full collection the number of objects the collector tracks. Generation 2
collections are always logged, younger ones when they take over 2 ms.
"""

from __future__ import annotations

import gc
import sys
import time

_log = open(sys.argv[1], "w", buffering=1)  # noqa: SIM115
_started: list[float] = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.monotonic()
        return
    pause = time.monotonic() - _started[0]
    if info["generation"] == 2 or pause > 0.002:
        # After a full collection: how many objects the collector tracks (what it must walk).
        tracked = len(gc.get_objects()) if info["generation"] == 2 else 0
        _log.write(
            f"{_started[0]:.6f} {info['generation']} {pause * 1000:.2f} {info['collected']} "
            f"{tracked}\n"
        )


gc.callbacks.append(_on_gc)
sys.argv = ["dispatch", *sys.argv[2:]]

from app.cli import main  # noqa: E402

main()
