"""Editing a file in $EDITOR: check the result, commit it, and never lose the user's text."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from ..errors import GitdeskError, InvalidDocument, InvalidValue
from ..timeutil import now, stamp


def edit_document(tracker, path: Path, name: str, apply: Callable[[str], str],
                  file: str | None) -> None:
    """Open ``path`` in the editor (or take ``file``), then ``apply`` the text.

    An invalid result is refused with the reason; on a terminal the editor opens again,
    otherwise the text is saved under .gitdesk/rescue/ and the error says where.
    """
    if file:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise GitdeskError(f"{file}: cannot read: {err}") from None
        click.echo(apply(text))
        return
    text = path.read_text(encoding="utf-8")
    while True:
        edited = click.edit(text, extension=".md", require_save=True)
        if edited is None:
            click.echo("No changes.")
            return
        try:
            click.echo(apply(edited))
            return
        except (InvalidDocument, InvalidValue) as err:
            rescue = tracker.local_dir / "rescue" / f"{name}-{stamp(now())}.md"
            rescue.parent.mkdir(exist_ok=True)
            rescue.write_text(edited, encoding="utf-8")
            if sys.stdin.isatty() and click.confirm(f"Error: {err}\nEdit again?", default=True):
                text = edited
                continue
            raise GitdeskError(f"{err} (nothing was changed; your text is kept in "
                               f"{rescue.relative_to(tracker.root)})") from None
