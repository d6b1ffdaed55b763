"""``gitdesk check``: every file of the tracker against the schema, as ``path:line: message``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .core.tracker import Tracker
from .errors import GitdeskError, InvalidDocument
from .issues.model import Problem, comment_from_document
from .issues.store import ID_RE, ISSUES_DIR, read_document
from .kb.store import KB_DIR


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"


def _from_problems(path: str, problems: list[Problem], lines: dict[str, int]) -> list[Finding]:
    return [Finding(path, lines.get(p.field), p.message, p.warning) for p in problems]


def check(tracker: Tracker) -> list[Finding]:
    findings: list[Finding] = []
    try:
        _ = tracker.settings  # a broken gitdesk.yml is the only finding that matters
    except GitdeskError as err:
        return [Finding("gitdesk.yml", getattr(err, "line", None), getattr(err, "reason", str(err)))]
    from_git = _check_git(tracker)
    conflicted = {f.path for f in from_git if not f.warning}  # one finding per conflicted file
    findings += from_git
    findings += [f for f in _check_issues(tracker) + _check_kb(tracker) if f.path not in conflicted]
    return findings


def _check_git(tracker: Tracker) -> list[Finding]:
    """What a plain ``git pull`` (or merge, rebase) left: conflicts in the tracker's files,
    and issues created in two clones under one number (``gitdesk sync`` renumbers them)."""
    from .sync import clashes, joined_issues, separated

    repo = tracker.repo
    doing = repo.unfinished()
    findings = [Finding(path, None, f"unfinished git {doing or 'merge'}: a conflict git could not settle; "
                        f"abort it (git {doing or 'merge'} --abort), then run gitdesk sync")
                for path in repo.unmerged()]
    if doing and not findings:
        findings.append(Finding(".git", None, f"a git {doing} is in progress (finish or abort it)", True))
    if doing:
        return findings  # what HEAD holds is not what it will hold
    try:
        pending = clashes(tracker)
    except GitdeskError as err:  # no history in common with the shared branch
        return [*findings, Finding(".git", None, str(err))]
    joins = [j for j in joined_issues(tracker) if not any(c.number == j.number for c in pending)]
    present = _identities(tracker) if joins else []
    for join in joins:  # already shared: the numbers are public now
        if separated(join, present):
            continue  # settled: each of the two issues is in a folder of its own again
        what = (f"merge {join.commit[:10]} (a git pull whose conflict was resolved by hand)" if join.how == "merge"
                else f"commit {join.commit[:10]} (a git pull --rebase whose conflict was settled by taking "
                     "one side)")
        findings.append(Finding(f"{ISSUES_DIR}/{join.number}", None, f"two issues #{join.number} were joined by "
                                f"{what}: give the other one a number of its own by hand (kb: sync)"))
    for clash in pending:
        rel = f"{ISSUES_DIR}/{clash.number}"
        if clash.joined:
            findings.append(Finding(rel, None, f"#{clash.number} was created here and on {clash.where}, and "
                                    f"a git {clash.joined} joined the two in one folder: run gitdesk sync, "
                                    "which gives this clone's the next free number"))
        else:
            findings.append(Finding(rel, None, f"#{clash.number} was also created on {clash.where}: the next "
                                    "gitdesk sync gives this clone's the next free number", True))
    return findings


def _identities(tracker: Tracker) -> list[tuple[int, tuple[str, ...]]]:
    """Each issue of the worktree: (number, identity), to find joined issues' homes."""
    from .sync import issue_identity

    return [(int(folder.name), issue_identity((folder / "issue.md").read_bytes()))
            for folder in (tracker.root / ISSUES_DIR).iterdir()
            if folder.name.isdigit() and (folder / "issue.md").is_file()]


def _error(err: InvalidDocument) -> Finding:
    return Finding(err.path, err.line, err.reason)


def _check_issues(tracker: Tracker) -> list[Finding]:
    findings: list[Finding] = []
    folder = tracker.root / ISSUES_DIR
    if not folder.is_dir():
        return findings
    seen: dict[int, str] = {}
    for name in sorted(os.listdir(folder)):
        rel = f"{ISSUES_DIR}/{name}"
        if name.startswith(".") or not (folder / name).is_dir():
            if not name.startswith("."):
                findings.append(Finding(rel, None, "unexpected file: issues/ holds one folder per issue"))
            continue
        if not ID_RE.fullmatch(name) or not name[0].isdigit():
            canonical = str(int(name)) if (name.isascii() and name.isdigit()) else ""
            if canonical not in ("", "0", name) and (folder / canonical).is_dir():  # 07 beside 7
                findings.append(Finding(rel, None, f"duplicate id: {ISSUES_DIR}/{canonical} "
                                                   f"is also #{canonical}"))
            else:
                findings.append(Finding(rel, None, "folder name is not an issue id (a number like 42)"))
            continue
        issue_id = int(name)
        if issue_id in seen:
            findings.append(Finding(rel, None, f"duplicate id: {seen[issue_id]} is also #{issue_id}"))
        seen[issue_id] = rel
        findings += _check_issue(tracker, issue_id)
    return findings


def _check_issue(tracker: Tracker, issue_id: int) -> list[Finding]:
    from .issues.model import issue_from_document

    rel = tracker.issues.issue_path(issue_id)
    if not (tracker.root / rel).is_file():
        return [Finding(f"{ISSUES_DIR}/{issue_id}", None, "missing issue.md")]
    try:
        doc = read_document(tracker.root, rel)
    except InvalidDocument as err:
        return [_error(err)]
    issue = issue_from_document(doc, issue_id, tracker.settings.schema)
    findings = _from_problems(rel, issue.problems, doc.lines)
    files_dir = tracker.root / tracker.issues.files_dir(issue_id)
    attached = set(issue.attachments)
    for comment_id in tracker.issues.comment_names(issue_id):
        crel = tracker.issues.comment_path(issue_id, comment_id)
        try:
            cdoc = read_document(tracker.root, crel)
        except InvalidDocument as err:
            findings.append(_error(err))
            continue
        comment = comment_from_document(cdoc, comment_id)
        findings += _from_problems(crel, comment.problems, cdoc.lines)
        attached |= set(comment.attachments)
    for name in sorted(attached):
        if "/" in name or not (files_dir / name).is_file():
            findings.append(Finding(rel, None, f"attachment {name!r} is not in files/"))
    for kb_slug in issue.kb:
        if not tracker.kb.exists(kb_slug):
            findings.append(Finding(rel, doc.line_of("kb"), f"kb: no article {kb_slug!r}",
                                    warning=True))
    return findings


def _check_kb(tracker: Tracker) -> list[Finding]:
    from .kb.model import article_from_document

    findings: list[Finding] = []
    for slug in tracker.kb.slugs():
        rel = f"{KB_DIR}/{slug}.md"
        try:
            doc = read_document(tracker.root, rel)
        except InvalidDocument as err:
            findings.append(_error(err))
            continue
        article = article_from_document(doc, slug)
        findings += _from_problems(rel, article.problems, doc.lines)
        if slug == "index":
            findings.append(Finding(rel, None, "'index' is reserved for the KB index page"))
        for number in article.issues:
            if not tracker.issues.exists(number):
                findings.append(Finding(rel, doc.line_of("issues"), f"issues: no issue #{number}",
                                        warning=True))
    return findings
