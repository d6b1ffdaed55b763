"""The search index's SQLite file: its schema, its lock, and throwing it away when it cannot be trusted.

The file is a cache (``.gitdesk/cache/search.sqlite``, git-ignored): everything in it can be
made again from the tracker's files, so a file that is missing, of another format version,
or corrupt is deleted and rebuilt, never repaired or trusted. One process at a time brings
it up to date, holding ``search.lock``; readers use SQLite's WAL mode, so a search reads a
consistent snapshot while another process writes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GitdeskError, LockTimeout

VERSION = "4"  # bump when the schema or what is indexed changes: old files are rebuilt
FILE_NAME = "search.sqlite"
TOKENIZER = "porter unicode61 remove_diacritics 2"  # stems: 'backups' finds 'backup'
ISSUE_COLUMNS = ("title", "labels", "body", "comments", "notes")  # notes: internal, staff only
ARTICLE_COLUMNS = ("title", "tags", "body")

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE issue (
    id INTEGER PRIMARY KEY, sig TEXT NOT NULL, readable INTEGER NOT NULL,
    status TEXT, type TEXT, priority TEXT, visibility TEXT, customer TEXT, assignee TEXT,
    data TEXT, errors TEXT NOT NULL, record TEXT, comments TEXT);
CREATE TABLE issue_label (label TEXT NOT NULL, issue INTEGER NOT NULL,
                          PRIMARY KEY (label, issue)) WITHOUT ROWID;
CREATE INDEX issue_label_issue ON issue_label (issue);
CREATE TABLE article (
    n INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, sig TEXT NOT NULL, readable INTEGER NOT NULL,
    visibility TEXT, data TEXT, errors TEXT NOT NULL);
CREATE VIRTUAL TABLE issue_text USING fts5({", ".join(ISSUE_COLUMNS)}, tokenize='{TOKENIZER}');
INSERT INTO issue_text (issue_text, rank) VALUES ('rank', 'bm25(10.0, 5.0, 2.0, 1.0, 1.0)');
CREATE VIRTUAL TABLE article_text USING fts5({", ".join(ARTICLE_COLUMNS)}, tokenize='{TOKENIZER}');
INSERT INTO article_text (article_text, rank) VALUES ('rank', 'bm25(10.0, 5.0, 1.0)');
CREATE VIRTUAL TABLE issue_terms USING fts5vocab(issue_text, row);
CREATE VIRTUAL TABLE article_terms USING fts5vocab(article_text, row);
INSERT INTO meta VALUES ('version', '{VERSION}');
"""

_CORRUPT = (11, 26)  # SQLITE_CORRUPT (and its extended codes), SQLITE_NOTADB


def is_corrupt(err: sqlite3.DatabaseError) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _CORRUPT:
        return True
    text = str(err).lower()
    return any(word in text for word in ("malformed", "not a database", "corrupt"))


class IndexFile:
    """Where the index lives, and the one way to open it."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE_NAME
        self.lock_path = folder / "search.lock"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the index's own lock (not the tracker's: searching never waits for a commit)."""
        timeout = float(os.environ.get("GITDESK_LOCK_TIMEOUT", "60"))
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise LockTimeout(f"the search index is busy: another command held "
                                          f"{self.lock_path.name} for {timeout:.0f} s; try again") from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)

    def open(self) -> sqlite3.Connection:
        """A connection to an index of this version; call it holding the lock."""
        for attempt in (1, 2):
            db = None
            try:
                db = self._connect()
                if _usable(db):
                    return db
            except sqlite3.DatabaseError as err:
                if attempt == 2 or not is_corrupt(err):
                    if db is not None:
                        db.close()
                    raise failure(self.path, err) from None
            if db is not None:
                db.close()
            self.discard()
        raise GitdeskError(f"{self.path}: cannot create the search index")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a lost last write is re-read, never wrong
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def discard(self) -> None:
        """Delete the file (and its journal): it is rebuilt from the tracker's files."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _usable(db: sqlite3.Connection) -> bool:
    """True for an index of this version; a new empty file gets the schema first."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        db.executescript(_SCHEMA)
        return True
    if "meta" not in tables:
        return False
    row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return bool(row) and row[0] == VERSION


class IndexUnavailable(GitdeskError):
    """The index cannot be used (not a corrupt file, which is rebuilt): e.g. a read-only folder."""


def failure(path: Path, err: sqlite3.Error) -> GitdeskError:
    """A cache problem the user can act on, in one line."""
    return IndexUnavailable(f"{path}: search index: {err} (delete the file to rebuild it)")
