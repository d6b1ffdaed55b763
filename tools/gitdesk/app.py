"""The tracker as programs use it: the domain's Tracker with its interfaces wired in.

``gitdesk.Tracker`` (this class) is what the CLI, the mail gateway, the site and a
customer control panel open. The only wiring today: changes that someone should hear
about are spooled to the mail outbox in the same step (``gitdesk.mail.spooler``). The mail
code is imported only when a change has someone to tell, so other commands stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .core import tracker as core

if TYPE_CHECKING:
    from .core.tracker import Change, Pending
    from .issues.customer import CustomerDesk


class _Outbox:
    def __init__(self, tracker: "Tracker"):
        self.tracker = tracker
        self._modes: dict[str, bool] = {}  # gitdesk.yml blob -> says send_from: mailer

    def _role(self) -> str:
        """``mail_role``, without importing the mail code for a desk where each clone mails."""
        if self.tracker.settings.mail.send_from != "mailer":
            return "every"
        from .mail.outbox import mail_role

        return mail_role(self.tracker)

    def prepare(self, change: "Change") -> "Pending | None":
        if not any(getattr(event, "notify", False) for event in change.events) or self._role() == "silent":
            return None
        from .mail.notify import AckLog, notices

        acks = AckLog(self.tracker.local_dir)
        found = notices(self.tracker, change.events, acks)
        if not found:  # nobody to tell: the mail code (40 ms of imports) is not needed
            return None
        from .mail.spooler import prepare

        return prepare(self.tracker, found, acks)

    def rewritten(self, commits: dict[str, str | None], renumbered: dict[int, int],
                  lost: dict[str, set[int]]) -> list[str]:
        queue = self.tracker.local_dir / "outbox" / "queue"
        if not queue.is_dir() or not any(queue.glob("*.json")):
            return []
        from .mail.outbox import follow_sync

        return follow_sync(self.tracker, commits, renumbered, lost)

    def published(self, tip: str) -> None:
        if self._role() == "mailer":  # its own commits are mailed from its own outbox
            from .mail.outbox import share_mark

            share_mark(self.tracker, tip)

    def fetched(self, commits: list[tuple[str, str]]) -> list[str]:
        """As the mailer: mail about what was done in other clones, as if done here. Not
        about imports, nor mail that came in elsewhere (run the gateway in the mailer)."""
        if self._role() != "mailer":
            return []
        from .issues.history import events_in_commit
        from .mail.notify import AckLog, notices
        from .mail.outbox import mailed_up_to, mailer_decides
        from .mail.spooler import queue_now

        acks = AckLog(self.tracker.local_dir)
        queued = 0
        with mailed_up_to(self.tracker, commits) as new:  # never twice (a reset, a second clone)
            for commit, parent in new:
                if not mailer_decides(self.tracker, parent, self._modes):
                    continue  # made where each clone still mailed its own changes: mailed there
                events = [e for e in events_in_commit(self.tracker, commit, parent)
                          if e.via not in ("import", "email")]
                queued += queue_now(self.tracker, notices(self.tracker, events, acks), acks, commit)
        return [f"queued {queued} mail(s) about changes made in other clones"] if queued else []


class Tracker(core.Tracker):
    """A tracker repository (found from ``path`` upwards, like git). ``mail=False`` opens
    it without the outbox: nothing done through it is mailed to anyone."""

    def __init__(self, path: Path | str | None = None, *, mail: bool = True):
        super().__init__(path)
        if mail:
            self.subscribers.append(_Outbox(self))

    def customer(self, email: str, name: str = "") -> "CustomerDesk":
        """The tracker as one customer sees it: their tickets, public replies, their replies
        (for a customer control panel; see ``gitdesk.issues.customer``)."""
        from .issues.customer import CustomerDesk

        return CustomerDesk(self, email, name)
