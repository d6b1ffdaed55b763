"""Issues as the index keeps them, for ``issue list`` and the queue: no file read once it is warm.

Each issue row holds a *record*: every field of the Issue model (the frontmatter as read,
problems included), when it last saw activity, and the date of its first response as
``sla.first_response`` defines it (worked out from the comments when the issue is indexed).
The body and the comments are not kept: listing and the queue do not show them.

Values keep their type through JSON with a small tag for what JSON lacks (times, dates, maps
with keys that are not text); the record lists which fields carry tags, so that the others
(most of them) are taken as JSON gives them. An issue whose values do not come back equal (some YAML type
not foreseen here) gets no record, and is read from its file as before; an issue file that
cannot be read keeps the error it gave, so ``issue list`` warns in the very same words.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDocument, NotFound
from ..issues.model import NOT_READ, Comment, Issue, Problem
from ..issues.sla import first_response

if TYPE_CHECKING:
    from ..config import Schema
    from ..core.tracker import Tracker
    from ..issues.query import IssueQuery

CHUNK = 64  # records decoded at a time while looking for the first N matches
NOT_KEPT = ("body", "comments", "last_activity", "problems")  # body and comments: not needed
FIELDS = tuple(f.name for f in dataclasses.fields(Issue) if f.name not in NOT_KEPT)
# Issue is a plain dataclass: its attributes can be set without __init__ (faster by a third)
_FAST = (not hasattr(Issue, "__post_init__") and not hasattr(Issue, "__slots__")
         and {f.name for f in dataclasses.fields(Issue)} == {*FIELDS, *NOT_KEPT})


class _Unencodable(Exception):
    pass


def _enc(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and not isinstance(value.tzinfo, dt.timezone):
            raise _Unencodable(value)
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if isinstance(value, dict):
        return {"m": [[_enc(k), _enc(v)] for k, v in value.items()]}
    raise _Unencodable(value)


_PLAIN = (str, int, float, bool, type(None))


def _dec(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [v if type(v) in _PLAIN else _dec(v) for v in value]
    if kind is dict:
        if "t" in value:
            return dt.datetime.fromisoformat(value["t"])
        if "d" in value:
            return dt.date.fromisoformat(value["d"])
        return {_dec(k): _dec(v) for k, v in value["m"]}
    return value


def _native(value: Any) -> bool:
    """True for what JSON gives back as it was (kept without tags: decoding it costs nothing)."""
    kind = type(value)
    if kind in (str, int, bool, type(None)) or (kind is float and value == value):
        return True
    if kind is list:
        return all(_native(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _native(v) for k, v in value.items())
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not True, a date is not a datetime)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(k, j) and _same(a[k], b[j]) for k, j in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def encode(issue: Issue, comments: Iterable[Comment]) -> str | None:
    """The record of a readable issue (``comments``: its readable comments); None when its
    values would not come back as they are (it is then read from its file)."""
    reply = first_response(issue, comments)
    try:
        values = [getattr(issue, name) for name in FIELDS]
        tagged = [k for k, v in enumerate(values) if not _native(v)]
        for k in tagged:
            values[k] = _enc(values[k])
        record = {"fields": values, "tagged": tagged,
                  "last_activity": _enc(issue.last_activity),
                  "responded": _enc(reply.date if reply else None),
                  "problems": [[p.field, p.message, p.warning] for p in issue.problems]}
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        back, responded = decode(issue.id, text)
    except (_Unencodable, ValueError, TypeError, KeyError, RecursionError):
        return None
    if not (all(_same(getattr(issue, n), getattr(back, n)) for n in FIELDS)
            and _same(issue.last_activity, back.last_activity)
            and _same(reply.date if reply else None, responded)
            and back.problems == issue.problems):
        return None
    return text


def encode_comments(comments: list[Comment], broken: list[InvalidDocument]) -> str | None:
    """What reports need of an issue's comments (who, when, public or not; no text), and the
    errors of those that could not be read; None when some value would not come back as it is."""
    kept = [[c.id, c.author, c.date, c.visibility, c.via] for c in comments]
    try:
        text = json.dumps({"comments": [[_enc(v) for v in row] for row in kept],
                           "errors": [str(err) for err in broken]}, ensure_ascii=False, separators=(",", ":"))
    except (_Unencodable, ValueError, TypeError, RecursionError):
        return None
    back, _ = decode_comments(text)
    if not all(_same(a, b) for a, b in zip(kept, [[c.id, c.author, c.date, c.visibility, c.via] for c in back],
                                          strict=True)):
        return None
    return text


def decode_comments(text: str) -> tuple[list[Comment], list[str]]:
    """The comments as ``encode_comments`` kept them (bodies empty), and the errors."""
    record = json.loads(text)
    comments = [Comment(id=i, author=a, date=_dec(d), visibility=v, via=w) for i, a, d, v, w in record["comments"]]
    return comments, record["errors"]


def encode_error(err: InvalidDocument) -> str:
    """The record of an issue file that cannot be read: its error, to be raised again."""
    return json.dumps({"invalid": [err.path, err.reason, err.line]}, ensure_ascii=False)


def decode(issue_id: int, text: str) -> tuple[Issue, dt.datetime | None]:
    """The Issue (no body, no comments) and its first response's date."""
    return _rebuild(issue_id, json.loads(text))


