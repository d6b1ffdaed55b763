"""Issue folders on disk: id <-> ``issues/<id>/``, reading issues and their comments."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..core.document import read_document
from ..errors import InvalidDocument, InvalidValue, NotFound
from ..timeutil import from_stamp, stamp
from .model import Comment, Issue, comment_from_document, issue_from_document

if TYPE_CHECKING:
    import datetime as dt

    from ..core.tracker import Tracker

ISSUES_DIR = "issues"
ID_RE = re.compile(r"#?([1-9][0-9]{0,11})")  # fullmatch; up to 12 digits
MAX_ID = 999_999_999_999


def parse_id(text: str | int) -> int:
    """'42', '#42' or 42 -> 42; anything else is refused."""
    if isinstance(text, int) and text > 0:
        return text
    match = ID_RE.fullmatch(str(text).strip())
    if not match:
        raise InvalidValue(f"not an issue id: {str(text)!r} (expected a number such as 42 or #42)")
    return int(match.group(1))


class IssueStore:
    """All issues of one tracker, read from the working tree."""

    def __init__(self, tracker: "Tracker"):
        self.tracker = tracker
        self.root = tracker.root
        self.schema = tracker.settings.schema

    def ids(self) -> list[int]:
        folder = self.root / ISSUES_DIR
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if ID_RE.fullmatch(n) and n[0] != "#"
                      and (folder / n / "issue.md").is_file())

    def next_id(self) -> int:
        """The next free id; call it while holding the lock (inside a change)."""
        folder = self.root / ISSUES_DIR
        try:
            taken = [int(n) for n in os.listdir(folder) if (n.isascii() and n.isdigit())]
        except FileNotFoundError:
            taken = []
        issue_id = max(taken, default=0) + 1
        if issue_id > MAX_ID:
            raise InvalidValue(f"no more issue ids: {issue_id} has more than 12 digits")
        return issue_id

    def issue_path(self, issue_id: int) -> str:
        return f"{ISSUES_DIR}/{issue_id}/issue.md"

    def exists(self, issue_id: int) -> bool:
        return (self.root / self.issue_path(issue_id)).is_file()

    def load(self, ref: str | int, comments: bool = False) -> Issue:
        issue_id = parse_id(ref)
        rel = self.issue_path(issue_id)
        if not (self.root / rel).is_file():
            raise NotFound(f"no issue #{issue_id} ({rel} does not exist)")
        issue = issue_from_document(read_document(self.root, rel), issue_id, self.schema)
        names = self.comment_names(issue_id)
        if names:
            issue.last_activity = from_stamp(names[-1])
        if comments:
            issue.comments = [self.load_comment(issue_id, name) for name in names]
        return issue

    def load_all(self) -> tuple[list[Issue], list[InvalidDocument]]:
        """Every readable issue, and the errors of those that could not be read."""
        issues, errors = [], []
        for issue_id in self.ids():
            try:
                issues.append(self.load(issue_id))
            except InvalidDocument as err:
                errors.append(err)
        return issues, errors

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.load_all()[0])

    # -- comments -------------------------------------------------------------------
    def comment_names(self, issue_id: int) -> list[str]:
        try:
            names = os.listdir(self.root / ISSUES_DIR / str(issue_id))
        except FileNotFoundError:
            return []
        return sorted((n[:-3] for n in names if n.endswith(".md") and n != "issue.md"
                       and not n.startswith(".")), key=_comment_order)

    def comment_path(self, issue_id: int, comment_id: str) -> str:
        return f"{ISSUES_DIR}/{issue_id}/{comment_id}.md"

    def load_comment(self, issue_id: int, comment_id: str) -> Comment:
        rel = self.comment_path(issue_id, comment_id)
        return comment_from_document(read_document(self.root, rel), comment_id)

    def new_comment_id(self, issue_id: int, moment: "dt.datetime", who: str) -> str:
        base = f"{stamp(moment)}-{slug_of(who) or 'someone'}"
        taken = set(self.comment_names(issue_id))
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def history(self, issue_id: int, limit: int | None = None):
        """The commits that touched this issue's folder, newest first."""
        return self.tracker.repo.log(f"{ISSUES_DIR}/{issue_id}/", limit)

    def files_dir(self, issue_id: int) -> str:
        return f"{ISSUES_DIR}/{issue_id}/files"


def _comment_order(name: str) -> tuple[str, str, int]:
    """Time first, then who, then the same-second counter as a number (-2 before -10)."""
    head, _, tail = name.rpartition("-")
    if head and (tail.isascii() and tail.isdigit()) and len(tail) < 4:
        return name[:16], head, int(tail)
    return name[:16], name, 1


def slug_of(text: str, limit: int = 40) -> str:
    """A file-name-safe slug: lower-case ASCII letters, digits and dashes."""
    import unicodedata

    if "<" in text:
        text = text.split("<")[0].strip() or text.split("<")[1]
    if "@" in text:
        text = text.split("@")[0]
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].strip("-")
