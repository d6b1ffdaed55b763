"""Untrusted text -> safe HTML: Markdown rendering, nh3 sanitizing, and e-mail redaction."""

from __future__ import annotations

import html
import re

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
_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


def markdown_html(text: str, public: bool = True) -> str:
    """Render untrusted Markdown to HTML that runs no script; public output hides addresses."""
    rendered = md.markdown(text or "", extensions=_EXTENSIONS, output_format="html")
    clean = nh3.clean(rendered, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                      url_schemes=URL_SCHEMES if not public else URL_SCHEMES - {"mailto"},
                      link_rel="nofollow noopener noreferrer")
    return redact_html(clean) if public else clean


def redact(text: str) -> str:
    """Plain text with every e-mail address replaced (invisible characters do not hide one)."""
    if "@" not in text:
        return text
    return html.unescape(redact_html(html.escape(text, quote=False)))


# Characters a reader does not see: an address split by them is still an address.
_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
# A tag of well-formed HTML (nh3's output or ours): attribute values are always quoted.
_TAG_RE = re.compile(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")


def redact_html(markup: str) -> str:
    """HTML with every e-mail address hidden, also one split by tags or entities.

    What a reader (or the search index, which drops the tags) sees is the text of all text
    nodes run together: ``bob@<em>example</em>.com`` reads as an address. So addresses are
    looked for in that joined, unescaped text, and each one found is replaced across the
    text nodes it spans. Attribute values (``href``, ``title``) are redacted in place.
    """
    tokens = _TAG_RE.split(markup)
    tags = [EMAIL_RE.sub(HIDDEN, tag) for tag in _TAG_RE.findall(markup)]
    texts = [html.unescape(t) for t in tokens]
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
    """A title safe where the theme prints it without escaping (<title>, navigation)."""
    cleaned = text.replace("<", "‹").replace(">", "›").replace("&", "＆").replace('"', "”")
    return redact(" ".join(cleaned.split()))
