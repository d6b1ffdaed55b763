"""The audit of a built site: no private text, e-mail address or foreign script in any byte of it.

It does not trust the page generator. What is forbidden is read from the tracker itself
(private issues, every comment that is not public, internal articles, unreadable files), so
a leak made by a hand-written page, a navigation entry or an editor's leftover is caught as
surely as one made by gitdesk. Every file is read (decompressed where compressed, entities
and URL escapes decoded, tags stripped), and so is every file and folder name. Any site,
staff or public, is also checked for active content: a script that is not the theme's own,
an ``on*`` attribute, a ``<base>``, a ``javascript:``/``vbscript:``/``data:`` URL.

What counts as private text, and how it is compared, is site/forbidden.py's; what counts
as active content, site/active.py's.
"""

from __future__ import annotations

import bz2
import gzip
import html
import io
import json
import lzma
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .active import problems, shipped
from .forbidden import Finder, forbidden

if TYPE_CHECKING:
    from ..core.tracker import Tracker

MAX_EXPANDED = 256 * 2**20  # a compressed file that grows past this is refused, not read
_TAGS = re.compile(r"<[a-zA-Z/!?][^<>]*>")
_ATTR_VALUE = re.compile(r'=\s*"([^"]*)"|=\s*\'([^\']*)\'')
_EMAIL = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
_LOCAL = re.compile(r"[\w.%+-]+\Z", re.ASCII)
_HIDE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
HTML_LIKE = {"html", "htm", "xhtml", "xht", "shtml", "svg", "xml", "xsl", "xslt", "mht", "mhtml"}


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    what: str
    marker: str

    def __str__(self) -> str:
        marker = self.marker if len(self.marker) <= 80 else self.marker[:77] + "..."
        return f"{self.path}: {self.what} ({marker})"


def audit_site(site: Path, tracker: Tracker | None = None, content: bool = True,
               private: dict[str, tuple[str, str]] | None = None) -> list[Finding]:
    """Everything wrong with the built site in ``site``; empty when it may be published.

    ``content=False`` (the staff site, private by design) checks active content only.
    ``private`` is ``forbidden(tracker)`` when the caller has read it already.
    """
    site = Path(site)
    if content and private is None and tracker is not None:
        private = forbidden(tracker)
    reader = _Reader(Finder(private) if private else None)
    vendor = shipped()
    findings: set[Finding] = set()
    for rel in _walk(site):
        if content:
            reader.add(rel, rel + "\n" + unquote(rel), whole=True)
        path = site / rel.rstrip("/")
        if path.is_symlink():
            findings.add(Finding(rel, "symbolic link", os.readlink(path)))
            continue
        if rel.endswith("/") or not path.is_file():
            continue
        data = path.read_bytes()
        if vendor.holds(data):
            continue  # byte for byte a file the theme or MkDocs ships: no tracker data
        for name, inner in _expand(rel, data, findings):
            if name != rel and content:
                reader.add(rel, name + "\n" + unquote(name), whole=True)
            ext = name.rpartition(".")[2].lower()
            text = inner.decode("utf-8", "replace")
            if ext == "json":
                try:
                    text = "\n".join(_strings(json.loads(text)))
                except (ValueError, RecursionError):
                    pass  # not JSON after all: read as it is
            if ext in HTML_LIKE or ext == "json":
                raw = inner if ext != "json" else None
                findings.update(Finding(rel, what, where) for what, where in problems(text, rel, site, raw))
            if content:
                reader.add(rel, text)
    return sorted(findings | reader.findings) if content else sorted(findings)


def _walk(site: Path):
    """Every file (``a/b.html``) and folder (``a/``) under ``site``, links not followed."""
    for folder, dirs, files in os.walk(site):
        dirs.sort()
        base = Path(folder).relative_to(site).as_posix()
        prefix = "" if base == "." else base + "/"
        for name in sorted(files):
            yield prefix + name
        for name in dirs:
            yield prefix + name + "/"


