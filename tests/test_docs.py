"""Documentation coverage: every CLI command has a heading in README.md."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from qa.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def _commands() -> list[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def test_cli_has_the_documented_commands() -> None:
    assert {"build", "ask", "search", "info"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_cli_command_has_a_readme_heading(command: str) -> None:
    # A Markdown heading such as "### `qa build`" or "## qa search QUERY".
    heading = re.compile(rf"^#{{1,6}}\s.*\bqa {re.escape(command)}\b", re.MULTILINE)
    assert heading.search(README.read_text(encoding="utf-8")), (
        f"README.md has no heading for `qa {command}`; add one to its CLI section."
    )
