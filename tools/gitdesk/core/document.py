"""Markdown files with YAML frontmatter <-> Document; the only user of the YAML library.

Errors name ``path:line``. Timestamps are written as ``2026-12-03T18:06:59Z`` and read back
as timezone-aware datetimes, so ``parse(render(doc)) == doc``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import InvalidDocument

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
    meta, lines = _load_yaml(source, path, first_line=2)
    return Document(meta, normalize_body(body), lines)


def _load_yaml(source: str, path: str, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    loader = _Loader(source)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + first_line if mark else first_line
        reason = err.problem or err.context or "invalid YAML"
        raise InvalidDocument(path, f"invalid YAML: {reason}", line) from None
    except yaml.YAMLError as err:
        raise InvalidDocument(path, f"invalid YAML: {err}", first_line) from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise InvalidDocument(path, "frontmatter must be a mapping of field: value", first_line)
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        key, line = str(key_node.value), key_node.start_mark.line + first_line
        if key in lines:  # YAML would silently keep the last one and drop the other
            raise InvalidDocument(path, f"invalid YAML: duplicate field {key!r} "
                                        f"(also on line {lines[key]})", line)
        lines[key] = line
    return {str(k): v for k, v in data.items()}, lines


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
