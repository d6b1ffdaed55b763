"""What people do to issues; each action is exactly one commit through ``Tracker.change``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..config import VISIBILITIES
from ..core.document import parse, render
from ..core.repo import Identity
from ..core.tracker import Change, Tracker
from ..errors import Conflict, InvalidDocument, InvalidValue, NotFound
from ..timeutil import iso, now, parse_time
from .events import COMMENT, NEW, UPDATE, IssueEvent
from .model import (
    COMMENT_VISIBILITIES,
    VIAS,
    Comment,
    Issue,
    comment_to_document,
    issue_from_document,
    issue_to_document,
)
from .query import IssueQuery
from .sla import person_key, stamp_pause
from .store import parse_id, slug_of

LIST_FIELDS = ("labels", "cc", "kb")
SETTABLE = ("title", "type", "status", "priority", "visibility", "labels", "customer", "cc",
            "assignee", "due", "kb", "resolution")


def _refuse_problems(issue: Issue) -> None:
    errors = [p for p in issue.problems if not p.warning]
    if errors:
        where = f"{issue.path}: " if issue.id else ""  # a new issue has no file yet
        raise InvalidValue(f"{where}{errors[0].field}: {errors[0].message}")


def _revalidate(tracker: Tracker, issue: Issue) -> Issue:
    """Run the schema checks on an issue built in memory, as if it were read from disk."""
    checked = issue_from_document(issue_to_document(issue), issue.id, tracker.settings.schema)
    _refuse_problems(checked)
    return checked


Attachment = Path | tuple[str, bytes]  # a file to copy, or (name, content) from a bridge


def _attach(change: Change, tracker: Tracker, issue_id: int, files: Sequence[Attachment]) -> list[str]:
    """Put files into issues/<id>/files/ under safe names of our making; returns the names."""
    names = []
    folder_rel = tracker.issues.files_dir(issue_id)
    folder = tracker.root / folder_rel
    taken = set(p.name for p in folder.iterdir()) if folder.is_dir() else set()
    taken.update(Path(p).name for p in change.paths if p.startswith(folder_rel + "/"))
    for item in files:
        if isinstance(item, tuple):
            given, data = item
        else:
            given, data = Path(item).name, None
            if not Path(item).is_file():
                raise InvalidValue(f"{item}: no such file to attach")
        name = safe_filename(given)
        stem, dot, ext = name.rpartition(".")
        n = 2
        while name in taken:
            name = f"{stem}-{n}.{ext}" if dot else f"{ext}-{n}"
            n += 1
        taken.add(name)
        if data is None:
            change.copy_file(f"{folder_rel}/{name}", Path(item))  # type: ignore[arg-type]
        else:
            change.write(f"{folder_rel}/{name}", data)
        names.append(name)
    return names


def safe_filename(name: str) -> str:
    """A file name with no path, no leading dot, and only harmless characters."""
    import re

    base = name.replace("\\", "/").split("/")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".") or "file"
    return base[:100]


def draft_issue(tracker: Tracker, title: str, *, type: str | None = None,
                priority: str | None = None, labels: Iterable[str] = (),
                visibility: str | None = None, customer: str | None = None,
                cc: Iterable[str] = (), assignee: str | None = None, body: str = "",
                due: Any = None, fields: dict[str, Any] | None = None,
                created: dt.datetime | None = None, source: str | None = None,
                extra: dict[str, Any] | None = None, status: str | None = None) -> Issue:
    """A new issue checked against the schema, not yet written (its id is 0)."""
    schema = tracker.settings.schema
    issue_type = type or schema.default_type
    moment = created or now()
    status = status or schema.default_status
    draft = Issue(
        id=0, title=(title or "").strip(), type=issue_type, status=status,
        closed=moment if schema.is_closed(status) else None,
        priority=priority or schema.default_priority,
        visibility=visibility or schema.default_visibility(issue_type),
        created=moment, updated=moment, labels=_unique(x for lab in labels for x in lab.split(",")),
        customer=customer or None,
        cc=_unique(cc), assignee=resolve_user(tracker, assignee), body=body,
        due=_parse_due(due), fields=dict(fields or {}), source=source, extra=dict(extra or {}),
        waiting_since=moment if status in tracker.settings.queue.waiting_statuses else None,
    )
    if "\n" in draft.title:
        raise InvalidValue("title: must be one line")
    if draft.visibility not in VISIBILITIES:
        raise InvalidValue(f"visibility: {draft.visibility!r} is not public or private")
    _revalidate(tracker, draft)
    return draft


def open_issue(change: Change, draft: Issue, attachments: Sequence[Attachment] = (),
               via: str = "cli", notify: bool = True) -> Issue:
    """Write a drafted issue as part of ``change``: its id is allocated here, under the lock."""
    tracker = change.tracker
    draft.author = draft.author or str(change.author)
    draft.id = tracker.issues.next_id()
    if attachments:
        draft.attachments = _attach(change, tracker, draft.id, attachments)
    change.write(draft.path, render(issue_to_document(draft)))
    change.events.append(IssueEvent(NEW, draft, draft.author, via, notify=notify))
    return draft


def new_issue(tracker: Tracker, title: str, *, attachments: Sequence[Attachment] = (),
              author: Identity | None = None, via: str = "cli", **fields: Any) -> Issue:
    """Open a new issue (``draft_issue`` names the fields); one commit."""
    draft = draft_issue(tracker, title, **fields)
    with tracker.change(author=author) as change:
        open_issue(change, draft, attachments, via)
        change.message = f"#{draft.id} new: {draft.title}"
    return draft


def _unique(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        value = str(value).strip()
        if value and value not in seen:
            seen.append(value)
    return seen


def _parse_due(value: Any) -> dt.date | dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return parse_time(text)
    except ValueError:
        raise InvalidValue(f"due: {text!r} is not a date (use 2026-12-31 or an ISO 8601 time)") from None


def resolve_user(tracker: Tracker, who: str | None) -> str | None:
    """A staff member's email from name, email or 'me'; unknown people are kept as given."""
    if not who or who in ("-", "none", "nobody"):
        return None
    if who == "me":
        me = tracker.identity()
        return me.email or me.name
    member = tracker.settings.find_staff(who)
    if member:
        return member.email
    if tracker.settings.staff:
        names = ", ".join(m.email for m in tracker.settings.staff)
        raise InvalidValue(f"assignee: {who!r} is not on the staff list in gitdesk.yml ({names})")
    return who.strip()


