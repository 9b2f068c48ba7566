"""The `.github/dispatch.yml` examples an operator copies (the README's and the module's) are files
Dispatch accepts, and mean what their comments say."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from app.issues import repo_config

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text.split("## Per-repository configuration: `.github/dispatch.yml`", 1)[1]
    block = re.search(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    assert block, "the README's dispatch.yml section has no yaml example"
    return block.group(1)


def docstring_example() -> str:
    doc = repo_config.__doc__ or ""
    after = doc.split("Example (every key is optional):\n", 1)[1]
    lines = []
    for line in after.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip() + "\n"


@pytest.mark.parametrize("example", [readme_example, docstring_example], ids=["readme", "module"])
def test_the_documented_example_is_a_valid_config(example):
    config = repo_config.parse(example())

    assert config.allowed_bots == ["renovate[bot]"]
    assert config.bot_allowed("Renovate[bot]") and not config.bot_allowed("other[bot]")
    assert config.workflows.for_mode("implement") == "dispatch-implement.yml"
    assert config.budgets.daily_spawns == {"investigate": 5, "implement": 3}
    assert config.plans.require_approval and not config.qa.allow_forks


def test_an_unquoted_bot_name_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="is not valid YAML"):
        repo_config.parse("allowed_bots: [renovate[bot]]\n")
