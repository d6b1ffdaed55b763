"""What a commit did to issues, as events: for changes that reach this clone from another
one (``gitdesk sync``), so that the one clone that sends the desk's mail can tell people
about what was done elsewhere, as if it had been done here.

Only what gitdesk's own commands write is read back as events: a new issue, a comment
added (a file beside issue.md), fields changed in issue.md. Files that cannot be read are
left out (nobody is mailed about what cannot be shown).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.document import parse
from ..core.tracker import email_of
from ..errors import InvalidDocument
from .actions import field_changes
from .events import COMMENT, NEW, UPDATE, IssueEvent
from .model import Issue, comment_from_document, issue_from_document

if TYPE_CHECKING:
    from ..core.tracker import Tracker

_FILE = re.compile(r"issues/([1-9][0-9]{0,11})/([^/]+)\.md")


def events_in_commit(tracker: "Tracker", commit: str, parent: str) -> list[IssueEvent]:
    repo = tracker.repo
    author = repo.commit_info(commit)[0]
    actor = f"{author.name} <{author.email}>"
    touched: dict[int, list[tuple[str, str, str]]] = {}
    for status, _, oid, path in repo.commit_changes(commit, parent):
        found = _FILE.fullmatch(path)
        if found and status in "AM":
            touched.setdefault(int(found.group(1)), []).append((status, found.group(2), oid))
    events: list[IssueEvent] = []
    for number, files in sorted(touched.items()):
        after = _issue(tracker, commit, number)
        if after is None:
            continue
        for status, name, oid in files:
            if name == "issue" and status == "A":
                via = _opened_via(after)
                events.append(IssueEvent(NEW, after, after.author or actor, via))
            elif name == "issue":
                before = _issue(tracker, parent, number)
                changes = tuple(field_changes(before, after, tracker.settings.schema.fields)) if before else ()
                if changes:
                    events.append(IssueEvent(UPDATE, after, actor, "cli", before=before, changes=changes))
            elif status == "A":
                try:
                    text = repo.read_blob(oid).decode("utf-8")
                    comment = comment_from_document(parse(text, path_of(number, name)), name)
                except (InvalidDocument, UnicodeDecodeError):
                    continue
                events.append(IssueEvent(COMMENT, after, comment.author or actor, comment.via, comment=comment))
    return events


def _opened_via(issue: Issue) -> str:
    """How a new issue came in: by mail (it keeps the Message-ID), an import (its source),
    the customer's control panel (opened by its customer), or a command."""
    if issue.extra.get("message_id"):
        return "email"
    if issue.source:
        return "import"
    customer = email_of(issue.customer)
    return "web" if customer and email_of(issue.author) == customer else "cli"


def path_of(number: int, name: str) -> str:
    return f"issues/{number}/{name}.md"


def _issue(tracker: "Tracker", commit: str, number: int) -> Issue | None:
    repo = tracker.repo
    rel = path_of(number, "issue")
    found = repo.entry(commit, rel)
    if found is None:
        return None
    try:
        doc = parse(repo.read_blob(found[1]).decode("utf-8"), rel)
    except (InvalidDocument, UnicodeDecodeError):
        return None
    return issue_from_document(doc, number, tracker.settings.schema)
