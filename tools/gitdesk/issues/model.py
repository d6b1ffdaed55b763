"""Issue and Comment: pure data, their checks against the schema, and Document conversion.

Reading is lenient and fails closed: a file with a bad field still loads (so it can be
listed and repaired) but carries its problems, and a missing or invalid visibility reads
as private. Writing is strict: a change that leaves any problem is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import STANDARD_FIELDS, VISIBILITIES, Schema
from ..core.document import Document
from ..core.document import normalize_body as normalize_body  # for bridges: one body form
from ..timeutil import iso, parse_time

COMMENT_VISIBILITIES = ("public", "internal")
VIAS = ("cli", "email", "web", "import", "api")
MAX_LABELS = 100  # as GitHub; keeps label pages linear in the number of issues
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]*")  # use fullmatch: "$" would let "x\n" through
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class _NotRead(str):
    """The body of an issue decoded from the index, which does not keep bodies."""

    __slots__ = ()


# Reads as "" wherever a body is shown; issue_to_document refuses it, so an index record
# can never be written back over its file (which would erase the description).
NOT_READ = _NotRead("")


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    warning: bool = False


@dataclass
class Comment:
    """One comment or mail message: a file ``issues/<id>/<stamp>-<who>.md``."""

    id: str
    author: str
    date: dt.datetime
    body: str = ""
    visibility: str = "public"
    via: str = "cli"
    message_id: str | None = None
    in_reply_to: str | None = None
    attachments: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list, compare=False)

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "author": self.author, "date": iso(self.date),
            "visibility": self.visibility, "via": self.via, "body": self.body,
            "message_id": self.message_id, "in_reply_to": self.in_reply_to,
            "attachments": list(self.attachments),
        }


@dataclass
class Issue:
    """An issue or ticket: ``issues/<id>/issue.md``. ``comments`` is filled by the store."""

    id: int
    title: str
    type: str
    status: str
    priority: str
    visibility: str
    created: dt.datetime
    updated: dt.datetime
    labels: list[str] = field(default_factory=list)
    customer: str | None = None
    cc: list[str] = field(default_factory=list)
    assignee: str | None = None
    due: dt.date | dt.datetime | None = None
    kb: list[str] = field(default_factory=list)
    resolution: str | None = None
    attachments: list[str] = field(default_factory=list)
    source: str | None = None
    author: str | None = None
    closed: dt.datetime | None = None
    waiting_since: dt.datetime | None = None  # entered a waiting status (SLA clock paused)
    paused_seconds: int = 0                   # SLA time paused before, in counted seconds
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    comments: list[Comment] = field(default_factory=list, compare=False)
    last_activity: dt.datetime | None = field(default=None, compare=False)
    problems: list[Problem] = field(default_factory=list, compare=False)

    @property
    def path(self) -> str:
        return f"issues/{self.id}/issue.md"

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @property
    def activity(self) -> dt.datetime:
        """When anything last happened: the issue's own update or its newest comment."""
        return max(self.updated, self.last_activity or self.updated)

    def to_json(self, schema: Schema, with_comments: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "title": self.title, "type": self.type, "status": self.status,
            "closed": schema.is_closed(self.status), "priority": self.priority,
            "visibility": self.visibility, "labels": list(self.labels), "customer": self.customer,
            "cc": list(self.cc), "assignee": self.assignee, "created": iso(self.created),
            "updated": iso(self.activity), "due": iso(self.due), "kb": list(self.kb),
            "resolution": self.resolution, "author": self.author, "closed_at": iso(self.closed),
            "source": self.source, "waiting_since": iso(self.waiting_since),
            "paused_seconds": self.paused_seconds, "fields": dict(self.fields),
            "extra": {k: iso(v) if isinstance(v, (dt.date, dt.datetime)) else v
                      for k, v in self.extra.items()},
            "path": self.path,
        }
        if with_comments:
            data["body"] = self.body
            data["attachments"] = list(self.attachments)
            data["comments"] = [c.to_json() for c in self.comments]
        return data


# -- reading -------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    return None


