"""Issue statistics per period: the numbers behind the site's reports page and ``gitdesk report``.

Pure domain code: issues (with the comments the caller chose to show) in, a ``Report`` out.
The public site passes public issues and their public comments; the staff site everything.

Definitions (all times UTC):

- **Periods** are calendar months (``by="month"``, labelled ``2026-03``) or ISO weeks starting
  Monday 00:00 UTC (``by="week"``, labelled ``2026-W09``). ``since`` is rounded down to the
  start of its period (default: the period of the oldest issue); ``until`` is exclusive
  (default: the end of the current second, so that everything written so far counts; the
  last period runs "to date"). ``limit`` keeps only the latest periods.
  An event at time t is counted when ``since <= t < until``.
- **Opened**: the issue's ``created`` time. Issues whose ``created`` is missing or invalid have
  no place in time and are left out (``Report.skipped``); issues created at or after ``until``
  do not exist yet.
- **Closed**: only an issue whose status is a closed status (schema) is closed, at its
  ``closed`` timestamp, or at ``updated`` when ``closed`` is missing (hand edits, imports). A
  reopened issue is open; earlier closings are not reconstructed. A close time before
  ``created`` counts as ``created``. An issue closed at or after ``until`` is still open.
- **Backlog** of a period: issues created before the period's end (or ``until``, for the
  period that holds it) and not closed before that moment, whenever they were opened.
- **Labels and types per period**: among the issues opened in the period, how many carry each
  label (an issue counts once per label) and are of each type; most common first, ties by name.
- **First response**: the earliest comment that is public (``visibility: public``) and whose
  author is neither the issue's customer nor its author, dated before ``until``. Two people
  are the same when their keys match: the address in ``<...>`` if there is one, else the
  whole text if it is a bare address, else the name; compared case-insensitively. Internal
  notes are never a response: the customer does not see them. Time to first response is
  that comment's date minus ``created`` (0 if earlier). It is counted in the period in which
  the response was made; time to close in the period in which the issue was closed.
- **Median and 90th percentile**: linear interpolation between closest ranks (Hyndman and
  Fan type 7: numpy's default, Excel's PERCENTILE.INC); for sorted values x[0..n-1] the p-th
  quantile is x[h] at h = (n - 1) * p, interpolated between neighbours; rounded to whole
  seconds. The median is the usual one (the mean of the two middle values when n is even).
  No values: None.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Schema
from .errors import InvalidDocument
from .issues.model import Issue
from .issues.sla import closed_at, first_response  # one definition of each, shared with the SLAs
from .issues.sla import person_key as person_key  # re-exported: part of this module's API
from .timeutil import UTC, iso, now

if TYPE_CHECKING:
    from .core.tracker import Tracker

PERIODS = ("month", "week")


@dataclass(frozen=True)
class Stats:
    """How long something took, over a sample of issues."""

    count: int
    median: dt.timedelta | None
    p90: dt.timedelta | None

    def to_json(self) -> dict[str, Any]:
        seconds = lambda d: None if d is None else int(d.total_seconds())  # noqa: E731
        return {"count": self.count, "median_seconds": seconds(self.median),
                "p90_seconds": seconds(self.p90)}


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.datetime
    end: dt.datetime  # exclusive; ``until`` for the period that holds it
    opened: int = 0
    closed: int = 0
    backlog: int = 0  # open at ``end``
    labels: dict[str, int] = field(default_factory=dict)  # most common first
    types: dict[str, int] = field(default_factory=dict)
    first_response: Stats = Stats(0, None, None)
    close: Stats = Stats(0, None, None)

    def to_json(self) -> dict[str, Any]:
        return {"period": self.label, "start": iso(self.start), "end": iso(self.end),
                "opened": self.opened, "closed": self.closed, "backlog": self.backlog,
                "labels": dict(self.labels), "types": dict(self.types),
                "first_response": self.first_response.to_json(), "close": self.close.to_json()}


@dataclass(frozen=True)
class Report:
    by: str
    since: dt.datetime | None  # None: no periods (no issue in time)
    until: dt.datetime
    periods: tuple[Period, ...]
    opened: int  # in the window
    closed: int
    open: int  # the backlog at ``until``
    unanswered: int  # open at ``until`` with no first response yet
    labels: dict[str, int]  # over the window, most common first
    types: dict[str, int]
    first_response: Stats
    close: Stats
    skipped: int = 0  # issues without a valid ``created`` time

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "since": iso(self.since), "until": iso(self.until),
                "opened": self.opened, "closed": self.closed, "open": self.open,
                "unanswered": self.unanswered, "skipped": self.skipped,
                "labels": dict(self.labels), "types": dict(self.types),
                "first_response": self.first_response.to_json(), "close": self.close.to_json(),
                "periods": [p.to_json() for p in self.periods]}


# -- definitions --------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-quantile (0 <= p <= 1) by linear interpolation between closest ranks (type 7)."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def stats(seconds: Sequence[float]) -> Stats:
    def round_(value: float | None) -> dt.timedelta | None:
        return None if value is None else dt.timedelta(seconds=round(value))

    return Stats(len(seconds), round_(percentile(seconds, 0.5)), round_(percentile(seconds, 0.9)))


def _has_time(issue: Issue) -> bool:
    return not any(p.field == "created" for p in issue.problems)


# -- periods --------------------------------------------------------------------------------

def period_start(moment: dt.datetime, by: str) -> dt.datetime:
    moment = moment.astimezone(UTC)
    if by == "month":
        return dt.datetime(moment.year, moment.month, 1, tzinfo=UTC)
    day = moment.date() - dt.timedelta(days=moment.weekday())
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _next_start(start: dt.datetime, by: str) -> dt.datetime:
    if by == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + dt.timedelta(days=7)


def _index(moment: dt.datetime, first: dt.datetime, by: str) -> int:
    """The number of the period holding ``moment``, counting ``first``'s period as 0."""
    moment = moment.astimezone(UTC)
    if by == "month":
        return (moment.year - first.year) * 12 + moment.month - first.month
    return (moment - first).days // 7


