"""The subscriber that turns a change's events into outbox entries, inside the change's lock.

``prepare`` runs after the change wrote its files and before git commits them: it decides
the notices, composes the messages and writes them to ``outbox/pending``; the commit moves
them to the queue. Each entry names the file (and its git object id) that it reports, so
crash recovery can tell whether the change it belongs to really happened.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import GitdeskError
from .compose import UnsafeMessage, compose
from .notify import ACK, AckLog, Notice
from .outbox import Spooled, blob_id, new_entry, spool
from .signing import Signer, load_secret

if TYPE_CHECKING:
    from ..core.tracker import Tracker
    from ..issues.model import Issue


def prepare(tracker: "Tracker", found: "list[Notice]", acks: AckLog) -> Spooled | None:
    """Outbox entries for the notices a change calls for (``notify.notices``)."""
    if not found:
        return None
    spooled = spool(tracker, _entries(tracker, found, requires=True))
    spooled.on_commit.append(acks.save)
    return spooled


def queue_now(tracker: "Tracker", found: "list[Notice]", acks: AckLog, commit: str) -> int:
    """Queue the notices for a change another clone made and this one fetched (``commit``):
    it is committed already, so the entries go straight to the queue. Returns how many."""
    entries = _entries(tracker, found, requires=False)
    if entries:
        spool(tracker, entries).commit(commit)
        acks.save()
    return len(entries)


def _entries(tracker: "Tracker", found: "list[Notice]", requires: bool) -> list[dict]:
    signer = Signer(load_secret(tracker.local_dir), tracker.settings.mail.address)
    entries = []
    threads: dict[int, tuple[str | None, str | None]] = {}
    for notice in found:
        issue = notice.issue
        if issue.id not in threads:
            threads[issue.id] = _thread(tracker, issue)
        try:
            msg = compose(tracker, notice, signer, threads[issue.id])
        except UnsafeMessage as err:  # never sent; the change itself goes on
            print(f"warning: mail not sent ({describe(notice)}): {err}", file=sys.stderr)
            continue
        needs = {}
        if requires:  # the file the change wrote, which crash recovery looks for in git
            rel = (tracker.issues.comment_path(issue.id, notice.comment.id) if notice.comment
                   else issue.path)
            needs = {rel: blob_id((tracker.root / rel).read_bytes())}
        envelope_from = "" if notice.kind == ACK else tracker.settings.mail.address
        entries.append(new_entry(msg.as_bytes(), [notice.recipient], envelope_from,
                                 str(msg["Message-ID"]).strip("<>"), issue.id, notice.kind, needs))
    return entries


def _thread(tracker: "Tracker", issue: "Issue") -> tuple[str | None, str | None]:
    """The ticket's first Message-ID and the newest one written by someone outside the desk."""
    root = issue.extra.get("message_id")
    newest = None
    staff = {m.email.lower() for m in tracker.settings.staff}
    try:
        comments = tracker.issues.load(issue.id, comments=True).comments
    except GitdeskError:
        comments = []
    for comment in comments:
        if comment.via == "email" and comment.message_id and comment.is_public:
            author = comment.author.rsplit("<", 1)[-1].rstrip(">").lower()
            if author not in staff:
                newest = comment.message_id
    return (str(root) if root else None, newest)


def describe(notice: Notice) -> str:
    return f"#{notice.issue.id} {notice.kind} -> {notice.recipient}"
