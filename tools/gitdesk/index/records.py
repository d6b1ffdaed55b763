"""Issues as the index keeps them, for ``issue list`` and the queue: no file read once it is warm.

Each issue row holds a *record*: every field of the Issue model (the frontmatter as read,
problems included), when it last saw activity, and the date of its first response as
``sla.first_response`` defines it (worked out from the comments when the issue is indexed).
The body and the comments are not kept: listing and the queue do not show them.

Values keep their type through JSON with a small tag for what JSON lacks (times, dates, maps
with keys that are not text). An issue whose values do not come back equal (some YAML type
not foreseen here) gets no record, and is read from its file as before; an issue file that
cannot be read keeps the error it gave, so ``issue list`` warns in the very same words.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDocument, NotFound
from ..issues.model import Comment, Issue, Problem
from ..issues.sla import first_response

if TYPE_CHECKING:
    from ..core.tracker import Tracker

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
        record = {"fields": [_enc(getattr(issue, name)) for name in FIELDS],
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


def encode_error(err: InvalidDocument) -> str:
    """The record of an issue file that cannot be read: its error, to be raised again."""
    return json.dumps({"invalid": [err.path, err.reason, err.line]}, ensure_ascii=False)


def decode(issue_id: int, text: str) -> tuple[Issue, dt.datetime | None]:
    """The Issue (no body, no comments) and its first response's date."""
    return _rebuild(issue_id, json.loads(text))


def _rebuild(issue_id: int, record: dict[str, Any]) -> tuple[Issue, dt.datetime | None]:
    values = dict(zip(FIELDS, [v if type(v) in _PLAIN else _dec(v) for v in record["fields"]], strict=True))
    values.update(id=issue_id, last_activity=_dec(record["last_activity"]),
                  problems=[Problem(*p) for p in record["problems"]])
    if _FAST:  # what Issue(**values) does, without its defaults: a third of the time
        issue = object.__new__(Issue)
        issue.__dict__.update(values, body="", comments=[])
    else:
        issue = Issue(**values)
    return issue, _dec(record["responded"])


@dataclasses.dataclass
class Indexed:
    issues: list[Issue]                         # readable issues, by id
    errors: list[InvalidDocument]               # issue files that could not be read, by id
    responded: dict[int, dt.datetime | None]    # first response dates; an issue read from its file has none


def load(tracker: "Tracker") -> Indexed:
    """Every issue from the index, brought up to date first (``sync.with_index``): the same
    issues and errors as ``IssueStore.load_all``, without reading the files once it is warm."""
    from .sync import with_index

    rows = with_index(tracker, lambda db: db.execute(
        "SELECT id, readable, record FROM issue ORDER BY id").fetchall())
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of new objects, no cycles: collecting would triple the time
    try:
        return _build(tracker, rows)
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
