"""JSON request bodies decoded into typed messages (msgspec structs): a body that does not fit is
a 422 whose message and `details.field` name the field that is wrong, never a bare 400."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from app.web.errors import invalid

T = TypeVar("T")

_AT = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def decode(body: bytes, kind: type[T]) -> T:
    """`body` as `kind`; raises a 422 naming the field on a wrong or missing field."""
    try:
        decoded: T = msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT.search(message) or _MISSING.search(message)
        raise invalid(found.group(1) if found else "body", message) from None
    except msgspec.DecodeError as exc:
        raise invalid("body", f"the body is not valid JSON: {exc}") from None
    return decoded