# -- changing fields ---------------------------------------------------------------

def parse_fields(tracker: Tracker, pairs: Sequence[str]) -> dict[str, str]:
    """'plan=gold' pairs for custom fields; standard fields have their own options."""
    values = {}
    for pair in pairs:
        name, op, value = parse_assignment(pair)
        if op != "=" or name not in tracker.settings.schema.fields:
            known = ", ".join(tracker.settings.schema.fields) or "none are defined in gitdesk.yml"
            raise InvalidValue(f"--field {pair!r}: not a custom field (custom fields: {known})")
        values[name] = value
    return values


def parse_assignment(text: str) -> tuple[str, str, str]:
    """'status=open' / 'labels+=x' / 'labels-=x' -> (field, op, value)."""
    for op in ("+=", "-=", "="):
        name, sep, value = text.partition(op)
        if sep and name.strip() and "=" not in name:
            return name.strip(), op, value.strip()
    raise InvalidValue(f"expected FIELD=VALUE, got {text!r}")


def _describe(value: Any) -> str:
    if value in (None, "", []):
        return "none"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return iso(value) or ""
    return str(value)


def apply_assignments(tracker: Tracker, issue: Issue,
                      assignments: Sequence[tuple[str, str, str]]) -> tuple[Issue, list[str]]:
    """A copy of ``issue`` with the assignments applied, and one 'field: a -> b' per change."""
    schema = tracker.settings.schema
    updated = dataclasses.replace(issue, labels=list(issue.labels), cc=list(issue.cc),
                                  kb=list(issue.kb), fields=dict(issue.fields))
    for name, op, value in assignments:
        custom = name in schema.fields
        if name not in SETTABLE and not custom:
            allowed = ", ".join(SETTABLE + tuple(schema.fields))
            raise InvalidValue(f"cannot set {name!r} (fields you can set: {allowed})")
        if name in LIST_FIELDS:
            items = _unique(value.split(",")) if value else []
            current = getattr(updated, name)
            if op == "+=":
                items = _unique(current + items)
            elif op == "-=":
                items = [v for v in current if v not in items]
            setattr(updated, name, items)
            continue
        if op != "=":
            raise InvalidValue(f"{name}: '{op}' works only on lists ({', '.join(LIST_FIELDS)})")
        if custom:
            if value:
                updated.fields[name] = value
            else:
                updated.fields.pop(name, None)
        elif name == "due":
            updated.due = _parse_due(value)
        elif name == "assignee":
            updated.assignee = resolve_user(tracker, value)
        elif name == "visibility" and value not in VISIBILITIES:
            raise InvalidValue(f"visibility: {value!r} is not public or private")
        else:
            setattr(updated, name, value or (None if name in ("customer", "resolution") else ""))
    return updated, field_changes(issue, updated, schema.fields)


