"""Ranked full-text search over issues and articles, and the articles that fit a ticket.

Every function brings the index up to date first (``sync.with_index``), so answers are
never stale. Ranking is FTS5's bm25 with a title worth ten times the text (labels and
tags five, a description twice a comment). Staff see everything, a hit found in an
internal note says so; ``public=True`` looks only at what the public site shows: public
issues, their public comments and public articles, with addresses hidden as on the site.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValue
from ..issues.query import IssueQuery
from ..kb.store import RESERVED_SLUGS
from . import query as q
from .db import ARTICLE_COLUMNS, ISSUE_COLUMNS
from .sync import problems, with_index

if TYPE_CHECKING:
    from ..config import Schema
    from ..core.tracker import Tracker

START, END = "\x02", "\x03"  # snippet markers; control characters are removed from indexed text
SNIPPET_WORDS = 16
PUBLIC_ISSUE_COLUMNS = ("title", "labels", "body", "comments")
PUBLIC_FIELDS = ("id", "title", "type", "status", "closed", "priority", "visibility", "labels",
                 "created", "updated", "due", "kb", "resolution", "closed_at", "path")
ISSUE_PARTS = {"title": "title", "labels": "labels", "body": "description", "comments": "comments",
               "notes": "internal note"}
ARTICLE_PARTS = {"title": "title", "tags": "tags", "body": "text"}
SNIPPET_ORDER = ("body", "comments", "notes", "title", "labels", "tags")  # first wins a tie
EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")  # as the site's redaction
HIDDEN = "[address hidden]"
_SPACE = re.compile(r"\s+")
_NOT_WORDS = re.compile(EMAIL_RE.pattern + r"|\w+://\S+")  # addresses and links tell nothing
SUGGEST_TERMS = 10


@dataclass
class Hit:
    """One result: the issue's (or article's) JSON, its score, and where the words are."""

    data: dict[str, Any]
    score: float
    snippet: str = ""
    matches: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in snippet
    where: str = ""           # title, labels, description, comments, internal note; tags, body

    @property
    def internal(self) -> bool:
        return self.where == "internal note"

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "score": self.score, "snippet": self.snippet,
                "matches": [list(m) for m in self.matches], "where": self.where}


@dataclass
class Results:
    hits: list[Hit]
    total: int                                         # matches before the limit
    warnings: list[str] = field(default_factory=list)  # files left out (unreadable)
    terms: list[str] = field(default_factory=list)     # for suggestions: the words used


def search_issues(tracker: "Tracker", text: str, filters: IssueQuery | None = None, *,
                  public: bool = False, limit: int = 20) -> Results:
    """Issues matching ``text`` (see ``index.query``), best first; ``limit`` 0 means all."""
    parsed = q.parse(text)
    columns = PUBLIC_ISSUE_COLUMNS if public else ISSUE_COLUMNS
    where, params = _issue_filter(filters or IssueQuery(state="all"), tracker.settings.schema, public)

    def work(db: sqlite3.Connection) -> Results:
        expr = parsed.fts(PUBLIC_ISSUE_COLUMNS if public else None)
        base = f"FROM issue_text JOIN issue ON issue.id = issue_text.rowid " \
               f"WHERE issue_text MATCH ? AND {where}"
        total = _run(db, f"SELECT count(*) {base}", [expr, *params])[0][0]
        snippets = ", ".join(_snippet_sql("issue_text", ISSUE_COLUMNS.index(c)) for c in columns)
        rows = _run(db, f"SELECT issue.data, issue_text.rank, {snippets} {base} "
                        f"ORDER BY issue_text.rank LIMIT ?", [expr, *params, limit or -1])
        shown = _public_slugs(db) if public else None
        hits = []
        for data, rank, *texts in rows:
            hit = _hit(json.loads(data), rank, dict(zip(columns, texts, strict=True)), public, ISSUE_PARTS)
            hit.data["closed"] = tracker.settings.schema.is_closed(hit.data["status"])
            if shown is not None:
                hit.data = _public_issue(hit.data, shown)
            hits.append(hit)
        return Results(hits, total, problems(db))

    return with_index(tracker, work)


def search_articles(tracker: "Tracker", text: str, *, public: bool = False, tags: tuple[str, ...] = (),
                    limit: int = 20) -> Results:
    """KB articles matching ``text``, best first; internal ones only for staff."""
    parsed = q.parse(text)
    return with_index(tracker, lambda db: _articles(db, parsed, public, tags, limit))


def suggest_articles(tracker: "Tracker", issue_id: int, *, public: bool = False,
                     limit: int = 5) -> Results:
    """The articles most like a ticket (its title, description and public comments): the
    ticket's most significant words, any of them, ranked as a search."""
    tracker.issues.load(issue_id)  # NotFound, or InvalidDocument, in the usual words

    def work(db: sqlite3.Connection) -> Results:
        terms = _significant_terms(db, issue_id)
        found = _articles(db, q.any_of(terms), public, (), limit) if terms else Results([], 0, problems(db))
        found.terms = terms
        return found

    return with_index(tracker, work)


