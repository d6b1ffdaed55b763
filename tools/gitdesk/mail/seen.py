"""Which Message-IDs the tracker already holds, and where: what makes a second delivery a no-op.

A small SQLite cache under .gitdesk/cache/, rebuilt from the files whenever it cannot be
trusted: missing, corrupt, or made at a commit this clone does not know. When HEAD moved
(a pull, a checkout, a commit by hand) only the files git says changed are read again.
A hit is checked against the file itself, so a stale row can never swallow a message.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GitdeskError
from ..issues.store import ID_RE, ISSUES_DIR

if TYPE_CHECKING:
    from ..core.tracker import Tracker

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (message_id TEXT NOT NULL, path TEXT NOT NULL,
                                issue INTEGER NOT NULL, PRIMARY KEY (message_id, path));
CREATE INDEX IF NOT EXISTS ids_path ON ids (path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_VERSION = "1"


class SeenIndex:
    def __init__(self, tracker: "Tracker"):
        self.tracker = tracker
        folder = tracker.local_dir / "cache"
        folder.mkdir(exist_ok=True)
        self.path = folder / "mail-ids.sqlite"
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        for attempt in (1, 2):
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.executescript(_SCHEMA)
                db.execute("SELECT count(*) FROM ids").fetchone()
                return db
            except sqlite3.DatabaseError:  # a corrupt cache is rebuilt, never trusted
                if attempt == 2:
                    raise GitdeskError(f"{self.path}: cannot open the mail id cache") from None
                for suffix in ("", "-journal", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.db.close()

    # -- keeping it true ------------------------------------------------------------------
    def refresh(self) -> None:
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        head = self.tracker.head()
        changed = None
        if meta.get("version") == _VERSION and meta.get("head"):
            changed = self.tracker.changed_since(meta["head"], ISSUES_DIR)
        if changed is None:
            self._rebuild()
        elif changed:
            self._reread(changed)
        self._set_head(head)

    def _rebuild(self) -> None:
        rows = []
        folder = self.tracker.root / ISSUES_DIR
        for name in os.listdir(folder) if folder.is_dir() else []:
            if ID_RE.fullmatch(name) and name[0] != "#":
                rows += self._scan_folder(int(name))
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM ids")
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", rows)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (_VERSION,))

    def _reread(self, paths: list[str]) -> None:
        rows = []
        for rel in paths:
            parts = rel.split("/")
            if len(parts) == 3 and parts[2].endswith(".md") and ID_RE.fullmatch(parts[1]):
                found = self._message_id(int(parts[1]), parts[2][:-3])
                if found:
                    rows.append((found, rel, int(parts[1])))
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM ids WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", rows)

    def _scan_folder(self, issue_id: int) -> list[tuple[str, str, int]]:
        folder = self.tracker.root / ISSUES_DIR / str(issue_id)
        rows = []
        for name in os.listdir(folder) if folder.is_dir() else []:
            if name.endswith(".md") and not name.startswith("."):
                found = self._message_id(issue_id, name[:-3])
                if found:
                    rows.append((found, f"{ISSUES_DIR}/{issue_id}/{name}", issue_id))
        return rows

    def _message_id(self, issue_id: int, stem: str) -> str | None:
        """The message_id a file records, reading YAML only for files that mention one."""
        path = self.tracker.root / ISSUES_DIR / str(issue_id) / f"{stem}.md"
        try:
            with open(path, "rb") as handle:
                head = handle.read(8192)
        except OSError:
            return None
        if b"message_id:" not in head:
            return None
        try:
            if stem == "issue":
                value = self.tracker.issues.load(issue_id).extra.get("message_id")
            else:
                value = self.tracker.issues.load_comment(issue_id, stem).message_id
        except GitdeskError:
            return None
        return str(value) if value else None

    def _set_head(self, head: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (head or "",))

    # -- use --------------------------------------------------------------------------------
    def find(self, message_id: str) -> int | None:
        """The issue holding this Message-ID, checked against its file; None if none does."""
        rows = self.db.execute("SELECT path, issue FROM ids WHERE message_id = ?",
                               (message_id,)).fetchall()
        for rel, issue_id in rows:
            stem = rel.rsplit("/", 1)[-1][:-3]
            if self._message_id(issue_id, stem) == message_id:
                return int(issue_id)
        return None

    def add(self, message_id: str, rel: str, issue_id: int, head_before: str | None) -> None:
        """Record what we just committed; the head moves on only if nobody else committed."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?, ?)", (message_id, rel, issue_id))
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("head", "") == (head_before or ""):
            self._set_head(self.tracker.head())
