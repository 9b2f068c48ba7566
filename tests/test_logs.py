"""Log lines are JSON, carry the delivery guid, and never a secret."""

from __future__ import annotations

import io
import json
import logging

from app import logs


def capture(fn) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        fn(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_json_with_the_delivery_guid():
    def emit(logger):
        with logs.delivery_context("guid-123"):
            logger.info("processing", extra={"event": "issues"})
        logger.info("outside")

    first, second = capture(emit)
    assert first["message"] == "processing"
    assert first["delivery"] == "guid-123"
    assert first["event"] == "issues"
    assert "delivery" not in second


def test_secrets_are_scrubbed(github):
    logs.register_secret("webhook-secret-value")
    pem = github.private_key_pem

    def emit(logger):
        logger.info("secret webhook-secret-value leaked")
        logger.info("token ghs_abcdefghijklmnopqrstuvwxyz0123456789")
        logger.info("key %s", pem)
        logger.info(
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmU"
        )

    text = json.dumps(capture(emit))
    assert "webhook-secret-value" not in text
    assert "ghs_abcdefghij" not in text
    assert "PRIVATE KEY" not in text
    assert "eyJhbGciOiJSUzI1NiJ9" not in text
    assert text.count("[redacted]") >= 4