def _rebuild(issue_id: int, record: dict[str, Any]) -> tuple[Issue, dt.datetime | None]:
    fields = record["fields"]
    for k in record["tagged"]:
        fields[k] = _dec(fields[k])
    values = dict(zip(FIELDS, fields, strict=True))
    values.update(id=issue_id, last_activity=_dec(record["last_activity"]),
                  problems=[Problem(*p) for p in record["problems"]], body=NOT_READ)
    if _FAST:  # what Issue(**values) does, without its defaults: a third of the time
        issue = object.__new__(Issue)
        issue.__dict__.update(values, comments=[])
    else:
        issue = Issue(**values)
    return issue, _dec(record["responded"])


@dataclasses.dataclass
class Indexed:
    issues: list[Issue]                         # readable issues, by id
    errors: list[InvalidDocument]               # issue files that could not be read, by id
    responded: dict[int, dt.datetime | None]    # first response dates; an issue read from its file has none
    comment_errors: dict[int, list[str]] = dataclasses.field(default_factory=dict)
    # with comments=True: the issues whose comments were kept (others have none attached)


def prefilter(query: "IssueQuery", schema: "Schema") -> tuple[str, list[Any]]:
    """An SQL condition that keeps at least every issue ``query`` matches (the query itself
    still decides): fewer records to decode. Unreadable issues and those without a record
    are always kept (their errors are reported; their values come from the file)."""
    terms: list[str] = []
    params: list[Any] = []

    def among(column: str, values) -> None:
        terms.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)

    if query.statuses:
        among("status", list(query.statuses))
    elif query.state in ("open", "closed"):
        closed = sorted(schema.closed_statuses)
        if closed:
            marks = ", ".join("?" * len(closed))
            terms.append(f"(status IS NULL OR status NOT IN ({marks}))" if query.state == "open"
                         else f"status IN ({marks})")
            params.extend(closed)
    if query.types:
        among("type", list(query.types))
    if query.priorities:
        among("priority", list(query.priorities))
    if query.visibility:
        among("visibility", [query.visibility])
    if query.customer:
        among("customer", [query.customer.lower()])
    if query.assignee:
        among("assignee", [query.assignee])
    for label in query.labels:
        terms.append("id IN (SELECT issue FROM issue_label WHERE label = ?)")
        params.append(label.lower())
    if not terms:
        return "", []
    return f"WHERE readable = 0 OR record IS NULL OR ({' AND '.join(terms)})", params


def load(tracker: "Tracker", query: "IssueQuery | None" = None, comments: bool = False,
         first: int = 0, ascending: bool = False) -> Indexed:
    """Every issue from the index (or, with ``query``, at least those it matches), brought up
    to date first (``sync.with_index``): the same issues and errors as ``IssueStore.load_all``,
    without reading the files once it is warm. With ``comments``, each issue whose comments
    the index could keep has them attached (no text: who wrote when, and whether public).
    With ``query`` and ``first``, at least the ``first`` matching issues by id (highest first
    unless ``ascending``) and every unreadable one: ``issue list -n 20`` decodes a few
    hundred records, not 100,000."""
    from .sync import with_index

    schema = tracker.settings.schema
    where, params = prefilter(query, schema) if query else ("", [])
    kept: list[tuple[int, str]] = []

    def read(db: sqlite3.Connection) -> list[tuple[int, int, str | None]]:
        if comments:
            kept.extend(db.execute("SELECT id, comments FROM issue WHERE readable = 1 AND record IS NOT NULL "
                                   "AND comments IS NOT NULL").fetchall())
        order = "ASC" if ascending or not first else "DESC"
        cursor = db.execute(f"SELECT id, readable, record FROM issue {where} ORDER BY id {order}", params)
        if not (first and query):
            return cursor.fetchall()
        rows: list[tuple[int, int, str | None]] = []
        matched = 0
        while matched < first and (chunk := cursor.fetchmany(max(CHUNK, 2 * first))):
            rows += chunk
            matched += sum(query.matches(i, schema) for i in _build(tracker, chunk).issues)
        cursor.close()
        rows += db.execute("SELECT id, readable, record FROM issue WHERE readable = 0").fetchall()
        return sorted(dict((row[0], row) for row in rows).values())

    rows = with_index(tracker, read)
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of new objects, no cycles: collecting would triple the time
    try:
        found = _build(tracker, rows)
        if comments:
            by_id = {issue.id: issue for issue in found.issues if issue.id in found.responded}
            for issue_id, text in kept:
                if issue_id in by_id:
                    by_id[issue_id].comments, found.comment_errors[issue_id] = decode_comments(text)
        return found
    finally:
        if enabled:
            gc.enable()


def _build(tracker: "Tracker", rows: list[tuple[int, int, str | None]]) -> Indexed:
    kept = [text for _, readable, text in rows if readable and text is not None]
    parsed = iter(json.loads("[" + ",".join(kept) + "]"))  # at once: much faster than one by one
    found: list[tuple[int, Issue | InvalidDocument]] = []
    responded: dict[int, dt.datetime | None] = {}
    for issue_id, readable, text in rows:
        if text is None:
            if not readable:
                continue  # no issue.md (any more): not an issue, as IssueStore.ids()
            try:  # a value the record could not keep: read the file, as without the index
                found.append((issue_id, tracker.issues.load(issue_id)))
            except InvalidDocument as err:
                found.append((issue_id, err))
            except NotFound:
                pass
            continue
        if not readable:
            found.append((issue_id, InvalidDocument(*json.loads(text)["invalid"])))
            continue
        issue, responded[issue_id] = _rebuild(issue_id, next(parsed))
        found.append((issue_id, issue))
    return Indexed([x for _, x in found if isinstance(x, Issue)],
                   [x for _, x in found if isinstance(x, InvalidDocument)], responded)
