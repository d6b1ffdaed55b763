"""What the public site must not hold, read from the tracker, and a fast search for it.

``forbidden(tracker)`` lists the private text of a tracker (private issues in every field,
every comment that is not public, internal articles, unreadable files) as pieces: each
line, as written and as its page shows it (no list mark, link target or tag), each
sentence, and each link target, compared as lower-case words and punctuation (so
``**Private** body`` on a page reads as ``private body``, and "fixed. Thanks" is not
"fixed thanks"). It reads the tracker's files, never the page generator's choices.

A piece is forbidden only from MIN_CHARS characters on, and never when public tracker text
or the software's own text holds it too: "Thanks, that fixed it." may be in a private and a
public ticket alike, and "Type to start searching" is on every page.
"""

from __future__ import annotations

import html
import os
import re
from functools import lru_cache
from itertools import compress, count
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GitdeskError, InvalidDocument
from .active import shipped

if TYPE_CHECKING:
    from ..core.tracker import Tracker

# 12 characters is about two words: shorter pieces ("thanks", "it works", "see #12") turn
# up by chance in any help desk's public pages; a 12-character run of words from a private
# ticket that no public text holds does not.
MIN_CHARS = 12
# Words, and the punctuation that ends a sentence or clause. Newlines are tokens too, so
# that no piece is found across two lines.
TOKEN = re.compile(r"[^\W_]+|[.,;:!?]|\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_MD_LEAD = re.compile(r"^(?:\s*(?:[-*+>]|\d+[.)]|#+)\s+)+")  # list items, quotes, headings
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|<[^<>]*>")  # [text](url), <tag>, <url>
_MD_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)")  # where a link points: a piece of its own
_FIELD = re.compile(r"^([\w-]+):[ \t]*(.+)$", re.M)
_SCHEMA_KEYS = {"type", "status", "priority", "visibility", "created", "updated", "due", "date",
                "via", "closed", "resolution"}

Pieces = dict[str, tuple[str, str]]  # piece (words) -> (what it is, the text as written)


def forbidden(tracker: Tracker) -> Pieces:
    """The tracker's private text as pieces, less those that public or software text holds."""
    private: Pieces = {}
    public: list[str] = []

    def hide(what: str, texts) -> None:
        for text in texts:
            for piece, shown in pieces(text).items():
                private.setdefault(piece, (what, shown))

    for issue_id in tracker.issues.ids():
        try:
            issue = tracker.issues.load(issue_id)
        except InvalidDocument as err:
            hide(f"unreadable issue #{issue_id}", _raw(tracker, err.path))
            continue
        texts = [f"#{issue.id} {issue.title}", *_values([
            issue.title, issue.body, issue.labels, issue.attachments, issue.customer, issue.cc,
            issue.assignee, issue.author, issue.source, issue.kb, issue.resolution,
            issue.fields, issue.extra])]
        if issue.is_public:
            public += texts
        else:
            folder = tracker.root / tracker.issues.files_dir(issue_id)
            texts += sorted(os.listdir(folder)) if folder.is_dir() else []
            hide(f"private issue #{issue_id}", texts)
        for name in tracker.issues.comment_names(issue_id):
            try:
                comment = tracker.issues.load_comment(issue_id, name)
            except InvalidDocument as err:
                hide(f"unreadable comment on #{issue_id}", _raw(tracker, err.path))
                continue
            texts = _values([comment.body, comment.author, comment.attachments,
                             comment.message_id, comment.in_reply_to, comment.extra])
            if issue.is_public and comment.is_public:
                public += texts
            else:
                hide(f"internal note on #{issue_id}" if issue.is_public
                     else f"private issue #{issue_id}", texts)
    for slug in tracker.kb.slugs():
        try:
            article = tracker.kb.load(slug)
        except GitdeskError:  # an unreadable file, or a name that is no slug: unknown
            hide(f"unreadable article {slug}", _raw(tracker, f"kb/{slug}.md"))
            continue
        texts = _values([article.title, article.body, article.tags, article.extra])
        if article.is_public:
            public += texts
        else:
            hide(f"internal article {slug}", texts)
    if private:
        settings = tracker.settings
        public += [settings.name, *(m.name for m in settings.staff), *_values(settings.raw)]
        allowed = "\n".join([*public, *("\n".join(map(_plain, t.splitlines())) for t in public),
                             _software_text()])
        for piece in Finder(private).find(allowed):  # shared with public or software text
            del private[piece]
    return private


def pieces(text: str) -> dict[str, str]:
    """The pieces of a text to look for, as words -> as written."""
    out = {}
    for line in (text or "").splitlines() + _MD_TARGET.findall(text or ""):
        for variant in {line, _plain(line)}:
            for piece in [variant, *_SENTENCE.split(variant)]:
                words = " ".join(t for t in TOKEN.findall(piece.lower()) if t != "\n")
                if len(words) >= MIN_CHARS:
                    out.setdefault(words, " ".join(piece.split()))
    return out


def _plain(line: str) -> str:
    """A Markdown line as its page shows it: no list mark, link target or tag."""
    return html.unescape(_MD_LINK.sub(r" \1 ", _MD_LEAD.sub("", line)))


def _values(value) -> list[str]:
    if isinstance(value, (list, tuple, set)):
        return [s for v in value for s in _values(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_values(k), *_values(v))]
    return [str(value)] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else []


def _raw(tracker: Tracker, rel: str) -> list[str]:
    """An unreadable file's text: its visibility is unknown, so all of it is private (but
    for its status, dates and such, which every page's badges show)."""
    try:
        text = (tracker.root / rel).read_text("utf-8", errors="replace")
    except OSError:
        return []
    head, _, body = text.partition("\n---\n") if text.startswith("---") else ("", "", text)
    values = [m.group(2) for m in _FIELD.finditer(head) if m.group(1) not in _SCHEMA_KEYS]
    return [*values, body]


@lru_cache(maxsize=1)
def _software_text() -> str:
    """The text the theme and gitdesk's site code write on every site (translations,
    headings such as "Knowledge base"): never a leak, whatever a private ticket says."""
    paths = [p for p in Path(__file__).parent.rglob("*") if p.suffix in (".py", ".html")]
    paths += shipped().templates
    return "\n".join(p.read_text("utf-8", errors="replace") for p in paths if p.is_file())


class Finder:
    """Which of many pieces occur in a text, in one pass over its tokens: pieces are kept
    by their first four words (fewer if shorter), the places where such a start stands are
    found at C speed, and only there are pieces compared, by length."""

    def __init__(self, private: Pieces):
        self.what = private
        self.by_start: dict[tuple[str, ...], dict[int, set[tuple[str, ...]]]] = {}
        for piece in private:
            words = tuple(piece.split())
            self.by_start.setdefault(words[:4], {}).setdefault(len(words), set()).add(words)
        self.sizes = sorted({len(start) for start in self.by_start})

    def find(self, text: str) -> set[str]:
        tokens = TOKEN.findall(text.lower())
        found = set()
        for k in self.sizes:
            grams = zip(*(tokens[j:] for j in range(k)), strict=False)
            for i in compress(count(), map(self.by_start.__contains__, grams)):
                for n, group in self.by_start[tuple(tokens[i:i + k])].items():
                    words = tuple(tokens[i:i + n])
                    if words in group:
                        found.add(" ".join(words))
        return found
