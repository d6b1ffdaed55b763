"""Editing a file in $EDITOR: check the result, commit it, and never lose the user's text."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from ..errors import GitdeskError, InvalidDocument, InvalidValue
from ..timeutil import now, stamp


def edit_document(tracker, path: Path, name: str, apply: Callable[[str, str | None], str],
                  file: str | None) -> None:
    """Open ``path`` in the editor (or take ``file``), then ``apply(text, base)``.

    ``base`` is the file's text when the editor opened (None for ``file``), so that a change
    made meanwhile by someone else is refused instead of being silently reverted.

    An invalid result is refused with the reason; on a terminal the editor opens again,
    otherwise the text is saved under .gitdesk/rescue/ and the error says where.
    """
    if file:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise GitdeskError(f"{file}: cannot read: {err}") from None
        click.echo(apply(text, None))
        return
    base = text = path.read_text(encoding="utf-8")
    while True:
        edited = click.edit(text, extension=".md", require_save=True)
        if edited is None:
            click.echo("No changes.")
            return
        try:
            click.echo(apply(edited, base))
            return
        except GitdeskError as err:  # whatever went wrong, the user's text is kept
            rescue = tracker.local_dir / "rescue" / f"{name}-{stamp(now())}.md"
            rescue.parent.mkdir(exist_ok=True)
            rescue.write_text(edited, encoding="utf-8")
            if (isinstance(err, (InvalidDocument, InvalidValue)) and sys.stdin.isatty()
                    and click.confirm(f"Error: {err}\nEdit again?", default=True)):
                text = edited
                continue
            kept = GitdeskError(f"{err} (nothing was changed; your text is kept in "
                                f"{rescue.relative_to(tracker.root)})")
            kept.exit_code = err.exit_code
            raise kept from None
