"""What commands print besides their result: progress on stderr, sizes people read."""

from __future__ import annotations

import sys
from typing import IO


class Progress:
    """Progress on stderr: on a terminal, one line redrawn in place at every update; otherwise
    plain lines, only for the updates the caller marks `milestone` (logs stay short)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.tty = bool(self.stream.isatty())
        self._width = 0

    def update(self, text: str, *, milestone: bool = False) -> None:
        if self.tty:
            self.stream.write("\r" + text + " " * max(self._width - len(text), 0))
            self._width = len(text)
        elif milestone:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Rub the line out (a terminal) before the result is printed."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        self._width = 0


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