def period_label(start: dt.datetime, by: str) -> str:
    if by == "month":
        return f"{start.year:04d}-{start.month:02d}"
    year, week, _ = start.isocalendar()
    return f"{year:04d}-W{week:02d}"


# -- the report ------------------------------------------------------------------------------

def _ranked(counter: Counter) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def build_report(issues: Iterable[Issue], schema: Schema, by: str = "month",
                 since: dt.datetime | None = None, until: dt.datetime | None = None,
                 limit: int | None = None) -> Report:
    """Count ``issues`` (each with the ``comments`` that may be counted) per period."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {', '.join(PERIODS)}, not {by!r}")
    until = _utc(until or now() + dt.timedelta(seconds=1))
    since = _utc(since) if since else None
    issues = list(issues)
    timed = [i for i in issues if _has_time(i)]
    skipped = len(issues) - len(timed)
    known = [i for i in timed if i.created < until]
    if since is None and known:
        since = min(i.created for i in known)
    if since is None or since >= until:
        return _empty(by, until, known, schema, skipped)
    first = period_start(since, by)
    count = _index(until - dt.timedelta(microseconds=1), first, by) + 1
    if limit is not None and count > limit:
        for _ in range(count - limit):
            first = _next_start(first, by)
        count = limit
    starts = [first]
    for _ in range(count - 1):
        starts.append(_next_start(starts[-1], by))
    ends = [*starts[1:], until]

    opened = [0] * count
    closed = [0] * count
    labels = [Counter() for _ in range(count)]
    types = [Counter() for _ in range(count)]
    responses: list[list[float]] = [[] for _ in range(count)]
    closings: list[list[float]] = [[] for _ in range(count)]
    opened_before = closed_before = unanswered = 0
    for issue in known:
        done = closed_at(issue, schema)
        done = done if done is not None and done < until else None
        k = _index(issue.created, first, by)
        if k < 0:
            opened_before += 1
        else:
            opened[k] += 1
            labels[k].update(dict.fromkeys(issue.labels, 1))
            types[k][issue.type] += 1
        if done is not None:
            k = _index(done, first, by)
            if k < 0:
                closed_before += 1
            else:
                closed[k] += 1
                closings[k].append(max(0.0, (done - issue.created).total_seconds()))
        reply = first_response(issue)
        if reply is not None and reply.date < until:
            k = _index(reply.date, first, by)
            if k >= 0:
                responses[k].append(max(0.0, (reply.date - issue.created).total_seconds()))
        elif done is None:
            unanswered += 1
    periods = []
    backlog = opened_before - closed_before
    for k in range(count):
        backlog += opened[k] - closed[k]
        periods.append(Period(period_label(starts[k], by), starts[k], ends[k], opened[k],
                              closed[k], backlog, _ranked(labels[k]), _ranked(types[k]),
                              stats(responses[k]), stats(closings[k])))
    return Report(by, first, until, tuple(periods), sum(opened), sum(closed), backlog, unanswered,
                  _ranked(sum(labels, Counter())), _ranked(sum(types, Counter())),
                  stats([s for r in responses for s in r]), stats([s for c in closings for s in c]),
                  skipped)


def _utc(moment: dt.datetime) -> dt.datetime:
    """A time in UTC; a naive one is taken as UTC already, as everywhere in gitdesk."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _empty(by: str, until: dt.datetime, known: list[Issue], schema: Schema, skipped: int) -> Report:
    """No period to show (nothing in time, or ``since`` not before ``until``): totals only."""
    still_open = [i for i in known if (closed_at(i, schema) or until) >= until]
    unanswered = sum(1 for i in still_open
                     if (r := first_response(i)) is None or r.date >= until)
    return Report(by, None, until, (), 0, 0, len(still_open), unanswered, {}, {},
                  Stats(0, None, None), Stats(0, None, None), skipped)


def load_issues(tracker: "Tracker", public: bool) -> tuple[list[Issue], list[str]]:
    """The issues a report may count, each with its countable comments, and warnings.

    ``public``: public issues and their public comments only (what the public site shows);
    otherwise everything. An unreadable comment is left out (its visibility is unknown).
    """
    from .index.db import IndexUnavailable
    from .index.records import load

    try:  # from the index, brought up to date first: no file read once it is warm
        found = load(tracker, comments=True)
        issues, broken, kept = found.issues, found.errors, found.comment_errors
    except (IndexUnavailable, OSError):
        (issues, broken), kept = tracker.issues.load_all(), {}
    warnings = [f"{err} (left out of the report)" for err in broken]
    chosen = []
    for issue in issues:
        if public and not issue.is_public:
            continue
        if issue.id in kept:
            warnings += [f"{err} (comment left out of the report)" for err in kept[issue.id]]
            issue.comments = [c for c in issue.comments if c.is_public or not public]
            chosen.append(issue)
            continue
        comments = []
        for name in tracker.issues.comment_names(issue.id):
            try:
                comment = tracker.issues.load_comment(issue.id, name)
            except InvalidDocument as err:
                warnings.append(f"{err} (comment left out of the report)")
                continue
            if comment.is_public or not public:
                comments.append(comment)
        issue.comments = comments
        chosen.append(issue)
    return chosen, warnings
