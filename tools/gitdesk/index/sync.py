"""Bringing the index up to date from the files: ask git what changed, re-read only that, drop what vanished.

Every answer starts here, so the index is never stale. What changed since the last answer
is found without reading every file, which at 100,000 issues would take seconds:

- commits (``git pull``, ``git checkout``, gitdesk's own writes): the paths that differ
  between the tree of HEAD when the index was last brought up to date and HEAD's tree now
  (``git diff-tree``);
- edits not committed, staged or not, in place or not: ``git status`` (tracked files,
  which git checks against the stat data in its own index, in C);
- files git does not track yet (a comment written by hand, never committed): an issue
  folder's own time stamp changes whenever a file in it is created, deleted or renamed,
  so every folder is stat'ed and a changed one re-read; its untracked files are then
  watched one by one until they are committed or gone, which catches an in-place edit.

A folder or file changed within the last two seconds is re-read every time, because a
second change within the same timestamp tick could leave its stamp unchanged (git's
"racy clean" problem). Where git cannot answer (no commit yet, an old tree that is gone)
every issue folder is checked file by file as before. KB articles are few: each file is
stat'ed. A change to the schema in gitdesk.yml re-reads everything, since it decides the
defaults of missing fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from ..errors import GitdeskError, InvalidDocument, NotFound
from ..issues.store import ID_RE, ISSUES_DIR
from ..kb.store import KB_DIR
from . import records
from .db import IndexFile, failure, is_corrupt

if TYPE_CHECKING:
    from ..core.tracker import Tracker

T = TypeVar("T")
RACY_NS = 2_000_000_000
BATCH = 500  # issues per transaction: an interrupted first build keeps what it did
PARALLEL_FROM = 2000  # changed issues; fewer are read faster than processes start
_CONTROL = {c: " " for c in [*range(0, 9), *range(11, 32), 127]}  # snippet markers stay unique


def with_index(tracker: "Tracker", work: Callable[[sqlite3.Connection], T]) -> T:
    """Bring the index up to date, then run ``work`` on it; a corrupt file is rebuilt once."""
    index = IndexFile(tracker.local_dir / "cache")
    for attempt in (1, 2):
        db = None
        try:
            with index.locked():
                db = index.open()
                refresh(tracker, db)
            return work(db)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError):
            raise  # a mistake in gitdesk, not a cache to do without: never hidden
        except sqlite3.DatabaseError as err:
            if attempt == 2 or not is_corrupt(err):
                raise failure(index.path, err) from None
            if db is not None:
                db.close()
                db = None
            with index.locked():
                index.discard()
        finally:
            if db is not None:
                db.close()
    raise AssertionError("unreachable")


def refresh(tracker: "Tracker", db: sqlite3.Connection) -> None:
    started = time.time_ns()
    settings = _settings_sig(tracker)
    if _meta(db, "settings") != settings:
        with _transaction(db):
            db.execute("UPDATE issue SET sig = ''")
            db.execute("UPDATE article SET sig = ''")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)", (settings,))
            db.execute("DELETE FROM meta WHERE key = 'folders'")
    changes = _Changes(tracker, db, started)
    on_disk = changes.folders()
    folders = hashlib.blake2b("\0".join(f"{i}={sig}" for i, sig in on_disk.items()).encode(),
                              digest_size=16).hexdigest()
    if folders == _meta(db, "folders") and "" not in on_disk.values():
        restamped, gone = set(), []  # every folder as it was: no need to compare them one by one
    else:
        known = dict(db.execute("SELECT id, sig FROM issue").fetchall())
        restamped = {int(i) for i, sig in on_disk.items() if not sig or known.get(int(i)) != sig}
        gone = [(i,) for i in known if str(i) not in on_disk]
    changed = {i for i in restamped | changes.issues(on_disk) if str(i) in on_disk}
    for rows in _read_issues(tracker, sorted(changed), on_disk):
        with _transaction(db):
            _write_issues(db, rows)
    if gone:
        with _transaction(db):
            for table, key in (("issue", "id"), ("issue_text", "rowid"), ("issue_label", "issue")):
                db.executemany(f"DELETE FROM {table} WHERE {key} = ?", gone)
    changes.save(restamped & changed, folders)
    articles = _scan(tracker.root / KB_DIR, started, folders=False)
    known = dict(db.execute("SELECT slug, sig FROM article").fetchall())
    stale = [slug for slug, sig in articles.items() if not sig or known.get(slug) != sig]
    stale += [slug for slug in known if slug not in articles]
    if stale:
        with _transaction(db):
            for slug in stale:
                _write_article(db, tracker, slug, articles.get(slug))


class _Changes:
    """What git and the folders' stamps say changed since the index was last brought up to date.

    Kept in ``meta``: ``tree`` (HEAD's tree then), ``dirty`` (paths that differed from it
    then: they are re-read once more when they stop differing) and ``untracked`` (files git
    does not track, with their stamps).
    """

    def __init__(self, tracker: "Tracker", db: sqlite3.Connection, started: int):
        self.root = tracker.root
        self.repo = tracker.repo
        self.db = db
        self.started = started
        self.tree = self.repo.head_tree()
        # started now, answered after the folders are stat'ed: git and Python work at once
        self.status = self.repo.changed_files(ISSUES_DIR) if self.tree else None
        self.dirty: list[str] = []
        self.vanished: set[int | None] = set()  # issues with a file git stopped tracking
        self.watched: dict[str, str] = {}  # untracked file -> its stamp, as last recorded

    def folders(self) -> dict[str, str]:
        """Issue id -> the stamp of its folder ('' when it must be re-read)."""
        if not self.tree:
            return _scan(self.root / ISSUES_DIR, self.started, folders=True)
        return _folders(self.root / ISSUES_DIR, self.started)

    def issues(self, on_disk: dict[str, str]) -> set[int]:
        """Issues whose files changed in ways their folder's stamp does not show."""
        old = _meta(self.db, "tree") or None
        self.watched = json.loads(_meta(self.db, "untracked") or "{}")
        paths = set(json.loads(_meta(self.db, "dirty") or "[]"))
        changed = {_issue_of(p) for p, stamp in self.watched.items()
                   if not stamp or _stamp(self.root / p, self.started) != stamp}
        if self.status is not None:
            found = self.status()
            self.dirty = [path for _, path in found]
            paths.update(self.dirty)
            self.vanished |= {_issue_of(path) for code, path in found if "D" in code}
        if old != self.tree:
            diff = self.repo.tree_changes(old, self.tree, ISSUES_DIR) if old and self.tree else None
            if diff is None:  # no tree to compare with: every folder is checked
                return {int(i) for i in on_disk}
            paths.update(path for _, path in diff)
            # a file that left the tree may still be on disk, untracked now: watch it
            self.vanished |= {_issue_of(path) for code, path in diff if code == "D"}
        changed |= {_issue_of(p) for p in paths}
        changed.discard(None)
        return changed  # type: ignore[return-value]

    def save(self, changed: set[int], folders: str) -> None:
        """Record what the next call compares with; ``changed``: the folders whose stamp
        changed (a file created, deleted or renamed), whose untracked files are looked up again."""
        changed = changed | {i for i in self.vanished if i is not None}
        watched = {p: s for p, s in self.watched.items() if _issue_of(p) not in changed}
        if changed and self.tree:
            paths = [f"{ISSUES_DIR}/{i}" for i in sorted(changed)]
            spec = paths if len(paths) <= 200 else [ISSUES_DIR]
            for path in self.repo.untracked(spec):
                if path.endswith(".md") and _issue_of(path) in changed:
                    watched[path] = _stamp(self.root / path, self.started)
        with _transaction(self.db):
            for key, value in (("tree", self.tree or ""), ("dirty", json.dumps(sorted(set(self.dirty)))),
                               ("folders", folders),
                               ("untracked", json.dumps(watched, sort_keys=True))):
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _issue_of(path: str) -> int | None:
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == ISSUES_DIR and ID_RE.fullmatch(parts[1]):
        return int(parts[1])
    return None