def field_changes(before: Issue, after: Issue, custom: Iterable[str]) -> list[str]:
    """'status: open -> closed' for each settable field, then each ``custom`` one, that differs."""
    diffs = []
    for name in SETTABLE:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            diffs.append(f"{name}: {_describe(old)} -> {_describe(new)}")
    for name in custom:
        old, new = before.fields.get(name), after.fields.get(name)
        if old != new:
            diffs.append(f"{name}: {_describe(old)} -> {_describe(new)}")
    return diffs


def update_issue(change: Change, issue: Issue, assignments: Sequence[tuple[str, str, str]],
                 via: str = "cli", notify: bool = True) -> tuple[Issue, list[str]]:
    """Apply field changes to ``issue`` as part of ``change``; returns it and the diffs."""
    tracker = change.tracker
    updated, diffs = apply_assignments(tracker, issue, assignments)
    if not diffs:
        return issue, []
    updated.updated = now()
    _stamp_closed(tracker, issue, updated)
    stamp_pause(tracker.settings, issue, updated, updated.updated)
    _revalidate(tracker, updated)
    change.write(updated.path, render(issue_to_document(updated)))
    change.events.append(IssueEvent(UPDATE, updated, str(change.author), via, before=issue,
                                    changes=tuple(diffs), notify=notify))
    return updated, diffs


def set_fields(tracker: Tracker, ref: str | int, assignments: Sequence[tuple[str, str, str]],
               comment: str | None = None, author: Identity | None = None,
               ) -> tuple[Issue, list[str]]:
    """Change fields of an issue (and optionally add a public comment) in one commit."""
    with tracker.change(author=author) as change:
        issue = tracker.issues.load(ref)
        updated, diffs = update_issue(change, issue, assignments)
        if not diffs and not comment:
            return issue, []
        if comment:
            append_comment(change, updated, comment)
        summary = "; ".join(diffs) if diffs else f"comment by {change.author.name}"  # type: ignore[union-attr]
        change.message = f"#{updated.id} {summary}"
    return updated, diffs


def _stamp_closed(tracker: Tracker, before: Issue, after: Issue) -> None:
    """Record when an issue was closed; reopening clears it."""
    schema = tracker.settings.schema
    was, now_closed = schema.is_closed(before.status), schema.is_closed(after.status)
    if now_closed and not was:
        after.closed = after.updated
    elif was and not now_closed:
        after.closed = None


def close(tracker: Tracker, ref: str | int, resolution: str | None = None,
          comment: str | None = None) -> tuple[Issue, list[str]]:
    status = tracker.settings.schema.close_status
    changes = [("status", "=", status)]
    if resolution:
        changes.append(("resolution", "=", resolution))
    return set_fields(tracker, ref, changes, comment)


def reopen(tracker: Tracker, ref: str | int, comment: str | None = None) -> tuple[Issue, list[str]]:
    schema = tracker.settings.schema
    current = tracker.issues.load(ref)
    if not schema.is_closed(current.status):
        raise InvalidValue(f"#{current.id} is not closed (status: {current.status})")
    status = schema.reopen_status
    return set_fields(tracker, ref, [("status", "=", status), ("resolution", "=", "")], comment)


