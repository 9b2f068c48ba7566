"""What a reader of a comment would get: the Markdown rendered (CommonMark with GitHub's tables,
strikethrough and autolinks, by markdown-it-py) and then checked as HTML, so a test cannot be
fooled by a link written in some syntax a string match does not know."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

# GFM links `www.…` and e-mail addresses in text too; linkify-it-py only takes the `www.` ones
# whose domain ends in a TLD it knows, so these are looked for in the rendered text instead.
_GFM_TEXT_LINK = re.compile(
    r"(?i)(?<![A-Za-z0-9])www\.[A-Za-z0-9_-]|(?:https?|ftp)://[A-Za-z0-9_-]|"
    r"[A-Za-z0-9.+_-]@[A-Za-z0-9_-]+\.[A-Za-z0-9_-]"
)
# A mention as GitHub finds it in the rendered text: `@` after a non-word character, then a name.
_MENTION = re.compile(r"(?<![A-Za-z0-9`])@[A-Za-z0-9]")


def render(text: str) -> str:
    md = MarkdownIt("commonmark", {"linkify": True}).enable(["linkify", "table", "strikethrough"])
    # GitHub links `https://…` in text but not `example.py`: linkify-it's "fuzzy" links are not
    # GFM's (its `www.` links are, and are looked for in the text below).
    assert md.linkify is not None
    md.linkify.set({"fuzzy_link": False})
    return md.render(text)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.prose: list[str] = []
        self._code = 0  # inside code or a (checked) link: GitHub links nothing there

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("code", "pre", "a"):
            self._code += 1
        for name, value in attrs:
            if name in ("href", "src", "srcset", "poster", "data", "action", "formaction"):
                (self.images if tag != "a" else self.links).append(value or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre", "a"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.prose.append(data)


def assert_renders_harmless(
    text: str,
    allowed_hosts: tuple[str, ...] = ("github.com",),
    mentions: tuple[str, ...] = (),
    own: str = "http://dispatch.test/",
) -> str:
    """`text` rendered has no image or embedded content, no link outside `allowed_hosts` (and
    Dispatch's own pages, `own`), no text GitHub would turn into an outside link, and no live
    mention but `mentions` (Dispatch's own, such as the requester). Returns the HTML."""
    html = render(text)
    reader = _Reader()
    reader.feed(html)
    assert reader.images == [], html
    assert not {"img", "picture", "video", "audio", "iframe", "object", "embed"} & set(
        reader.tags
    ), html
    for href in reader.links:
        if href.startswith(own):
            continue
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
        assert parts.scheme == "https", href
        assert any(host == a or host.endswith("." + a) for a in allowed_hosts), href
    prose = "".join(reader.prose)
    for name in mentions:
        prose = prose.replace(f"@{name}", name)
    assert not _MENTION.search(prose), prose
    assert not _GFM_TEXT_LINK.search(prose), prose
    return html