def problems(db: sqlite3.Connection) -> list[str]:
    """Why files were left out of the index (unreadable), as ``issue list`` warns."""
    found: list[str] = []
    for table, key in (("issue", "id"), ("article", "slug")):
        for (errors,) in db.execute(f"SELECT errors FROM {table} WHERE errors != '[]' ORDER BY {key}"):
            found += json.loads(errors)
    return found


# -- what is on disk ------------------------------------------------------------------------

def _scan(folder: os.PathLike, started: int, folders: bool) -> dict[str, str]:
    """Issue id (or article slug) -> signature of its files; '' when it must be re-read."""
    found: dict[str, str] = {}
    try:
        entries = os.scandir(folder)
    except OSError:
        return found
    with entries:
        for entry in entries:
            name = entry.name
            if folders:
                if name[0] != "#" and ID_RE.fullmatch(name):
                    sig = _folder_sig(entry.path, started)
                    if sig is not None:
                        found[name] = sig
            elif name.endswith(".md") and name[0] != ".":
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found[name[:-3]] = _sig([_describe(name, info)], started)
    return found


def _folder_sig(path: str, started: int) -> str | None:
    parts = []
    try:
        with os.scandir(path) as files:
            for entry in files:
                name = entry.name
                if name[-3:] == ".md" and name[0] != ".":
                    info = entry.stat(follow_symlinks=False)
                    parts.append(_describe(name, info))
    except OSError:  # not a folder, or it vanished meanwhile
        return None
    if not any(p[0] == "issue.md" for p in parts):
        return None
    parts.sort()
    return _sig(parts, started)


