"""What every command shares: finding the tracker, turning errors into one line, output."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from ..errors import GitdeskError


def run_program(group: click.Group) -> None:
    """Run a command group as the program, then leave at once.

    Everything a command writes is in files it closed and processes it waited for, so the
    interpreter's teardown (freeing every object and module: 10 to 20 ms, a tenth of a
    command, more for the mail gateway an MTA starts per message) is skipped.
    """
    try:
        group.main()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or coverage writes its results at the teardown
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(code)


class Group(click.Group):
    """A click group that turns gitdesk's typed errors into ``Error: ...`` and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GitdeskError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(0)
        except Exception as err:  # a bug of ours: one line, the traceback on request
            if os.environ.get("GITDESK_DEBUG"):
                traceback.print_exc()
            click.echo(f"Error: internal error: {type(err).__name__}: {err} "
                       "(set GITDESK_DEBUG=1 for the traceback)", err=True)
            ctx.exit(70)


def get_tracker(ctx: click.Context):
    from ..app import Tracker

    obj = ctx.find_root().ensure_object(dict)
    if "tracker" not in obj:
        obj["tracker"] = Tracker(obj.get("directory"))
    return obj["tracker"]


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def read_text(message: tuple[str, ...], file: str | None, edit: bool = False,
              template: str = "") -> str | None:
    """Text from -m (several join as paragraphs), -F FILE (- is stdin) or the editor."""
    if sum((bool(message), bool(file), bool(edit))) > 1:
        raise click.UsageError("give only one of -m, -F and -e")
    if message:
        return "\n\n".join(message)
    if file:
        if file == "-":
            return sys.stdin.read()
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise GitdeskError(f"{file}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    if edit:
        text = click.edit(template, extension=".md", require_save=True)
        if text is None:
            raise GitdeskError("nothing written in the editor; nothing changed")
        return text
    return None


_CONTROL = {c: None for c in [*range(0, 9), *range(11, 32), *range(127, 160)]}


def clean(text: object) -> str:
    """Text from a file or a customer, safe to print: no escape sequences or other control
    characters (which could retitle the terminal or write to the clipboard)."""
    return str(text).translate(_CONTROL)


def table(rows: list[list[str]], headers: list[str], last_wide: bool = True) -> None:
    """Aligned columns; the last one is cut to the terminal's width on a TTY.
    Cells are printed as given: callers pass user text through ``clean`` first."""
    if not rows:
        return
    seen: dict[str, str] = {}  # a styled cell (a status, say) recurs: unstyle it once
    plain = [[_unstyled(str(c), seen) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in plain + [headers]) for i in range(len(headers))]
    tty = sys.stdout.isatty()
    width = os.get_terminal_size().columns if tty else 0
    lines = [click.style(_line(headers, headers, widths, width), bold=True)]
    lines += [_line(row, bare, widths, width) for row, bare in zip(rows, plain, strict=True)]
    click.echo("\n".join(lines))  # at once: 100,000 rows in a tenth of the time


def _unstyled(text: str, seen: dict[str, str]) -> str:
    if "\x1b" not in text:
        return text
    if text not in seen:
        seen[text] = click.unstyle(text)
    return seen[text]


def _line(row: list[str], bare: list[str], widths: list[int], width: int) -> str:
    parts = [str(c) + " " * (w - len(b)) for c, b, w in zip(row[:-1], bare, widths[:-1], strict=False)]
    head = "  ".join(parts) + ("  " if parts else "")
    last = str(row[-1])
    if width and len(head) + len(last) > width:
        last = last[: max(10, width - len(head) - 1)] + "…"
    return head + last


def color_status(status: str, closed: bool) -> str:
    return click.style(clean(status), fg="green" if closed else "yellow")


def root_group(name: str, help_text: str):
    """A top-level group with -C and the error handling, for ``issue``, ``kb`` and ``gitdesk``."""

    def decorate(func):
        @click.group(name=name, cls=Group, help=help_text,
                     context_settings={"help_option_names": ["-h", "--help"]})
        @click.option("-C", "directory", type=click.Path(file_okay=False), default=None,
                      help="The tracker folder (default: GITDESK_DIR, or found from here upwards).")
        @click.version_option(package_name="gitdesk", prog_name=name)
        @click.pass_context
        def group(ctx: click.Context, directory: str | None) -> None:
            ctx.ensure_object(dict)["directory"] = directory
            func(ctx)

        return group

    return decorate


_FILTERS = [
    click.option("--status", "statuses", multiple=True, help="Only this status (repeatable)."),
    click.option("-t", "--type", "types", multiple=True, help="Only this type (repeatable)."),
    click.option("-l", "--label", "labels", multiple=True, help="Only issues with this label (all must match)."),
    click.option("--assignee", help="Only issues assigned to this person ('me', 'none')."),
    click.option("-p", "--priority", "priorities", multiple=True, help="Only this priority (repeatable)."),
    click.option("--customer", help="Only this customer's issues."),
]


def filter_options(command):
    """The issue filters that `issue list` and `issue search` share, in one place."""
    for option in reversed(_FILTERS):
        command = option(command)
    return command


def ask_in_terminal():
    """For ``gitdesk sync`` under ``sync.same_field: ask``: a question on the terminal when
    there is one (None otherwise, and sync stops, changing nothing, to say so)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None

    def ask(label: str, key: str, theirs: Any, ours: Any) -> bool:
        def shown(value: Any) -> str:
            text = clean("(none)" if value is None else value)
            return text if "\n" not in text else "\n    " + text.replace("\n", "\n    ")

        click.echo(f"{label} {key} was changed here and on the shared repository:")
        click.echo(f"  here:   {shown(ours)}")
        click.echo(f"  shared: {shown(theirs)}")
        answer = click.prompt("Keep which", type=click.Choice(["here", "shared"]), default="here")
        return answer == "here"

    return ask
