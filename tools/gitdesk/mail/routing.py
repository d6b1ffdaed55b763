"""Which ticket a message belongs to, in a fixed order of trust; otherwise a new ticket.

1. a signed reply address issued to this very sender for that ticket, if the sender still
   takes part in it (a signature never expires, but a removed cc or a former customer
   no longer belongs to the ticket);
2. one of our Message-IDs, issued to this sender, in In-Reply-To or References, with the
   same condition;
3. an earlier message of the ticket in In-Reply-To or References, if the sender takes part;
4. a subject tag ``[#42]``, if the sender takes part in #42 (customer, cc, assignee, staff);
5. else a new ticket. Nothing in a message can change a field: no header or subject
   syntax sets visibility, customer, assignee or anything else.

Only 1 and 2 prove who sent the message (``Route.signed``): a From line is easy to forge,
so the gateway trusts staff mail as staff only when it came that way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import GitdeskError
from .inbound import Inbound
from .signing import NOTE, Signer

if TYPE_CHECKING:
    from ..core.tracker import Tracker
    from ..issues.model import Issue
    from .seen import SeenIndex

_TAG_RE = re.compile(r"\[#([1-9][0-9]{0,11})\]")


@dataclass(frozen=True)
class Route:
    issue: int | None          # the ticket to add to; None opens a new one
    how: str                   # reply address, message id, thread, subject tag, new
    internal: bool = False     # a staff member wrote to the note address
    note: str = ""             # what staff should know about how it was routed
    signed: bool = False       # routed by a token or Message-ID signed for this very sender


def participants(tracker: "Tracker", issue: "Issue") -> set[str]:
    people = {issue.customer or "", issue.assignee or "", *issue.cc}
    people |= {m.email for m in tracker.settings.staff}
    return {p.lower() for p in people if "@" in p}


def route(tracker: "Tracker", msg: Inbound, signer: Signer, seen: "SeenIndex",
          recipients: list[str]) -> Route:
    sender = msg.sender.email.lower() if msg.sender else ""
    notes: list[str] = []

    def load(issue_id: int) -> "Issue | None":
        try:
            return tracker.issues.load(issue_id)
        except GitdeskError:
            return None

    for address in recipients:
        token = signer.parse_reply_address(address)
        if token is None or load(token.issue) is None:
            continue
        if signer.verify_reply(token, sender):
            issue = load(token.issue)
            if issue is not None and sender in participants(tracker, issue):
                staff = tracker.settings.find_staff(sender) is not None
                return Route(token.issue, "reply address", internal=token.kind == NOTE and staff,
                             signed=True)
            notes.append(f"it was sent to a reply address of #{token.issue} issued to this "
                         f"sender, who no longer takes part in #{token.issue}")
            continue
        notes.append(f"it was sent to the reply address of #{token.issue}, which was not issued "
                     f"to this sender")
    for message_id in msg.thread_ids:
        issue_id = signer.issue_of_message_id(message_id, sender)
        issue = load(issue_id) if issue_id else None
        if issue is not None and sender in participants(tracker, issue):
            return Route(issue.id, "message id", signed=True)
        if issue is not None:
            notes.append(f"it answers our mail about #{issue.id} sent to this sender, who no "
                         f"longer takes part in #{issue.id}")
            continue
        named = signer.named_issue(message_id)
        if named and load(named) is not None:
            notes.append(f"it answers our mail about #{named}, which was not sent to this sender")
    for message_id in msg.thread_ids:
        issue_id = seen.find(message_id)
        issue = load(issue_id) if issue_id else None
        if issue is not None and sender in participants(tracker, issue):
            return Route(issue.id, "thread")
        if issue is not None:
            notes.append(f"it answers a message of #{issue.id}, but the sender takes no part "
                         f"in #{issue.id}")
    for match in _TAG_RE.finditer(msg.subject):
        issue = load(int(match.group(1)))
        if issue is None:
            continue
        if sender in participants(tracker, issue):
            return Route(issue.id, "subject tag")
        notes.append(f"its subject names #{issue.id}, but the sender takes no part in #{issue.id}")
    return Route(None, "new", note="; ".join(list(dict.fromkeys(notes))[:5]))


def recipients_of(msg: Inbound, envelope: list[str] | None) -> list[str]:
    """Where the message was sent: the envelope first, then what the headers say."""
    found = [r.lower() for r in envelope or []]
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        value = msg.header(name).strip().strip("<>").lower()
        if value:
            found.append(value)
    found += [a.email.lower() for a in (*msg.to, *msg.cc)]
    return list(dict.fromkeys(found))
