"""Every command answers --help, and every command is documented in the manual (kb/)."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gitdesk.cli import gitdesk, issue, kb

MANUAL = Path(__file__).resolve().parent.parent / "kb"


def _commands(group: click.Group, prefix: str):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


ALL = [(path, cmd) for group, name in ((issue.main, "issue"), (kb.main, "kb"), (gitdesk.main, "gitdesk"))
       for path, cmd in _commands(group, name)]


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_every_command_has_help(path):
    root = {"issue": issue.main, "kb": kb.main, "gitdesk": gitdesk.main}[path.split()[0]]
    result = CliRunner().invoke(root, path.split()[1:] + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "Show this message and exit" in result.output


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_every_command_is_in_the_manual(path):
    manual = "\n".join(p.read_text(encoding="utf-8") for p in MANUAL.glob("*.md"))
    assert f"{path}" in manual, f"'{path}' is not documented in kb/"
