"""Malformed values for the fuzz tests, drawn from a seeded generator: the same ones every run,
and any one of them made again from its seed alone (`Draw("GET /api/fleet#417")`).

Each value is drawn in microseconds (a property-based engine spent milliseconds on each, most of
the fuzz suite's time), and the edges a fuzzer should reach are drawn on purpose, often: empty
and very long text, control characters and characters outside the BMP, integers at and past
the 64-bit bounds, floats at the ends of their range, nesting, bodies that are not JSON, not
UTF-8 or not valid Unicode.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

INT64 = 2**63 - 1

# Characters a fuzzer should try: plain ASCII most often, then the ones parsers get wrong.
_ASCII = string.ascii_letters + string.digits + string.punctuation + " "
_AWKWARD = "\x00\x01\x1f\x7f\t\n\r\x0b\x0c\u0085\u00a0\u2028\u2029\ufeff\ufffd\\\"'%&<>/{}[]"
_WIDE = "éßøΩжあ中한ا\u0301\u200b\u200d🙂\U0001d54f\U0010fffd"
# What HTTP allows in a header value: no surrounding whitespace, no line breaks.
HEADER_ALPHABET = string.printable.strip()

_EDGE_INTEGERS = (0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, INT64, INT64 + 1, -INT64 - 2, 2**64)
_EDGE_FLOATS = (0.0, -0.0, 0.5, -1.5, 1e308, -1e308, 5e-324, 1e16, float("inf"), float("-inf"))
# Bodies that are almost JSON objects.
_BROKEN_BODIES = (
    b"",
    b"{",
    b"{}}",
    b'{"a":',
    b"\xff\xfe{}",
    b'{"a": "\xff"}',
    b"[]",
    b"null",
    b'"{}"',
    b"{'a': 1}",
    b'{"a": 1,}',
    b'{"a": NaN}',
    b"\x00",
    b" " * 100,
    b"[" * 200,
    # A lone surrogate: valid JSON text, not valid Unicode.
    b'{"zen": "\\ud800"}',
)


class Draw:
    """One example's source of values; the seed names the example."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.random = random.Random(seed)

    # ------------------------------------------------------------------ the building blocks

    def choice(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def one_of(self, *makers: Callable[[], T]) -> T:
        return self.choice(makers)()

    def boolean(self) -> bool:
        return self.random.random() < 0.5

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high], its bounds drawn often."""
        roll = self.random.random()
        if roll < 0.15:
            return low
        if roll < 0.3:
            return high
        return self.random.randint(low, high)

    def size(self, most: int, least: int = 0) -> int:
        """A length from `least` to `most`, short ones most often."""
        roll = self.random.random()
        if roll < 0.2:
            return least
        if roll < 0.3:
            return most
        return min(most, least + int(self.random.expovariate(1 / max(1, most / 4))))

    def text(self, max_size: int = 40, min_size: int = 0) -> str:
        pools = (_ASCII, _ASCII, _ASCII, _AWKWARD, _WIDE)
        length = self.size(max_size, min_size)
        return "".join(self.choice(self.choice(pools)) for _ in range(length))

    def header_text(self, max_size: int = 60, min_size: int = 0) -> str:
        length = self.size(max_size, min_size)
        return "".join(self.choice(HEADER_ALPHABET) for _ in range(length))

    def word(self) -> str:
        alphabet = string.ascii_letters + "_"
        return "".join(self.choice(alphabet) for _ in range(self.integer(1, 20)))

    def any_integer(self) -> int:
        if self.random.random() < 0.4:
            return self.choice(_EDGE_INTEGERS)
        return self.random.randint(-(2**70), 2**70) >> self.random.randrange(70)

    def huge(self) -> int:
        """An integer no 64-bit column holds."""
        magnitude = self.integer(INT64 + 1, 2**80)
        return magnitude if self.boolean() else -magnitude - 1

    def floating(self) -> float:
        if self.random.random() < 0.5:
            return self.choice(_EDGE_FLOATS)
        return self.random.uniform(-1e6, 1e6)

    # ------------------------------------------------------------------------------- JSON

    def scalar(self) -> Any:
        return self.one_of(lambda: None, self.boolean, self.any_integer, self.floating, self.text)

    def json(self, leaves: int = 12) -> Any:
        """Any JSON value: scalars, and lists and objects of up to 4 items, nested."""
        budget = [leaves]

        def value(depth: int) -> Any:
            budget[0] -= 1
            if budget[0] <= 0 or depth > 4 or self.random.random() < 0.5:
                return self.scalar()
            if self.boolean():
                return [value(depth + 1) for _ in range(self.size(4))]
            return {self.text(): value(depth + 1) for _ in range(self.size(4))}

        return value(0)

    def json_except(self, *types: type) -> Any:
        """A JSON value of none of `types` (bool counts as its own type, not an int)."""
        while True:
            found = self.json()
            kind = bool if isinstance(found, bool) else type(found)
            if not any(kind is t for t in types):
                return found

    def not_string(self) -> Any:
        return self.json_except(str)

    def not_int(self) -> Any:
        return self.json_except(int)

    def not_object(self) -> Any:
        return self.json_except(dict)

    def object(self, max_size: int = 4) -> dict[str, Any]:
        return {self.text(): self.json() for _ in range(self.size(max_size))}

    def int_text_not_positive(self) -> str:
        """A query value that should be a positive integer and is not."""
        return self.one_of(
            lambda: str(self.integer(-(2**40), 0)),
            lambda: str(self.huge()),
            lambda: self.text_except(_is_int),
        )

    def text_except(self, rejected: Callable[[str], bool]) -> str:
        while True:
            found = self.text()
            if not rejected(found):
                return found

    # ------------------------------------------------------------------------------ bodies

    def not_a_json_object(self) -> bytes:
        """A body that is not a JSON object: bytes, broken JSON, or JSON of another type."""
        while True:
            body = self.one_of(
                lambda: bytes(self.random.getrandbits(8) for _ in range(self.size(200))),
                lambda: self.choice(_BROKEN_BODIES),
                lambda: dumps(self.not_object()),
            )
            if not _is_json_object(body):
                return body


def dumps(value: Any, *, ensure_ascii: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
