"""GitHub issue exports -> issues: ``gh issue list --json ...`` output and i-d-template archives.

A bridge: each issue keeps its original number (as the id when all of an export's new
numbers are free, else new ids after the highest one), title, body, labels, state, dates,
author and comments (``via: import``); ``source`` holds its GitHub URL. The URL identifies
the issue, so a second import of the same file adds only what is new, and an unchanged file
changes nothing (no commit).

On a re-import GitHub owns what it exported (title, body, labels, open/closed, dates,
author): a change there is applied. Everything gitdesk adds (type, priority, assignee,
customer, kb links, custom fields, a finer status such as ``waiting``) stays as staff set it,
and local edits alone never make a re-import write anything.

Also read: the REST API's issue list (``gh api repos/O/R/issues``: ``user``, ``html_url``,
``created_at``; pull requests there carry ``pull_request`` and are left out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.tracker import Tracker
from ..errors import InvalidDocument, InvalidValue
from ..issues.actions import stage_comment, stage_issue
from ..issues.model import Comment, Issue, normalize_body
from ..issues.store import ISSUES_DIR, MAX_ID, slug_of
from ..timeutil import parse_time, stamp

TYPE_LABELS = {"bug": "bug", "enhancement": "feature", "feature": "feature", "task": "task"}
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
URL_RE = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/(issues|pull)/(\d+)")
STATES = {"open": False, "closed": True}


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
    closed: bool
    labels: list[str]
    author: str
    created: Any
    updated: Any
    closed_at: Any
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
    issues: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _login(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("login") or value.get("name") or "ghost")
    return str(value or "ghost")


def _read_json(path: Path) -> tuple[Any, str]:
    rel = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidDocument(rel, "no such file") from None
    except OSError as err:
        raise InvalidDocument(rel, f"cannot read: {err.strerror}") from None
    try:  # UTF-8 (with or without a BOM), or UTF-16/32 as Windows shells write redirections
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise InvalidDocument(rel, "not UTF-8 text") from None
    text = text.removeprefix("\ufeff")
    try:
        return json.loads(text), text
    except json.JSONDecodeError as err:
        raise InvalidDocument(rel, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno) from None


def _record_lines(text: str, archive: bool) -> list[int]:
    """The line on which each record of the issue list starts (for error messages)."""
    decoder = json.JSONDecoder()
    space = re.compile(r"[ \t\n\r]*")

    def skip(i: int) -> int:
        return space.match(text, i).end()  # type: ignore[union-attr]

    try:
        i = skip(0)
        if archive:
            i = skip(i + 1)  # past '{'
            while text[i] != "}":
                key, i = decoder.raw_decode(text, i)
                i = skip(skip(i) + 1)  # past ':'
                if key == "issues":
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            else:
                return []
        i = skip(i + 1)  # past '['
        starts = []
        while text[i] != "]":
            starts.append(i)
            _, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i] == ",":
                i = skip(i + 1)
    except (ValueError, IndexError):
        return []
    lines, line, last = [], 1, 0
    for start in starts:
        line += text.count("\n", last, start)
        last = start
        lines.append(line)
    return lines


def _time(value: Any, rel: str, what: str, line: Callable[[], int | None]) -> Any:
    if value in (None, ""):
        return None
    try:
        return parse_time(value)
    except (ValueError, TypeError):
        raise InvalidDocument(rel, f"{what}: {value!r} is not a date", line()) from None


def _label(name: object) -> str:
    """A GitHub label as ours: commas separate our labels, and a label is one short line."""
    return " ".join(str(name).replace(",", " ").split())[:100]


def read_export(path: Path, repo: str | None = None) -> tuple[str | None, list[SourceIssue], int]:
    """Parse an export file; returns (owner/name, issues, number of pull requests left out).

    Refuses (InvalidDocument naming the file and line) anything that is not an export, or
    an issue without a number or title, with a bad date or state, or a number given twice.
    """
    rel = str(path)
    if repo is not None and not REPO_RE.match(repo):
        raise InvalidValue(f"--repo {repo!r}: expected owner/name, such as tlswg/tls13-spec")
    data, text = _read_json(path)
    pulls = 0
    archive = isinstance(data, dict)
    if archive and "issues" in data:
        repo = repo or (data.get("repo") if isinstance(data.get("repo"), str) else None)
        records = data["issues"]
        if not isinstance(records, list):
            raise InvalidDocument(rel, "'issues' must be a list of issues")
        pulls = len(data.get("pulls") or [])
    elif isinstance(data, list):
        records = data
    else:
        raise InvalidDocument(rel, "not a GitHub issue export (expected a list of issues as "
                                   "'gh issue list --json' prints, or an archive with an 'issues' "
                                   "key)", 1)
    lines: list[int] | None = None

    def where(n: int) -> int | None:
        nonlocal lines
        if lines is None:
            lines = _record_lines(text, archive)
        return lines[n] if n < len(lines) else None

    issues: list[SourceIssue] = []
    seen: dict[int, int] = {}
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidDocument(rel, f"record {n + 1}: not an issue object", where(n))
        url = str(record.get("url") or record.get("html_url") or "")
        if record.get("pull_request") or record.get("isPullRequest") or "/pull/" in url:
            pulls += 1
            continue
        number = record.get("number")
        label = f"record {n + 1}" + (f" (number {number})" if number is not None else "")
        if isinstance(number, str) and (number.isascii() and number.isdigit()):
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ID:
            raise InvalidDocument(rel, f"{label}: " + ("no number" if number is None else
                                  f"number {number!r} is not a positive whole number"), where(n))
        if number in seen:
            raise InvalidDocument(rel, f"{label}: number {number} is also record {seen[number]}",
                                  where(n))
        seen[number] = n + 1
        title = record.get("title")
        if not isinstance(title, (str, int, float)) or not " ".join(str(title).split()):
            raise InvalidDocument(rel, f"{label}: no title", where(n))
        state = str(record.get("state") or "open").lower()
        if state not in STATES:
            raise InvalidDocument(rel, f"{label}: unknown state {record.get('state')!r} "
                                       "(expected OPEN or CLOSED)", where(n))
        if not repo and url:
            match = URL_RE.match(url)
            repo = match.group(1) if match else None

        def at(n: int = n) -> int | None:
            return where(n)

        raw_labels = record.get("labels")
        labels = [lab.get("name") if isinstance(lab, dict) else lab
                  for lab in (raw_labels if isinstance(raw_labels, list) else [])]
        comments = []
        raw_comments = record.get("comments")  # the REST API gives a count here, not a list
        for c in raw_comments if isinstance(raw_comments, list) else []:
            if not isinstance(c, dict):
                continue
            if not repo and isinstance(c.get("url"), str):
                match = URL_RE.match(c["url"])
                repo = match.group(1) if match else None
            comments.append(SourceComment(
                _login(c.get("author") or c.get("user")), str(c.get("body") or ""),
                _time(c.get("createdAt") or c.get("created_at"), rel, f"{label}: comment date",
                      at)))
        issues.append(SourceIssue(
            number=number, title=" ".join(str(title).split()), body=str(record.get("body") or ""),
            closed=STATES[state], labels=list(dict.fromkeys(_label(x) for x in labels if x)),
            author=_login(record.get("author") or record.get("user")),
            created=_time(record.get("createdAt") or record.get("created_at"), rel,
                          f"{label}: createdAt", at),
            updated=_time(record.get("updatedAt") or record.get("updated_at"), rel,
                          f"{label}: updatedAt", at),
            closed_at=_time(record.get("closedAt") or record.get("closed_at"), rel,
                            f"{label}: closedAt", at),
            url=url,
            assignees=[_login(a) for a in record.get("assignees") or [] if a], comments=comments,
        ))
    if issues and not repo and not all(i.url for i in issues):
        raise InvalidDocument(rel, "cannot tell which GitHub repository this export is from "
                                   "(no issue or comment URL in it); give it with --repo owner/name")
    for issue in issues:
        issue.url = issue.url or f"https://github.com/{repo}/issues/{issue.number}"
    return repo, issues, pulls


# -- '#12' references ----------------------------------------------------------------

_CODE_RE = re.compile(
    r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[^\n]*\n(?s:.*?)(?:^[ \t]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)"
    r"|(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)",
    re.MULTILINE,
)
_REF_RE = re.compile(r"(?<![\w/&#])#([1-9][0-9]*)\b")


def _rewrite_refs(text: str, mapping: dict[int, int], repo: str | None) -> str:
    """'#12' -> our id for imported issues; other numbers (pull requests) name their repo.

    Code (fenced blocks and `spans`) is left exactly as written.
    """
    text = normalize_body(text)

    def swap(match: re.Match) -> str:
        number = int(match.group(1))
        if number in mapping:
            return f"#{mapping[number]}"
        return f"{repo}#{number}" if repo else match.group(0)

    out, last = [], 0
    for code in _CODE_RE.finditer(text):
        out.append(_REF_RE.sub(swap, text[last:code.start()]))
        out.append(code.group(0))
        last = code.end()
    out.append(_REF_RE.sub(swap, text[last:]))
    return "".join(out)


# -- import --------------------------------------------------------------------------

def _repo_numbers(issues: list[Issue], repo: str | None) -> dict[int, int]:
    """GitHub number -> our id, for the issues of ``repo`` imported before."""
    found = {}
    for issue in issues:
        match = URL_RE.match(issue.source or "")
        if match and match.group(1) == repo and match.group(2) == "issues":
            found[int(match.group(3))] = issue.id
    return found


def import_github(tracker: Tracker, path: Path, repo: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import an export file in one commit; re-importing the same file changes nothing."""
    repo, sources, pulls = read_export(path, repo)
    result = ImportResult(skipped_pulls=pulls, repo=repo)
    schema = tracker.settings.schema
    with tracker.change() as change:
        loaded = tracker.issues.load_all()[0]
        existing = {i.source: i for i in loaded if i.source}
        mapping = _repo_numbers(loaded, repo)
        mapping.update({s.number: existing[s.url].id for s in sources if s.url in existing})
        fresh = sorted((s for s in sources if s.url not in existing), key=lambda s: s.number)
        folder = tracker.root / ISSUES_DIR
        if all(not (folder / str(s.number)).exists() for s in fresh):
            mapping.update({s.number: s.number for s in fresh})
        else:
            next_id = tracker.issues.next_id()
            for offset, s in enumerate(fresh):
                mapping[s.number] = next_id + offset
        if fresh and max(mapping[s.number] for s in fresh) > MAX_ID:
            raise InvalidValue(f"{path}: no room for {len(fresh)} new ids (ids have at most 12 digits)")
        for n, source in enumerate(sources, 1):
            if progress:
                progress(n, len(sources))
            issue_id = mapping[source.number]
            before = existing.get(source.url)
            issue = _to_issue(source, issue_id, schema, mapping, repo, before)
            wrote = before is None or _github_view(issue, schema) != _github_view(before, schema)
            if wrote:
                stage_issue(change, issue)
            added = _write_comments(change, tracker, issue_id, source, mapping, repo)
            result.comments += added
            if before is None:
                action, result.created = "new", result.created + 1
            elif wrote or added:
                action, result.updated = "updated", result.updated + 1
            else:
                action, result.unchanged = "unchanged", result.unchanged + 1
            result.issues.append({"number": source.number, "id": issue_id, "source": source.url,
                                  "action": action, "comments_added": added})
        change.message = (f"import github {repo or path.name}: {result.created} new, "
                          f"{result.updated} updated, {result.comments} "
                          f"comment{'' if result.comments == 1 else 's'}")
    result.commit = change.commit
    return result


