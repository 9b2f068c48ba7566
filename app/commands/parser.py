"""Finding `/dispatch <verb> [args]` lines in Markdown.

Fenced code blocks, inline code and `>` quotes are removed first, so a command someone quotes or
shows as an example never runs. A command is a line that starts (after indentation) with
`/dispatch`, case-insensitive; several commands in one text run in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_QUOTE = re.compile(r"^\s{0,3}>")
_COMMAND = re.compile(r"^\s*/dispatch(?:\s+(?P<verb>\S+)(?P<args>.*))?\s*$", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True)
class Command:
    verb: str
    args: str
    line: str


def visible_lines(text: str) -> list[str]:
    """The lines of `text` that are prose: no fenced code, no quotes, no inline code."""
    text = _HTML_COMMENT.sub("", text.replace("\r\n", "\n"))
    lines: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if _QUOTE.match(line):
            continue
        lines.append(_INLINE_CODE.sub("", line))
    return lines


def parse(text: str | None) -> list[Command]:
    if not text:
        return []
    commands = []
    for line in visible_lines(text):
        match = _COMMAND.match(line)
        if match is None:
            continue
        verb = (match.group("verb") or "").lower()
        args = (match.group("args") or "").strip()
        commands.append(Command(verb=verb, args=args, line=line.strip()))
    return commands
