"""Markdown files with YAML frontmatter <-> Document; the only user of the YAML library.

Errors name ``path:line``. Timestamps are written as ``2026-12-03T18:06:59Z`` and read back
as timezone-aware datetimes, so ``parse(render(doc)) == doc``.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidDocument, NotFound

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &id001 / *id001 when two fields hold the same object (created = updated)


def _represent_datetime(dumper: yaml.SafeDumper, value: dt.datetime) -> yaml.Node:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    text = value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # YAML counts NEL and the Unicode line/paragraph separators as line breaks, and libyaml
    # writes them raw in block and single-quoted scalars, which can swallow the closing
    # '---' line; double quotes escape them.
    if any(ch in value for ch in _UNICODE_BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(dt.datetime, _represent_datetime)
_Dumper.add_representer(str, _represent_str)


@dataclass
class Document:
    """Frontmatter (``meta``) and Markdown ``body``; ``lines`` maps top-level keys to file lines."""

    meta: dict[str, Any]
    body: str = ""
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)


def normalize_body(text: str) -> str:
    """The canonical body: LF line ends, no blank lines before or after."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def parse(text: str, path: str) -> Document:
    """Split frontmatter from body; raise InvalidDocument naming path and line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise InvalidDocument(path, "binary file (contains NUL bytes), not Markdown")
    if text.startswith("<<<<<<< "):
        raise InvalidDocument(path, _CONFLICT, 1)
    if not text.startswith("---\n"):
        raise InvalidDocument(path, "missing frontmatter: the file must begin with a '---' line", 1)
    end = text.find("\n---\n", 3)
    if end == -1:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise InvalidDocument(path, "frontmatter is not closed by a '---' line", 1)
    source = text[4 : end + 1]
    body = text[end + 5 :]
    if source.startswith("<<<<<<< ") or "\n<<<<<<< " in source:  # a conflict git left in the fields
        at = 0 if source.startswith("<<<<<<< ") else source.index("\n<<<<<<< ") + 1
        raise InvalidDocument(path, _CONFLICT, 2 + source.count("\n", 0, at))
    meta, lines = _load_yaml(source, path, first_line=2)
    return Document(meta, normalize_body(body), lines)


_CONFLICT = ("git conflict markers: a merge or rebase left this file half done; abort it "
             "(git merge --abort or git rebase --abort), then run gitdesk sync (which also leaves "
             "out a merge already committed)")
MAX_DEPTH = 16  # frontmatter is flat; nesting this deep is an accident or an attack


def _check_graph(node: yaml.Node, path: str, first_line: int) -> None:
    """Refuse aliases, merge keys and deep nesting before anything is built.

    An alias makes a value depend on another place in the file (and a few nested ones
    make a "billion laughs" that takes minutes to print); a merge key ('<<') makes
    fields appear that no line shows. Frontmatter never needs either.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        line = current.start_mark.line + first_line
        if id(current) in seen:
            raise InvalidDocument(path, "invalid YAML: aliases (*name) are not allowed in frontmatter", line)
        seen.add(id(current))
        if depth > MAX_DEPTH:
            raise InvalidDocument(path, f"invalid YAML: nested more than {MAX_DEPTH} levels", line)
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    raise InvalidDocument(path, "invalid YAML: merge keys (<<) are not allowed", line)
                stack += [(key, depth + 1), (value, depth + 1)]
        elif isinstance(current, yaml.SequenceNode):
            stack += [(item, depth + 1) for item in current.value]


class _SafeLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, except that an impossible date (2026-13-45) stays text, so the
    schema check can say which field holds it instead of the parser failing outright."""

    def construct_lenient_timestamp(self, node: yaml.Node) -> Any:
        try:
            return self.construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _SafeLoader.construct_lenient_timestamp)


def _load_yaml(source: str, path: str, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    loader = _SafeLoader(source)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        _check_graph(node, path, first_line)
        if not isinstance(node, yaml.MappingNode):
            raise InvalidDocument(path, "frontmatter must be a mapping of field: value", first_line)
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + first_line
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise InvalidDocument(path, "invalid YAML: a field name must be plain text", line)
            key = key_node.value
            if key in lines:  # YAML would silently keep the last one and drop the other
                raise InvalidDocument(path, f"invalid YAML: duplicate field {key!r} "
                                            f"(also on line {lines[key]})", line)
            try:
                data[key] = loader.construct_object(value_node, deep=True)
            except (ValueError, OverflowError, TypeError) as err:
                raise InvalidDocument(path, f"invalid value for {key!r}: {err}", line) from None
            lines[key] = line
        return data, lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + first_line if mark else first_line
        reason = err.problem or err.context or "invalid YAML"
        raise InvalidDocument(path, f"invalid YAML: {reason}", line) from None
    except yaml.YAMLError as err:
        raise InvalidDocument(path, f"invalid YAML: {err}", first_line) from None
    finally:
        loader.dispose()


MAX_FILE_BYTES = 16 * 1024 * 1024


def read_document(root: Path, rel: str) -> Document:
    """Read and parse one tracker file. Only regular files inside the tracker are read:
    a symbolic link (which git stores and a pull can bring) could publish another issue's
    private text or a file from outside the tracker, and a FIFO or device would hang."""
    path = Path(root) / rel
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise NotFound(f"{rel}: no such file") from None
    except OSError as err:
        raise InvalidDocument(rel, f"cannot read: {err.strerror}") from None
    if os.path.realpath(path) != os.path.join(os.path.realpath(root), rel):
        raise InvalidDocument(rel, "is a symbolic link or inside one; gitdesk reads only "
                                   "regular files of the tracker")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidDocument(rel, "not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise InvalidDocument(rel, f"too large ({info.st_size} bytes; at most {MAX_FILE_BYTES})")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidDocument(rel, f"cannot read: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidDocument(rel, f"not UTF-8 text (byte {err.start}); is it a binary file?") from None
    return parse(text, rel)


def load_yaml_file(text: str, path: str) -> dict[str, Any]:
    """Read a plain YAML settings file (gitdesk.yml) as a mapping."""
    data, _ = _load_yaml(text, path, first_line=1)
    return data


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def render(doc: Document) -> str:
    """The file text for a document: frontmatter, a blank line, the body."""
    head = "---\n" + (dump_yaml(doc.meta) if doc.meta else "") + "---\n"
    body = normalize_body(doc.body)
    return head + ("\n" + body + "\n" if body else "")
