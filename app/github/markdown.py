"""Text Dispatch did not write (commands people typed, what agents report, what alerts carry),
made safe to post under the App's name.

GitHub renders comments as Markdown: an `@name` notifies people, `![x](https://…)` makes every
reader's browser fetch a URL (through GitHub's camo proxy, with the URL chosen by whoever wrote
it), a link can point anywhere and look like anything, and a stray backtick or pipe breaks the
block it sits in. Each function here is for one way such text is shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from app.github import addresses
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
    """One value in a Markdown table cell: one line, pipes escaped, no mentions, no links or
    images (addresses as code), capped."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _Writer([]).text(text, links=False)


def inline_text(text: str, limit: int = 300) -> str:
    """A short value in running text or a table cell: Markdown's special characters escaped,
    addresses GitHub would link shown as code, no mentions, one line, capped (an issue title
    from another issue, an alert's feature name)."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _Writer([]).text(text, links=False, escape=_escape_all)


# The parser GitHub's renderer is closest to: CommonMark with GFM tables, strikethrough and
# autolinked URLs. Agent text is parsed with it and written out again from the parsed document,
# so what reaches GitHub is only what this module chose to write.
_PARSER = MarkdownIt("commonmark", {"linkify": True}).enable(["linkify", "table", "strikethrough"])
# Only what starts with a scheme, as on GitHub (`www.` and the rest are caught in the text).
if _PARSER.linkify is None:  # pragma: no cover  (markdown-it-py[linkify] is a dependency)
    raise ImportError("markdown-it-py needs linkify-it-py: install markdown-it-py[linkify]")
_PARSER.linkify.set({"fuzzy_link": False})
# What GitHub turns into a link in plain text (GFM's extended autolinks), over-approximated.
_TEXT_URL = re.compile(r"(?i)(?:(?:https?|ftp)://|(?<![A-Za-z0-9])www\.|(?:mailto|xmpp):)[^\s<|`]*")
# `]` only where it could close a link, an image or a reference definition (`](`, `][`, `]:`;
# the next piece of text may start with `(`): `[C2]`, `[1, 2]` and `[ ]` stay as they are.
_TEXT_ESCAPE = re.compile(r"[\\`*<>|~&]|\](?=[(\[:]|$)|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LINE_START = re.compile(r"^(\s*(?:[0-9]{1,9})?)([#+=-]|(?<=[0-9])[.)])")
# Inline HTML that can carry no address: kept; any other HTML is shown as code.
_HTML_TAG = re.compile(
    r"</?(?:br|b|i|em|strong|sub|sup|kbd|del|ins|s|details|summary|p)\s*/?>", re.I
)
_ALIGN = {"text-align:left": ":---", "text-align:right": "---:", "text-align:center": ":---:"}


def agent_markdown(text: str, allowed_hosts: Iterable[str]) -> str:
    """An agent's report (plan, summary, blocker) as Markdown that keeps its structure (headings,
    lists, quotes, code, tables, emphasis, links to `allowed_hosts`) but can neither notify
    anyone, nor make readers' browsers load remote images, nor link outside `allowed_hosts`
    (GitHub and the repository's own pages); secrets are scrubbed first.

    The text is parsed and written out again: every address is checked where the parser found
    it (whatever the syntax: inline, reference, autolink, bare URL), images become their
    description, raw HTML with attributes becomes code, and all remaining text is escaped."""
    writer = _Writer(list(allowed_hosts))
    tree = SyntaxTreeNode(_PARSER.parse(scrub_secrets(text)))
    written = "\n".join(writer.blocks(tree.children)).strip("\n")
    # Dispatch finds its own comments by a hidden `<!-- dispatch:… -->` marker: agent text shows
    # none, even as code.
    return written.replace("<!--", "<!\u200b--")


class _Writer:
    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts

    # Blocks: each returns its lines; containers prefix their children's lines.

    def blocks(self, nodes: list[SyntaxTreeNode], tight: bool = False) -> list[str]:
        out: list[str] = []
        for node in nodes:
            lines = self.block(node)
            if out and not tight:
                out.append("")
            out += lines
        return out

    def block(self, node: SyntaxTreeNode) -> list[str]:
        kind = node.type
        if kind == "paragraph":
            return [_line_start(line) for line in self.inline(node.children[0]).split("\n")]
        if kind == "heading":
            return [f"{'#' * int(node.tag[1])} {self.inline(node.children[0], one_line=True)}"]
        if kind == "blockquote":
            return [f"> {line}" if line else ">" for line in self.blocks(node.children)]
        if kind in ("bullet_list", "ordered_list"):
            return self.listing(node)
        if kind in ("fence", "code_block"):
            info = re.sub(r"[^\w+#.-]", "", node.info.split(" ")[0]) if kind == "fence" else ""
            return _fence(node.content, info).split("\n")
        if kind == "hr":
            return ["---"]
        if kind == "table":
            return self.table(node)
        if kind == "html_block":
            return _html_block(node.content).split("\n")
        return _fence(node.content or "", "text").split("\n")

    def listing(self, node: SyntaxTreeNode) -> list[str]:
        items = node.children
        tight = all(c.hidden for item in items for c in item.children if c.type == "paragraph")
        start = int(str(node.attrs.get("start", 1)))
        out: list[str] = []
        for n, item in enumerate(items):
            if node.type == "ordered_list":
                marker = f"{start + n}{node.markup or '.'}"
            else:
                marker = node.markup or "-"
            lines = self.blocks(item.children, tight=tight) or [""]
            if out and not tight:
                out.append("")
            pad = " " * (len(marker) + 1)
            out.append(f"{marker} {lines[0]}".rstrip())
            out += [f"{pad}{line}" if line else "" for line in lines[1:]]
        return out

    def table(self, node: SyntaxTreeNode) -> list[str]:
        rows = [tr for part in node.children for tr in part.children]
        if not rows:
            return []
        out = []
        for n, tr in enumerate(rows):
            cells = [
                self.inline(c.children[0], in_table=True) if c.children else "" for c in tr.children
            ]
            out.append("| " + " | ".join(cells) + " |")
            if n == 0:
                aligns = [_ALIGN.get(str(c.attrs.get("style", "")), "---") for c in tr.children]
                out.append("| " + " | ".join(aligns) + " |")
        return out

    # Inline content: one string (line breaks as "\n").

    def inline(
        self,
        node: SyntaxTreeNode,
        in_table: bool = False,
        one_line: bool = False,
        in_link: bool = False,
    ) -> str:
        out: list[str] = []
        for child in node.children:
            out.append(self.span(child, in_table or one_line, in_link))
            # `!` just before a link written out would make it an image.
            if len(out) > 1 and out[-1].startswith("[") and out[-2].endswith("!"):
                out[-2] = out[-2][:-1] + "\\!"
        return "".join(out)

    def span(self, node: SyntaxTreeNode, one_line: bool, in_link: bool) -> str:
        kind = node.type
        if kind == "text":
            if in_link:
                return self.text(node.content, links=False, escape=_escape_label)
            return self.text(node.content)
        if kind == "softbreak":
            return " " if one_line else "\n"
        if kind == "hardbreak":
            return " " if one_line else "\\\n"
        if kind == "code_inline":
            code = code_span(node.content)
            return code.replace("|", "\\|") if one_line else code
        if kind in ("em", "strong", "s"):
            inner = self.inline(node, one_line, one_line, in_link)
            return f"{node.markup}{inner}{node.markup}" if inner.strip() else inner
        if kind == "link":
            return self.link(node, one_line, in_link)
        if kind == "image":
            alt = " ".join(_plain(node).split()) or "untitled"
            return self.text(f"[image: {alt}]", links=False)
        if kind == "html_inline":
            tag = node.content
            return tag if _HTML_TAG.fullmatch(tag) else _table_safe(code_span(tag), one_line)
        return self.text(node.content, links=not in_link)

    def link(self, node: SyntaxTreeNode, one_line: bool, in_link: bool) -> str:
        href = str(node.attrs.get("href", ""))
        shown = _plain(node)
        if node.markup in ("autolink", "linkify"):
            # `<https://…>`, a bare URL: its text is its address.
            safe = addresses.safe_link(href, self.hosts)
            if safe and not in_link:
                return f"<{safe}>"
            return _table_safe(code_span(shown), one_line)
        label = self.inline(node, one_line, one_line, in_link=True)
        safe = addresses.safe_link(href, self.hosts)
        if safe and not in_link:
            return f"[{label}]({safe})"
        return f"{label} ({_table_safe(code_span(href), one_line)})" if href else label

    def text(
        self, text: str, links: bool = True, escape: Callable[[str], str] | None = None
    ) -> str:
        """Plain text: addresses GitHub would link by themselves become links when allowed (and
        `links`) and code when not; everything else escaped, with no mention."""
        escape = escape or _escape
        out: list[str] = []
        at = 0
        for match in _TEXT_URL.finditer(text):
            url = _trim_url(match.group(0))
            out.append(escape(text[at : match.start()]))
            target = f"https://{url}" if url.lower().startswith("www.") else url
            safe = addresses.safe_link(target, self.hosts)
            out.append(f"<{safe}>" if safe and links else code_span(url))
            at = match.start() + len(url)
        out.append(escape(text[at:]))
        return "".join(out)


def _escape(text: str) -> str:
    """Text that must not become markup: what makes links, images, HTML, code, emphasis, tables
    or entities escaped; `#`, `!`, `[` and parentheses left alone (`#12` stays a reference, and
    with no `](`, `][` or `]:` left there is no link, image or reference to make)."""
    return _TEXT_ESCAPE.sub(lambda m: "\\" + m.group(0), no_mentions(text))


def _escape_label(text: str) -> str:
    """Text inside the label of a link Dispatch writes: brackets escaped too."""
    return re.sub(r"[\[\]]", lambda m: "\\" + m.group(0), _escape(text))


def _escape_all(text: str) -> str:
    """Text that must not format at all (other people's titles, alert fields)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~&])", r"\\\1", no_mentions(text))


def _trim_url(url: str) -> str:
    """A URL without the punctuation that ends the sentence it is in (as GFM does)."""
    while (url and url[-1] in ".,:;!?'\"*_~") or (
        url.endswith(")") and url.count(")") > url.count("(")
    ):
        url = url[:-1]
    return url


def _line_start(line: str) -> str:
    """A line of a paragraph that must not start a heading, list or rule."""
    return _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", line, count=1)


def _plain(node: SyntaxTreeNode) -> str:
    """The text a node holds, without its markup."""
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(child) for child in node.children)


def _table_safe(code: str, in_table: bool) -> str:
    return code.replace("|", "\\|") if in_table else code


def _fence(text: str, info: str) -> str:
    """Code shown as it is, in a fence its content cannot close."""
    text = text.rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def _html_block(block: str) -> str:
    """A block of HTML: kept when it is only tags that carry no address (`<details>`,
    `<summary>`, …) around text, else shown as code."""
    block = block.rstrip("\n")
    pieces = re.split(r"(<[^>]*>)", block)
    if not all(_HTML_TAG.fullmatch(p) for p in pieces[1::2]):
        return _fence(block, "html")
    pieces[0::2] = [_html_escape(p) for p in pieces[0::2]]
    return "".join(pieces)


def html_text(text: str, limit: int = 300) -> str:
    """A short value inside HTML that Dispatch writes (`<summary>…</summary>`), where Markdown is
    not parsed: one line, capped, HTML-escaped, no mentions, no address GitHub would link."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _html_escape(text)


def _html_escape(text: str) -> str:
    text = no_mentions(html.escape(text, quote=True))
    # A zero-width space keeps an address readable but not linked.
    return re.sub(r"(?i)(://|(?<![A-Za-z0-9])www(?=\.))", r"\1&#8203;", text)


def cut(text: str, limit: int, more: str) -> str:
    """`text`, cut to at most `limit` characters with `more` (a line saying where the rest is)
    appended when it had to be cut. Cuts at a line break where one is near, never inside a fence
    without closing it, and never inside a code span (the rest of the line goes instead: an
    address shown as code must not become bare text GitHub links)."""
    if len(text) <= limit:
        return text
    room = max(limit - len(more) - 8, 0)
    head = text[:room]
    line_end = head.rfind("\n")
    head = head[:line_end] if line_end >= room // 2 else head[: _open_code_span(head)]
    fences = len(re.findall(r"^\s{0,3}(?:`{3,}|~{3,})", head, re.M))
    if fences % 2:
        head += "\n```"
    return f"{head}\n\n{more}"


def _open_code_span(text: str) -> int:
    """Where a code span that `text` opens but does not close starts (len(text) if none)."""
    start = text.rfind("\n") + 1
    runs = [(m.start(), len(m.group(0))) for m in re.finditer(r"`+", text[start:])]
    n = 0
    while n < len(runs):
        at, length = runs[n]
        closing = next((k for k in range(n + 1, len(runs)) if runs[k][1] == length), None)
        if closing is None:
            return start + at
        n = closing + 1
    return len(text)
