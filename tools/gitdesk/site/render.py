"""Untrusted text -> safe HTML: Markdown rendering, nh3 sanitizing, issue references and
e-mail redaction.

Every body (issue, comment, KB article) is rendered by Python-Markdown and then cleaned by
nh3 with an allow-list of tags, attributes and URL schemes; nothing from a ticket reaches a
page any other way. Three decisions beyond the allow-list:

- A tag that is not on the allow-list (``<script>``, ``<svg>``, ``<path>``) is shown as
  text, not dropped with what follows it: the reader sees what the customer wrote.
- Remote images become links. ``<img src="https://tracker.example/pixel.gif">`` in a
  customer's mail is a tracking pixel: every reader's browser would report to its host
  (the public site's readers, and staff opening the staff site). Only relative images (an
  issue's own attachments) are shown inline; a remote one is a link a reader can choose.
- Body headings are moved down (an ``# H1`` in a comment becomes an ``h3``), so a ticket
  cannot outrank the page's own title and sections.
- ``#42`` in text becomes a link to issue 42 if it is shown, "#42 (private)" if it exists but
  is not, and stays as written otherwise; never inside code or an existing link.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import markdown as md
import nh3

EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")
ANGLE_EMAIL_RE = re.compile(r"\s*<[^<>@\s]+@[^<>\s]+>")
HIDDEN = "[address hidden]"

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre",
    "q", "s", "samp", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "code": {"class"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow noopener noreferrer"
_CODE_CLASS_RE = re.compile(r"language-[\w+#.-]{1,40}")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Only a fenced block's ``language-x`` class: no theme class can be borrowed."""
    if attribute == "class":
        return value if _CODE_CLASS_RE.fullmatch(value) else None
    return value


_CLEANERS = {
    public: nh3.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                        url_schemes=URL_SCHEMES - {"mailto"} if public else URL_SCHEMES,
                        link_rel=LINK_REL, attribute_filter=_keep_attribute)
    for public in (True, False)
}

# Ticket and mail text is written as on GitHub or in a mail client, where a line break is a
# line break; a KB article is ordinary Markdown, where it is not. One converter of each kind,
# reset between texts: building one costs more than converting a typical comment.
_CONVERTERS = {True: md.Markdown(extensions=["fenced_code", "tables", "sane_lists", "nl2br"],
                                 output_format="html"),
               False: md.Markdown(extensions=["fenced_code", "tables", "sane_lists"],
                                  output_format="html")}


def markdown_html(text: str, public: bool = True, top: int = 3, ticket: bool = True) -> str:
    """Render untrusted Markdown to HTML that runs no script; public output hides addresses.

    ``top`` is the highest heading level the body may use; ``ticket`` selects GitHub-like
    line breaks (issues, comments, mail) rather than plain Markdown (KB articles).
    """
    source = _as_github_reads_it(text or "")
    rendered = _CONVERTERS[ticket].reset().convert(source)
    clean = _CLEANERS[public].clean(_unknown_tags_as_text(rendered))
    clean = _lower_headings(_no_remote_images(clean), top)
    return redact_html(clean) if public else clean


# A tag the allow-list does not know is shown as text. The sanitizer would drop some of them
# together with all they hold (script, style, and any SVG or MathML name: <path>, <text>,
# <g>), so "set <path> to /usr/bin" would lose its end, and one left open the rest of the
# message. Code blocks need nothing: Markdown has already escaped them.
_TAG_START_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)(?=[\s/>]|$)")


def _unknown_tags_as_text(markup: str) -> str:
    return _TAG_START_RE.sub(
        lambda m: m.group(0) if m.group(2).lower() in ALLOWED_TAGS else "&lt;" + m.group(0)[1:],
        markup)

_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_HASH_START_RE = re.compile(r"( {0,3})#(?=[^#\s])")
_LIST_ITEM_RE = re.compile(r" {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S")


def _as_github_reads_it(text: str) -> str:
    """Two places where Python-Markdown and GitHub disagree, in GitHub's favour:
    ``#42 is back`` at a line's start is text, not a heading; a list may follow a
    paragraph line without a blank line between. Lines in fenced code are left alone."""
    out: list[str] = []
    fence = ""
    block_is_list = False
    previous = ""
    for line in text.split("\n"):
        opened = _FENCE_RE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            out.append(line)
            previous = line
            continue
        if opened:
            fence = opened.group(1)
        elif _HASH_START_RE.match(line):
            line = _HASH_START_RE.sub(r"\1\\#", line, count=1)
        elif _LIST_ITEM_RE.match(line) and previous.strip() and not block_is_list \
                and not previous[:1].isspace() and not previous.startswith(("|", ">")):
            out.append("")
            block_is_list = True
        if not previous.strip():
            block_is_list = bool(_LIST_ITEM_RE.match(line))
        out.append(line)
        previous = line
    return "\n".join(out)


_IMG_RE = re.compile(r"<img\b([^>]*)>")
_ATTR_RE = re.compile(r'([\w:-]+)="([^"]*)"')
_LOCAL_SRC_RE = re.compile(r"(?![a-zA-Z][\w+.-]*:)(?![/\\])")


def _no_remote_images(markup: str) -> str:
    """Keep images that load from the page's own folder; make any other one a link."""
    def swap(match: re.Match) -> str:
        attrs = dict(_ATTR_RE.findall(match.group(1)))
        src = re.sub(r"[\x00-\x20]", "", html.unescape(attrs.get("src", "")))
        if src and _LOCAL_SRC_RE.match(src):
            return match.group(0)
        label = html.escape(html.unescape(attrs.get("alt", "")) or "image", quote=False)
        if not attrs.get("src"):  # nh3 dropped an unsafe URL: nothing to link to
            return f'<span class="gd-image">[{label}]</span>'
        return (f'<a class="gd-image" href="{attrs["src"]}" rel="{LINK_REL}">'
                f"[image: {label}]</a>")
    return _IMG_RE.sub(swap, markup)


