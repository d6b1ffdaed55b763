"""The Tracker: finds its root, reads gitdesk.yml, and owns the one path every write takes.

``with tracker.change() as ch:`` takes the tracker's lock, lets the caller write files,
and commits exactly those files as one commit; if anything fails, every touched file is
put back as it was and nothing is committed.

Actions also record what happened (``ch.events``). Subscribers (the mail outbox, wired in
by ``gitdesk.app``) see those events inside the same lock: they prepare their work before
the commit and finish it after, so a notification exists exactly when its change does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from ..config import SETTINGS_FILE, Settings, parse_settings
from ..errors import Busy, Conflict, GitdeskError, InvalidDocument, LockTimeout, TrackerNotFound
from .document import load_yaml_file
from .repo import Identity, Repo

if TYPE_CHECKING:
    from ..issues.store import IssueStore
    from ..kb.store import ArticleStore

LOCAL_DIR = ".gitdesk"


class Pending(Protocol):
    """A subscriber's prepared work for one change: finished after the commit, or dropped."""

    def commit(self, sha: str) -> None: ...

    def abort(self) -> None: ...


class Subscriber(Protocol):
    def prepare(self, change: "Change") -> Pending | None: ...

    def rewritten(self, commits: dict[str, str | None], renumbered: dict[int, int],
                  lost: dict[str, set[int]]) -> list[str]:
        """Commits were replaced (``gitdesk sync`` replayed them: old -> new, None when a
        commit was left out), issues renumbered, and some commits' changes to some issues
        lost to the shared values (old commit -> issues); what was done about it, to report."""
        ...

    def published(self, tip: str) -> None:
        """This clone's commits up to ``tip`` reached the shared repository (pushed)."""
        ...

    def fetched(self, commits: list[tuple[str, str]]) -> list[str]:
        """Commits made in other clones arrived ((commit, parent), oldest first); what was
        done about them, to report."""
        ...


def find_root(start: Path | str | None = None) -> Path:
    """The nearest folder holding gitdesk.yml, from ``start``, GITDESK_DIR or the cwd upwards."""
    if start is None:
        start = os.environ.get("GITDESK_DIR") or Path.cwd()
    here = Path(start).expanduser().resolve()
    if not here.exists():
        raise TrackerNotFound(f"{start}: no such folder")
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise TrackerNotFound(f"no gitdesk tracker (gitdesk.yml) in {here} or any parent folder; "
                          "run 'gitdesk init' or pass -C DIR")


def parse_identity(text: str) -> Identity:
    """'Name <email>', 'email' or 'Name' -> Identity."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, email = text[:-1].partition("<")
        return Identity(name.strip() or email.split("@")[0], email.strip())
    if "@" in text:
        return Identity(text.split("@")[0], text)
    return Identity(text, "")


def email_of(who: str | None) -> str:
    """The address in 'Name <email>' or 'email', lower-cased; '' when there is none."""
    return parse_identity(str(who or "")).email.lower()


def acting_identity(repo: Repo) -> Identity:
    """The acting person: GITDESK_USER, else git's user.name / user.email."""
    env = os.environ.get("GITDESK_USER", "").strip()
    if env:
        return parse_identity(env)
    who = repo.configured_identity()
    if who is None:
        raise GitdeskError("who are you? set GITDESK_USER='Name <email>' "
                           "or git config user.name / user.email")
    return who