def assign(tracker: Tracker, ref: str | int, user: str | None) -> tuple[Issue, list[str]]:
    return set_fields(tracker, ref, [("assignee", "=", user or "")])


def take(tracker: Tracker, ref: str | int | None = None, *, force: bool = False,
         query: IssueQuery | None = None, author: Identity | None = None) -> tuple[Issue, list[str]]:
    """Assign an issue to the acting person and move it to ``queue.working_status``: one commit.

    Without ``ref``, the first item of the queue that nobody has taken (and that matches
    ``query``), chosen under the tracker's lock, so that two people
    taking at once never get the same item. An issue held by someone else is refused
    (``Conflict``) unless ``force``; a waiting status stays as it is.
    """
    settings = tracker.settings
    with tracker.change(author=author) as change:
        who = change.author
        member = settings.find_staff(who.email or who.name)  # type: ignore[union-attr]
        me = member.email if member else (who.email or who.name)  # type: ignore[union-attr]
        if settings.staff and member is None:
            raise InvalidValue(f"{me} is not on the staff list in gitdesk.yml: only staff take work")
        if ref is None:
            from .queue import load_queue, next_free

            item = next_free(load_queue(tracker)[0], settings, query)
            if item is None:
                raise NotFound("nothing to take: every item in the queue is taken"
                               + (" or does not match" if query else "") + " (see issue queue)")
            issue = tracker.issues.load(item.issue.id)  # the queue's record has no body
        else:
            issue = tracker.issues.load(ref)
        if settings.schema.is_closed(issue.status):
            raise InvalidValue(f"#{issue.id} is closed (status: {issue.status}); reopen it first")
        holder = issue.assignee
        stolen = holder if holder and person_key(holder) != person_key(me) else None
        if stolen and not force:
            held = settings.find_staff(stolen)
            name = f"{held.name} <{held.email}>" if held and held.name != held.email else stolen
            raise Conflict(f"#{issue.id} is taken by {name}; use --force to take it over")
        changes = [("assignee", "=", me)]
        target = settings.queue.working_status
        if issue.status not in settings.queue.waiting_statuses and issue.status != target:
            changes.append(("status", "=", target))
        updated, diffs = update_issue(change, issue, changes)
        if not diffs:
            return issue, []
        moved = f" (status: {issue.status} -> {updated.status})" if updated.status != issue.status else ""
        change.message = f"#{issue.id} take: {me}" + (f" from {stolen}" if stolen else "") + moved
    return updated, diffs


# -- comments ---------------------------------------------------------------------------

def append_comment(change: Change, issue: Issue, body: str, *, visibility: str = "public",
                   via: str = "cli", attachments: Sequence[Attachment] = (),
                   date: dt.datetime | None = None, author: str | None = None,
                   message_id: str | None = None, in_reply_to: str | None = None,
                   notify: bool = True, **extra: Any) -> Comment:
    """Write one comment file as part of ``change``; a bridge passes the original author,
    date and source id (``message_id``)."""
    if visibility not in COMMENT_VISIBILITIES:
        raise InvalidValue(f"visibility: {visibility!r} is not public or internal")
    if via not in VIAS:
        raise InvalidValue(f"via: {via!r} is not one of {', '.join(VIAS)}")
    tracker = change.tracker
    who = author or str(change.author)
    moment = date or now()
    comment_id = tracker.issues.new_comment_id(issue.id, moment, who)
    comment = Comment(id=comment_id, author=who, date=moment, body=body, visibility=visibility,
                      via=via, message_id=message_id, in_reply_to=in_reply_to, extra=extra)
    if attachments:
        comment.attachments = _attach(change, tracker, issue.id, attachments)
    change.write(tracker.issues.comment_path(issue.id, comment_id),
                 render(comment_to_document(comment)))
    change.events.append(IssueEvent(COMMENT, issue, who, via, comment=comment, notify=notify))
    return comment


