"""Fingerprints: volatile values normalize away, what identifies an error stays."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from app.remediation.fingerprint import MAX_MESSAGE_CHARS, fingerprint, normalize

ALERTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "alerts"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # 1. JWTs, before anything else could bite into them
        (
            "rejected token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U for session",
            "rejected token <jwt> for session",
        ),
        # 2. URLs: scheme and host stay, the path and query go
        (
            "POST https://api.stripe.com/v1/payment_intents/pi_3Mtw9Q2eZvKYlo2C?expand=x failed",
            "POST https://api.stripe.com/<path> failed",
        ),
        (
            "upstream https://status.example.com is down",
            "upstream https://status.example.com is down",
        ),
        ("see (https://docs.example.com/errors/42).", "see (https://docs.example.com/<path>)."),
        ("GET http://10.2.0.14:8080/healthz timed out", "GET http://<ip>/<path> timed out"),
        # 3. e-mail addresses
        (
            "bounce for jane.doe+shop@example.co.uk: mailbox full",
            "bounce for <email>: mailbox full",
        ),
        # 4. UUIDs
        (
            "Token refresh failed for user 9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f: upstream 503",
            "Token refresh failed for user <uuid>: upstream 503",
        ),
        # 5. ISO timestamps
        ("job started 2024-05-01T14:03:22.123Z never ended", "job started <time> never ended"),
        ("at 2024-05-01 14:03:22,123 worker died", "at <time> worker died"),
        ("expires 2024-05-01T14:03:22+02:00", "expires <time>"),
        # 6. dates
        ("report for 2024-05-01 is empty", "report for <date> is empty"),
        ("Last-Modified: Tue, 05 Mar 2024 10:00:00 GMT", "Last-Modified: <date> <time> GMT"),
        # 7. IPv6
        ("connect to [2001:db8::1]:443 refused", "connect to <ip> refused"),
        ("peer fe80::1ff:fe23:4567:890a reset", "peer <ip> reset"),
        ("std::vector index out of range", "std::vector index out of range"),
        # 8. IPv4, with or without a port
        ("connect to 10.0.0.5:5432 failed", "connect to <ip> failed"),
        ("rate limited client 203.0.113.7", "rate limited client <ip>"),
        # 9. times of day
        ("cron fired at 14:03:22 twice", "cron fired at <time> twice"),
        # 10. prefixed ids (Stripe and the like), but not snake_case names
        ("charge ch_3MmlLrLkdIwHu7ix0snN0B15 disputed", "charge <id> disputed"),
        ("subscription sub_1MowQVLkdIwHu7ixeRlqHVzs past due", "subscription <id> past due"),
        ("invoice in_1MtHbELkdIwHu7ixl4OzzPMv unpaid", "invoice <id> unpaid"),
        ("event evt_1NG8Du2eZvKYlo2CUI00zPCb replayed", "event <id> replayed"),
        ("request req_aB3dE5gH failed", "request <id> failed"),
        ("account acct_1032D82eZvKYlo2C restricted", "account <id> restricted"),
        ("KeyError: 'user_profile' in order_items", "KeyError: 'user_profile' in order_items"),
        # 11. money
        ("refund of $12.50 failed", "refund of <amount> failed"),
        ("refund of 12.50 USD failed", "refund of <amount> failed"),
        ("refund of €3 failed", "refund of <amount> failed"),
        ("refund of EUR 1,234.56 failed", "refund of <amount> failed"),
        ("charge 10 usd rejected", "charge <amount> rejected"),
        # 12. hex: git shas, digests, addresses; plain words made of hex letters stay
        ("deploy 3f2a9c1d broke checkout", "deploy <hex> broke checkout"),
        ("segfault at 0x7ffde4a1", "segfault at <hex>"),
        (
            "cache miss e3b0c44298fc1c149afbfc8996fb92427ae41e4649b934ca495991b7852b855",
            "cache miss <hex>",
        ),
        ("deadbeef facade accede", "deadbeef facade accede"),
        # 13. Unix timestamps, seconds and milliseconds
        ("token exp 1714572202 in the past", "token exp <ts> in the past"),
        ("event at 1714572202123 dropped", "event at <ts> dropped"),
        # 14. long numbers
        ("order 48213 not found", "order <n> not found"),
        ("queue depth 120000 over limit", "queue depth <n> over limit"),
        # 15. runs of one placeholder collapse into one list marker
        ("customers cus_Q8x7Lm2, cus_Zt91KpQ, cus_Lm29XqA failed", "customers <id>… failed"),
        ("orders [48213, 48214 48215] stuck", "orders [<n>…] stuck"),
        # 16. whitespace
        ("  card\n\tdeclined   twice ", "card declined twice"),
    ],
)
def test_normalize_rule(message: str, expected: str) -> None:
    assert normalize(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "upstream returned 503",
        "TypeError at checkout.js line 42",
        'File "app/payments.py", line 118, in charge',
        "HTTP 429 from api.github.com",
        "errno 111: connection refused",
    ],
)
def test_short_numbers_survive(message: str) -> None:
    # Status codes, line numbers and errnos say which error it is, not which occurrence.
    assert normalize(message) == message


def test_same_error_for_other_customers_shares_a_fingerprint() -> None:
    alerts = json.loads((ALERTS / "grafana-firing.json").read_text())["alerts"]
    labels = alerts[0]["labels"]
    message = labels["msg"]
    assert message == "Failed to process payment for cus_Q8x7Lm2 (order 48213): card declined"
    other = "Failed to process payment for cus_Zt91KpQ4 (order 50017): card declined"

    assert fingerprint(labels["source"], labels["feature"], message) == fingerprint(
        labels["source"], labels["feature"], other
    )


def test_volatile_values_of_every_kind_normalize_together() -> None:
    first = (
        "user 9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f from 10.0.0.5 at 2024-05-01T14:03:22Z "
        "paid $12.50 (pi_3Mtw9Q2eZvKYlo2C, build 3f2a9c1d, ts 1714572202): GET "
        "https://api.stripe.com/v1/charges/ch_1 -> 503"
    )
    second = (
        "user 0b7e1c55-91aa-4f0e-b2d4-6c3a8e9f1d20 from 192.168.7.20 at 2025-11-30T01:59:00Z "
        "paid $1,399.00 (pi_9ZZa1Q2eZvKYlo2X, build a8b7c6d5e, ts 1764467940): GET "
        "https://api.stripe.com/v1/charges/ch_2?x=1 -> 503"
    )
    assert normalize(first) == normalize(second)
    assert fingerprint("shop-api", "payments", first) == fingerprint("shop-api", "payments", second)


def test_source_and_feature_are_case_and_space_insensitive() -> None:
    message = "card declined"
    assert fingerprint(" Shop-API ", "Payments", message) == fingerprint(
        "shop-api", "payments", message
    )


def test_fingerprint_is_sha256_of_the_documented_key() -> None:
    expected = hashlib.sha256(b"shop-api|payments|order <n> failed").hexdigest()
    assert fingerprint("shop-api", "payments", "order 48213 failed") == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # different text
        (
            ("shop-api", "payments", "Failed to process payment for cus_Q8x7Lm2: card declined"),
            (
                "shop-api",
                "payments",
                "Failed to process payment for cus_Q8x7Lm2: insufficient funds",
            ),
        ),
        # same text from another source
        (
            ("shop-api", "payments", "upstream timeout"),
            ("billing-worker", "payments", "upstream timeout"),
        ),
        # same text from another feature
        (("shop-api", "payments", "upstream timeout"), ("shop-api", "search", "upstream timeout")),
        # a different status code is a different error
        (("shop-api", "auth", "upstream 503"), ("shop-api", "auth", "upstream 502")),
        # a different line is a different place
        (
            ("shop-api", "auth", "TypeError at line 42"),
            ("shop-api", "auth", "TypeError at line 43"),
        ),
    ],
)
def test_different_errors_get_different_fingerprints(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    assert fingerprint(*a) != fingerprint(*b)


def test_long_messages_are_cut_before_normalizing() -> None:
    head = "Unhandled error while rendering the invoice template: " + "frame " * 800

    assert len(head) > MAX_MESSAGE_CHARS
    assert normalize(head + "tail one") == normalize(head + "tail two")
    assert len(normalize(head)) <= MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    "payload",
    [
        ",".join(["123"] * 3000),
        ".".join(["ab"] * 3000),
        "-".join(["abcd"] * 2000),
        "@".join(["a.b"] * 2000),
    ],
)
def test_pathological_payloads_normalize_quickly_and_unchanged(payload: str) -> None:
    # Runs like these hold no volatile value, so the rules leave the (cut) message as it is; and
    # every repetition in the rules is bounded, so they cost milliseconds. One unbounded rule
    # (amounts with `(?:[,.]\d{3})+`) backtracks quadratically here: over a second on the first.
    assert normalize(payload) == payload[:MAX_MESSAGE_CHARS]
    fastest = min(_seconds(normalize, payload) for _ in range(3))
    assert fastest < 0.3, f"normalize took {fastest:.2f} s"


def _seconds(function, argument) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started
