"""The parts of ``gitdesk report`` beyond the period counts: SLA breaches and work per person.

Pure domain code, like ``reports``: issues with the comments that may be counted in, plain
numbers out. Definitions (all times UTC, ``since <= t < until`` as in ``reports``):

- **SLA breaches** of a period: among the issues *opened* in it, how many missed the
  response target and how many missed the resolve target, with the clocks read at
  ``until`` (``issues.sla.clocks``: a waiting status pauses the resolve clock). An issue
  still running past its target at ``until`` counts as a breach; one that may still make
  it does not. Issues whose type and priority have no target are not counted at all.
- **Work per person**, for each staff member (and anyone else who is assigned or who
  answered): ``open`` issues assigned to them at ``until``; ``closed``: issues assigned to
  them that were closed in the window (the assignee at the time of the report gets the
  credit: earlier assignees are not reconstructed); ``replies``: public comments they wrote
  in the window on issues where they are not the customer; ``first_responses``: of those,
  the ones that were an issue's first response.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .issues.sla import RESOLVE, RESPONSE, clocks, closed_at, first_response, person_key

if TYPE_CHECKING:
    from .config import Settings
    from .issues.model import Issue
    from .reports import Period


@dataclass(frozen=True)
class Breaches:
    period: str
    counted: int = 0     # issues opened in the period that have an SLA
    response: int = 0    # of those, how many missed the response target
    resolve: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Work:
    who: str
    open: int = 0
    closed: int = 0
    replies: int = 0
    first_responses: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sla_breaches(issues: Iterable["Issue"], settings: "Settings", periods: Sequence["Period"],
                 until: dt.datetime) -> list[Breaches]:
    """SLA breaches per period (see the module's definition)."""
    found = {p.label: [0, 0, 0] for p in periods}
    for issue in issues:
        period = next((p for p in periods if p.start <= issue.created < p.end), None)
        if period is None:
            continue
        answer = first_response(issue)
        responded = answer.date if answer is not None and answer.date < until else None
        sla = clocks(issue, settings, until, responded)
        if sla is None:
            continue
        row = found[period.label]
        row[0] += 1
        missed = {c.kind for c in sla.clocks if c.breached}
        row[1] += RESPONSE in missed
        row[2] += RESOLVE in missed
    return [Breaches(label, *row) for label, row in found.items()]


def work_by_person(issues: Iterable["Issue"], settings: "Settings", since: dt.datetime | None,
                   until: dt.datetime) -> list[Work]:
    """Work per person in ``since <= t < until``, busiest first (see the module's definition)."""
    schema = settings.schema
    names = {m.email.lower(): m.email for m in settings.staff}
    rows: dict[str, list[int]] = {key: [0, 0, 0, 0] for key in names}

    def row(who: str | None) -> list[int] | None:
        key = person_key(who)
        if not key:
            return None
        names.setdefault(key, key)
        return rows.setdefault(key, [0, 0, 0, 0])

    def inside(moment: dt.datetime) -> bool:
        return (since is None or since <= moment) and moment < until

    for issue in issues:
        done = closed_at(issue, schema)
        assigned = row(issue.assignee) if issue.assignee else None
        if assigned is not None and issue.created < until:
            if done is None or done >= until:
                assigned[0] += 1
            elif inside(done):
                assigned[1] += 1
        first = first_response(issue)
        customer = person_key(issue.customer)
        for comment in issue.comments:
            if not comment.is_public or not inside(comment.date) or person_key(comment.author) == customer:
                continue
            if person_key(comment.author) not in rows and person_key(comment.author) == person_key(issue.author):
                continue  # the reporter adding to their own issue is not work on the desk
            counts = row(comment.author)
            if counts is not None:
                counts[2] += 1
                counts[3] += comment is first
    work = [Work(names[key], *counts) for key, counts in rows.items()]
    return sorted(work, key=lambda w: (-(w.closed + w.replies), -w.open, w.who))