def _text_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [str(value).strip()]
    if isinstance(value, list) and all(_text(v) for v in value):
        return [_text(v) or "" for v in value]
    return None


def _moment(value: Any) -> dt.datetime | None:
    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        return None


def issue_from_document(doc: Document, issue_id: int, schema: Schema) -> Issue:
    """Build an Issue from its file, recording (not raising) every problem."""
    meta = dict(doc.meta)
    problems: list[Problem] = []

    def bad(name: str, message: str, warning: bool = False) -> None:
        problems.append(Problem(name, message, warning))

    title = _text(meta.pop("title", None))
    if not title:
        bad("title", "missing title")
    choice = {}
    for name, allowed, default in (("type", tuple(schema.types), schema.default_type),
                                   ("status", schema.statuses, schema.default_status),
                                   ("priority", schema.priorities, schema.default_priority)):
        raw = meta.pop(name, None)
        value = _text(raw)
        if raw is None:
            value = default
        elif value not in allowed:
            bad(name, f"unknown {name} {raw!r} (expected one of: {', '.join(allowed)})")
            value = str(raw)
        choice[name] = value
    raw_vis = meta.pop("visibility", None)
    visibility = raw_vis if raw_vis in VISIBILITIES else "private"
    if raw_vis is None:
        bad("visibility", "no visibility: treated as private", warning=True)
    elif raw_vis not in VISIBILITIES:
        bad("visibility", f"visibility {raw_vis!r} is not public or private: treated as private",
            warning=True)
    lists = {}
    for name in ("labels", "cc", "kb", "attachments"):
        value = _text_list(meta.pop(name, None))
        if value is None:
            bad(name, f"{name} must be a list of names")
            value = []
        lists[name] = value
    singles = {}
    for name in ("customer", "assignee", "resolution", "source", "author"):
        raw = meta.pop(name, None)
        value = _text(raw)
        if raw is not None and value is None:
            bad(name, f"{name} must be text")
        singles[name] = value or None
    if singles["customer"] and not EMAIL_RE.match(singles["customer"]):
        bad("customer", f"customer {singles['customer']!r} is not an email address")
    if len(lists["labels"]) > MAX_LABELS:
        bad("labels", f"{len(lists['labels'])} labels; an issue has at most {MAX_LABELS}")
    for label in lists["labels"]:
        if len(label) > 100:
            bad("labels", f"label {label[:20]!r}... is longer than 100 characters")
        if "," in label or "\n" in label:
            bad("labels", f"label {label!r} has a comma or a line break (commas separate labels)")
    for address in lists["cc"]:
        if not EMAIL_RE.match(address):
            bad("cc", f"cc {address!r} is not an email address")
    if singles["resolution"] and schema.resolutions and singles["resolution"] not in schema.resolutions:
        bad("resolution", f"unknown resolution {singles['resolution']!r} "
                          f"(expected one of: {', '.join(schema.resolutions)})")
    for slug in lists["kb"]:
        if not SLUG_RE.fullmatch(slug):
            bad("kb", f"kb {slug!r} is not an article slug")
    times = {}
    for name in ("created", "updated"):
        raw = meta.pop(name, None)
        moment = _moment(raw)
        if moment is None:
            bad(name, f"{name} is missing" if raw is None else f"{name} {raw!r} is not a date")
            moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        times[name] = moment
    raw_closed = meta.pop("closed", None)
    closed_at = _moment(raw_closed) if raw_closed is not None else None
    if raw_closed is not None and closed_at is None:
        bad("closed", f"closed {raw_closed!r} is not a date")
    raw_waiting = meta.pop("waiting_since", None)
    waiting_since = _moment(raw_waiting) if raw_waiting is not None else None
    if raw_waiting is not None and waiting_since is None:
        bad("waiting_since", f"waiting_since {raw_waiting!r} is not a time")
    paused = meta.pop("paused_seconds", 0)
    if isinstance(paused, bool) or not isinstance(paused, int) or paused < 0:
        bad("paused_seconds", f"paused_seconds {paused!r} is not a whole number of seconds")
        paused = 0
    raw_due = meta.pop("due", None)
    due = raw_due if isinstance(raw_due, dt.date) or raw_due is None else _moment(raw_due)
    if raw_due is not None and due is None:
        bad("due", f"due {raw_due!r} is not a date")
    custom = {}
    for name, spec in schema.fields.items():
        value = meta.pop(name, spec.default)
        if value is None and spec.required:
            bad(name, f"missing {name}")
        if value is not None and spec.values and str(value) not in spec.values:
            bad(name, f"unknown {name} {value!r} (expected one of: {', '.join(spec.values)})")
        if value is not None:
            custom[name] = value
    return Issue(
        id=issue_id, title=title or "", visibility=visibility, created=times["created"],
        updated=times["updated"], closed=closed_at, waiting_since=waiting_since,
        paused_seconds=paused, due=due, fields=custom, extra=meta, body=doc.body,
        problems=problems, **choice, **lists, **singles,
    )