def add_comment(tracker: Tracker, ref: str | int, body: str, *, internal: bool = False,
                via: str = "cli", attachments: Sequence[Attachment] = (),
                author: Identity | None = None) -> Comment:
    """Add a public comment or an internal note: one new file, one commit."""
    if not body.strip() and not attachments:
        raise InvalidValue("empty comment: give the text with -m, -F or the editor")
    with tracker.change(author=author) as change:
        issue = tracker.issues.load(ref)
        visibility = "internal" if internal else "public"
        comment = append_comment(change, issue, body, visibility=visibility, via=via,
                                 attachments=attachments)
        kind = "internal note" if internal else "comment"
        change.message = f"#{issue.id} {kind} by {change.author.name}"  # type: ignore[union-attr]
    return comment


# -- editing the whole file ------------------------------------------------------------

def replace_text(tracker: Tracker, ref: str | int, text: str, author: Identity | None = None,
                 base: str | None = None) -> tuple[Issue, list[str]]:
    """Replace issue.md with text edited by hand; refused (file untouched) if invalid.

    ``base`` is the text an editor started from: the file must still hold it, and then its
    uncommitted hand edits, which the user saw, go in too. Without it (text from a file)
    uncommitted hand edits are refused rather than overwritten.
    """
    issue_id = parse_id(ref)
    rel = tracker.issues.issue_path(issue_id)
    with tracker.change(author=author) as change:
        old = _committed_issue(tracker, issue_id, rel)
        if base is not None and (tracker.root / rel).read_text(encoding="utf-8") != base:
            raise Conflict(f"{rel} changed while you were editing it")
        doc = parse(text, rel)
        new = issue_from_document(doc, issue_id, tracker.settings.schema)
        errors = sorted((p for p in new.problems if not p.warning or p.field == "visibility"),
                        key=lambda p: p.warning)  # a typo in visibility is refused on edit, too
        if errors:
            raise InvalidDocument(rel, f"{errors[0].field}: {errors[0].message}",
                                  doc.line_of(errors[0].field))
        if old is None:
            changed = ["repaired"]
        else:
            changed = [name for name in SETTABLE if getattr(old, name) != getattr(new, name)]
            if new.body != old.body:
                changed.append("description")
            if not changed and new.extra == old.extra and new.fields == old.fields:
                return old, []
        if old is not None and new.updated == old.updated:
            new.updated = now()
        if old is not None and (new.waiting_since, new.paused_seconds) == (old.waiting_since,
                                                                           old.paused_seconds):
            stamp_pause(tracker.settings, old, new, new.updated)  # unless edited by hand
        change.write(rel, render(issue_to_document(new)), guard=base is None)
        change.message = f"#{issue_id} edit: {', '.join(changed) or 'fields'}"
        diffs = tuple(f"{n}: {_describe(getattr(old, n))} -> {_describe(getattr(new, n))}"
                      for n in changed if old is not None and n in SETTABLE)
        change.events.append(IssueEvent(UPDATE, new, str(change.author), "cli", before=old,
                                        changes=diffs))
    return new, changed


def _committed_issue(tracker: Tracker, issue_id: int, rel: str) -> Issue | None:
    """The issue as last committed, so that an edit's message also names hand edits made
    before it; None when HEAD has no readable version (the edit then repairs the file)."""
    text = tracker.repo.committed_text(rel)
    if text is None:
        return None
    try:
        return issue_from_document(parse(text, rel), issue_id, tracker.settings.schema)
    except InvalidDocument:
        return None


# -- for bridges that write many issues in one change ----------------------------------------

def stage_issue(change: Change, issue: Issue) -> None:
    """Write an issue's file as part of a larger change (an import is one commit)."""
    change.write(issue.path, render(issue_to_document(issue)))


def stage_comment(change: Change, issue_id: int, comment: Comment) -> None:
    """Write a comment file, already named and dated by its bridge, as part of a change."""
    change.write(f"issues/{issue_id}/{comment.id}.md", render(comment_to_document(comment)))


__all__ = [
    "draft_issue", "open_issue", "update_issue", "append_comment",
    "new_issue", "set_fields", "close", "reopen", "assign", "take", "add_comment", "replace_text",
    "parse_assignment", "slug_of", "stage_issue", "stage_comment",
]