def _folders(folder: os.PathLike, started: int) -> dict[str, str]:
    """Issue id -> its folder's own stamp ('' when racy): one stat of each folder, relative
    to an open handle on ``issues/`` (100,000 of them in a fifth of a second)."""
    found: dict[str, str] = {}
    racy = started - RACY_NS
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return found
    try:
        stat = os.stat
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                # what ID_RE accepts (a folder named by a number), tested without a regex
                if not (name.isdigit() and name.isascii() and name[0] != "0" and len(name) <= 12
                        and (entry.is_dir(follow_symlinks=False) or entry.is_symlink())):
                    continue  # a symbolic link is read (and refused with a warning) as without the index
                try:
                    info = stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:  # vanished meanwhile
                    continue
                mtime, ctime = info.st_mtime_ns, info.st_ctime_ns
                found[name] = "" if mtime >= racy or ctime >= racy else f"d{mtime}.{ctime}.{info.st_ino}"
    finally:
        os.close(fd)
    return found


def _stamp(path, started: int) -> str:
    """A file's stamp ('' if missing or racy)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return "gone"
    if max(info.st_mtime_ns, info.st_ctime_ns) >= started - RACY_NS:
        return ""
    return f"{info.st_mtime_ns}.{info.st_ctime_ns}.{info.st_size}.{info.st_ino}"


def _describe(name: str, info: os.stat_result) -> tuple[str, int, int, int, int]:
    return name, info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino


def _sig(parts: list[tuple[str, int, int, int, int]], started: int) -> str:
    if max(max(p[1], p[2]) for p in parts) >= started - RACY_NS:
        return ""  # racy: read now, and again next time
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _settings_sig(tracker: "Tracker") -> str:
    """What of gitdesk.yml the indexed rows depend on: the schema (defaults, fields)."""
    schema = tracker.settings.raw.get("schema")
    text = json.dumps(schema, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# -- reading files into rows --------------------------------------------------------------

def _clean(text: str) -> str:
    return text.translate(_CONTROL)


_forked: tuple["Tracker", dict[str, str]] | None = None  # what forked readers inherit


def _read_issues(tracker: "Tracker", ids: list[int], sigs: dict[str, str]) -> Iterator[list[tuple]]:
    """The rows of these issues, a batch at a time; a first build of thousands of issues
    reads in several processes (parsing YAML is most of its time)."""
    global _forked
    batches = [ids[k:k + BATCH] for k in range(0, len(ids), BATCH)]
    workers = min(os.cpu_count() or 1, 8)
    if len(ids) < PARALLEL_FROM or workers < 2:
        for batch in batches:
            yield [_issue_row(tracker, i, sigs[str(i)]) for i in batch]
        return
    import multiprocessing as mp  # here: a warm index never needs it (8 ms of imports)
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in mp.get_all_start_methods():
        for batch in batches:
            yield [_issue_row(tracker, i, sigs[str(i)]) for i in batch]
        return
    _forked = (tracker, sigs)
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            yield from pool.map(_read_batch, batches)
    finally:
        _forked = None


def _read_batch(batch: list[int]) -> list[tuple]:
    assert _forked is not None
    tracker, sigs = _forked
    return [_issue_row(tracker, i, sigs[str(i)]) for i in batch]


def _issue_row(tracker: "Tracker", issue_id: int, sig: str) -> tuple:
    store = tracker.issues
    try:
        issue = store.load(issue_id)
    except (InvalidDocument, NotFound) as err:
        if isinstance(err, NotFound):
            errors, record = [], None
        else:
            errors, record = [f"skipped {err}"], records.encode_error(err)
        return (issue_id, sig, 0, None, None, None, None, None, None, None, json.dumps(errors),
                record, None), None, []
    public, internal, errors, comments, broken = [], [], [], [], []
    for name in store.comment_names(issue_id):
        try:
            comment = store.load_comment(issue_id, name)
        except NotFound:
            continue
        except InvalidDocument as err:
            errors.append(f"skipped {err}")
            broken.append(err)
            continue
        comments.append(comment)
        (public if comment.is_public else internal).append(_clean(comment.body))
    data = issue.to_json(tracker.settings.schema)
    row = (issue_id, sig, 1, issue.status, issue.type, issue.priority, issue.visibility,
           (issue.customer or "").lower() or None, issue.assignee, json.dumps(data, default=str), json.dumps(errors),
           records.encode(issue, comments), records.encode_comments(comments, broken))
    text = (issue_id, _clean(issue.title), _clean(" ".join(issue.labels)), _clean(issue.body),
            "\n\n".join(public), "\n\n".join(internal))
    return row, text, [(label.lower(), issue_id) for label in issue.labels]


def _write_issues(db: sqlite3.Connection, rows: list[tuple]) -> None:
    ids = [(row[0],) for row, _, _ in rows]
    db.executemany("DELETE FROM issue_text WHERE rowid = ?", ids)
    db.executemany("DELETE FROM issue_label WHERE issue = ?", ids)
    db.executemany("INSERT OR REPLACE INTO issue VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [row for row, _, _ in rows])
    db.executemany("INSERT INTO issue_text (rowid, title, labels, body, comments, notes) "
                   "VALUES (?, ?, ?, ?, ?, ?)", [text for _, text, _ in rows if text])
    db.executemany("INSERT OR IGNORE INTO issue_label VALUES (?, ?)",
                   [label for _, _, labels in rows for label in labels])


def _write_article(db: sqlite3.Connection, tracker: "Tracker", slug: str, sig: str | None) -> None:
    old = db.execute("SELECT n FROM article WHERE slug = ?", (slug,)).fetchone()
    if old:
        db.execute("DELETE FROM article_text WHERE rowid = ?", old)
        db.execute("DELETE FROM article WHERE n = ?", old)
    if sig is None:
        return
    try:
        article = tracker.kb.load(slug)
    except NotFound:
        return
    except GitdeskError as err:  # unreadable, or a file name that is not a slug
        why = err if isinstance(err, InvalidDocument) else f"{KB_DIR}/{slug}.md: {err}"
        db.execute("INSERT INTO article (slug, sig, readable, errors) VALUES (?, ?, 0, ?)",
                   (slug, sig, json.dumps([f"skipped {why}"])))
        return
    cursor = db.execute("INSERT INTO article (slug, sig, readable, visibility, data, errors) "
                        "VALUES (?, ?, 1, ?, ?, '[]')",
                        (slug, sig, article.visibility, json.dumps(article.to_json())))
    db.execute("INSERT INTO article_text (rowid, title, tags, body) VALUES (?, ?, ?, ?)",
               (cursor.lastrowid, _clean(article.title), _clean(" ".join(article.tags)),
                _clean(article.body)))


# -- small helpers ------------------------------------------------------------------------------

def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
            return
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the error that got us here is the one to report
