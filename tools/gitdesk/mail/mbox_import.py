"""``gitdesk import mbox FILE``: an old inbox becomes tickets, one per thread, in one commit.

The owner's first job: "go through the inbox and make a ticket of everything". Threads are
rebuilt from Message-ID, In-Reply-To and References (a reply whose parent is missing joins
the thread with the same subject, 'Re:'/'AW:' and list tags removed). The first message of
a thread opens the ticket, the rest become its comments, with the senders and dates of the
mail. A thread that continues a ticket already in the tracker is added to that ticket.
Nobody is mailed. Importing the same file again adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..issues import actions
from ..timeutil import now
from .classify import classify
from .gateway import ORIGINALS, Gateway
from .inbound import Inbound, Refused, parse_message
from .quoting import reply_part
from .sources import mbox_messages

_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|tr|ref|rif|r)\s*(\[\d+\])?\s*:\s*|\[[^\]]{1,40}\]\s*)+",
                     re.I)


def subject_key(subject: str) -> str:
    return re.sub(r"\s+", " ", _PREFIX.sub("", subject)).strip().lower()


def _is_reply(msg: Inbound) -> bool:
    return bool(msg.in_reply_to or msg.references) or bool(re.match(r"\s*(re|aw|sv|antw)\s*:", msg.subject, re.I))


@dataclass
class MboxImport:
    tickets: int = 0
    comments: int = 0
    duplicates: int = 0
    quarantined: list[str] = field(default_factory=list)
    commit: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def import_mbox(tracker, path: Path, status: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> MboxImport:
    gateway = Gateway(tracker, allow_lists=True, notify=False)
    result = MboxImport()
    try:
        gateway.seen.refresh()
        parsed = _read(gateway, path, result)
        threads = _threads(gateway, parsed)
        with tracker.change() as change:
            for n, (existing, messages) in enumerate(threads, 1):
                _store_thread(change, gateway, existing, messages, status, result)
                if progress:
                    progress(n, len(threads))
            change.message = (f"import mbox {path.name}: {result.tickets} tickets, "
                              f"{result.comments} comments")
        result.commit = change.commit
    finally:
        gateway.close()
    return result


def _read(gateway: Gateway, path: Path, result: MboxImport) -> list[Inbound]:
    parsed: list[Inbound] = []
    seen_here: set[str] = set()
    for label, raw in mbox_messages(path):
        try:
            msg = parse_message(raw, gateway.mail.max_bytes)
        except (Refused, RecursionError) as err:
            result.quarantined.append(f"{label}: {gateway._hold(raw, str(err)).detail}")
            continue
        kind = classify(msg, gateway.ours, None, allow_lists=True)
        unusable = f"ambiguous From: {msg.sender_problem}" if msg.sender_problem else "no usable From address"
        reason = kind.reason if kind.automatic else (unusable if msg.sender is None else "")
        if reason:
            result.quarantined.append(f"{label}: {gateway._hold(raw, reason, msg).detail}")
        elif msg.message_id in seen_here or gateway.seen.find(msg.message_id):
            result.duplicates += 1
        else:
            seen_here.add(msg.message_id)
            parsed.append(msg)
    epoch = now()
    parsed.sort(key=lambda m: gateway._date(m) if m.date else epoch)
    return parsed


def _threads(gateway: Gateway, messages: list[Inbound]) -> list[tuple[int | None, list[Inbound]]]:
    """Groups of messages, each with the existing ticket it continues (or None)."""
    thread_of: dict[str, int] = {}         # message id -> index into groups
    by_subject: dict[str, int] = {}
    groups: list[tuple[int | None, list[Inbound]]] = []
    for msg in messages:
        index = next((thread_of[i] for i in msg.thread_ids if i in thread_of), None)
        if index is None:
            existing = next((found for i in msg.thread_ids if (found := gateway.seen.find(i))), None)
            if existing is None and _is_reply(msg):
                index = by_subject.get(subject_key(msg.subject))
            if index is None:
                groups.append((existing, []))
                index = len(groups) - 1
        groups[index][1].append(msg)
        thread_of[msg.message_id] = index
        by_subject.setdefault(subject_key(msg.subject), index)
    return groups


def _store_thread(change, gateway: Gateway, existing: int | None, messages: list[Inbound],
                  status: str | None, result: MboxImport) -> None:
    tracker = gateway.tracker
    if existing is not None:
        issue = tracker.issues.load(existing)
        rest = messages
    else:
        first, rest = messages[0], messages[1:]
        draft = actions.draft_issue(
            tracker, first.subject or "(no subject)", type=gateway.mail.ticket_type,
            visibility="private", customer=first.sender.email,  # type: ignore[union-attr]
            body=first.text or "(no text)", created=gateway._date(first), status=status,
            extra={"message_id": first.message_id})
        draft.author = str(first.sender)
        if draft.closed:
            draft.closed = gateway._date(messages[-1])
        issue = actions.open_issue(change, draft, gateway._attachments(first), via="email", notify=False)
        change.write(f"issues/{issue.id}/{ORIGINALS}/issue.eml", first.raw)
        result.tickets += 1
    for msg in rest:
        comment = actions.append_comment(
            change, issue, reply_part(msg.text) if msg.text else "(no text)", via="email",
            attachments=gateway._attachments(msg), date=gateway._date(msg), author=str(msg.sender),
            message_id=msg.message_id, in_reply_to=(msg.in_reply_to or [None])[0], notify=False)
        change.write(f"issues/{issue.id}/{ORIGINALS}/{comment.id}.eml", msg.raw)
        result.comments += 1
