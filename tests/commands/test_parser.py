"""Commands are lines that start with `/dispatch`; code, quotes and examples never run."""

from __future__ import annotations

from app.commands.parser import parse


def verbs(text: str) -> list[tuple[str, str]]:
    return [(c.verb, c.args) for c in parse(text)]


def test_several_commands_in_order_case_insensitive():
    text = "Thanks!\n/dispatch investigate look at the cache\n  /DISPATCH Status\n"
    assert verbs(text) == [("investigate", "look at the cache"), ("status", "")]


def test_fenced_blocks_quotes_and_inline_code_never_run():
    text = "\n".join(
        [
            "```",
            "/dispatch implement",
            "```",
            "~~~~markdown",
            "/dispatch approve",
            "~~~~",
            "> /dispatch cancel",
            "  > /dispatch retry",
            "`/dispatch qa` is how you ask for QA",
            "<!-- /dispatch research hidden -->",
            "/dispatch help",
        ]
    )
    assert verbs(text) == [("help", "")]


def test_not_at_line_start_or_glued_is_not_a_command():
    assert verbs("please /dispatch investigate\n/dispatchinvestigate") == []


def test_unclosed_fence_hides_the_rest():
    assert verbs("```\n/dispatch investigate\n") == []


def test_empty_verb_is_reported_as_such():
    assert verbs("/dispatch") == [("", "")]
    assert verbs(None) == []