def _github_view(issue: Issue, schema) -> tuple:
    """The fields GitHub owns; only a difference here makes a re-import rewrite issue.md."""
    closed = schema.is_closed(issue.status)
    return (issue.title, normalize_body(issue.body), list(issue.labels), issue.author,
            issue.created, issue.source, closed, issue.closed if closed else None)


def _to_issue(source: SourceIssue, issue_id: int, schema, mapping, repo, before: Issue | None) -> Issue:
    created = source.created or parse_time("1970-01-01T00:00:00Z")
    updated = source.updated or max(d for d in (created, source.closed_at) if d)
    status = schema.close_status if source.closed else schema.reopen_status
    if before is not None and schema.is_closed(before.status) == source.closed:
        status = before.status  # keep a finer local status (waiting, resolved) that agrees
    if before is not None:
        issue_type = before.type
    else:
        issue_type = next((TYPE_LABELS[lab.lower()] for lab in source.labels
                           if TYPE_LABELS.get(lab.lower()) in schema.types), None)
        issue_type = issue_type or ("task" if "task" in schema.types else schema.default_type)
    issue = Issue(
        id=issue_id, title=_rewrite_refs(source.title, mapping, repo), type=issue_type,
        status=status, priority=before.priority if before else schema.default_priority,
        visibility="public", created=created, updated=updated, labels=list(source.labels),
        assignee=source.assignees[0] if source.assignees else None,
        body=_rewrite_refs(source.body, mapping, repo), source=source.url, author=source.author,
        closed=(source.closed_at or updated) if source.closed else None,
    )
    if before is not None:  # what staff set here stays; GitHub owns the rest
        issue.updated = max(before.updated, updated)
        issue.assignee, issue.resolution = before.assignee, before.resolution
        issue.kb, issue.cc, issue.customer, issue.due = before.kb, before.cc, before.customer, before.due
        issue.attachments = before.attachments
        issue.waiting_since, issue.paused_seconds = before.waiting_since, before.paused_seconds
        issue.fields, issue.extra = before.fields, before.extra
    return issue


def _write_comments(change, tracker: Tracker, issue_id: int, source: SourceIssue,
                    mapping, repo) -> int:
    taken = set(tracker.issues.comment_names(issue_id))
    planned: set[str] = set()
    added = 0
    for item in source.comments:
        moment = item.created or source.created or parse_time("1970-01-01T00:00:00Z")
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
        stage_comment(change, issue_id, comment)
        added += 1
    return added
