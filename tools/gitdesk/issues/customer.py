"""What one customer may see and do: the interface a customer control panel is built on.

A ``CustomerDesk`` is the tracker seen through one customer's eyes, and it is scoped by
construction: every read starts from the tickets whose ``customer`` is that address, and
every view is built field by field from an allow-list (title, status, dates, the
description and the public comments), never by removing private parts from the full
issue. So an internal note, the assignee, labels, the cc list, another customer's ticket
or any staff address cannot reach a panel by an oversight. A ticket that exists but
belongs to someone else answers exactly as a ticket that does not exist, so a panel
cannot be used to probe for numbers.

Writes go through the same actions as the CLI and the mail gateway (one commit each,
authored by the customer, ``via: web``): the mail outbox tells staff, as for mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.repo import Identity
from ..errors import InvalidValue, NotFound
from ..timeutil import iso
from . import actions
from .model import Comment, Issue
from .store import parse_id

if TYPE_CHECKING:
    from ..core.tracker import Tracker

VIA = "web"


def _address(email: str) -> str:
    text = (email or "").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;\"" for c in text):
        raise InvalidValue(f"customer: {email!r} is not an email address")
    return text


def _display_name(who: str | None) -> str:
    """A name for the customer's eyes: 'Alice Admin <alice@x>' -> 'Alice Admin', never an address."""
    text = (who or "").strip()
    name = text.partition("<")[0].strip().strip('"').strip() if "<" in text else text
    if "@" in name:
        name = name.split("@")[0]
    return name or "staff"


class CustomerDesk:
    """The tickets of ``email``, and what its owner may do with them."""

    def __init__(self, tracker: "Tracker", email: str, name: str = ""):
        self.tracker = tracker
        self.email = _address(email)
        self.name = (name or "").strip().replace("\n", " ")[:100] or self.email.split("@")[0]

    # -- reading ---------------------------------------------------------------------
    def _owns(self, issue: Issue) -> bool:
        return (issue.customer or "").strip().lower() == self.email

    def _load(self, ref: str | int) -> Issue:
        issue_id = parse_id(ref)
        missing = NotFound(f"no ticket #{issue_id} for {self.email}")
        if not self.tracker.issues.exists(issue_id):
            raise missing
        issue = self.tracker.issues.load(issue_id, comments=True)
        if not self._owns(issue):
            raise missing
        return issue

    def tickets(self, include_closed: bool = True) -> list[dict[str, Any]]:
        """This customer's tickets, newest first, without comments."""
        schema = self.tracker.settings.schema
        issues, _unreadable = self.tracker.issues.load_all()  # an unreadable file is nobody's
        mine = [i for i in issues if self._owns(i)
                and (include_closed or not schema.is_closed(i.status))]
        mine.sort(key=lambda i: (i.created, i.id), reverse=True)
        return [self._summary(self.tracker.issues.load(i.id, comments=True)) for i in mine]

    def ticket(self, ref: str | int) -> dict[str, Any]:
        """One ticket with its description and public comments; NotFound if it is not theirs."""
        return self._view(self._load(ref))

    def export(self) -> dict[str, Any]:
        """Everything this customer may see, in one document."""
        return {"customer": self.email,
                "tickets": [self.ticket(t["id"]) for t in self.tickets()]}

    def attachment(self, ref: str | int, name: str) -> bytes:
        """The bytes of a file attached to the ticket's description or a public comment."""
        issue = self._load(ref)
        shown = set(issue.attachments).union(*(c.attachments for c in self._public_comments(issue)))
        if name not in shown:
            raise NotFound(f"no attachment {name!r} on ticket #{issue.id}")
        return (self.tracker.root / self.tracker.issues.files_dir(issue.id) / name).read_bytes()

    def _public_comments(self, issue: Issue) -> list[Comment]:
        return sorted((c for c in issue.comments if c.visibility == "public"), key=lambda c: c.date)

    def _summary(self, issue: Issue) -> dict[str, Any]:
        schema = self.tracker.settings.schema
        public = self._public_comments(issue)
        last = max([issue.created, *(c.date for c in public)]
                   + ([issue.closed] if issue.closed else []))
        return {
            "id": issue.id, "title": issue.title, "status": issue.status,
            "closed": schema.is_closed(issue.status), "type": issue.type,
            "priority": issue.priority, "created": iso(issue.created), "updated": iso(last),
            "closed_at": iso(issue.closed) if schema.is_closed(issue.status) else None,
            "resolution": issue.resolution if schema.is_closed(issue.status) else None,
            "replies": len(public),
        }

    def _view(self, issue: Issue) -> dict[str, Any]:
        data = self._summary(issue)
        data["body"] = issue.body
        data["attachments"] = list(issue.attachments)
        data["comments"] = [{
            "id": c.id, "author": _display_name(c.author),
            "from_customer": self._is_me(c.author), "date": iso(c.date), "body": c.body,
            "attachments": list(c.attachments),
        } for c in self._public_comments(issue)]
        return data

    def _is_me(self, who: str | None) -> bool:
        text = (who or "").lower()
        return f"<{self.email}>" in text or text.strip() == self.email

    # -- writing ---------------------------------------------------------------------
    def _identity(self) -> Identity:
        return Identity(self.name, self.email)

    def open(self, title: str, body: str, attachments: Sequence[tuple[str, bytes]] = ()) -> dict[str, Any]:
        """A new private ticket for this customer (type from mail.ticket_type); one commit."""
        if not (title or "").strip():
            raise InvalidValue("title: a ticket needs a title")
        issue = actions.new_issue(
            self.tracker, title.strip().replace("\n", " "), type=self.tracker.settings.mail.ticket_type,
            visibility="private", customer=self.email, body=body or "",
            attachments=attachments, author=self._identity(), via=VIA)
        return self.ticket(issue.id)

    def reply(self, ref: str | int, body: str, attachments: Sequence[tuple[str, bytes]] = ()) -> dict[str, Any]:
        """Add the customer's reply to their ticket; a waiting or closed ticket moves as mail
        would move it (``mail.reopen``). One commit."""
        if not (body or "").strip() and not attachments:
            raise InvalidValue("body: a reply needs text or an attachment")
        with self.tracker.change(author=self._identity()) as change:
            issue = self._load(ref)
            moves = self.tracker.settings.mail.reopen
            changes: list[str] = []
            if issue.status in moves:
                fields = [("status", "=", moves[issue.status])]
                if self.tracker.settings.schema.is_closed(issue.status):
                    fields.append(("resolution", "=", ""))
                issue, changes = actions.update_issue(change, issue, fields, via=VIA)
            actions.append_comment(change, issue, body or "", visibility="public", via=VIA,
                                   attachments=attachments, author=f"{self.name} <{self.email}>")
            change.message = "; ".join([f"#{issue.id} comment by {self.name} (web)", *changes])
        return self.ticket(issue.id)
