"""The proposal: the schema the model sees and the server's validation agree; what a schema
cannot say (keys, dependencies, cycles) is refused; revisions bind the items and the mission
issue's text; the comment shows untrusted text safely."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from app.orchestrator import proposal as proposals
from app.orchestrator import tools
from app.orchestrator.proposal import PROPOSE_SCHEMA, InvalidProposal
from tests.orchestrator.missions import propose_input
from tests.security.rendered import assert_renders_harmless

VALID = propose_input(1, 2)


def schema_accepts(data) -> bool:
    return jsonschema.Draft202012Validator(PROPOSE_SCHEMA).is_valid(data)


def server_accepts(data) -> bool:
    try:
        proposals.ProposeInput.model_validate(data)
    except Exception:
        return False
    return True


def changed(path: list, value) -> dict:
    data = copy.deepcopy(VALID)
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


CASES = [
    ([], None, True),
    (["summary"], "", False),
    (["summary"], "x" * 3001, False),
    (["extra"], 1, False),
    (["items"], [VALID["items"][0]] * 11, False),
    (["items", 0, "type"], "epic", False),
    (["items", 0, "priority"], "p4", False),
    (["items", 0, "mode"], "implement", False),
    (["items", 0, "title"], "t" * 201, False),
    (["items", 0, "body"], KeyError, False),
    (["items", 0, "key"], "Not A Key", False),
    (["items", 2, "mode"], "none", False),  # an existing issue is dispatched, or not listed
    (["items", 2, "number"], 0, False),
    (["items", 2, "number"], "2", False),
    (["items", 2, "title"], "titles are for new issues", False),
    (["existing", 0, "why"], "", False),
    (["items", 0, "mode"], "qa", True),
    (["items"], [], True),
]


@pytest.mark.parametrize(("path", "value", "valid"), CASES)
def test_the_schema_the_model_sees_and_the_servers_validation_agree(path, value, valid):
    data = changed(path, value) if path else copy.deepcopy(VALID)

    assert schema_accepts(data) is valid
    assert server_accepts(data) is valid


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["items"][1].update(key="backoff"), "the key 'backoff' is used twice"),
        (lambda d: d["items"][0].update(depends_on=["backoff"]), "depends on itself"),
        (
            lambda d: d["items"][0].update(depends_on=["nope"]),
            "depends on 'nope', which is no item",
        ),
        (
            lambda d: d["items"][0].update(depends_on=["retry-docs"]),
            "the dependencies go in a circle (backoff → retry-docs → backoff)",
        ),
        (lambda d: d.update(items=[], existing=[]), "a proposal needs items"),
        (lambda d: d["items"].append(dict(d["items"][2], key="again")), "#1 is listed twice"),
    ],
)
def test_what_the_schema_cannot_say_is_refused(mutate, problem):
    data = copy.deepcopy(VALID)
    mutate(data)

    with pytest.raises(InvalidProposal) as raised:
        proposals.parse(data)

    assert any(problem in found for found in raised.value.problems)


def test_items_are_ordered_after_what_they_depend_on():
    items = [
        {"key": "c", "depends_on": ["b"]},
        {"key": "a", "depends_on": []},
        {"key": "b", "depends_on": ["a"]},
    ]
    assert proposals.order(items) == [1, 2, 0]


def test_a_revision_binds_the_items_and_the_mission_issue():
    text = proposals.issue_hash("Title", "Body")
    base = proposals.revision_of(VALID, text)

    assert proposals.revision_of(copy.deepcopy(VALID), text) == base
    assert proposals.revision_of(changed(["items", 0, "priority"], "p0"), text) != base
    assert proposals.revision_of(VALID, proposals.issue_hash("Title", "Body, edited")) != base
    # Dispatch's own task list in the body is not an edit.
    tasked = proposals.with_tasks("Body", "- [ ] #7 (investigate)")
    assert proposals.issue_hash("Title", tasked) == text
    assert proposals.with_tasks(tasked, "- [ ] #8") == proposals.with_tasks("Body", "- [ ] #8")


def test_the_comment_shows_untrusted_text_safely():
    data = copy.deepcopy(VALID)
    data["summary"] = (
        "Do it @maintainers ![x](https://evil.example/x.png) <!-- dispatch:mission:3 -->"
    )
    data["items"][0]["title"] = "Break | the [table](https://evil.example)"
    data["items"][0]["body"] = (
        "See [here](https://evil.example) and https://github.com/o/r/issues/1"
    )
    for item in data["items"]:
        item.setdefault("duplicates", [])
    data["items"][2]["title"] = "Existing *title*"
    data["existing"][0].update(title="Docs", state="open")

    text = proposals.render(
        data,
        proposals.RenderContext("abcdef012345", "claude-sonnet-5-5", 3, 0.01, ["github.com"], True),
    )

    assert "@maintainers" not in text and "@\u200dmaintainers" in text
    assert "![x]" not in text and "<!-- dispatch:mission:3 -->" not in text
    # In `<summary>` (HTML, where Markdown is not parsed): escaped as HTML, the address unlinked.
    assert "<summary>1. Break | the [table](https://&#8203;evil.example)</summary>" in text
    assert_renders_harmless(text)
    assert "[here](https://evil.example)" not in text and "here (`https://evil.example`)" in text
    assert "https://github.com/o/r/issues/1" in text
    assert "`/dispatch approve abcdef012345`" in text


def test_the_tools_the_model_sees():
    specs = tools.specs()

    assert [spec["name"] for spec in specs] == [
        "search_issues",
        "list_issues",
        "read_issue",
        "read_runs",
        "fleet_status",
        "file_tree",
        "read_file",
        "propose",
    ]
    for spec in specs:
        assert spec["input_schema"]["type"] == "object"
        assert spec["input_schema"]["additionalProperties"] is False
        jsonschema.Draft202012Validator.check_schema(spec["input_schema"])
    assert specs[-1]["input_schema"] is PROPOSE_SCHEMA
