"""What happened to an issue, as the actions record it for subscribers (the mail outbox).

Events are facts about one change, not instructions: who is told what is decided by the
subscriber (``gitdesk.mail.notify``), so the domain never knows that mail exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Comment, Issue

NEW, COMMENT, UPDATE = "new", "comment", "update"


@dataclass(frozen=True)
class IssueEvent:
    kind: str                       # new, comment or update
    issue: Issue                    # the issue as it is after the change
    actor: str                      # 'Name <email>' of who did it (for mail: the sender)
    via: str = "cli"                # cli, email, web, import, api
    comment: Comment | None = None  # the comment added, if any
    before: Issue | None = None     # the issue before an update
    changes: tuple[str, ...] = ()   # 'status: open -> closed', as in the commit message
    notify: bool = True             # False: tell nobody (automatic mail, bulk bridges)

    @property
    def status_changed(self) -> bool:
        return self.before is not None and self.before.status != self.issue.status
