"""HTML mail to readable plain text. The HTML itself is never kept or trusted.

Built on the standard library's tolerant, linear-time HTMLParser: block elements become
line breaks, lists get dashes, links keep their address, blockquotes become '>' lines (so
quoted history is recognised like plain-text quoting), and script, style and head vanish.

The result is Markdown text with no live HTML in it: a '<' that would open a tag (written
as '&lt;script&gt;' in the mail, or hidden in an alt text) is kept as '&lt;', a link's
address is percent-escaped so it cannot close its '<...>', and quoting deeper than
MAX_QUOTE levels is shown as MAX_QUOTE levels (ten thousand nested blockquotes would
otherwise repeat '> ' quadratically).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol",
           "h1", "h2", "h3", "h4", "h5", "h6", "pre", "form", "center", "hr", "dl", "dt", "dd"}
_HIDDEN = {"script", "style", "head", "title", "template", "noscript", "object", "iframe", "svg"}
_SAFE_LINK = re.compile(r"(?i)^(https?:|mailto:)")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_URL_UNSAFE = re.compile(r"[\x00-\x20<>\"'`\\\x7f]")
MAX_QUOTE = 10


def _inert(text: str) -> str:
    """Text that stays text in Markdown: no '<' that could open an HTML tag."""
    return _TAG_OPEN.sub("&lt;", text)


def _url(href: str) -> str:
    return _URL_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", href.strip())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.quote = 0
        self.pre = 0
        self.links: list[str | None] = []

    def _newline(self, count: int = 1) -> None:
        self.out.append("\n" * count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            self.out.append("- ")
        elif tag == "blockquote":
            self.quote += 1
            self._newline()
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append(_url(href) if _SAFE_LINK.match(href.strip()) else None)
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")
        if tag in _BLOCKS:
            self._newline(2 if tag in ("p", "table", "ul", "ol", "pre") else 1)
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline()
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.out.append(f" \x01{href}\x02")  # made '<href>' after _inert
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCKS:
            self._newline()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        if self.quote:
            depth = min(self.quote, MAX_QUOTE)
            data = data.replace("\n", "\n" + "> " * depth)
            self.out.append(f"\x00Q{depth}\x00" + data)
        else:
            self.out.append(data)


# A '<' that is not closed by a '>' before the next '<' cannot start a tag. Left in, each
# one makes html.parser scan to the end of the text ('<a' * 100,000 took 46 s): as text,
# the whole parse stays linear.
_UNCLOSED_RE = re.compile(r"<(?=[^<>]*(?:<|\Z))")


def html_to_text(html: str) -> str:
    parser = _Text()
    try:
        parser.feed(_UNCLOSED_RE.sub("&lt;", re.sub(r"[\x00-\x02]", "", html)))
        parser.close()
    except (AssertionError, ValueError):  # a few malformed declarations; keep what was read
        pass
    text = "".join(parser.out)
    lines = []
    for line in text.split("\n"):
        depth = 0
        match = re.search(r"\x00Q(\d+)\x00", line)
        if match:
            depth = int(match.group(1))
            line = re.sub(r"\x00Q\d+\x00", "", line)
        line = line.replace("\xa0", " ").strip()
        if depth and line:
            line = "> " * depth + line
        lines.append(line)
    text = _inert(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip())
    return re.sub(r"\x01([^\x01\x02]*)\x02", r"<\1>", text)