def issue_to_document(issue: Issue) -> Document:
    if issue.body is NOT_READ:
        raise RuntimeError(f"#{issue.id} came from the index, which has no body: load its file to change it")
    meta: dict[str, Any] = {
        "title": issue.title, "type": issue.type, "status": issue.status,
        "priority": issue.priority, "visibility": issue.visibility,
        "labels": list(issue.labels),
    }
    optional = {
        "customer": issue.customer, "cc": list(issue.cc), "assignee": issue.assignee,
        "author": issue.author,
    }
    meta.update({k: v for k, v in optional.items() if v})
    meta["created"] = issue.created
    meta["updated"] = issue.updated
    rest = {
        "closed": issue.closed, "waiting_since": issue.waiting_since,
        "paused_seconds": issue.paused_seconds, "due": issue.due, "kb": list(issue.kb), "resolution": issue.resolution,
        "attachments": list(issue.attachments), "source": issue.source,
    }
    meta.update({k: v for k, v in rest.items() if v})
    meta.update(issue.fields)
    meta.update(issue.extra)
    return Document(meta, issue.body)


def comment_from_document(doc: Document, comment_id: str) -> Comment:
    meta = dict(doc.meta)
    problems = []
    author = _text(meta.pop("author", None))
    if not author:
        problems.append(Problem("author", "missing author"))
    raw_date = meta.pop("date", None)
    date = _moment(raw_date)
    if date is None:
        problems.append(Problem("date", "missing date" if raw_date is None else f"date {raw_date!r} is not a date"))
        date = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    raw_vis = meta.pop("visibility", None)
    visibility = raw_vis if raw_vis in COMMENT_VISIBILITIES else "internal"
    if raw_vis is None:
        problems.append(Problem("visibility", "no visibility: treated as internal", warning=True))
    elif raw_vis not in COMMENT_VISIBILITIES:
        problems.append(Problem("visibility", f"visibility {raw_vis!r} is not public or internal: "
                                              "treated as internal", warning=True))
    via = _text(meta.pop("via", None)) or "cli"
    attachments = _text_list(meta.pop("attachments", None))
    if attachments is None:
        problems.append(Problem("attachments", "attachments must be a list of file names"))
    return Comment(
        id=comment_id, author=author or "", date=date, body=doc.body, visibility=visibility,
        via=via, message_id=_text(meta.pop("message_id", None)),
        in_reply_to=_text(meta.pop("in_reply_to", None)), attachments=attachments or [],
        extra=meta, problems=problems,
    )


def comment_to_document(comment: Comment) -> Document:
    meta: dict[str, Any] = {"author": comment.author, "date": comment.date,
                            "visibility": comment.visibility, "via": comment.via}
    for key in ("message_id", "in_reply_to"):
        if getattr(comment, key):
            meta[key] = getattr(comment, key)
    if comment.attachments:
        meta["attachments"] = list(comment.attachments)
    meta.update(comment.extra)
    return Document(meta, comment.body)


def is_standard(name: str) -> bool:
    return name in STANDARD_FIELDS
