"""The mail gateway: one received message becomes a ticket, a comment, a note, or a
quarantined file with the reason. Every way mail arrives (pipe, mbox, Maildir, SMTP)
ends here, and every write goes through the same issue actions as the CLI.

A bridge in git-bug's sense: the sender is the commit's author and the Date header the
comment's date, the Message-ID is recorded as the source id, and a second delivery of the
same message changes nothing. The gateway commits as itself.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.tracker import Identity, Tracker
from ..errors import GitdeskError, LockTimeout
from ..issues import actions
from ..timeutil import iso, now
from . import quarantine
from .classify import classify
from .inbound import DeliveryFailure, Inbound, Refused, parse_message
from .quoting import reply_part
from .routing import Route, recipients_of, route
from .seen import SeenIndex
from .signing import Signer, load_secret

if TYPE_CHECKING:
    from ..issues.model import Issue

ORIGINALS = "mail"  # issues/<id>/mail/<comment id>.eml: the message as received, never published


@dataclass(frozen=True)
class Envelope:
    """What the SMTP conversation (or the MTA) said, beyond the message itself."""

    mail_from: str | None = None
    recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    action: str               # new, comment, note, bounce, duplicate, quarantined
    issue: int | None = None
    detail: str = ""
    message_id: str = ""

    def __str__(self) -> str:
        where = f"#{self.issue} " if self.issue else ""
        return f"{where}{self.action}" + (f": {self.detail}" if self.detail else "")

    def to_json(self) -> dict:
        return dict(self.__dict__)


class Gateway:
    def __init__(self, tracker: Tracker, *, allow_lists: bool = False, notify: bool = True):
        self.tracker = tracker
        self.mail = tracker.settings.mail
        self.signer = Signer(load_secret(tracker.local_dir), self.mail.address)
        self.seen = SeenIndex(tracker)
        self.ours = {self.mail.address.lower(), *self.mail.aliases}
        self.committer = Identity(f"{tracker.settings.name} mail gateway", self.mail.address)
        self.allow_lists = allow_lists
        self.notify = notify

    def close(self) -> None:
        self.seen.close()

    def _is_ours(self, address: str) -> bool:
        """One of the desk's addresses, or a +form of one (support+42.token@...)."""
        local, _, domain = address.lower().rpartition("@")
        return address.lower() in self.ours or f"{local.split('+', 1)[0]}@{domain}" in self.ours

    # -- the one entry point ------------------------------------------------------------------
    def ingest(self, raw: bytes, envelope: Envelope | None = None) -> Outcome:
        """Store one message; only a busy tracker (LockTimeout) is raised, for a retry."""
        envelope = envelope or Envelope()
        try:
            msg = parse_message(raw, self.mail.max_bytes)
        except Refused as err:
            return self._hold(raw, str(err))
        except RecursionError:
            return self._hold(raw, "MIME parts nested too deeply")
        except Exception as err:  # noqa: BLE001 - a bug of ours must not lose the mail
            print(traceback.format_exc(), file=sys.stderr)
            return self._hold(raw, f"internal error reading the message: {type(err).__name__}: {err}")
        try:
            return self._ingest(msg, envelope)
        except LockTimeout:
            raise
        except GitdeskError as err:
            return self._hold(raw, f"refused: {err}", msg)
        except Exception as err:  # noqa: BLE001 - a bug of ours must not lose the mail
            print(traceback.format_exc(), file=sys.stderr)
            return self._hold(raw, f"internal error: {type(err).__name__}: {err}", msg)

    def _hold(self, raw: bytes, reason: str, msg: Inbound | None = None) -> Outcome:
        sender = str(msg.sender) if msg and msg.sender else ""
        try:
            held = quarantine.hold(self.tracker.local_dir, raw, reason, sender, msg.subject if msg else "")
        except OSError:
            raise
        except Exception as err:  # noqa: BLE001 - odd text in the record: keep the mail, plainly
            held = quarantine.hold(self.tracker.local_dir, raw,
                                   f"{reason!a} (record: {type(err).__name__})")
        return Outcome("quarantined", None, f"{held.reason} ({held.name})",
                       msg.message_id if msg else "")

    def _ingest(self, msg: Inbound, envelope: Envelope) -> Outcome:
        kind = classify(msg, self.ours, envelope.mail_from, self.allow_lists)
        if kind.loop:
            return self._hold(msg.raw, kind.reason, msg)
        if kind.bounce:
            return self._bounce(msg)
        if msg.sender is None:
            if msg.sender_problem:
                return self._hold(msg.raw, f"ambiguous From: {msg.sender_problem}", msg)
            return self._hold(msg.raw, "no usable From address", msg)
        if self._is_ours(msg.sender.email):
            return self._hold(msg.raw, f"sent From our own address ({msg.sender.email})", msg)
        author = Identity(msg.sender.name or msg.sender.email.split("@")[0], msg.sender.email)
        with self.tracker.change(author=author, committer=self.committer) as change:
            self.seen.refresh()
            known = self.seen.find(msg.message_id)
            if known:
                return Outcome("duplicate", known, "already stored", msg.message_id)
            head = self.tracker.head()
            where = route(self.tracker, msg, self.signer, self.seen,
                          recipients_of(msg, envelope.recipients))
            if kind.automatic:
                if where.issue is None:
                    return self._hold(msg.raw, f"automatic mail, no ticket opened: {kind.reason}", msg)
                outcome, rel = self._note(change, msg, where, kind.reason)
            elif where.issue is None:
                outcome, rel = self._open(change, msg, where)
            else:
                outcome, rel = self._comment(change, msg, where)
        self.seen.add(msg.message_id, rel, outcome.issue or 0, head)
        return outcome

    # -- what a message becomes ------------------------------------------------------------
    def _date(self, msg: Inbound, issue: "Issue | None" = None) -> dt.datetime:
        """The Date header, unless it is absurd (before 1990, or hours in the future); a
        comment's date is never before its ticket was created (the header stays as it came,
        in the kept original)."""
        received = now()
        moment = received
        if msg.date and dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc) < msg.date \
                < received + dt.timedelta(hours=2):
            moment = msg.date
        created = getattr(issue, "created", None)
        if isinstance(created, dt.datetime):
            if created.tzinfo is None:
                created = created.replace(tzinfo=dt.timezone.utc)
            moment = max(moment, created)
        return moment

    def _keep_original(self, change, issue_id: int, stem: str, msg: Inbound) -> None:
        change.write(f"issues/{issue_id}/{ORIGINALS}/{stem}.eml", msg.raw)

    def _attachments(self, msg: Inbound) -> list[tuple[str, bytes]]:
        return [(a.name, a.data) for a in msg.attachments]

    def _open(self, change, msg: Inbound, where: Route) -> tuple[Outcome, str]:
        sender = msg.sender.email  # type: ignore[union-attr]
        cc: list[str] = []
        if self.mail.cc_from_headers:
            staff = {m.email.lower() for m in self.tracker.settings.staff}
            cc = [a.email for a in (*msg.to, *msg.cc) if a.email.lower() not in self.ours | staff
                  and a.email.lower() != sender.lower() and "+" not in a.email.split("@")[0]]
        draft = actions.draft_issue(
            self.tracker, msg.subject or "(no subject)", type=self.mail.ticket_type,
            visibility="private", customer=sender, cc=cc[:20], body=msg.text or "(no text)",
            created=self._date(msg), extra={"message_id": msg.message_id})
        issue = actions.open_issue(change, draft, self._attachments(msg), via="email")
        self._keep_original(change, issue.id, "issue", msg)
        if where.note:
            actions.append_comment(change, issue, f"Opened as a new ticket because {where.note}.",
                                   visibility="internal", via="email", author=str(self.committer),
                                   notify=False)
        change.message = f"#{issue.id} new: {issue.title}\n\nBy email from {sender}."
        return Outcome("new", issue.id, f"from {sender}", msg.message_id), issue.path

    def _why_internal(self, issue: "Issue", member, where: Route) -> str:
        """Why a message that would be a public comment is kept as an internal note ('' if not)."""
        if member is not None and not where.signed:
            return (f"mail From the staff address {member.email} that did not come through "
                    f"{member.name}'s own signed reply address (routed by {where.how}); a From "
                    f"line is easy to forge, so it is not published or mailed to anyone outside")
        if member is None and issue.visibility == "public" \
                and self.mail.public_issue_replies == "internal":
            return (f"#{issue.id} is a public issue and mail.public_issue_replies is internal; "
                    f"publish it with a public comment if it should be public")
        return ""

    def _comment(self, change, msg: Inbound, where: Route) -> tuple[Outcome, str]:
        issue = self.tracker.issues.load(where.issue)  # type: ignore[arg-type]
        sender = msg.sender.email  # type: ignore[union-attr]
        member = self.tracker.settings.find_staff(sender)
        why = self._why_internal(issue, member, where)
        internal = bool(why) or where.internal or (member is not None and self.mail.staff_replies == "internal")
        proven = member is not None and where.signed
        author = f"{member.name} <{member.email}>" if proven else str(msg.sender)
        changes: list[str] = []
        if member is None and issue.status in self.mail.reopen:
            target = self.mail.reopen[issue.status]
            closing = self.tracker.settings.schema.is_closed(issue.status)
            fields = [("status", "=", target)] + ([("resolution", "=", "")] if closing else [])
            issue, changes = actions.update_issue(change, issue, fields, via="email")
        text = reply_part(msg.text) if msg.text else "(no text)"
        if why:
            text = f"(Kept as an internal note: {why}.)\n\n{text}"
        comment = actions.append_comment(
            change, issue, text,
            visibility="internal" if internal else "public", via="email",
            attachments=self._attachments(msg), date=self._date(msg, issue), author=author,
            message_id=msg.message_id, in_reply_to=(msg.in_reply_to or [None])[0])
        self._keep_original(change, issue.id, comment.id, msg)
        kind = "internal note" if internal else "comment"
        change.message = "; ".join([f"#{issue.id} {kind} by {msg.sender.name or sender} (email)",  # type: ignore[union-attr]
                                    *changes]) + f"\n\nRouted by {where.how}." \
            + (f"\nKept as an internal note: {why}." if why else "")
        path = self.tracker.issues.comment_path(issue.id, comment.id)
        return Outcome("comment", issue.id, f"{kind} from {sender} ({where.how})", msg.message_id), path

    def _note(self, change, msg: Inbound, where: Route, reason: str) -> tuple[Outcome, str]:
        """Automatic mail about a ticket (an out-of-office reply): an internal note that
        reopens nothing and mails nobody."""
        issue = self.tracker.issues.load(where.issue)  # type: ignore[arg-type]
        body = f"Automatic mail ({reason}):\n\n{reply_part(msg.text) if msg.text else '(no text)'}"
        comment = actions.append_comment(
            change, issue, body, visibility="internal", via="email", date=self._date(msg, issue),
            author=str(msg.sender), message_id=msg.message_id, notify=False)
        self._keep_original(change, issue.id, comment.id, msg)
        change.message = f"#{issue.id} automatic mail from {msg.sender.email}"  # type: ignore[union-attr]
        return (Outcome("note", issue.id, reason, msg.message_id),
                self.tracker.issues.comment_path(issue.id, comment.id))

    def _bounce(self, msg: Inbound) -> Outcome:
        """A delivery report: an internal note on the ticket whose mail failed, and a record
        against the address (``gitdesk mail status``); never a new ticket."""
        placed: dict[int, list[DeliveryFailure]] = {}
        for failure in msg.failures:
            for message_id in msg.returned_ids:
                issue_id = self.signer.issue_of_message_id(message_id, failure.recipient)
                if issue_id and self.tracker.issues.exists(issue_id):
                    placed.setdefault(issue_id, []).append(failure)
                    break
        if not placed:
            return self._hold(msg.raw, "delivery report for mail we cannot place", msg)
        lines = {issue_id: [f"- {f.recipient}: {f.status} {f.diagnostic}".rstrip() for f in failures]
                 for issue_id, failures in placed.items()}
        with self.tracker.change(author=self.committer, committer=self.committer) as change:
            self.seen.refresh()
            if self.seen.find(msg.message_id):  # counted when it was stored: not again
                return Outcome("duplicate", next(iter(placed)), "already stored", msg.message_id)
            head = self.tracker.head()
            for issue_id in placed:
                issue = self.tracker.issues.load(issue_id)
                comment = actions.append_comment(
                    change, issue, "Mail could not be delivered:\n\n" + "\n".join(lines[issue_id]),
                    visibility="internal", via="email", author=str(self.committer),
                    message_id=msg.message_id, notify=False)
                self._keep_original(change, issue_id, comment.id, msg)
                rel = self.tracker.issues.comment_path(issue_id, comment.id)
            change.message = f"#{', #'.join(map(str, placed))} delivery failed"
        with self.tracker.locked():  # counted once the note is committed, one writer at a time
            for failures in placed.values():
                for failure in failures:
                    record_bounce(self.tracker, failure.recipient, failure.status, failure.diagnostic)
        self.seen.add(msg.message_id, rel, issue_id, head)
        return Outcome("bounce", issue_id, "; ".join(x for v in lines.values() for x in v), msg.message_id)


BOUNCES_FILE = "mail-bounces.json"


def read_bounces(tracker: Tracker) -> dict[str, dict]:
    """Addresses whose mail came back, with how often and the last reason."""
    try:
        data = json.loads((tracker.local_dir / BOUNCES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_bounce(tracker: Tracker, address: str, status: str, diagnostic: str) -> None:
    path = tracker.local_dir / BOUNCES_FILE
    data = read_bounces(tracker)
    entry = data.get(address, {"count": 0})
    entry.update(count=int(entry.get("count", 0)) + 1, last=iso(now()), status=status,
                 diagnostic=diagnostic)
    data[address] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
