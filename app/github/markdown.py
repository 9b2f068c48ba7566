"""Text Dispatch did not write (commands people typed, what agents report, what alerts carry),
made safe to post under the App's name.

GitHub renders comments as Markdown: an `@name` notifies people, `![x](https://…)` makes every
reader's browser fetch a URL (through GitHub's camo proxy, with the URL chosen by whoever wrote
it), a link can point anywhere and look like anything, and a stray backtick or pipe breaks the
block it sits in. Each function here is for one way such text is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from app.logs import scrub_credentials

# A zero-width joiner after `@` keeps the text readable and stops GitHub linking a mention.
_MENTION = re.compile(r"@(?=[A-Za-z0-9_-])")
_MENTION_SAFE = "@\u200d"


def no_mentions(text: str) -> str:
    """`@name` shown as text, never a notification."""
    return _MENTION.sub(_MENTION_SAFE, text)


def scrub_secrets(text: str) -> str:
    """Replace anything shaped like a credential (API keys, GitHub tokens, JWTs, private keys)
    and every secret this process knows (the log scrubber's rules)."""
    return scrub_credentials(text)


def code_span(text: str) -> str:
    """`text` as inline code, whatever backticks it holds, on one line."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "text") -> str:
    """`text` verbatim in a fenced block long enough not to be closed by what it contains."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.strip()}\n{ticks}"


def quoted_command(line: str) -> str:
    """A command someone wrote, quoted back to them in a reply: code, no mentions."""
    return f"> {code_span(no_mentions(line))}"


def table_cell(text: str, limit: int = 200) -> str:
    """One value in a Markdown table cell: one line, pipes escaped, no mentions, capped."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return no_mentions(text.replace("\\", "\\\\").replace("|", "\\|"))


def inline_text(text: str, limit: int = 300) -> str:
    """A short value in running text: Markdown's special characters escaped, no mentions, one
    line, capped (an issue title from another issue, an alert's feature name)."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    escaped = re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", text)
    return no_mentions(escaped)


def github_hosts(github_web_url: str) -> list[str]:
    """Where links in what agents write may point: GitHub itself (and its Enterprise host)."""
    return sorted({urlsplit(github_web_url).hostname or "github.com", "github.com"})


def safe_link(url: str | None, allowed_hosts: Iterable[str]) -> str | None:
    """`url` if it is https on one of `allowed_hosts` (or a subdomain of one), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return None
    for allowed in allowed_hosts:
        allowed = allowed.lower()
        if host == allowed or host.endswith("." + allowed):
            return url.strip()
    return None


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_HTML_IMAGE = re.compile(r"<\s*(img|picture|source|video|audio|iframe|object|embed)\b[^>]*>", re.I)
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.M)
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BARE_URL = re.compile(r"(?<![(<\w])(https?://[^\s)<>\]]+)")
_HTML_LINK = re.compile(r"<\s*a\b[^>]*>", re.I)


def agent_markdown(text: str, allowed_hosts: Iterable[str]) -> str:
    """An agent's report (plan, summary, blocker) as Markdown that keeps its structure but can
    neither notify anyone, nor make readers' browsers load remote images, nor link outside
    `allowed_hosts` (GitHub and the repository's own pages); secrets are scrubbed first."""
    hosts = list(allowed_hosts)
    text = scrub_secrets(text)
    text = _HTML_IMAGE.sub("[embedded content removed]", text)
    text = _HTML_LINK.sub("", text)
    text = _IMAGE.sub(lambda m: f"[image: {m.group(1) or 'untitled'}]", text)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if safe_link(url, hosts):
            return match.group(0)
        return f"{label} ({code_span(url)})" if url else label

    text = _LINK.sub(link, text)
    text = _REFERENCE_DEF.sub(lambda m: code_span(m.group(0).strip()), text)
    text = _AUTOLINK.sub(
        lambda m: m.group(0) if safe_link(m.group(1), hosts) else code_span(m.group(1)), text
    )

    def bare(match: re.Match[str]) -> str:
        url = match.group(1)
        return url if safe_link(url, hosts) else code_span(url)

    text = _replace_outside_code(text, _BARE_URL, bare)
    return _replace_outside_code(text, _MENTION, lambda _: _MENTION_SAFE)


def _replace_outside_code(text: str, pattern: re.Pattern[str], replace) -> str:  # type: ignore[no-untyped-def]
    """Apply `pattern` to the prose only: inside code spans and fences nothing renders anyway,
    and rewriting there would change what the agent meant to show."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opening = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if fence is not None:
            out.append(line)
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            out.append(line)
            continue
        parts = re.split(r"(`+[^`]*`+)", line)
        out.append(
            "".join(part if part.startswith("`") else pattern.sub(replace, part) for part in parts)
        )
    return "\n".join(out)


def cut(text: str, limit: int, more: str) -> str:
    """`text`, cut to at most `limit` characters with `more` (a line saying where the rest is)
    appended when it had to be cut. Never cuts inside a fence without closing it."""
    if len(text) <= limit:
        return text
    room = max(limit - len(more) - 8, 0)
    head = text[:room]
    fences = len(re.findall(r"^\s{0,3}(?:`{3,}|~{3,})", head, re.M))
    if fences % 2:
        head += "\n```"
    return f"{head}\n\n{more}"