# -- issues -------------------------------------------------------------------------------------

def _issue_filter(query: IssueQuery, schema: "Schema", public: bool) -> tuple[str, list[Any]]:
    """SQL for ``IssueQuery.matches`` over the indexed fields (tests hold the two equal)."""
    where, params = ["issue.readable = 1"], []

    def one_of(column: str, values) -> None:
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)

    closed = sorted(schema.closed_statuses)
    state = "all" if query.statuses else query.state
    if state in ("open", "closed") and closed:
        where.append(f"issue.status {'NOT ' if state == 'open' else ''}IN ({', '.join('?' * len(closed))})")
        params.extend(closed)
    elif state == "closed":
        where.append("0")  # no status is a closed one
    for column, values in (("status", query.statuses), ("type", query.types),
                           ("priority", query.priorities)):
        if values:
            one_of(f"issue.{column}", list(values))
    for label in query.labels:
        where.append("EXISTS (SELECT 1 FROM issue_label l WHERE l.label = ? AND l.issue = issue.id)")
        params.append(label.lower())
    if query.customer:
        where.append("issue.customer = ?")
        params.append(query.customer.lower())
    if query.visibility or public:
        where.append("issue.visibility = ?")
        params.append("public" if public else query.visibility)
    if query.assignee:
        where.append("issue.assignee = ?")
        params.append(query.assignee)
    if query.unassigned:
        where.append("issue.assignee IS NULL")
    return " AND ".join(where), params


def _public_issue(data: dict[str, Any], shown_slugs: set[str]) -> dict[str, Any]:
    """Only what the public site shows of an issue: no people, no private fields."""
    out = {key: data.get(key) for key in PUBLIC_FIELDS}
    out["title"] = _redact(out["title"] or "")
    out["labels"] = [_redact(label) for label in out["labels"] or []]
    out["kb"] = [slug for slug in out["kb"] or [] if slug in shown_slugs]
    return out


