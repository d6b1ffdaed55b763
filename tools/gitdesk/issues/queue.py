"""The work queue: which open issues await the desk, in the order they should be done.

An issue is in the queue when its status is neither closed nor one that waits on the
customer (``queue.waiting_statuses``). The order is ``queue.order`` in gitdesk.yml
(default: priority, then the earliest SLA due time, then age), ties broken by id; the rank
is the position in the whole queue, before any filter. An item is *taken* when it has an
assignee; ``next_free`` is the first item nobody has taken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDocument
from ..timeutil import UTC, now
from .model import Issue
from .query import IssueQuery
from .sla import Sla, clocks, first_response, is_response

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.tracker import Tracker
    from .query import IssueQuery

_FAR = dt.datetime.max.replace(tzinfo=UTC)  # "no time" sorts after every time


@dataclass(frozen=True)
class QueueItem:
    rank: int
    issue: Issue
    sla: Sla | None

    @property
    def taken_by(self) -> str | None:
        return self.issue.assignee

    def to_json(self, settings: "Settings") -> dict[str, Any]:
        return {**self.issue.to_json(settings.schema), "rank": self.rank,
                "sla": self.sla.to_json() if self.sla else None, "taken_by": self.taken_by}


def in_queue(issue: Issue, settings: "Settings") -> bool:
    return not settings.schema.is_closed(issue.status) and issue.status not in settings.queue.waiting_statuses


def _moment(value: dt.date | dt.datetime | None) -> dt.datetime:
    if value is None:
        return _FAR
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _order_key(settings: "Settings") -> Callable[[QueueItem], tuple]:
    schema = settings.schema
    parts: dict[str, Callable[[QueueItem], Any]] = {
        "priority": lambda q: schema.priority_rank(q.issue.priority),
        "sla": lambda q: _moment(q.sla.due if q.sla else None),
        "due": lambda q: _moment(q.issue.due),
        "age": lambda q: q.issue.created,
        "updated": lambda q: q.issue.activity,
        "id": lambda q: q.issue.id,
    }
    chosen = [parts[name] for name in settings.queue.order]
    return lambda q: (*(part(q) for part in chosen), q.issue.id)


def build_queue(issues: Iterable[Issue], settings: "Settings", moment: dt.datetime,
                responded: Callable[[Issue], dt.datetime | None]) -> list[QueueItem]:
    """The queue, ranked; ``responded`` gives an issue's first response time (or None)."""
    items = [QueueItem(0, issue, sla_of(issue, settings, moment, responded))
             for issue in issues if in_queue(issue, settings)]
    items.sort(key=_order_key(settings))
    return [QueueItem(rank, item.issue, item.sla) for rank, item in enumerate(items, 1)]


def sla_of(issue: Issue, settings: "Settings", moment: dt.datetime,
           responded: Callable[[Issue], dt.datetime | None]) -> Sla | None:
    """An issue's SLA clocks; the first response is looked up only when a target needs it."""
    targets = settings.sla.targets_for(issue.type, issue.priority)
    if targets is None:
        return None
    return clocks(issue, settings, moment, responded(issue) if targets.response else None)


def select(items: Iterable[QueueItem], settings: "Settings", query: IssueQuery | None = None,
           free: bool = False) -> list[QueueItem]:
    """The items that match ``query``; ``free``: only those nobody has taken."""
    return [q for q in items if (query is None or query.matches(q.issue, settings.schema))
            and not (free and q.taken_by)]


def next_free(items: Iterable[QueueItem], settings: "Settings",
              query: IssueQuery | None = None) -> QueueItem | None:
    return next(iter(select(items, settings, query, free=True)), None)


# -- reading the tracker ------------------------------------------------------------------------

def response_reader(tracker: "Tracker") -> Callable[[Issue], dt.datetime | None]:
    """The date of an issue's first response, read from its comment files.

    Comment files are named by their time, so reading stops at the first response found:
    an issue that was answered costs one or two small reads, not all of its comments.
    Unreadable comments are left out (their visibility is unknown), as in the reports.
    """
    def responded(issue: Issue) -> dt.datetime | None:
        if issue.comments:  # already loaded (issue show)
            reply = first_response(issue)
            return reply.date if reply else None
        for name in tracker.issues.comment_names(issue.id):
            try:
                comment = tracker.issues.load_comment(issue.id, name)
            except InvalidDocument:
                continue
            if is_response(issue, comment):
                return comment.date
        return None

    return responded


Responded = Callable[[Issue], "dt.datetime | None"]


def load_issues(tracker: "Tracker", query: "IssueQuery | None" = None, first: int = 0, ascending: bool = False,
                ) -> tuple[list[Issue], list[InvalidDocument], Responded]:
    """Every readable issue (without body and comments), the errors of those that could not
    be read (as ``IssueStore.load_all``), and their first response dates.

    They come from the index (``index.records``), which is brought up to date from the files
    first, so nothing is stale; when the index cannot be used (a read-only folder, say), the
    files are read as they are. With ``query``, issues it cannot match may be left out;
    with ``first`` too, all but the first that many matches by id (``index.records.load``).
    """
    from ..index.db import IndexUnavailable
    from ..index.records import load

    try:
        found = load(tracker, query, first=first, ascending=ascending)
    except (IndexUnavailable, OSError):
        issues, errors = tracker.issues.load_all()
        return issues, errors, response_reader(tracker)
    reader = response_reader(tracker)

    def responded(issue: Issue) -> dt.datetime | None:
        if issue.id in found.responded and not issue.comments:
            return found.responded[issue.id]
        return reader(issue)  # read from its file (issue show, or a value the index could not keep)

    return found.issues, found.errors, responded


def load_queue(tracker: "Tracker", moment: dt.datetime | None = None,
               ) -> tuple[list[QueueItem], list[InvalidDocument]]:
    """The tracker's queue at ``moment`` (default: now), and the issues that could not be read."""
    from .query import IssueQuery

    # closed issues are never in the queue: the index need not decode them
    issues, errors, responded = load_issues(tracker, IssueQuery(state="open"))
    return build_queue(issues, tracker.settings, moment or now(), responded), errors


def sla_now(tracker: "Tracker", issue: Issue, moment: dt.datetime | None = None,
            responded: Responded | None = None) -> Sla | None:
    """One issue's SLA clocks as they stand (for ``issue show`` and ``issue list --overdue``);
    ``responded`` as ``load_issues`` gives it (default: read the comment files)."""
    return sla_of(issue, tracker.settings, moment or now(), responded or response_reader(tracker))
