"""Every `dispatch` command answers `--help`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["worker"],
        ["migrate"],
        ["deliveries"],
        ["deliveries", "replay"],
        ["customer"],
        ["customer", "create"],
        ["customer", "list"],
        ["customer", "rotate-token"],
        ["customer", "delete"],
    ],
)
def test_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
