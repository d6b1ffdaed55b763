"""GitHub issue exports -> issues: ``gh issue list --json ...`` output and i-d-template archives.

A bridge: each issue keeps its original number (as the id when all of an export's numbers
are free, else in ``source``), title, body, labels, state, dates, author and comments
(``via: import``). The source URL identifies it, so a second import of the same file adds
only what is new, and an unchanged file changes nothing (no commit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.document import normalize_body, render
from ..core.tracker import Tracker
from ..errors import InvalidDocument
from ..issues.model import Comment, Issue, comment_to_document, issue_to_document
from ..issues.store import slug_of
from ..timeutil import parse_time, stamp

TYPE_LABELS = {"bug": "bug", "enhancement": "feature", "feature": "feature", "task": "task"}


@dataclass
class SourceComment:
    author: str
    body: str
    created: Any


@dataclass
class SourceIssue:
    number: int
    title: str
    body: str
    state: str
    labels: list[str]
    author: str
    created: Any
    updated: Any
    closed: Any
    url: str
    assignees: list[str] = field(default_factory=list)
    comments: list[SourceComment] = field(default_factory=list)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    comments: int = 0
    unchanged: int = 0
    skipped_pulls: int = 0
    commit: str | None = None
    repo: str | None = None


def _login(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("login") or value.get("name") or "ghost")
    return str(value or "ghost")


def read_export(path: Path, repo: str | None = None) -> tuple[str | None, list[SourceIssue], int]:
    """Parse an export file; returns (owner/name, issues, number of pull requests left out)."""
    rel = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDocument(rel, "no such file") from None
    except UnicodeDecodeError:
        raise InvalidDocument(rel, "not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InvalidDocument(rel, f"invalid JSON: {err.msg}", err.lineno) from None
    pulls = 0
    if isinstance(data, dict) and "issues" in data:
        repo = repo or data.get("repo")
        records = data["issues"]
        pulls = len(data.get("pulls") or [])
    elif isinstance(data, list):
        records = data
    else:
        raise InvalidDocument(rel, "not a GitHub issue export (expected a list of issues, "
                                   "or an archive with an 'issues' key)")
    issues = []
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidDocument(rel, f"issue #{n + 1} in the file is not an object")
        if record.get("pull_request") or record.get("isPullRequest"):
            pulls += 1
            continue
        missing = [k for k in ("number", "title") if record.get(k) in (None, "")]
        if missing:
            raise InvalidDocument(rel, f"issue #{n + 1} in the file has no {', '.join(missing)}")
        url = record.get("url") or record.get("html_url") or ""
        if not repo and url:
            match = re.match(r"https://github\.com/([^/]+/[^/]+)/issues/\d+", url)
            repo = match.group(1) if match else None
        labels = [lab.get("name") if isinstance(lab, dict) else lab for lab in record.get("labels") or []]
        comments = [SourceComment(_login(c.get("author") or c.get("user")), c.get("body") or "",
                                  c.get("createdAt") or c.get("created_at"))
                    for c in record.get("comments") or [] if isinstance(c, dict)]
        issues.append(SourceIssue(
            number=int(record["number"]), title=str(record["title"]), body=record.get("body") or "",
            state=str(record.get("state") or "open").lower(), labels=[str(x) for x in labels if x],
            author=_login(record.get("author") or record.get("user")),
            created=record.get("createdAt") or record.get("created_at"),
            updated=record.get("updatedAt") or record.get("updated_at"),
            closed=record.get("closedAt") or record.get("closed_at"), url=url,
            assignees=[_login(a) for a in record.get("assignees") or []], comments=comments,
        ))
    for issue in issues:
        if not issue.url:
            issue.url = (f"https://github.com/{repo}/issues/{issue.number}" if repo
                         else f"github:#{issue.number}")
    return repo, issues, pulls


def _rewrite_refs(text: str, mapping: dict[int, int], repo: str | None) -> str:
    """'#12' -> our id for imported issues; other numbers (pull requests) name their repo."""
    text = normalize_body(text)
    def swap(match: re.Match) -> str:
        number = int(match.group(1))
        if number in mapping:
            return f"#{mapping[number]}"
        return f"{repo}#{number}" if repo else match.group(0)

    return re.sub(r"(?<![\w/&#])#(\d+)\b", swap, text)


def import_github(tracker: Tracker, path: Path, repo: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import an export file in one commit; re-importing the same file changes nothing."""
    repo, sources, pulls = read_export(path, repo)
    result = ImportResult(skipped_pulls=pulls, repo=repo)
    schema = tracker.settings.schema
    with tracker.change() as change:
        existing = {i.source: i for i in tracker.issues.load_all()[0] if i.source}
        mapping = {s.number: existing[s.url].id for s in sources if s.url in existing}
        fresh = [s for s in sources if s.url not in existing]
        next_id = tracker.issues.next_id()
        if fresh and all(not tracker.issues.exists(s.number) and s.number >= 1 for s in fresh) \
                and len({s.number for s in fresh}) == len(fresh):
            mapping.update({s.number: s.number for s in fresh})
        else:
            for offset, s in enumerate(sorted(fresh, key=lambda s: s.number)):
                mapping[s.number] = next_id + offset
        for n, source in enumerate(sources, 1):
            if progress:
                progress(n, len(sources))
            issue_id = mapping[source.number]
            before = existing.get(source.url)
            issue = _to_issue(source, issue_id, schema, mapping, repo, before)
            wrote = False
            if before is None or issue_to_document(issue) != issue_to_document(before):
                change.write(issue.path, render(issue_to_document(issue)))
                wrote = True
            added = _write_comments(change, tracker, issue_id, source, mapping, repo)
            result.comments += added
            if before is None:
                result.created += 1
            elif wrote or added:
                result.updated += 1
            else:
                result.unchanged += 1
        change.message = (f"import github {repo or path.name}: {result.created} new, "
                          f"{result.updated} updated, {result.comments} comments")
    result.commit = change.commit
    return result


