"""Who hears about a change, and what: the rules that turn issue events into notices.

- A public reply or a status change by staff mails the customer and the cc list.
- An internal note mails no customer, ever.
- A new ticket or a customer's reply mails the staff (``mail.notify_staff``).
- The first mail of a new sender is acknowledged with the ticket number, at most once per
  sender a day, without repeating their text (so the desk cannot be used to relay spam).
- Nobody is mailed about what they did themselves; our own addresses are never mailed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..issues.events import COMMENT, NEW, UPDATE, IssueEvent
from ..issues.model import Comment, Issue
from ..timeutil import iso, now, parse_time

if TYPE_CHECKING:
    from ..core.tracker import Tracker

ACKS_FILE = "mail-acks.json"

CUSTOMER_CHANNELS = ("email", "web")  # how customers open tickets: mail, the control panel

ACK, NEW_TICKET, REPLY, UPDATED, CUSTOMER_REPLY, ASSIGNED = (
    "ack", "new", "reply", "update", "customer-reply", "assigned")


@dataclass(frozen=True)
class Notice:
    kind: str
    issue: Issue
    recipient: str                 # an email address
    actor: str                     # 'Name <email>' of who did it
    comment: Comment | None = None
    changes: tuple[str, ...] = ()
    staff: bool = False            # the recipient works the desk


def _email(who: str | None) -> str:
    text = (who or "").strip()
    if "<" in text and text.endswith(">"):
        text = text.rsplit("<", 1)[1][:-1]
    return text.strip().lower()


def notices(tracker: "Tracker", events: Iterable[IssueEvent], acks: "AckLog") -> list[Notice]:
    """The notices one change calls for, one per recipient and ticket."""
    mail = tracker.settings.mail
    staff = {_email(m.email) for m in tracker.settings.staff}
    ours = {mail.address.lower(), *mail.aliases}
    by_issue: dict[int, list[IssueEvent]] = {}
    for event in events:
        if event.notify:
            by_issue.setdefault(event.issue.id, []).append(event)
    out: list[Notice] = []
    for group in by_issue.values():
        out += _for_issue(tracker, group, staff, acks)
    if not out:
        return out
    from .inbound import ADDRESS_RE  # here: the email package costs 25 ms of imports

    seen: set[tuple[int, str]] = set()
    unique = []
    for notice in out:  # one mail per person and ticket, the first reason wins
        key = (notice.issue.id, notice.recipient)
        # fullmatch: ADDRESS_RE ends in '$', which also matches before a final newline
        if key not in seen and notice.recipient not in ours and ADDRESS_RE.fullmatch(notice.recipient):
            seen.add(key)
            unique.append(notice)
    return unique


def _for_issue(tracker: "Tracker", group: list[IssueEvent], staff: set[str], acks: "AckLog") -> list[Notice]:
    mail = tracker.settings.mail
    issue = group[-1].issue
    actor = group[-1].actor
    me = _email(actor)
    customer = _email(issue.customer)
    by_customer = bool(customer) and me == customer or (me not in staff and group[0].via == "email")
    outside = [a for a in map(_email, [issue.customer, *issue.cc]) if a and a != me]
    staff_to = _staff_recipients(tracker, issue, staff, me)
    comment = next((e.comment for e in group if e.kind == COMMENT and e.comment
                    and e.comment.is_public), None)
    changes = tuple(c for e in group if e.kind == UPDATE for c in e.changes)
    status_changes = tuple(c for c in changes if c.startswith("status:"))
    found: list[Notice] = []

    def tell(kind: str, people: Iterable[str], is_staff: bool = False, what: tuple[str, ...] = ()) -> None:
        found.extend(Notice(kind, issue, p, actor, comment, what, is_staff) for p in people)

    if any(e.kind == NEW for e in group):
        if group[0].via in CUSTOMER_CHANNELS:  # a customer opened it: staff hear of it
            if group[0].via == "email" and mail.acknowledge and customer and customer == me \
                    and acks.allow(customer):
                tell(ACK, [customer])
            tell(NEW_TICKET, staff_to, True)
        else:
            tell(NEW_TICKET, outside)
            assignee = _email(issue.assignee)  # opened and assigned at once: tell the assignee
            if assignee and assignee != me and assignee in staff:
                tell(ASSIGNED, [assignee], True)
        return found
    if by_customer:
        if comment is not None:
            tell(CUSTOMER_REPLY, staff_to, True, changes)
            tell(REPLY, [a for a in outside if a not in staff], what=status_changes)
        else:  # a customer's mail kept as an internal note (on a public issue): staff only
            note = next((e.comment for e in group if e.kind == COMMENT and e.comment), None)
            if note is not None:
                found.extend(Notice(CUSTOMER_REPLY, issue, p, actor, note, changes, True)
                             for p in staff_to)
        return found
    if comment is not None:
        tell(REPLY, outside, what=status_changes)
    elif status_changes:
        tell(UPDATED, outside, what=status_changes)
    for event in group:
        if event.kind == UPDATE and event.before and event.issue.assignee != event.before.assignee:
            new = _email(event.issue.assignee)
            if new and new != me and new in staff:
                tell(ASSIGNED, [new], True, changes)
    return found


def _staff_recipients(tracker: "Tracker", issue: Issue, staff: set[str], me: str) -> list[str]:
    rule = tracker.settings.mail.notify_staff
    if rule == "none":
        return []
    assignee = _email(issue.assignee)
    if rule == "assignee" and assignee in staff:
        people = [assignee]
    else:
        people = sorted(staff)
    return [p for p in people if p != me]


class AckLog:
    """When each sender was last acknowledged: ``.gitdesk/mail-acks.json``."""

    def __init__(self, local_dir: Path):
        self.path = Path(local_dir) / ACKS_FILE
        try:
            self.sent: dict[str, str] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.sent = {}
        self.granted: list[str] = []

    def allow(self, address: str) -> bool:
        last = self.sent.get(address)
        moment = now()
        try:
            recent = last is not None and moment - parse_time(last) < dt.timedelta(days=1)
        except ValueError:
            recent = False
        if recent or address in self.granted:
            return False
        self.granted.append(address)
        return True

    def save(self) -> None:
        if not self.granted:
            return
        stamp = iso(now()) or ""
        cutoff = now() - dt.timedelta(days=2)
        kept = {a: t for a, t in self.sent.items() if _parses_after(t, cutoff)}
        kept.update({a: stamp for a in self.granted})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept, indent=1), encoding="utf-8")
        tmp.replace(self.path)


def _parses_after(text: str, cutoff: dt.datetime) -> bool:
    try:
        return parse_time(text) > cutoff
    except ValueError:
        return False
