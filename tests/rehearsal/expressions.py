"""GitHub Actions expressions (`${{ … }}` and `if:`), as far as a workflow here uses them.

Literals ('text', numbers, true, false, null), context paths (`inputs.mode`, `needs.a.outputs.b`,
`steps.x.outcome`, `env.NAME`, `secrets.NAME`, `github.token`, `runner.temp`, `a['b']`), the
operators `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||` and parentheses, and the functions
`success()`, `always()`, `failure()`, `cancelled()`, `contains`, `startsWith`, `endsWith`,
`format`, `toJSON`, `fromJSON`.

Semantics follow GitHub's: a missing property is null; `==` compares strings case-insensitively
and other mixed types as numbers; `&&`/`||` return an operand; an `if:` without a status function
means `success() && (…)`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r")"
)
STATUS_FUNCTIONS = ("success", "always", "failure", "cancelled")
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class ExpressionError(ValueError):
    pass


@dataclass
class Status:
    """What the status functions answer for the step or job being decided."""

    failed: bool = False
    cancelled: bool = False


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {text[position:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str, context: Mapping[str, Any], status: Status) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.context = context
        self.status = status

    def parse(self) -> Any:
        value = self._or()
        if self.at != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.at][1]!r} in {self.text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ExpressionError(f"{self.text!r} ends too early")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {token[1]!r} in {self.text!r}")
        self.at += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            value = right if truthy(value) else value
        return value

    def _compare(self) -> Any:
        value = self._unary()
        while self._peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self._take()[1]
            right = self._unary()
            value = _compare(op, value, right)
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if kind != "name" and name != "*":
                    raise ExpressionError(f"bad property {name!r} in {self.text!r}")
                value = _index(value, name)
            else:
                key = self._or()
                self._take("]")
                value = _index(value, key)
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            number = float(int(text, 16)) if text.lower().startswith("0x") else float(text)
            return int(number) if number.is_integer() else number
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            return self._call(text, args)
        if text not in self.context:
            raise ExpressionError(f"unknown context {text!r} in {self.text!r}")
        return self.context[text]

    def _call(self, name: str, args: list[Any]) -> Any:
        lowered = name.lower()
        functions: dict[str, Callable[..., Any]] = {
            "success": lambda: not self.status.failed and not self.status.cancelled,
            "always": lambda: True,
            "failure": lambda: self.status.failed,
            "cancelled": lambda: self.status.cancelled,
            "contains": _contains,
            "startswith": lambda a, b: to_text(a).lower().startswith(to_text(b).lower()),
            "endswith": lambda a, b: to_text(a).lower().endswith(to_text(b).lower()),
            "format": lambda f, *a: re.sub(
                r"\{(\d+)\}", lambda m: to_text(a[int(m.group(1))]), to_text(f)
            ),
            "tojson": lambda v: json.dumps(v, indent=2),
            "fromjson": lambda v: json.loads(to_text(v)),
        }
        if lowered not in functions:
            raise ExpressionError(f"unsupported function {name}() in {self.text!r}")
        return functions[lowered](*args)


def _index(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        lowered = {str(k).lower(): v for k, v in value.items()}
        return lowered.get(str(key).lower())
    if isinstance(value, list) and isinstance(key, int | float) and 0 <= key < len(value):
        return value[int(key)]
    return None


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return any(_compare("==", item, needle) for item in haystack)
    return to_text(needle).lower() in to_text(haystack).lower()


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return math.nan
    return math.nan


def _compare(op: str, left: Any, right: Any) -> bool:
    a: Any
    b: Any
    if isinstance(left, str) and isinstance(right, str):
        a, b = left.lower(), right.lower()
    elif type(left) is type(right) and not isinstance(left, Mapping | list):
        a, b = left, right
    else:
        a, b = _number(left), _number(right)
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    except TypeError:
        return False


def truthy(value: Any) -> bool:
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping | list):
        return json.dumps(value, indent=2)
    return str(value)


def evaluate(text: str, context: Mapping[str, Any], status: Status | None = None) -> Any:
    return _Parser(text, context, status or Status()).parse()


def render(value: Any, context: Mapping[str, Any], status: Status | None = None) -> Any:
    """`value` with every `${{ … }}` in it replaced (strings inside lists and maps too)."""
    if isinstance(value, str):
        return _TEMPLATE.sub(lambda m: to_text(evaluate(m.group(1), context, status)), value)
    if isinstance(value, list):
        return [render(item, context, status) for item in value]
    if isinstance(value, Mapping):
        return {key: render(item, context, status) for key, item in value.items()}
    return value


def condition(text: Any, context: Mapping[str, Any], status: Status) -> bool:
    """Whether an `if:` holds (absent: `success()`)."""
    if text is None:
        return not status.failed and not status.cancelled
    if isinstance(text, bool):
        return text
    expression = str(text).strip()
    whole = _TEMPLATE.fullmatch(expression)
    if whole:
        expression = whole.group(1).strip()
    names = {value for kind, value in _tokens(expression) if kind == "name"}
    if not names & set(STATUS_FUNCTIONS):
        expression = f"success() && ({expression})"
    return truthy(evaluate(expression, context, status))
