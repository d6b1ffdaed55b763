"""The only user of git: run git, commit exactly the given paths, read history.

gitdesk calls the git command itself rather than a library: git's CLI is the stable
interface, it is what users debug with, and it keeps start-up cheap. Commits are built
in a private index file, so whatever the user has staged or changed stays as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import GitError, LockTimeout

# Variables that would point git at another repository or index than ours.
_FOREIGN_GIT_VARS = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_CEILING_DIRECTORIES",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
)


@dataclass(frozen=True)
class Identity:
    """A person as git records them."""

    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


@dataclass(frozen=True)
class LogEntry:
    commit: str
    author: str
    email: str
    date: str
    subject: str


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_GIT_VARS}
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update(extra)
    return env


def _failure(command: str, proc: subprocess.CompletedProcess) -> GitError:
    words = (proc.stderr or proc.stdout).strip().splitlines()
    return GitError(f"git {command} failed: {words[-1] if words else proc.returncode}")


class _IndexLock:
    """git's own index.lock, taken the way git takes it: while we hold it no other git
    command writes the index or commits; ``commit()`` installs the new index."""

    def __init__(self, git_dir: Path, timeout: float = 10.0):
        self.path = git_dir / "index.lock"
        self.index = git_dir / "index"
        self.timeout = timeout
        self.done = False

    def __enter__(self) -> "_IndexLock":
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"git is busy: {self.path} exists (another git command is "
                                   "running; if none is, remove that file)") from None
                time.sleep(0.05)
        os.close(fd)
        return self

    def install(self, new_index: Path) -> None:
        """Make ``new_index`` the index, as git does: through the lock file's name."""
        os.replace(new_index, self.path)
        os.replace(self.path, self.index)
        self.done = True

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            self.path.unlink(missing_ok=True)


class Repo:
    """A git worktree whose top folder is the tracker's root."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._git_dir: Path | None = None

    # -- plumbing -------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args], cwd=self.root, env=clean_env(env), input=input,
            capture_output=True, text=True, encoding="utf-8", errors="replace",
        )

    def git(self, *args: str, env: dict[str, str] | None = None, input: str | None = None,
            check: bool = True) -> str:
        proc = self.run(*args, env=env, input=input)
        if check and proc.returncode != 0:
            raise _failure(args[0], proc)
        return proc.stdout

    @property
    def git_dir(self) -> Path:
        if self._git_dir is None:
            self._git_dir = (self.root / self.git("rev-parse", "--git-dir").strip()).resolve()
        return self._git_dir

    @staticmethod
    def init(root: Path) -> "Repo":
        repo = Repo(root)
        repo.git("init", "-q")
        repo.git("symbolic-ref", "HEAD", "refs/heads/main")
        return repo

    def is_repo(self) -> bool:
        return (self.root / ".git").exists()

    def toplevel(self) -> Path | None:
        """The worktree git itself would use from here (None outside any repository)."""
        out = self.git("rev-parse", "--show-toplevel", check=False).strip()
        return Path(out).resolve() if out else None

    def head(self) -> str | None:
        out = self.git("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip()
        return out or None

    # -- identity ---------------------------------------------------------------
    def configured_identity(self) -> Identity | None:
        name = self.git("config", "user.name", check=False).strip()
        email = self.git("config", "user.email", check=False).strip()
        if not name and not email:
            return None
        return Identity(name or email.split("@")[0], email)

    # -- status -----------------------------------------------------------------
    def dirty(self, paths: Sequence[str]) -> list[str]:
        """The paths among ``paths`` that differ from HEAD in the worktree or the index."""
        if not paths or self.head() is None:
            return []
        out = self.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
        return [entry[3:] for entry in out.split("\0") if entry[3:]]

    # -- commit -------------------------------------------------------------------
    def commit(self, paths: Iterable[str], message: str, author: Identity,
               committer: Identity | None = None) -> str | None:
        """Commit exactly ``paths`` (added, changed or deleted) as one commit.

        Returns the new commit id, or None when the paths hold no change. The user's
        own index is left alone except that the committed paths now match HEAD. While
        HEAD moves, git's index.lock is held, so a ``git commit`` run at that moment
        waits its turn (git refuses it) instead of undoing ours; if HEAD moved since we
        read it, the commit is rebuilt on the new HEAD.
        """
        paths = sorted(set(paths))
        if not paths:
            return None
        committer = committer or self.configured_identity() or author
        who = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email,
        }
        with _IndexLock(self.git_dir) as lock:
            for _ in range(5):
                parent = self.head()
                tree = self._tree_with(parent, paths)
                if parent and tree == self.git("rev-parse", f"{parent}^{{tree}}").strip():
                    return None
                args = ["commit-tree", tree, "-F", "-"] + (["-p", parent] if parent else [])
                sha = self.git(*args, env=who, input=message.rstrip("\n") + "\n").strip()
                moved = self.run("update-ref", "-m", f"gitdesk: {message.splitlines()[0]}", "HEAD",
                                 sha, parent or "0" * 40)
                if moved.returncode != 0 and self.head() == parent:
                    raise _failure("update-ref", moved)  # not a race: git refused
                if moved.returncode == 0:
                    # The user's index takes HEAD's version of our paths, nothing else.
                    staged = self.git_dir / f"gitdesk-user-index-{os.getpid()}"
                    if lock.index.exists():
                        shutil.copyfile(lock.index, staged)
                    try:
                        self.git("reset", "-q", "--", *paths, env={"GIT_INDEX_FILE": str(staged)})
                        lock.install(staged)
                    finally:
                        staged.unlink(missing_ok=True)
                    return sha
            raise GitError("HEAD kept moving while gitdesk committed; try again")
        return None  # unreachable; for type checkers

    def _tree_with(self, parent: str | None, paths: list[str]) -> str:
        """The tree of ``parent`` with ``paths`` taken from the worktree, in a private index."""
        index = self.git_dir / f"gitdesk-index-{os.getpid()}"
        ienv = {"GIT_INDEX_FILE": str(index)}
        try:
            if parent:
                self.git("read-tree", parent, env=ienv)
            else:
                self.git("read-tree", "--empty", env=ienv)
            self.git("update-index", "--add", "--remove", "-z", "--stdin", env=ienv,
                     input="\0".join(paths) + "\0")
            return self.git("write-tree", env=ienv).strip()
        finally:
            index.unlink(missing_ok=True)

    def committed_text(self, rel: str) -> str | None:
        """The file as HEAD has it, or None if HEAD has no such file."""
        proc = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=self.root, env=clean_env(),
                              capture_output=True)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def blob_at_head(self, rel: str) -> str | None:
        """The object id of ``rel`` in HEAD, or None if HEAD has no such file."""
        out = self.run("rev-parse", "-q", "--verify", f"HEAD:{rel}")
        return out.stdout.strip() if out.returncode == 0 else None

    def changed_paths(self, old: str, new: str, prefix: str) -> list[str] | None:
        """Paths under ``prefix`` that differ between two commits; None if ``old`` is unknown."""
        if self.run("cat-file", "-e", f"{old}^{{commit}}").returncode != 0:
            return None
        out = self.git("diff", "--name-only", "--no-renames", "-z", old, new, "--", prefix)
        return [p for p in out.split("\0") if p]

    # -- history ------------------------------------------------------------------
    def log(self, path: str, limit: int | None = None) -> list[LogEntry]:
        fmt = "%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1e"
        args = ["log", f"--format={fmt}"] + ([f"-n{limit}"] if limit else []) + ["--", path]
        entries = []
        for record in self.git(*args).split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) == 5:
                entries.append(LogEntry(*fields))
        return entries