def check_relpath(rel: str) -> str:
    """Refuse absolute paths and '..': every write stays inside the tracker."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in rel:
        raise GitdeskError(f"refusing unsafe path {rel!r}")
    return str(pure)


class Tracker:
    """One tracker repository. Stores hang off it; every write goes through ``change``."""

    def __init__(self, path: Path | str | None = None):
        self.root = find_root(path)
        self.repo = Repo(self.root)
        self.subscribers: list[Subscriber] = []
        top = self.repo.toplevel()
        if top is None or top != self.root.resolve():
            where = f"git would use {top}" if top else "git finds no repository here"
            raise TrackerNotFound(f"{self.root}: has gitdesk.yml but is not the top folder of a "
                                  f"git repository ({where}); run 'git init' there")

    # -- settings and stores --------------------------------------------------------
    @cached_property
    def settings(self) -> Settings:
        path = self.root / SETTINGS_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidDocument(SETTINGS_FILE, f"cannot read: {err}") from None
        data = load_yaml_file(text, SETTINGS_FILE)
        return parse_settings(data, SETTINGS_FILE)

    def reread_settings(self) -> None:
        """gitdesk.yml changed under this object (a sync brought another clone's): read it again."""
        self.__dict__.pop("settings", None)

    @cached_property
    def issues(self) -> "IssueStore":
        from ..issues.store import IssueStore

        return IssueStore(self)

    @cached_property
    def kb(self) -> "ArticleStore":
        from ..kb.store import ArticleStore

        return ArticleStore(self)

    @property
    def local_dir(self) -> Path:
        path = self.root / LOCAL_DIR
        path.mkdir(exist_ok=True)
        return path

    # -- who is acting ------------------------------------------------------------------
    def identity(self) -> Identity:
        """The acting person; a staff member named without an address gets theirs."""
        who = acting_identity(self.repo)
        member = self.settings.find_staff(who.email or who.name)
        if member and not who.email:
            who = Identity(member.name, member.email)
        return who

    # -- what git knows (for caches that must never be stale) -------------------------------
    def head(self) -> str | None:
        return self.repo.head()

    def committed_blob(self, rel: str) -> str | None:
        return self.repo.blob_at_head(rel)

    def changed_since(self, commit: str, prefix: str) -> list[str] | None:
        """Files under ``prefix`` changed from ``commit`` to HEAD; None when that commit is
        unknown here (a cache built elsewhere, or history rewritten): rebuild then."""
        head = self.repo.head()
        if head is None:
            return None
        return [] if head == commit else self.repo.changed_paths(commit, head, prefix)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the tracker's lock without writing (for work on local state under .gitdesk/)."""
        fd = _acquire_lock(self.local_dir / "lock")
        try:
            yield
        finally:
            os.close(fd)

    # -- the one write path ---------------------------------------------------------------
    def change(self, message: str = "", author: Identity | None = None,
               committer: Identity | None = None) -> "Change":
        """One unit of work; ``committer`` is for bridges (mail is authored by its sender
        and committed by the gateway)."""
        return Change(self, message, author, committer)


class Change:
    """A unit of work: files written through it are committed together, or all restored."""

    def __init__(self, tracker: Tracker, message: str, author: Identity | None,
                 committer: Identity | None = None):
        self.tracker = tracker
        self.message = message
        self.author = author
        self.committer = committer
        self.commit: str | None = None
        self.events: list[Any] = []  # what the actions did, for subscribers (domain events)
        self._saved: dict[str, bytes | None] = {}
        self._lock_fd: int | None = None

    # -- lock --------------------------------------------------------------------------
    def __enter__(self) -> "Change":
        self.author = self.author or self.tracker.identity()
        doing = self.tracker.repo.unfinished()
        if doing:  # its abort would throw the commit away, with any number it gave out
            raise Busy(f"a git {doing} is in progress in this clone: finish it or abort it "
                       f"(git {doing} --abort) first; nothing was changed")
        self._lock_fd = _acquire_lock(self.tracker.local_dir / "lock")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._saved:
                pending: list[Pending] = []
                try:
                    assert self.message, "a change needs a commit message"
                    if self.events:
                        pending = [p for s in self.tracker.subscribers if (p := s.prepare(self))]
                    self.commit = self.tracker.repo.commit(list(self._saved), self.message,
                                                           self.author,  # type: ignore[arg-type]
                                                           self.committer)
                except BaseException:
                    for work in pending:
                        work.abort()
                    self._restore()
                    raise
                for work in pending:  # no commit (nothing changed): nothing to report
                    work.commit(self.commit) if self.commit else work.abort()
            elif exc_type is not None:
                self._restore()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- writes --------------------------------------------------------------------------
    def _touch(self, rel: str, guard: bool = True) -> Path:
        rel = check_relpath(rel)
        path = self.tracker.root / rel
        if rel not in self._saved:
            if path.exists() and guard and self.tracker.repo.dirty([rel]):
                raise Conflict(f"{rel} has changes that are not committed; commit or revert "
                               "them first (git commit / git checkout), then try again")
            self._saved[rel] = path.read_bytes() if path.is_file() else None
        return path

    def write(self, rel: str, content: str | bytes, guard: bool = True) -> None:
        """Write a file atomically (temp file + rename)."""
        path = self._touch(rel, guard)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        tmp = path.with_name(f".{path.name}.gitdesk-{os.getpid()}")
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def copy_file(self, rel: str, source: Path) -> None:
        path = self._touch(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.gitdesk-{os.getpid()}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)

    def remove(self, rel: str) -> None:
        path = self._touch(rel)
        path.unlink(missing_ok=True)

    @property
    def paths(self) -> list[str]:
        return list(self._saved)

    def _restore(self) -> None:
        for rel, data in self._saved.items():
            path = self.tracker.root / rel
            if data is None:
                path.unlink(missing_ok=True)
                _prune_empty_dirs(path.parent, self.tracker.root)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)


def _prune_empty_dirs(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _acquire_lock(path: Path) -> int:
    timeout = float(os.environ.get("GITDESK_LOCK_TIMEOUT", "60"))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(f"the tracker is busy: another gitdesk command held "
                                  f"{LOCAL_DIR}/lock for {timeout:.0f} s; try again") from None
            time.sleep(0.02)