_HEADING_RE = re.compile(r"<(/?)h([1-6])>")


def _lower_headings(markup: str, top: int) -> str:
    levels = [int(level) for _, level in _HEADING_RE.findall(markup)]
    shift = max(0, top - min(levels)) if levels else 0
    if not shift:
        return markup
    return _HEADING_RE.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}>", markup)


# -- issue references ----------------------------------------------------------------------

# '#42' as a word of its own: not 'owner/repo#42', 'a#42', or an entity such as '&#39;'.
_REF_RE = re.compile(r"(?<![\w/&#-])#(\d{1,9})\b")
_NO_REFS_IN = {"a", "code", "pre", "kbd", "samp"}
# A tag of well-formed HTML (nh3's output or ours): attribute values are always quoted.
_TAG_RE = re.compile(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
_TAG_NAME_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)")


def link_refs(markup: str, target: Callable[[int], tuple[str, str] | str | None]) -> str:
    """Turn ``#42`` in the text of ``markup`` into links.

    ``target(42)`` gives ``(href, title)`` for an issue that is shown, ``""`` for one that
    exists but is not (it becomes "#42 (private)", with no title), or ``None`` (left as is).
    """
    if "#" not in markup:
        return markup
    out: list[str] = []
    skip = 0
    pos = 0
    for tag in _TAG_RE.finditer(markup):
        text = markup[pos:tag.start()]
        out.append(text if skip else _REF_RE.sub(lambda m: _ref(m, target), text))
        name = _TAG_NAME_RE.match(tag.group(0))
        if name and name.group(2).lower() in _NO_REFS_IN and not tag.group(0).endswith("/>"):
            skip = max(0, skip - 1) if name.group(1) else skip + 1
        out.append(tag.group(0))
        pos = tag.end()
    tail = markup[pos:]
    out.append(tail if skip else _REF_RE.sub(lambda m: _ref(m, target), tail))
    return "".join(out)


def _ref(match: re.Match, target) -> str:
    found = target(int(match.group(1)))
    if found is None:
        return match.group(0)
    if found == "":
        return f'<span class="gd-ref gd-ref-private">#{match.group(1)} (private)</span>'
    href, title = found
    return f'<a class="gd-ref" href="{href}" title="{esc(title)}">#{match.group(1)}</a>'


# -- addresses -------------------------------------------------------------------------------

def redact(text: str) -> str:
    """Plain text with every e-mail address replaced (invisible characters do not hide one)."""
    if "@" not in text:
        return text
    return html.unescape(redact_html(html.escape(text, quote=False)))


# Characters a reader does not see: an address split by them is still an address.
_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")


def redact_html(markup: str) -> str:
    """HTML with every e-mail address hidden, also one split by tags or entities.

    What a reader (or the search index, which drops the tags) sees is the text of all text
    nodes run together: ``bob@<em>example</em>.com`` reads as an address. So addresses are
    looked for in that joined, unescaped text, and each one found is replaced across the
    text nodes it spans. Attribute values (``href``, ``title``) are redacted in place.
    """
    if "@" not in markup and "@" not in html.unescape(markup):  # '&#64;' is an '@' too
        return markup
    tokens = _TAG_RE.split(markup)
    raw_tags = _TAG_RE.findall(markup)
    texts = [html.unescape(t) for t in tokens]
    if not EMAIL_RE.search(_INVISIBLE_RE.sub("", "".join(texts))) \
            and not any(EMAIL_RE.search(tag) for tag in raw_tags):
        return markup  # an '@' but no address (an @mention): nothing to hide
    tags = [EMAIL_RE.sub(HIDDEN, tag) for tag in raw_tags]
    joined, where = [], []  # visible characters, and (text node, index) of each
    for n, text in enumerate(texts):
        for i, char in enumerate(text):
            if not _INVISIBLE_RE.match(char):
                joined.append(char)
                where.append((n, i))
    spans: dict[int, list[tuple[int, int, bool]]] = {}
    for match in EMAIL_RE.finditer("".join(joined)):
        covered: dict[int, list[int]] = {}
        for n, i in where[match.start():match.end()]:
            covered.setdefault(n, []).append(i)
        for k, (n, idx) in enumerate(sorted(covered.items())):
            spans.setdefault(n, []).append((min(idx), max(idx) + 1, k == 0))
    out = []
    for n, token in enumerate(tokens):
        if n in spans:
            text = texts[n]
            for start, end, first in sorted(spans[n], reverse=True):
                text = text[:start] + (HIDDEN if first else "") + text[end:]
            token = html.escape(text, quote=False)
        out.append(token)
        if n < len(tags):
            out.append(tags[n])
    return "".join(out)


def person(author: str | None, public: bool = True) -> str:
    """A display name: 'Alice <a@x>' -> 'Alice'; in public a bare address shows its local part."""
    if not author:
        return ""
    name = ANGLE_EMAIL_RE.sub("", author).strip().strip('"') or author.strip("<> ")
    if public and "@" in name:
        name = redact(name.split("@")[0]) or "someone"
    return name


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def plain_title(text: str) -> str:
    """A title safe where the theme prints it without escaping (<title>, navigation).

    The characters that could open a tag or end an attribute become look-alikes; '&' stays,
    since an entity in text or in a quoted attribute can only ever show a character.
    """
    cleaned = (text.replace("<", "‹").replace(">", "›").replace('"', "”").replace("'", "’")
               .replace("`", "‘"))
    return redact(" ".join(cleaned.split()))