def _strings(value) -> list[str]:
    """Every string in a JSON value (keys too), escapes decoded."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
    return out


def _expand(name: str, data: bytes, findings: set, depth: int = 0,
            budget: list[int] | None = None) -> Iterator[tuple[str, bytes]]:
    """The file, and then what it holds when it is compressed (a .gz sitemap, a .zip
    attachment), one piece at a time. All that one file unpacks to shares one budget of
    MAX_EXPANDED bytes: a zip of many members of zeros cannot make the audit hold gigabytes;
    past the budget the file is reported (so the build fails), never skipped."""
    budget = [MAX_EXPANDED] if budget is None else budget
    yield name, data
    low = name.lower()
    gz = lambda raw: gzip.GzipFile(fileobj=raw)  # noqa: E731
    opener = {".gz": gz, ".tgz": gz, ".svgz": gz, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile,
              ".lzma": lzma.LZMAFile}
    inner: list[tuple[str, bytes]] = []
    try:
        for suffix, kind in opener.items():
            if low.endswith(suffix) and depth < 3:
                piece = kind(io.BytesIO(data)).read(budget[0] + 1)
                inner.append((name[: -len(suffix)] + (".tar" if suffix == ".tgz" else ""), piece))
        if data[:4] == b"PK\x03\x04" and depth < 3:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    with archive.open(info) as member:
                        piece = member.read(max(budget[0], 0) + 1)
                    if not _within(f"{name}/{info.filename}", piece, findings, budget):
                        break
                    yield from _expand(f"{name}/{info.filename}", piece, findings, depth + 1, budget)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, RuntimeError):
        pass  # not really compressed: its bytes, read as they are, are all there is
    for inner_name, piece in inner:
        if _within(inner_name, piece, findings, budget):
            yield from _expand(inner_name, piece, findings, depth + 1, budget)


def _within(name: str, data: bytes, findings: set, budget: list[int]) -> bool:
    budget[0] -= len(data)
    if budget[0] < 0:
        findings.add(Finding(name, "compressed file too large to check", f"> {MAX_EXPANDED} bytes"))
        return False
    return True


class _Reader:
    """Reads the site's text for addresses and private pieces, file by file: as it is,
    decoded (entities, URL escapes), with its tags taken out (``judy@<em>ex</em>.com``),
    and its attribute values (``title``, ``alt``, ``href``).

    Pages share most of their lines (header, navigation, footer): a line is read in the
    first file that has it only, and a finding names that file.
    """

    def __init__(self, finder: Finder | None):
        self.finder = finder
        self.findings: set[Finding] = set()
        self.seen: set[str] = set()

    def add(self, rel: str, text: str, whole: bool = False) -> None:
        if not whole:
            lines = set(text.split("\n"))
            lines -= self.seen
            self.seen |= lines
            text = "\n".join(lines)
        decoded = html.unescape(unquote(text)) if "&" in text or "%" in text else text
        if "@" in decoded:  # also "&#64;" or "%40"
            joined = html.unescape(_TAGS.sub("", text)) if "<" in text else decoded
            for variant in {text, decoded, joined}:
                self.findings.update(_addresses(rel, variant.translate(_HIDE)))
        if self.finder is None:
            return
        if "<" in text:
            values = "\n".join(a or b for a, b in _ATTR_VALUE.findall(text))
            decoded = html.unescape(unquote(_TAGS.sub(" ", text) + "\n" + values))
        found = self.finder.find(decoded)
        for piece in found:  # a title is part of "#7 title": name the longer piece only
            if not any(f" {piece} " in f" {other} " for other in found if other != piece):
                what, shown = self.finder.what[piece]
                self.findings.add(Finding(rel, what, shown))


def _addresses(rel: str, text: str) -> set[Finding]:
    found = set()
    for match in _EMAIL.finditer(text):
        local = _LOCAL.search(text, max(0, match.start() - 64), match.start())
        if local and local.group().strip("."):
            found.add(Finding(rel, "e-mail address", local.group() + match.group()))
    return found
