"""Alert fingerprints: one error, one fingerprint, however many times and for whomever it fires.

`fingerprint(source, feature, message)` is the SHA-256 hex digest of
`"{source}|{feature}|{normalize(message)}"`, with source and feature lower-cased and stripped.
`normalize` replaces the values that change from one occurrence of an error to the next with
placeholders, so "payment failed for cus_Q8x7Lm2 (order 48213)" and "payment failed for
cus_Zt91KpQ (order 50017)" become the same text.

Messages are cut to their first 4,096 characters: what identifies an error comes first (a
stack trace's tail or a dumped payload adds only volatile detail), and the bound keeps the work
per alert small whatever a sender puts in a label. Then the rules apply in this order, which is
what keeps them from eating each other: a JWT is gone before its pieces could look like ids, a
URL's path before its segments could look like hashes, a UUID before its groups could look like
hex, a timestamp before its digits could look like numbers.

 1. JWTs (`eyJ….eyJ….sig`)                                     -> `<jwt>`
 2. URLs: scheme and host kept, path/query/fragment replaced    -> `https://api.stripe.com/<path>`
    (user info dropped; an IP-literal host and its port become `<ip>`)
 3. e-mail addresses                                            -> `<email>`
 4. UUIDs (8-4-4-4-12 hex)                                      -> `<uuid>`
 5. ISO 8601 timestamps (`2024-05-01T14:03:22.123Z`, `2024-05-01 14:03:22,123`) -> `<time>`
 6. dates: ISO (`2024-05-01`, `2024/05/01`) and HTTP/RFC 2822 (`Tue, 05 Mar 2024`) -> `<date>`
 7. IPv6 addresses, bracketed or bare, with an optional port    -> `<ip>`
 8. IPv4 addresses with an optional port                        -> `<ip>`
 9. times of day (`14:03:22`, `14:03:22.5`)                     -> `<time>`
10. prefixed ids, `[a-z]{2,5}_` + 6 or more letters/digits (Stripe's `cus_`, `pi_`, `ch_`,
    `sub_`, `in_`, `evt_`, `req_`, `acct_` …) whose tail looks random: it holds a digit or
    three capitals. The extra condition keeps snake_case names (`user_profile`,
    `order_items`) intact: they say *where* an error is, so they must stay.   -> `<id>`
11. money: `$12.50`, `€3`, `£1,234`, `12.50 USD`, `EUR 1,234.56`, `10 usd` -> `<amount>`
12. hex: `0x…` of any length, and bare runs of 7+ hex digits holding both a digit and a letter
    (git shas, digests, object addresses)                       -> `<hex>`
13. Unix timestamps, seconds (10 digits) or milliseconds (13), optional fraction -> `<ts>`
14. other numbers of 4 or more digits (order numbers, ports, counts, sizes) -> `<n>`
    Shorter numbers stay: an HTTP status (`503`), a line number (`line 42`) or an errno
    identifies the error rather than the occurrence.
15. runs of the same placeholder separated only by commas and spaces (`<id>, <id>, <id>`)
    become one, marked as a list: `<id>…`
16. whitespace collapses to single spaces; case is otherwise kept.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable

MAX_MESSAGE_CHARS = 4096

Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")

# Scheme, optional user info, host[:port]; then whatever path/query/fragment follows.
_URL = re.compile(
    r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,15})://(?:[^/\s@?#]{1,128}@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^/\s?#:'\"<>()]+)(?P<port>:\d{1,5})?"
    r"(?P<rest>[/?#][^\s'\"<>]*)?"
)
# Trailing characters that end a sentence rather than a URL ("see https://x.io/a).").
_URL_TAIL = ".,;:!?)]}"

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}\b")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_ISO_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?(?![\w])"
)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DATE = re.compile(
    r"\b\d{4}[-/]\d{2}[-/]\d{2}\b"
    rf"|\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?\d{{1,2}}\s+(?:{_MONTHS})[a-z]*\.?\s+\d{{4}}\b"
)
# Candidates only: whatever matches is checked with `ipaddress` before it is replaced, so a
# time of day ("14:03:22") or a C++ scope ("std::vector") is left alone.
_IPV6_BRACKETED = re.compile(r"\[(?P<addr>[0-9A-Fa-f:.]+(?:%\w+)?)\](?::\d{1,5})?")
_IPV6_BARE = re.compile(
    r"(?<![\w:.])(?P<addr>[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f.]{0,15}){2,8})(?![\w:])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])")
_TIME_OF_DAY = re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b")
_PREFIXED_ID = re.compile(r"\b[a-z]{2,5}_(?P<tail>[A-Za-z0-9]{6,})\b")

_CURRENCY_CODES = "USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|SEK|NOK|DKK|PLN|CZK|INR|BRL|MXN|CNY|HKD|SGD|ZAR"
# Thousands separators either way round ("1,234.56", "1.234,56"); no trailing comma eaten.
_FIGURE = r"(?:\d{1,3}(?:[,.]\d{3}){1,6}|\d{1,18})(?:[.,]\d{1,2})?"
_MONEY = re.compile(
    rf"[$€£¥]\s?{_FIGURE}"
    rf"|\b{_FIGURE}\s?(?:{_CURRENCY_CODES})\b"
    rf"|\b(?:{_CURRENCY_CODES})\s?{_FIGURE}",
    re.IGNORECASE,
)
_HEX = re.compile(
    r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b"
)
# 2001-09-09 .. 2033-05-18 in seconds, the same span in milliseconds.
_UNIX_TS = re.compile(r"(?<![\w.])1\d{9}(?:\d{3})?(?:\.\d+)?(?![\w])")
_NUMBER = re.compile(r"(?<![\w.])\d{4,}(?:\.\d+)?(?![\w])")

_PLACEHOLDER_RUN = re.compile(r"<(uuid|id|jwt|time|date|ts|ip|email|amount|hex|n)>(?:[,\s]+<\1>)+")
_SPACES = re.compile(r"\s+")


def _url(match: re.Match[str]) -> str:
    rest = match.group("rest") or ""
    trailing = ""
    while rest and rest[-1] in _URL_TAIL:
        trailing = rest[-1] + trailing
        rest = rest[:-1]
    host, port = match.group("host"), match.group("port") or ""
    if _is_ip(host.strip("[]")):
        # Same as a bare address: the port belongs to the volatile value.
        host, port = "<ip>", ""
    base = f"{match.group('scheme')}://{host}{port}"
    if rest in ("", "/"):
        return base + rest + trailing
    return f"{base}/<path>{trailing}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _ipv6(match: re.Match[str]) -> str:
    address = match.group("addr")
    # IPv4 addresses are the next rule's; here only real IPv6 (it has a colon).
    if ":" in address and _is_ip(address):
        return "<ip>"
    return match.group(0)


def _prefixed_id(match: re.Match[str]) -> str:
    tail = match.group("tail")
    if any(c.isdigit() for c in tail) or sum(c.isupper() for c in tail) >= 3:
        return "<id>"
    return match.group(0)


_RULES: tuple[Rule, ...] = (
    (_JWT, "<jwt>"),
    (_URL, _url),
    (_EMAIL, "<email>"),
    (_UUID, "<uuid>"),
    (_ISO_TIME, "<time>"),
    (_DATE, "<date>"),
    (_IPV6_BRACKETED, _ipv6),
    (_IPV6_BARE, _ipv6),
    (_IPV4, "<ip>"),
    (_TIME_OF_DAY, "<time>"),
    (_PREFIXED_ID, _prefixed_id),
    (_MONEY, "<amount>"),
    (_HEX, "<hex>"),
    (_UNIX_TS, "<ts>"),
    (_NUMBER, "<n>"),
)


def normalize(message: str) -> str:
    """The message with its volatile values replaced by placeholders (see the module docstring)."""
    text = message[:MAX_MESSAGE_CHARS]
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = _PLACEHOLDER_RUN.sub(lambda m: f"<{m.group(1)}>…", text)
    return _SPACES.sub(" ", text).strip()


def fingerprint(source: str, feature: str, message: str) -> str:
    """SHA-256 hex of `source|feature|normalized message`: the identity of one kind of error."""
    key = f"{source.strip().lower()}|{feature.strip().lower()}|{normalize(message)}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
