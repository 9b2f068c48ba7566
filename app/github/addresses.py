"""Addresses Dispatch links to on behalf of others (agents, alerts): only https on the hosts it
allows, and written so that nothing in them can end the Markdown link they are put in."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit


def github_hosts(github_web_url: str) -> list[str]:
    """Where links in what agents write may point: GitHub itself (and its Enterprise host)."""
    return sorted({urlsplit(github_web_url).hostname or "github.com", "github.com"})


# What may stay as it is in a link's path, query and fragment: nothing that ends a Markdown link
# destination (whitespace, `()<>`), quotes, backslashes, backticks, pipes (table cells) or
# brackets. Everything else is percent-encoded, which keeps a real address working.
_URL_KEEP = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&*+,;=:@/?#%"
)
_NETLOC = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


def safe_link(url: str | None, allowed_hosts: Iterable[str]) -> str | None:
    """`url` if it is https on one of `allowed_hosts` (or a subdomain of one), else None; what
    follows the host is percent-encoded where it could end `[label](url)` or `<url>`."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or not _NETLOC.fullmatch(parts.netloc):
        return None
    if not any(host == a.lower() or host.endswith("." + a.lower()) for a in allowed_hosts):
        return None
    at = url.find(parts.netloc)
    if at < 0:  # the host was written with characters urlsplit drops (a newline, a tab)
        return None
    rest = url[at + len(parts.netloc) :]
    encoded = "".join(
        c if c in _URL_KEEP else "".join(f"%{b:02X}" for b in c.encode()) for c in rest
    )
    return f"https://{parts.netloc}{encoded}"