def _public_slugs(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT slug FROM article WHERE visibility = 'public'")}


# -- articles -------------------------------------------------------------------------------

def _articles(db: sqlite3.Connection, parsed: q.Query, public: bool, tags: tuple[str, ...],
              limit: int) -> Results:
    where, params = ["article.readable = 1"], []
    if public:
        where.append("article.visibility = 'public' AND article.slug NOT IN "
                     f"({', '.join('?' * len(RESERVED_SLUGS))})")
        params += list(RESERVED_SLUGS)
    wanted = [t.lower() for t in tags]
    snippets = ", ".join(_snippet_sql("article_text", i) for i in range(len(ARTICLE_COLUMNS)))
    rows = _run(db, f"SELECT article.data, article_text.rank, {snippets} "
                    "FROM article_text JOIN article ON article.n = article_text.rowid "
                    f"WHERE article_text MATCH ? AND {' AND '.join(where)} "
                    "ORDER BY article_text.rank", [parsed.fts(), *params])
    hits = []
    for data, rank, *texts in rows:  # articles are few: tags are matched here
        article = json.loads(data)
        if all(t in {have.lower() for have in article["tags"]} for t in wanted):
            texts_of = dict(zip(ARTICLE_COLUMNS, texts, strict=True))
            hits.append(_hit(article, rank, texts_of, public, ARTICLE_PARTS))
    return Results(hits[:limit] if limit else hits, len(hits), problems(db))


def _significant_terms(db: sqlite3.Connection, issue_id: int) -> list[str]:
    """The ticket's words that best tell it apart (tf-idf over all tickets) and that some
    article uses; the title counts three times."""
    row = db.execute("SELECT title, body, comments FROM issue_text WHERE rowid = ?", (issue_id,)).fetchone()
    if not row:
        return []
    counts: dict[str, int] = {}
    for weight, text in zip((3, 1, 1), row, strict=True):
        for word in q.words(_NOT_WORDS.sub(" ", text)):
            if len(word) > 1 and word not in q.STOPWORDS and not (word.isdigit() and len(word) < 3):
                counts[word] = counts.get(word, 0) + weight
    total = db.execute("SELECT count(*) FROM issue WHERE readable = 1").fetchone()[0] or 1
    scored = []
    for word, count in counts.items():
        phrase = '"' + word + '"'
        if not db.execute("SELECT 1 FROM article_text WHERE article_text MATCH ? LIMIT 1", (phrase,)).fetchone():
            continue
        df = db.execute("SELECT count(*) FROM issue_text WHERE issue_text MATCH ?", (phrase,)).fetchone()[0]
        scored.append((count * math.log(1 + (total - df + 0.5) / (df + 0.5)), word))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [word for _, word in scored[:SUGGEST_TERMS]]


# -- snippets ---------------------------------------------------------------------------------

def _snippet_sql(table: str, column: int) -> str:
    return f"snippet({table}, {column}, '{START}', '{END}', '…', {SNIPPET_WORDS})"


def _hit(data: dict[str, Any], rank: float, texts: dict[str, str], public: bool,
         parts: dict[str, str]) -> Hit:
    """The hit, with the snippet of the column that holds most of the words."""
    best = max(SNIPPET_ORDER, key=lambda c: (texts.get(c, "").count(START), -SNIPPET_ORDER.index(c)))
    plain, marks = _unmark(_SPACE.sub(" ", texts.get(best) or "").strip())
    if public:
        plain, marks = _redact_marked(plain, marks)
    return Hit(data, float(f"{-rank:.4g}"), plain, marks,
               parts[best] if marks else "")


def _unmark(text: str) -> tuple[str, list[tuple[int, int]]]:
    plain, marks, start = [], [], 0
    length = 0
    for piece in re.split(f"([{START}{END}])", text):
        if piece == START:
            start = length
        elif piece == END:
            marks.append((start, length))
        else:
            plain.append(piece)
            length += len(piece)
    return "".join(plain), marks


def _redact(text: str) -> str:
    return EMAIL_RE.sub(HIDDEN, text) if "@" in text else text


def _redact_marked(text: str, marks: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Hide addresses; a mark inside one goes, the marks after it move."""
    if "@" not in text:
        return text, marks
    out, kept, shift, last = [], [], 0, 0
    cuts = list(EMAIL_RE.finditer(text))
    for match in cuts:
        out += [text[last:match.start()], HIDDEN]
        last = match.end()
    out.append(text[last:])
    for start, end in marks:
        if any(m.start() < end and start < m.end() for m in cuts):
            continue
        shift = sum(len(HIDDEN) - (m.end() - m.start()) for m in cuts if m.end() <= start)
        kept.append((start + shift, end + shift))
    return "".join(out), kept


def _run(db: sqlite3.Connection, sql: str, params: list[Any]) -> list[tuple]:
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as err:
        if "fts5" in str(err):  # should not happen (every term is quoted), but never a traceback
            raise InvalidValue(f"cannot search for that: {err}") from None
        raise
