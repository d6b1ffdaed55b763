"""The only user of git: run git, commit exactly the given paths, read history.

gitdesk calls the git command itself rather than a library: git's CLI is the stable
interface, it is what users debug with, and it keeps start-up cheap. Commits are built
in a private index file, so whatever the user has staged or changed stays as it was.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import GitError

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


class Repo:
    """A git worktree whose top folder is the tracker's root."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._git_dir: Path | None = None

    # -- plumbing -------------------------------------------------------------
    def git(self, *args: str, env: dict[str, str] | None = None, input: str | None = None,
            check: bool = True) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.root, env=clean_env(env), input=input,
            capture_output=True, text=True, encoding="utf-8", errors="replace",
        )
        if check and proc.returncode != 0:
            words = (proc.stderr or proc.stdout).strip().splitlines()
            raise GitError(f"git {args[0]} failed: {words[-1] if words else proc.returncode}")
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
        own index is left alone except that the committed paths now match HEAD.
        """
        paths = sorted(set(paths))
        if not paths:
            return None
        committer = committer or self.configured_identity() or author
        parent = self.head()
        index = self.git_dir / f"gitdesk-index-{os.getpid()}"
        ienv = {"GIT_INDEX_FILE": str(index)}
        try:
            if parent:
                self.git("read-tree", parent, env=ienv)
            else:
                self.git("read-tree", "--empty", env=ienv)
            self.git("update-index", "--add", "--remove", "-z", "--stdin", env=ienv,
                     input="\0".join(paths) + "\0")
            tree = self.git("write-tree", env=ienv).strip()
        finally:
            index.unlink(missing_ok=True)
        if parent and tree == self.git("rev-parse", f"{parent}^{{tree}}").strip():
            return None
        who = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email,
        }
        args = ["commit-tree", tree, "-F", "-"] + (["-p", parent] if parent else [])
        sha = self.git(*args, env=who, input=message.rstrip("\n") + "\n").strip()
        self.git("update-ref", "-m", f"gitdesk: {message.splitlines()[0]}", "HEAD", sha,
                 parent or "0" * 40)
        self._sync_user_index(paths)
        return sha

    def _sync_user_index(self, paths: list[str]) -> None:
        """Make the user's index agree with HEAD for the paths we just committed."""
        for _ in range(20):
            proc = subprocess.run(["git", "reset", "-q", "--", *paths], cwd=self.root,
                                  env=clean_env(), capture_output=True, text=True)
            if proc.returncode == 0 or "index.lock" not in proc.stderr:
                return
            import time

            time.sleep(0.05)

    def committed_text(self, rel: str) -> str | None:
        """The file as HEAD has it, or None if HEAD has no such file."""
        proc = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=self.root, env=clean_env(),
                              capture_output=True)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

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