def _to_issue(source: SourceIssue, issue_id: int, schema, mapping, repo, before: Issue | None) -> Issue:
    closed = source.state == "closed"
    issue_type = next((TYPE_LABELS[lab.lower()] for lab in source.labels
                       if TYPE_LABELS.get(lab.lower()) in schema.types), None)
    issue_type = issue_type or ("task" if "task" in schema.types else schema.default_type)
    created = parse_time(source.created) if source.created else parse_time("1970-01-01T00:00:00Z")
    updated = parse_time(source.updated) if source.updated else created
    status = schema.close_status if closed else schema.reopen_status
    if before is not None and schema.is_closed(before.status) == closed:
        status = before.status  # keep a finer local status (waiting, resolved) that agrees
    issue = Issue(
        id=issue_id, title=" ".join(source.title.split()), type=issue_type, status=status,
        priority=before.priority if before else schema.default_priority, visibility="public",
        created=created, updated=updated, labels=list(dict.fromkeys(source.labels)),
        assignee=source.assignees[0] if source.assignees else None,
        body=_rewrite_refs(source.body, mapping, repo), source=source.url, author=source.author,
        closed=parse_time(source.closed) if closed and source.closed else None,
    )
    if before is not None:
        issue.kb, issue.cc, issue.customer = before.kb, before.cc, before.customer
        issue.fields, issue.extra = before.fields, before.extra
    return issue


def _write_comments(change, tracker: Tracker, issue_id: int, source: SourceIssue,
                    mapping, repo) -> int:
    taken = set(tracker.issues.comment_names(issue_id))
    planned: set[str] = set()
    added = 0
    for item in source.comments:
        moment = parse_time(item.created) if item.created else parse_time(source.created)
        base = f"{stamp(moment)}-{slug_of(item.author) or 'someone'}"
        name, n = base, 2
        while name in planned:
            name, n = f"{base}-{n}", n + 1
        planned.add(name)
        if name in taken:
            continue
        comment = Comment(id=name, author=item.author, date=moment,
                          body=_rewrite_refs(item.body, mapping, repo), visibility="public",
                          via="import")
        change.write(tracker.issues.comment_path(issue_id, name), render(comment_to_document(comment)))
        added += 1
    return added
