"""Notices to RFC 5322 messages: threading headers, signed Reply-To, and text nobody can
turn into a header.

Every header value made from data passes through ``header_text`` (no CR, LF or other
control character, and no RFC 2047 encoded word the email package would decode into
one), Message-IDs from other mail are echoed only when strictly well-formed, addresses
are checked before use, and the email package's SMTP policy encodes and folds the rest.
Last, ``checked`` serializes the message, parses it again and refuses it
(``UnsafeMessage``) unless it has exactly the headers that were set, each on one line.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import email.utils
import re
from email.message import EmailMessage
from typing import TYPE_CHECKING

from ..errors import GitdeskError
from ..timeutil import now
from .charsets import header_text, one_line
from .classify import LOOP_HEADER
from .inbound import ADDRESS_RE
from .notify import ACK, ASSIGNED, CUSTOMER_REPLY, NEW_TICKET, REPLY, UPDATED, Notice
from .quoting import MARKER
from .signing import NOTE, PUBLIC, Signer

if TYPE_CHECKING:
    from ..core.tracker import Tracker

_AUTOMATIC = {ACK: "auto-replied", UPDATED: "auto-generated", NEW_TICKET: "auto-generated",
              ASSIGNED: "auto-generated", CUSTOMER_REPLY: "auto-generated"}


class UnsafeMessage(GitdeskError):
    """A composed message whose headers are not the ones that were set: never sent."""


# <local@domain>: printable ASCII without space, quotes, brackets, comment or list
# characters; '[' and ']' are allowed (Exchange writes <[...]@host>); no encoded word.
# Spelled as the 84 allowed characters: a negated class spanning the BMP took 4 ms to
# compile in every process (and let characters beyond the BMP through).
_ID_CHAR = "[" + "".join(re.escape(chr(c)) for c in range(0x21, 0x7F) if chr(c) not in '<>"\\(),;:@') + "]"
_MESSAGE_ID = re.compile(f"{_ID_CHAR}{{1,250}}@{_ID_CHAR}{{1,250}}")


def safe_message_id(value: str | None) -> str | None:
    """``value`` (with or without its angle brackets) if it is a strict Message-ID, else None."""
    if not value:
        return None
    text = str(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if "=?" in text or not _MESSAGE_ID.fullmatch(text):
        return None
    return text


def _name(who: str) -> str:
    text = header_text(who)
    if "<" in text:
        text = text.split("<", 1)[0].strip() or text
    return text.strip('" ')[:80] or "someone"


def _sender(tracker: "Tracker") -> str:
    """``mail.from`` as one address, its name quoted as needed: a name with ':' or ','
    would otherwise turn the From line into a group or a list of other addresses."""
    settings, mail = tracker.settings, tracker.settings.mail
    text = header_text(mail.sender)
    name, address = "", text
    if text.endswith(">") and "<" in text:
        cut = text.rindex("<")
        name, address = text[:cut].strip().strip('"').strip(), text[cut + 1:-1].strip()
    if not ADDRESS_RE.fullmatch(address):
        name, address = "", mail.address
    return email.utils.formataddr((name or header_text(settings.name), address))


def event_key(notice: Notice) -> str:
    if notice.kind == ACK:
        return "ack"
    if notice.comment is not None:
        return "c" + notice.comment.id
    return f"{notice.kind}-{notice.issue.updated.strftime('%Y%m%dT%H%M%S')}"


def compose(tracker: "Tracker", notice: Notice, signer: Signer,
            thread: tuple[str | None, str | None] = (None, None)) -> EmailMessage:
    """One message for one recipient. ``thread`` is (the ticket's first Message-ID, the
    newest one from the customer's side), so replies thread under the customer's mail."""
    try:
        return checked(_compose(tracker, notice, signer, thread))
    except (ValueError, TypeError, IndexError, email.errors.MessageError) as err:
        raise UnsafeMessage(f"cannot compose the mail: {type(err).__name__}: {err}") from None


def _compose(tracker: "Tracker", notice: Notice, signer: Signer,
             thread: tuple[str | None, str | None]) -> EmailMessage:
    settings, mail = tracker.settings, tracker.settings.mail
    issue = notice.issue
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _sender(tracker)
    msg["To"] = header_text(notice.recipient)
    msg["Reply-To"] = email.utils.formataddr(
        (header_text(settings.name), signer.reply_address(issue.id, notice.recipient)))
    title = header_text(issue.title)[:200]
    msg["Subject"] = f"[#{issue.id}] " + ("Your request was received" if notice.kind == ACK else title)
    msg["Date"] = email.utils.format_datetime(now())
    msg["Message-ID"] = f"<{signer.message_id(issue.id, event_key(notice), notice.recipient)}>"
    root, newest = thread
    echoed = [safe_message_id(r) for r in (root, newest)]
    refs = [f"<{signer.thread_id(issue.id)}>"] + [f"<{r}>" for r in echoed if r]
    refs = list(dict.fromkeys(refs))
    msg["In-Reply-To"] = refs[-1]
    msg["References"] = " ".join(refs)
    msg[LOOP_HEADER] = header_text(mail.address)
    msg["X-Gitdesk-Ticket"] = str(issue.id)
    if notice.kind in _AUTOMATIC:
        msg["Auto-Submitted"] = _AUTOMATIC[notice.kind]
    msg.set_content(_body(tracker, notice, signer), charset="utf-8")
    return msg


def checked(msg: EmailMessage) -> EmailMessage:
    """``msg`` if its bytes parse back to exactly the headers that were set (same names,
    same counts, same order) with no CR or LF in any value; else ``UnsafeMessage``."""
    expected = [name.lower() for name in msg.keys()]
    for name, value in msg.items():
        if "\r" in str(value) or "\n" in str(value):
            raise UnsafeMessage(f"header {name} holds a line break")
    data = msg.as_bytes()
    again = email.message_from_bytes(data, policy=email.policy.compat32)
    got = [str(name).lower() for name in again.keys()]
    if got != expected:
        extra = sorted(set(got) - set(expected)) or sorted(set(expected) - set(got)) or got
        raise UnsafeMessage(f"the headers changed when written out ({', '.join(extra)})")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    for name, value in parsed.items():
        if "\r" in str(value) or "\n" in str(value):
            raise UnsafeMessage(f"header {name} decodes to a line break")
    return msg


def _body(tracker: "Tracker", notice: Notice, signer: Signer) -> str:
    issue, comment = notice.issue, notice.comment
    status = "".join(f"\n{c.replace('status:', 'Status:', 1)}" for c in notice.changes
                     if c.startswith("status:"))
    link = ""
    if issue.is_public and tracker.settings.site_url:
        link = f"\n{tracker.settings.site_url.rstrip('/')}/issues/{issue.id}/"
    footer = f"\n\n-- \nTicket #{issue.id}: {one_line(issue.title)[:200]}{link}\n"
    if notice.kind == ACK:
        return (f"{MARKER}\n\nThank you for writing to {one_line(tracker.settings.name)}.\n\n"
                f"Your request is ticket #{issue.id}; we will answer as soon as we can.\n"
                f"To add to it, reply to this mail.\n\n-- \nTicket #{issue.id}\n")
    if notice.kind == UPDATED:
        return f"{MARKER}\n\n{_name(notice.actor)} changed ticket #{issue.id}:\n{status}\n{footer}"
    if notice.kind == ASSIGNED:
        return f"{_name(notice.actor)} assigned ticket #{issue.id} to you.\n{footer}"
    text = comment.body if comment is not None else issue.body
    lead = f"{_name(notice.actor)} wrote:"
    if notice.kind == NEW_TICKET and notice.staff:
        lead = f"New ticket #{issue.id} from {one_line(notice.actor)}:"
    elif notice.kind == NEW_TICKET:
        lead = f"{_name(notice.actor)} opened ticket #{issue.id} for you:"
    elif notice.kind == CUSTOMER_REPLY:
        lead = f"{one_line(notice.actor)} wrote on #{issue.id}:"
    files = comment.attachments if comment is not None else issue.attachments
    attached = f"\n\nAttachments: {', '.join(files)}" if files else ""
    staff_hint = ""
    if notice.staff and notice.kind != REPLY:
        note = signer.reply_address(issue.id, notice.recipient, NOTE)
        staff_hint = (f"\n\nReply to this mail to answer the customer; write to {note} "
                      "for an internal note.")
    return f"{MARKER}\n\n{lead}\n\n{text.strip()}{attached}\n{status}{staff_hint}{footer}"


def renumbered(raw: bytes, mapping: dict[int, int], signer: Signer, recipient: str) -> EmailMessage:
    """A composed message about issues ``gitdesk sync`` renumbered (old -> new), saying the
    new numbers: in the subject and text, the ``/issues/N/`` link, and the signed reply
    addresses and Message-IDs, which are signed again for the new number."""
    from ..sync import renumber_text

    local, domain = re.escape(signer.local), re.escape(signer.domain)
    reply = re.compile(rf"\b{local}\+([1-9][0-9]{{0,11}})\.(n\.)?[a-z2-7]{{16}}@{domain}\b", re.I)
    ours = re.compile(rf"\bgd\.([1-9][0-9]{{0,11}})(?:\.([A-Za-z0-9-]{{1,60}})\.[a-z2-7]{{16}})?@{domain}\b")

    def new(found: re.Match) -> int | None:
        return mapping.get(int(found.group(1)))

    def again(text: str) -> str:
        text = reply.sub(lambda m: m.group(0) if new(m) is None else
                         signer.reply_address(new(m), recipient, NOTE if m.group(2) else PUBLIC), text)
        text = ours.sub(lambda m: m.group(0) if new(m) is None else
                        signer.message_id(new(m), m.group(2), recipient) if m.group(2)
                        else signer.thread_id(new(m)), text)
        text = re.sub(r"/issues/([1-9][0-9]{0,11})/",
                      lambda m: f"/issues/{mapping.get(int(m.group(1)), m.group(1))}/", text)
        return renumber_text(text, mapping)

    msg = email.message_from_bytes(raw, policy=email.policy.SMTP)
    for name in ("Subject", "Reply-To", "Message-ID", "In-Reply-To", "References"):
        if msg[name] is not None:
            msg.replace_header(name, again(str(msg[name])))
    ticket = str(msg["X-Gitdesk-Ticket"] or "")
    if ticket.isdigit() and int(ticket) in mapping:
        msg.replace_header("X-Gitdesk-Ticket", str(mapping[int(ticket)]))
    if msg.get_content_type() == "text/plain" and not msg.is_multipart():
        msg.set_content(again(msg.get_content()), charset="utf-8")
    return checked(msg)
