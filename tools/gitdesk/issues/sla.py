"""SLA clocks: time to first response and to resolution, against the targets of gitdesk.yml.

Definitions (the manual's "The queue and SLAs" explains them with examples):

- Both clocks count from ``created``, in SLA time (``hours.counted``: every second, or only
  business hours when ``sla.hours`` is set).
- **First response**: the earliest comment that is public and whose author is neither the
  issue's customer nor its author (``first_response``; the reports count the same thing).
  The response clock stops there. It is not paused by a waiting status: a customer who
  has not heard from us is not something we wait on.
- **Resolve**: stops when the issue enters a closed status. It is paused while the issue is
  in a waiting status (``queue.waiting_statuses``) and while it is closed (a reopened issue
  goes on from where it stopped). The actions keep the pause in the issue's frontmatter:
  ``waiting_since`` (the pause that is running) and ``paused_seconds`` (earlier pauses), so
  no history is read. A hand edit into a waiting status without ``waiting_since`` is taken
  as paused since ``updated``; a ``waiting_since`` left on a status that does not wait
  ends at ``updated``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..queueconfig import format_duration
from ..timeutil import iso
from .hours import counted, shift
from .model import Comment, Issue

if TYPE_CHECKING:
    from ..config import Schema, Settings
    from ..queueconfig import BusinessHours

RESPONSE, RESOLVE = "response", "resolve"
RUNNING, PAUSED, MET, MISSED = "running", "paused", "met", "missed"


# -- who answered, and when it was closed (shared with gitdesk.reports) -------------------

_ANGLE_RE = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>")


def person_key(who: str | None) -> str:
    """Who someone is: the address in <...>, else a bare address, else the name; lower case."""
    text = (who or "").strip()
    match = _ANGLE_RE.search(text)
    if match:
        return match.group(1).lower()
    return text.strip('"').strip().lower()


def is_response(issue: Issue, comment: Comment) -> bool:
    """A public comment by someone other than the customer and the author."""
    askers = {person_key(w) for w in (issue.customer, issue.author) if w and person_key(w)}
    return comment.is_public and bool(person_key(comment.author)) and person_key(comment.author) not in askers


def first_response(issue: Issue, comments: Iterable[Comment] | None = None) -> Comment | None:
    """The earliest response among ``comments`` (default: the issue's loaded comments)."""
    replies = [c for c in (issue.comments if comments is None else comments) if is_response(issue, c)]
    return min(replies, key=lambda c: c.date, default=None)


def closed_at(issue: Issue, schema: "Schema") -> dt.datetime | None:
    """When a closed issue was closed (``closed``, else ``updated``); None for an open one."""
    if not schema.is_closed(issue.status):
        return None
    return max(issue.closed or issue.updated, issue.created)


# -- clocks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clock:
    kind: str                # response or resolve
    target: int              # seconds of SLA time
    elapsed: int             # SLA time used so far, or until the clock stopped
    state: str               # running, paused, met or missed
    due: dt.datetime | None  # a running clock: when it reaches its target (past when overdue)

    @property
    def left(self) -> int:
        return self.target - self.elapsed

    @property
    def breached(self) -> bool:
        return self.elapsed > self.target

    def describe(self) -> str:
        late = format_duration(-self.left)
        if self.state == RUNNING:
            return f"{self.kind} overdue by {late}" if self.breached else (
                f"{self.kind} due in {format_duration(self.left)}" if self.left else f"{self.kind} due now")
        if self.state == PAUSED:
            return (f"{self.kind} paused, overdue by {late}" if self.breached
                    else f"{self.kind} paused, {format_duration(self.left)} left")
        done = "responded" if self.kind == RESPONSE else "resolved"
        return f"{done} {late} late" if self.breached else f"{done} in {format_duration(self.elapsed)}"

    def to_json(self) -> dict[str, Any]:
        return {"target_seconds": self.target, "elapsed_seconds": self.elapsed,
                "left_seconds": self.left, "state": self.state, "breached": self.breached,
                "due": iso(self.due), "text": self.describe()}


@dataclass(frozen=True)
class Sla:
    """The clocks of one issue (response first)."""

    clocks: tuple[Clock, ...]

    @property
    def due(self) -> dt.datetime | None:
        """The earliest time a running clock reaches its target: the queue's SLA order."""
        return min((c.due for c in self.clocks if c.due is not None), default=None)

    @property
    def breached(self) -> bool:
        return any(c.breached for c in self.clocks)

    def describe(self) -> str:
        return " · ".join(c.describe() for c in self.clocks)

    def headline(self) -> str:
        """The one clock to show in a table: the most pressing live one, else the first."""
        live = [c for c in self.clocks if c.state in (RUNNING, PAUSED)]
        return min(live, key=lambda c: (c.state != RUNNING, c.left), default=self.clocks[0]).describe()

    def to_json(self) -> dict[str, Any]:
        return {"due": iso(self.due), "breached": self.breached,
                **{c.kind: c.to_json() for c in self.clocks}}


def paused_total(issue: Issue, settings: "Settings", stop: dt.datetime) -> int:
    """SLA time the resolve clock was paused before ``stop`` (see the module's definitions)."""
    total = issue.paused_seconds
    if issue.waiting_since is not None and issue.status not in settings.queue.waiting_statuses:
        total += counted(settings.sla.hours, issue.waiting_since, min(stop, issue.updated))
    return total


def clocks(issue: Issue, settings: "Settings", now: dt.datetime,
           responded: dt.datetime | None) -> Sla | None:
    """The issue's SLA clocks at ``now``; ``responded``: the first response's date, if any.
    None when no target applies to its type and priority."""
    targets = settings.sla.targets_for(issue.type, issue.priority)
    if targets is None:
        return None
    hours = settings.sla.hours
    done = closed_at(issue, settings.schema)
    found = []
    if targets.response and (responded is not None or done is None):  # closed unanswered: none
        elapsed = counted(hours, issue.created, responded or now)
        found.append(_clock(RESPONSE, targets.response, elapsed, RUNNING if responded is None else None,
                            hours, now))
    if targets.resolve:
        waiting = done is None and issue.status in settings.queue.waiting_statuses
        stop = done or (issue.waiting_since or issue.updated if waiting else now)
        elapsed = max(0, counted(hours, issue.created, stop) - paused_total(issue, settings, stop))
        state = None if done else PAUSED if waiting else RUNNING
        found.append(_clock(RESOLVE, targets.resolve, elapsed, state, hours, now))
    return Sla(tuple(found)) if found else None


def _clock(kind: str, target: int, elapsed: int, state: str | None, hours: "BusinessHours | None",
           now: dt.datetime) -> Clock:
    """A live clock (running or paused), or one that stopped (state None: met or missed)."""
    if state == RUNNING:
        return Clock(kind, target, elapsed, RUNNING, shift(hours, now, target - elapsed))
    if state == PAUSED:
        return Clock(kind, target, elapsed, PAUSED, None)
    return Clock(kind, target, elapsed, MISSED if elapsed > target else MET, None)


# -- keeping the pause in the frontmatter ------------------------------------------------------

def stamp_pause(settings: "Settings", before: Issue, after: Issue, moment: dt.datetime) -> None:
    """Keep ``after``'s pause fields right for a status change made at ``moment``.

    Leaving a pause (a waiting status, or a closed one) adds its length to
    ``paused_seconds``; entering a waiting status sets ``waiting_since``. A closed issue's
    pause starts at its ``closed`` time, which the actions already keep.
    """
    def kind(status: str) -> str:
        return "wait" if status in waiting else "closed" if settings.schema.is_closed(status) else "run"

    waiting, hours = settings.queue.waiting_statuses, settings.sla.hours
    old, new = kind(before.status), kind(after.status)
    if before.status == after.status or old == new == "closed":
        return
    if old == new == "wait":
        after.waiting_since = before.waiting_since or before.updated
        return
    paused = before.paused_seconds
    if old == "wait":
        paused += counted(hours, before.waiting_since or before.updated, moment)
    elif old == "closed":
        paused += counted(hours, closed_at(before, settings.schema) or moment, moment)
    elif before.waiting_since is not None:  # left by a hand edit: that pause ended at `updated`
        paused += counted(hours, before.waiting_since, min(moment, before.updated))
    after.paused_seconds = paused
    after.waiting_since = moment if new == "wait" else None
