"""Which issues match a filter, and in what order: shared by list, search and the queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..config import Schema
from .model import Issue

SORT_FIELDS = ("created", "id", "priority", "status", "title", "updated")


def _sort_key(field: str, schema: Schema):
    keys = {
        "id": lambda i: i.id,
        "created": lambda i: (i.created, i.id),
        "updated": lambda i: (i.activity, i.id),
        "priority": lambda i: (-schema.priority_rank(i.priority), i.id),
        "status": lambda i: (schema.statuses.index(i.status) if i.status in schema.statuses
                             else len(schema.statuses), i.id),
        "title": lambda i: (i.title.lower(), i.id),
    }
    return keys[field]


@dataclass(frozen=True)
class IssueQuery:
    """A filter as ``issue list`` takes it. Labels match case-insensitively, all of them."""

    state: str = "open"  # open, closed or all
    statuses: Sequence[str] = ()
    types: Sequence[str] = ()
    labels: Sequence[str] = ()
    priorities: Sequence[str] = ()
    customer: str | None = None
    visibility: str | None = None
    assignee: str | None = None
    unassigned: bool = False

    def matches(self, issue: Issue, schema: Schema) -> bool:
        closed = schema.is_closed(issue.status)
        state = "all" if self.statuses else self.state
        have = {label.lower() for label in issue.labels}
        return ((state == "all" or (state == "closed") == closed)
                and (not self.statuses or issue.status in self.statuses)
                and (not self.types or issue.type in self.types)
                and all(label.lower() in have for label in self.labels)
                and (not self.priorities or issue.priority in self.priorities)
                and (not self.customer or (issue.customer or "").lower() == self.customer.lower())
                and (not self.visibility or issue.visibility == self.visibility)
                and (not self.assignee or issue.assignee == self.assignee)
                and (not self.unassigned or not issue.assignee))

    def select(self, issues: Iterable[Issue], schema: Schema, sort: str = "id",
               ascending: bool = False, limit: int = 0) -> list[Issue]:
        """Matching issues, sorted (newest / most urgent first unless ascending)."""
        chosen = sorted((i for i in issues if self.matches(i, schema)),
                        key=_sort_key(sort, schema), reverse=not ascending)
        return chosen[:limit] if limit else chosen
