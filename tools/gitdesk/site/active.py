"""What a built page may run: the theme's own scripts and nothing else (used by the audit).

``problems(text, rel, site)`` lists script elements that are not the theme's own, ``on*``
attributes, ``<base>`` elements and ``javascript:``/``vbscript:``/``data:`` URLs. A page is
first looked at with a few fast searches; only one where something might be wrong is read
tag by tag, once the way a browser reads it (comments and the bodies of <script>, <title>,
<textarea>... skipped) and once with nothing skipped, so that a difference between our
reading and a browser's can only add findings, never hide one.

The theme's own scripts are known from the installed theme and MkDocs (and gitdesk's own
theme folder), never from the page: ``Shipped`` holds their files' digests and the inline
scripts of their templates.
"""

from __future__ import annotations

import csv
import hashlib
import html
import importlib.util
import io
import posixpath
import re
from base64 import urlsafe_b64encode
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

_ATTR = r"""[^\s/>][^\s/>=]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]*))?"""
_TAG = re.compile(rf"<(/?)([a-zA-Z][^\s/>]*)((?:[\s/]*{_ATTR})*)[\s/]*>?")
_ATTRS = re.compile(r"""([^\s/>][^\s/>=]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_RAWTEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
            "noscript", "plaintext")
_END = {name: re.compile(rf"</{name}[\s/>]", re.I) for name in _RAWTEXT}
_COMMENT_END = re.compile(r"-?>|.*?--!?>", re.S)
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
              "cite", "codebase", "lowsrc", "dynsrc", "longdesc", "usemap", "manifest", "ping",
              "icon", "profile", "archive", "classid", "srcset", "imagesrcset", "to", "from",
              "values", "by", "content", "style"}
_BAD_SCHEMES = ("javascript", "vbscript", "livescript", "data")
_C0_SPACE = "".join(map(chr, range(33)))
_URL_WS = dict.fromkeys(map(ord, "\t\n\r"))  # a browser drops these anywhere in a URL

# The fast looks, all over lower-cased text; each may say "maybe" where nothing is wrong.
_ON = re.compile(rb"""on[^\s/>="'<]*\s*=""")
_SCHEME = re.compile(r"script:|data:")
_ENTITY_VALUE = re.compile(rb"""=\s*(?:"[^"]*&[^"]*"|'[^']*&[^']*'|[^\s"'>]*&[^\s>]*)""")


def problems(text: str, rel: str, site: Path, data: bytes | None = None) -> list[tuple[str, str]]:
    """(what, where) for everything in this page (``text``, its bytes ``data``) that could
    run script."""
    if not _suspect(text.encode("utf-8", "replace") if data is None else data, rel, site):
        return []
    found: dict[tuple[str, str], None] = {}
    for browser in (True, False):
        for tag in _tags(text, browser):
            found.update(dict.fromkeys(_tag_problems(text, tag, rel, site)))
    return list(found)


def _suspect(data: bytes, rel: str, site: Path) -> bool:
    """The fast look, on bytes (ASCII lower-casing keeps every offset)."""
    low = data.lower()
    if any(m.start() == 0 or low[m.start() - 1] in b" \t\n\r\f/\"'" for m in _ON.finditer(low)):
        return True
    flat = low.translate(None, b"\t\n\r")  # a browser reads "java\tscript:" as "javascript:"
    if b"script:" in flat or b"data:" in flat or b"<base" in low or b"srcdoc" in low:
        return True
    for value in _ENTITY_VALUE.findall(low):
        if _SCHEME.search(_flat(html.unescape(value.decode("utf-8", "replace")).lower())):
            return True
    pos = 0
    while (start := low.find(b"<script", pos)) >= 0:
        end = low.find(b"</script", start)
        element = data[start: end if end >= 0 else len(data)].decode("utf-8", "replace")
        if _script_problem(element, rel, site):
            return True
        pos = start + 7
    return False


def _flat(text: str) -> str:
    return text.translate(_URL_WS)


def _tags(text: str, browser: bool):
    pos, end = 0, len(text)
    while True:
        start = text.find("<", pos)
        if start < 0:
            return
        if browser and text.startswith("<!--", start):
            close = _COMMENT_END.match(text, start + 4)
            pos = close.end() if close else end
            continue
        tag = _TAG.match(text, start)
        if tag is None:
            bogus = browser and text[start + 1: start + 2] in ("!", "?", "/")
            pos = (text.find(">", start) + 1 or end) if bogus else start + 1
            continue
        yield tag
        pos = tag.end()
        name = tag.group(2).lower()
        if browser and not tag.group(1) and name in _END:
            if name == "plaintext":
                return
            close = _END[name].search(text, pos)
            pos = close.start() if close else end


def _tag_problems(text: str, tag, rel: str, site: Path) -> list[tuple[str, str]]:
    if tag.group(1):
        return []  # an end tag: browsers ignore its attributes
    name = tag.group(2).lower()
    out = []
    if name == "script":
        close = _END["script"].search(text, tag.end())
        problem = _script_problem(text[tag.start(): close.start() if close else len(text)], rel, site)
        if problem:
            out.append((problem, _snippet(text, tag.start())))
    if name == "base":
        out.append(("<base> element", _snippet(text, tag.start())))
    for attr in _ATTRS.finditer(tag.group(3)):
        key = attr.group(1).lower()
        value = html.unescape(_unquote_attr(attr.group(2) or ""))
        if key.startswith("on"):
            out.append(("on* attribute", f"<{name} {key}={value[:40]}>"))
        elif key == "srcdoc":
            out += problems(value, rel, site)
        elif key in _URL_ATTRS and _bad_url(key, value):
            out.append((f"{_bad_url(key, value)}: URL", f"<{name} {key}={value[:40]}>"))
    return out


def _unquote_attr(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value


def _bad_url(key: str, value: str) -> str | None:
    """The forbidden scheme a browser would see in this attribute, if any."""
    value = value.translate(_URL_WS)
    if key in ("style", "content"):  # url(...) in CSS; "0; url=..." in a refresh
        pieces = re.findall(r"url\s*[(=]\s*['\"]?([^'\")]*)", value, re.I)
        if key == "style" and re.search(r"expression\s*\(", value, re.I):
            return "expression(...)"
    else:
        pieces = [value, *re.split(r"[,;\s]+", value)]  # srcset and SVG values hold lists
    for piece in pieces:
        piece = piece.lstrip(_C0_SPACE).lower()
        for scheme in _BAD_SCHEMES:
            if piece.startswith(scheme + ":"):
                return scheme
    return None


def _snippet(text: str, start: int) -> str:
    return " ".join(text[start: start + 60].split())


# -- the theme's own scripts --------------------------------------------------------------

def _script_problem(element: str, rel: str, site: Path) -> str | None:
    """Why this <script> is not the theme's own, or None.

    The theme's own are (1) an external script (src, and at most defer, async and type)
    whose file is in the site and byte for byte one the theme or MkDocs ships, and (2) an
    inline script equal to one in the theme's templates, where each template value
    (``{{ ... }}``) may only be text that cannot leave its JavaScript string (or JSON, in
    the theme's JSON data block).
    """
    tag = _TAG.match(element)  # element: from "<script" up to its "</script"
    if tag is None or tag.group(2).lower() != "script":
        return None  # "<scripts>" and such: no script element
    if _theme_inline(element):
        return None
    attrs = {a.group(1).lower(): html.unescape(_unquote_attr(a.group(2) or ""))
             for a in _ATTRS.finditer(tag.group(3))}
    if "src" not in attrs:
        return "inline script"
    if set(attrs) - {"src", "defer", "async", "type"} or element[tag.end():].strip():
        return "script element"
    src = attrs["src"]
    if urlsplit(src).scheme or src.startswith("//") or "\\" in src:
        return "script from another host"
    path = unquote(urlsplit(src).path)
    # A 404 page uses site-absolute paths (/assets/...; /sub/assets/... below a sub-path).
    parts = path.lstrip("/").split("/")
    targets = ["/".join(parts[i:]) for i in range(len(parts))] if path.startswith("/") else [
        posixpath.normpath(posixpath.join(posixpath.dirname(rel), path))]
    if any(not t.startswith("../") and _shipped_file(site / t) for t in targets):
        return None
    return "script that the theme does not ship"


@lru_cache(maxsize=4096)
def _theme_inline(element: str) -> bool:
    return any(pattern.fullmatch(element) for pattern in shipped().scripts)


def _shipped_file(path: Path) -> bool:
    """Is this file one the theme ships? A site's pages share a few scripts: asked once."""
    try:
        info = path.stat()
    except OSError:
        return False
    key = (str(path), info.st_mtime_ns, info.st_size)
    if key not in _SHIPPED:
        if len(_SHIPPED) > 256:
            _SHIPPED.clear()
        _SHIPPED[key] = path.is_file() and shipped().holds(path.read_bytes())
    return _SHIPPED[key]


_SHIPPED: dict[tuple, bool] = {}
_JINJA = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#})", re.S)
_SAFE_VALUE = r"""[^"'`\\<>\n]*"""  # a value that cannot leave the JS string it stands in
_JSON_VALUE = r"""(?:"(?:[^"\\<\n]|\\.)*"|[\w.+-]*)"""


class Shipped:
    """The files that the installed themes, MkDocs and its plugins (and gitdesk's own theme
    folder) ship: their digests (from each package's RECORD), their templates, and the
    inline scripts of those templates."""

    def __init__(self):
        self.digests: dict[int, set[str]] = {}
        self.templates: list[Path] = []
        dists = {}
        for group in ("mkdocs.themes", "mkdocs.plugins", "properdocs.themes", "properdocs.plugins"):
            for entry in metadata.entry_points(group=group):
                if entry.dist is not None:
                    dists[entry.dist.name] = entry.dist
        folders = [Path(__file__).parent / "theme"]
        for dist in dists.values():
            rows = [row for row in csv.reader(io.StringIO(dist.read_text("RECORD") or ""))
                    if len(row) >= 3 and row[1].startswith("sha256=")]
            for name, hashed, size in (row[:3] for row in rows):
                if not name.endswith((".py", ".pyc")):
                    self.digests.setdefault(int(size or 0), set()).add(hashed[7:])
                if name.endswith(".html"):
                    self.templates.append(Path(dist.locate_file(name)))
            if not any(row[0].endswith(".js") for row in rows):  # an editable install
                folders += _package_folders(dist)
        for folder in folders:
            for path in folder.rglob("*"):
                if path.suffix in (".js", ".html") and path.is_file():
                    data = path.read_bytes()
                    self.digests.setdefault(len(data), set()).add(digest(data))
                    self.templates += [path] if path.suffix == ".html" else []
        self.scripts = [_template_script(m.group()) for path in self.templates if path.is_file()
                        for m in re.finditer(r"<script\b[^>]*>.*?(?=</script>)",
                                             path.read_text("utf-8", errors="replace"), re.S)
                        if "src=" not in m.group().split(">", 1)[0]]

    def holds(self, data: bytes) -> bool:
        digests = self.digests.get(len(data))
        return bool(digests) and digest(data) in digests


def _package_folders(dist) -> list[Path]:
    """The folders of a distribution's top-level packages, found without importing them."""
    tops = (dist.read_text("top_level.txt") or "").split() or [
        entry.value.split(".")[0].split(":")[0] for entry in dist.entry_points]
    folders = []
    for top in dict.fromkeys(tops):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        folders += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return folders


def digest(data: bytes) -> str:
    """A file's digest as a wheel's RECORD writes it."""
    return urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _template_script(source: str) -> re.Pattern:
    data_block = re.search(r"type=[\"']?application/(?:ld\+)?json", source.split(">", 1)[0])
    out = []
    for n, part in enumerate(_JINJA.split(source)):
        if n % 2 == 0:
            out.append(r"\s*" + r"\s*".join(re.escape(w) for w in part.split()) + r"\s*")
        elif part.startswith("{{"):
            out.append(("[^<]*" if data_block else _JSON_VALUE) if "tojson" in part else _SAFE_VALUE)
    return re.compile("".join(out), re.S)


@lru_cache(maxsize=1)
def shipped() -> Shipped:
    return Shipped()
