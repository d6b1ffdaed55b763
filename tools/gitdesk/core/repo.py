"""The only user of git: run git, commit exactly the given paths, read history.

gitdesk calls the git command itself rather than a library: git's CLI is the stable
interface, it is what users debug with, and it keeps start-up cheap. Commits are built
in a private index file, so whatever the user has staged or changed stays as it was.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
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
    words = [w for w in (proc.stderr or proc.stdout).strip().splitlines() if w.strip()]
    said = next((w for w in words if w.startswith(("fatal:", "error:"))), words[-1] if words else "")
    return GitError(f"git {command} failed: {said or proc.returncode}")


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
        self._trees: dict[str, str] = {}  # commit -> its tree, as learned while committing
        self._identity: tuple[Identity, ...] | None = None

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
            plain = self.root / ".git"
            if plain.is_dir() and not plain.is_symlink():
                self._git_dir = plain.resolve()  # the common case, without starting git
            else:
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
        plain = self.root / ".git"
        if plain.is_dir() and not plain.is_symlink() and (plain / "HEAD").is_file():
            return self.root.resolve()  # its own repository: git would say the same
        out = self.git("rev-parse", "--show-toplevel", check=False).strip()
        return Path(out).resolve() if out else None

    def head(self) -> str | None:
        """The commit HEAD names (None before the first commit)."""
        found = self._read_head()
        if found is not None:
            return found or None
        out = self.git("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip()
        return out or None

    def _read_head(self) -> str | None:
        """HEAD read from git's files as git writes them ('' for a branch with no commit yet);
        None whenever git itself must answer (a linked worktree, reftable, anything odd).
        A command reads HEAD several times: each git process saved is 2 to 3 ms."""
        gd = self.git_dir
        if (gd / "commondir").exists() or (gd / "reftable").exists():
            return None
        try:
            head = (gd / "HEAD").read_text(encoding="ascii").strip()
            if not head.startswith("ref: refs/"):
                return head if _OID.fullmatch(head) else None
            ref = head[5:]
            try:
                value = (gd / ref).read_text(encoding="ascii").strip()
                return value if _OID.fullmatch(value) else None
            except FileNotFoundError:
                pass
            try:
                packed = (gd / "packed-refs").read_text(encoding="ascii")
            except FileNotFoundError:
                return ""  # no such branch yet
            for line in packed.splitlines():
                oid, _, name = line.partition(" ")
                if name == ref and _OID.fullmatch(oid):
                    return oid
            return ""
        except (OSError, UnicodeDecodeError):
            return None

    # -- identity ---------------------------------------------------------------
    def configured_identity(self) -> Identity | None:
        """git's user.name and user.email (one git process, once per command)."""
        if self._identity is None:
            out = self.git("config", "--get-regexp", r"^user\.(name|email)$", check=False)
            values = dict(line.partition(" ")[::2] for line in out.splitlines())
            name, email = values.get("user.name", "").strip(), values.get("user.email", "").strip()
            self._identity = (Identity(name or email.split("@")[0], email),) if name or email else ()
        return self._identity[0] if self._identity else None

    # -- status -----------------------------------------------------------------
    def dirty(self, paths: Sequence[str]) -> list[str]:
        """The paths among ``paths`` that differ from HEAD in the worktree or the index."""
        if not paths or self.head() is None:
            return []
        out = self.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
        return [entry[3:] for entry in out.split("\0") if entry[3:]]

    def head_tree(self) -> str | None:
        """The id of HEAD's tree (None before the first commit)."""
        out = self.run("rev-parse", "-q", "--verify", "HEAD^{tree}")
        return (out.stdout.strip() or None) if out.returncode == 0 else None

    def changed_files(self, prefix: str) -> Callable[[], list[tuple[str, str]]]:
        """(git's two-letter status, path) of the tracked files under ``prefix`` whose worktree
        or staged version differs from HEAD.

        git starts at once and works while the caller does something else; calling the
        result waits for the answer. No lock is taken (``--no-optional-locks``): reading
        never makes a commit running at the same time fail.
        """
        proc = subprocess.Popen(["git", "--no-optional-locks", "status", "--porcelain=v1", "-z",
                                 "--untracked-files=no", "--no-renames", "--", prefix],
                                cwd=self.root, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def answer() -> list[tuple[str, str]]:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise GitError(f"git status failed: {err.decode(errors='replace').strip()}")
            return [(e[:2], e[3:]) for e in out.decode("utf-8", "surrogateescape").split("\0") if e[3:]]

        return answer

    def tree_changes(self, old: str, new: str, prefix: str) -> list[tuple[str, str]] | None:
        """(A/M/D/T, path) under ``prefix`` between two trees; None if ``old`` is gone."""
        out = self.run("diff-tree", "-r", "--name-status", "--no-renames", "-z", old, new, "--", prefix)
        if out.returncode != 0:
            return None
        fields = out.stdout.split("\0")
        return [(fields[k][:1], fields[k + 1]) for k in range(0, len(fields) - 1, 2)]

    def untracked(self, paths: Sequence[str]) -> list[str]:
        """Files under ``paths`` that git does not track, ignored ones included."""
        out = self.run("ls-files", "-o", "-z", "--", *paths)
        return [p for p in out.stdout.split("\0") if p] if out.returncode == 0 else []

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
                if parent and tree == (self._trees.get(parent)
                                       or self.git("rev-parse", f"{parent}^{{tree}}").strip()):
                    return None
                args = ["commit-tree", tree, "-F", "-"] + (["-p", parent] if parent else [])
                sha = self.git(*args, env=who, input=message.rstrip("\n") + "\n").strip()
                moved = self.run("update-ref", "-m", f"gitdesk: {message.splitlines()[0]}", "HEAD",
                                 sha, parent or "")  # "": must not exist yet
                if moved.returncode != 0 and self.head() == parent:
                    raise _failure("update-ref", moved)  # not a race: git refused
                if moved.returncode == 0:
                    # The user's index takes the committed version of our paths (the files
                    # as they are), nothing else; staged from the files, the entries keep their
                    # stat data, so `git status` need not read the files again.
                    staged = self.git_dir / f"gitdesk-user-index-{os.getpid()}"
                    if lock.index.exists():
                        _link_or_copy(lock.index, staged)
                    try:
                        self.git("update-index", "--add", "--remove", "-z", "--stdin",
                                 env={"GIT_INDEX_FILE": str(staged)}, input="\0".join(paths) + "\0")
                        lock.install(staged)
                    finally:
                        staged.unlink(missing_ok=True)
                    return sha
            raise GitError("HEAD kept moving while gitdesk committed; try again")
        return None  # unreachable; for type checkers

    def _tree_with(self, parent: str | None, paths: list[str]) -> str:
        """The tree of ``parent`` with ``paths`` taken from the worktree."""
        if parent:
            edit = _TreeEdit(self)
            tree = edit.apply(parent, paths)
            if edit.base:
                self._trees[parent] = edit.base  # the parent's own tree, read on the way
            if tree is not None:
                return tree
        return self._tree_with_index(parent, paths)

    def _tree_with_index(self, parent: str | None, paths: list[str]) -> str:
        """The same in a private index: it reads and writes every path of the tree, which at
        100,000 issues takes a second, so it is kept for what ``_TreeEdit`` leaves to git."""
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
        changes = self.tree_changes(old, new, prefix)
        if changes is None:
            raise GitError(f"git diff-tree failed between {old} and {new}")
        return [path for _, path in changes]

    # -- sharing (gitdesk sync) --------------------------------------------------------
    def branch(self) -> str | None:
        """The branch checked out; None when HEAD is detached (as in a stopped rebase)."""
        return self.git("symbolic-ref", "--short", "-q", "HEAD", check=False).strip() or None

    def tracks(self, branch: str) -> bool:
        """Has ``branch`` an upstream set (``git branch -u``, ``git push -u``, a clone)?"""
        return bool(self.git("config", f"branch.{branch}.merge", check=False).strip())

    def upstream(self) -> tuple[str, str] | None:
        """The remote and branch this clone shares with: the branch's upstream; else, when
        there is an ``origin``, origin's default branch (its HEAD, as a clone or
        ``learn_default`` records it), else the first of origin's branches of this name,
        ``main`` and ``master`` that this clone has fetched, else (nothing fetched: a new
        shared repository) this branch, or ``main`` when detached; None without origin."""
        branch = self.branch()
        if branch:
            remote = self.git("config", f"branch.{branch}.remote", check=False).strip()
            merge = self.git("config", f"branch.{branch}.merge", check=False).strip()
            if remote and remote != "." and merge.startswith("refs/heads/"):
                return remote, merge[len("refs/heads/"):]
        if "origin" not in self.git("remote").split():
            return None
        default = self.git("symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD", check=False).strip()
        if default.startswith("origin/"):
            return "origin", default[len("origin/"):]
        fetched = [name for name in dict.fromkeys((branch, "main", "master"))
                   if name and self.resolve(f"refs/remotes/origin/{name}")]
        return "origin", fetched[0] if fetched else branch or "main"

    def learn_default(self, remote: str) -> None:
        """Record ``remote``'s default branch (``refs/remotes/<remote>/HEAD``) by asking it, as
        ``git clone`` does; an empty or unreachable remote leaves things as they are."""
        if self.run("fetch", "-q", remote).returncode == 0:  # set-head needs the branch fetched
            self.run("remote", "set-head", remote, "--auto")

    def remote_ref(self, remote: str, ref: str) -> str | None:
        """The commit ``ref`` names on ``remote`` (asked over the network), or None."""
        out = self.run("ls-remote", remote, ref)
        found = [line.split("\t") for line in out.stdout.splitlines()] if out.returncode == 0 else []
        return next((sha for sha, name in found if name == ref), None)

    def push_ref(self, remote: str, commit: str, ref: str) -> bool:
        """Point ``ref`` on ``remote`` at ``commit`` (forced: the ref is this clone's to set)."""
        return self.run("push", "-q", remote, f"+{commit}:{ref}").returncode == 0

    def fetch(self, remote: str) -> None:
        self.git("fetch", "-q", remote)

    def resolve(self, rev: str) -> str | None:
        out = self.run("rev-parse", "-q", "--verify", f"{rev}^{{commit}}")
        return out.stdout.strip() or None if out.returncode == 0 else None

    def merge_base(self, a: str, b: str) -> str | None:
        out = self.run("merge-base", a, b)
        return out.stdout.strip() or None if out.returncode == 0 else None

    def config_flag(self, key: str) -> bool:
        """A true/false setting of git's config (``git config --bool``); false when unset."""
        return self.git("config", "--bool", "--get", key, check=False).strip() == "true"

    def unfinished(self) -> str | None:
        """The git operation left half done in this worktree (merge, rebase, cherry-pick)."""
        # (not REBASE_HEAD: git leaves it behind after a rebase that stopped and then finished)
        for state, name in (("MERGE_HEAD", "merge"), ("rebase-merge", "rebase"),
                            ("rebase-apply", "rebase"), ("CHERRY_PICK_HEAD", "cherry-pick"),
                            ("REVERT_HEAD", "revert")):
            if (self.git_dir / state).exists():
                return name
        return None

    def unmerged(self) -> list[str]:
        """Files with an unresolved conflict (git's index holds both sides)."""
        out = self.git("ls-files", "-u", "-z")
        return sorted({item.split("\t", 1)[1] for item in out.split("\0") if "\t" in item})

    def merges(self, limit: int) -> list[str]:
        """The newest merge commits in HEAD's history."""
        return self.git("rev-list", "--merges", "-n", str(limit), "HEAD", check=False).split()

    def changed_in(self, pathspec: str, limit: int) -> list[tuple[str, str, list[str]]]:
        """The newest commits that are not merges and changed (not added) files matching
        ``pathspec``: (commit, subject, those files)."""
        out = self.git("log", "--no-merges", "--diff-filter=M", "-n", str(limit), "--name-only",
                       "--format=%x1e%H%x1f%s", "HEAD", "--", pathspec, check=False)
        found = []
        for record in out.split("\x1e")[1:]:
            head, _, names = record.partition("\n")
            commit, _, subject = head.partition("\x1f")
            found.append((commit, subject, [n for n in names.splitlines() if n]))
        return found

    def commit_parents(self, commit: str) -> list[str]:
        return self.git("rev-parse", f"{commit}^@").split()

    def is_ancestor(self, commit: str, descendant: str) -> bool:
        """Is ``commit`` in the history of ``descendant`` (or the same commit)?"""
        return self.run("merge-base", "--is-ancestor", commit, descendant).returncode == 0

    def commits_between(self, base: str | None, head: str) -> list[tuple[str, list[str]]]:
        """The commits after ``base`` up to ``head``, oldest first, each with its parents."""
        spec = f"{base}..{head}" if base else head
        out = self.git("rev-list", "--reverse", "--parents", spec)
        return [(line.split()[0], line.split()[1:]) for line in out.splitlines() if line.strip()]

    def commit_changes(self, commit: str, parent: str | None) -> list[tuple[str, str, str, str]]:
        """(status A/M/D/T, new mode, new object id, path) of every file a commit changed."""
        args = ["diff-tree", "-r", "--no-renames", "-z", "--raw"]
        args += [parent, commit] if parent else ["--root", commit]
        fields = self.git(*args).split("\0")
        if not parent and fields and not fields[0].startswith(":"):
            fields = fields[1:]  # --root prints the commit id first
        found = []
        for k in range(0, len(fields) - 1, 2):
            meta, path = fields[k], fields[k + 1]
            if not meta.startswith(":"):
                continue
            _, new_mode, _, new_oid, status = meta[1:].split(" ")
            found.append((status[0], new_mode, new_oid, path))
        return found

    def commit_info(self, commit: str) -> tuple[Identity, str, str]:
        """A commit's author, author date (ISO) and message."""
        out = self.git("log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", commit)
        name, email, date, message = out.split("\0", 3)
        return Identity(name, email), date, message.rstrip("\n")

    def entry(self, commit: str, path: str) -> tuple[str, str] | None:
        """(mode, object id) of a file in a commit, or None."""
        out = self.git("ls-tree", "-z", commit, "--", path)
        for line in out.split("\0"):
            if line and line.split("\t", 1)[1] == path:
                mode, _, oid = line.split("\t", 1)[0].split(" ")
                return mode, oid
        return None

    def names(self, commit: str, folder: str) -> list[str]:
        """The names directly inside a folder of a commit."""
        out = self.run("ls-tree", "-z", "--name-only", f"{commit}:{folder}")
        return [n for n in out.stdout.split("\0") if n] if out.returncode == 0 else []

    def read_files(self, commit: str, paths: Iterable[str]) -> dict[str, bytes]:
        """The files of ``commit`` at ``paths``; missing ones left out."""
        found = self.read_objects([f"{commit}:{p}" for p in paths])
        return {spec.split(":", 1)[1]: data for spec, data in found.items()}

    def read_objects(self, specs: Iterable[str]) -> dict[str, bytes]:
        """Files named ``commit:path`` (one ``git cat-file --batch``); missing ones left out."""
        wanted = list(dict.fromkeys(s for s in specs if "\n" not in s))
        if not wanted:
            return {}
        proc = subprocess.run(["git", "cat-file", "--batch"], cwd=self.root, env=clean_env(),
                              input="".join(f"{s}\n" for s in wanted).encode(), capture_output=True)
        if proc.returncode != 0:
            raise GitError(f"git cat-file failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
        out, pos, found = proc.stdout, 0, {}
        for spec in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if header[-1] == b"missing" or header[1] != b"blob":
                pos = end + 1
                continue
            size = int(header[2])
            found[spec], pos = out[end + 1:end + 1 + size], end + 2 + size
        return found

    def authored(self, rev: str, limit: int) -> dict[str, tuple[str, str, str]]:
        """The newest ``limit`` commits of ``rev``: commit -> (author email, author date, subject),
        what a rebase or an amend keeps of a commit."""
        return self._authorship("-n", str(limit), rev)

    def authorship(self, commits: Sequence[str]) -> dict[str, tuple[str, str, str]]:
        """As ``authored``, for these commits (those git no longer has left out)."""
        return self._authorship("--no-walk=unsorted", "--ignore-missing", *commits) if commits else {}

    def _authorship(self, *args: str) -> dict[str, tuple[str, str, str]]:
        out = self.git("log", "--format=%H%x1f%ae%x1f%aI%x1f%s", *args, check=False)
        return {fields[0]: (fields[1].lower(), fields[2], fields[3]) for line in out.splitlines()
                if len(fields := line.split("\x1f", 3)) == 4}

    def read_blob(self, oid: str) -> bytes:
        proc = subprocess.run(["git", "cat-file", "blob", oid], cwd=self.root, env=clean_env(),
                              capture_output=True)
        if proc.returncode != 0:
            raise GitError(f"git cat-file failed: no blob {oid}")
        return proc.stdout

    def write_blob(self, data: bytes) -> str:
        proc = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=self.root, env=clean_env(),
                              input=data, capture_output=True)
        if proc.returncode != 0:
            raise GitError("git hash-object failed")
        return proc.stdout.decode().strip()

    def merge_lines(self, base: bytes, theirs: bytes, ours: bytes) -> bytes | None:
        """git's line-by-line three-way merge of a text file; None where both sides changed
        the same lines (a conflict)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="gitdesk-merge-") as folder:
            names = []
            for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
                (Path(folder) / name).write_bytes(data)
                names.append(str(Path(folder) / name))
            proc = subprocess.run(["git", "merge-file", "-p", "-q", *names], env=clean_env(), capture_output=True)
        return proc.stdout if proc.returncode == 0 else None

    def make_commit(self, parent: str, changes: dict[str, tuple[str, str] | None], message: str,
                    author: Identity, date: str) -> str:
        """A commit on ``parent`` with ``changes`` (path -> (mode, blob id), or None to delete),
        without touching the worktree or any index; ``parent`` itself when nothing changes."""
        edit = _TreeEdit(self)
        tree = edit.apply_blobs(parent, changes)
        if tree is None:
            raise GitError("cannot build the tree of a replayed commit (an unusual path)")
        if tree == edit.base:
            return parent  # nothing left to change (a take that was undone): no empty commit
        who = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email, "GIT_AUTHOR_DATE": date}
        committer = self.configured_identity() or author
        who.update(GIT_COMMITTER_NAME=committer.name, GIT_COMMITTER_EMAIL=committer.email)
        return self.git("commit-tree", tree, "-p", parent, "-F", "-", env=who, input=message + "\n").strip()

    def move_to(self, old: str, new: str) -> None:
        """Point the branch at ``new`` and bring the worktree along, keeping uncommitted
        work (git refuses, changing nothing, if such work is in a file that must change)."""
        if self.head() != old:
            raise GitError("HEAD moved while syncing; run gitdesk sync again")
        proc = self.run("reset", "-q", "--keep", new)
        if proc.returncode != 0:
            blocked = re.findall(r"Entry '([^']+)' not uptodate", proc.stderr)
            if blocked:
                raise GitError(f"uncommitted changes to {', '.join(blocked)} would be overwritten: "
                               "commit or stash them, then run gitdesk sync again (nothing was changed)")
            raise _failure("reset", proc)

    def push(self, remote: str, branch: str) -> tuple[bool, str]:
        """(True, '') when pushed; (False, git's reason) when the shared repository refused the
        update (often because its branch moved meanwhile); any other failure raises."""
        proc = self.run("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}")
        if proc.returncode == 0:
            return True, ""
        refused = [line.split("\t")[-1] for line in proc.stdout.splitlines() if line.startswith("!")]
        if refused:  # the branch moved meanwhile, or the shared repository refused: the caller tells
            return False, refused[0]
        raise _failure("push", proc)

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


_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TREE_MODE = b"40000"


class _TreeEdit:
    """A new tree from an old one and a few changed files, without an index.

    Only the folders on the way to a changed file are read (``git cat-file --batch``) and
    written again (one ``git hash-object -t tree``, which checks each tree's format and must
    find the id computed here): a comment on one of 100,000 issues reads and writes the
    root, ``issues/`` and one issue folder, where an index would hold every file. Anything
    unusual (a symbolic link, a file where a folder should be, a submodule, a line break in
    a name) returns None, and the index does it as before.
    """

    def __init__(self, repo: Repo):
        self.repo = repo
        self.base: str | None = None  # the old root tree's id, once read
        self.written: list[tuple[bytes, bytes]] = []  # new trees: id, content

    def apply(self, parent: str, paths: list[str]) -> str | None:
        if any("\n" in p or "\r" in p for p in paths):
            return None  # the batch commands read a name per line
        files = [p for p in paths if os.path.lexists(self.repo.root / p)]
        for rel in files:
            if not (self.repo.root / rel).is_file() or (self.repo.root / rel).is_symlink():
                return None
        blobs = self._hash(files) if files else []
        if len(blobs) != len(files):
            return None
        flat: dict[str, tuple[str, str] | None] = {rel: None for rel in paths}
        for rel, oid in zip(files, blobs, strict=True):
            executable = os.stat(self.repo.root / rel).st_mode & 0o100  # git's own test
            flat[rel] = ("100755" if executable else "100644", oid.hex())
        return self.apply_blobs(parent, flat)

    def apply_blobs(self, parent: str, flat: dict[str, tuple[str, str] | None]) -> str | None:
        """The tree of ``parent`` with these paths set to (mode, blob id) or deleted."""
        if any("\n" in p or "\r" in p for p in flat):
            return None
        changes: dict = {}
        for rel in sorted(flat):
            *folders, name = rel.split("/")
            node = changes
            for folder in folders:
                node = node.setdefault(folder.encode(), {})
                if not isinstance(node, dict):
                    return None
            value = flat[rel]
            node[name.encode()] = None if value is None else (value[0].encode(), bytes.fromhex(value[1]))
        wanted = [f"{parent}^{{tree}}"]
        self._folders(changes, parent + ":", wanted)
        trees = self._read(wanted)
        if trees is None:
            return None
        self.width = len(parent) // 2  # bytes of an object id: 20 (SHA-1) or 32 (SHA-256)
        try:
            tree = self._build(changes, trees, f"{parent}^{{tree}}", parent + ":")
        except _Unusual:
            return None
        if tree is None or not self._write():
            return None
        return tree.hex()

    def _folders(self, changes: dict, prefix: str, wanted: list[str]) -> None:
        for name, change in changes.items():
            if isinstance(change, dict):
                path = prefix + ("" if prefix.endswith(":") else "/") + name.decode()
                wanted.append(path)
                self._folders(change, path, wanted)

    def _hash(self, files: list[str]) -> list[bytes]:
        out = self.repo.git("hash-object", "-w", "--stdin-paths", input="\n".join(files) + "\n")
        return [bytes.fromhex(line) for line in out.split()]

    def _read(self, names: list[str]) -> dict[str, bytes | None] | None:
        """Each folder's raw tree (None where the old tree has no such folder)."""
        if any("\n" in n for n in names):
            return None
        proc = subprocess.run(["git", "cat-file", "--batch"], cwd=self.repo.root, env=clean_env(),
                              input=("\n".join(names) + "\n").encode(), capture_output=True)
        if proc.returncode != 0:
            return None
        out, pos, found = proc.stdout, 0, {}
        for name in names:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if header[-1] == b"missing":
                found[name], pos = None, end + 1
                continue
            if header[1] != b"tree":
                return None  # a file where a folder should be
            if not found:
                self.base = header[0].decode()
            size = int(header[2])
            found[name], pos = out[end + 1:end + 1 + size], end + 2 + size
        return found

    def _build(self, changes: dict, trees: dict[str, bytes | None], key: str, prefix: str) -> bytes | None:
        """The new tree's id (raw), or None when it is left empty (git keeps no empty folders).

        The old tree's entries stay in git's order; changed ones are replaced where they
        are and new ones inserted where they belong, so ``issues/`` with 100,000 entries is
        parsed and joined (in C, mostly) but never sorted."""
        raw = trees.get(key) or b""
        parts: list[tuple[bytes, bytes, bytes] | None] = list(self._entries().findall(raw))
        if sum(len(m) + len(n) + 2 + len(o) for m, n, o in parts) != len(raw):  # type: ignore[misc]
            raise _Unusual()  # not all of it is entries as git writes them
        replaced: dict[int, tuple[bytes, bytes, bytes] | None] = {}
        added: list[tuple[bytes, bytes, bytes]] = []
        for name, change in changes.items():
            k = _position(parts, name)  # type: ignore[arg-type]
            old = parts[k] if k is not None else None
            new: tuple[bytes, bytes, bytes] | None
            if isinstance(change, dict):
                if old is not None and old[0] != _TREE_MODE:
                    raise _Unusual()
                path = prefix + ("" if prefix.endswith(":") else "/") + name.decode()
                sub = self._build(change, trees, path, path)
                new = None if sub is None else (_TREE_MODE, name, sub)
            elif change is None:
                if old is not None and old[0] == _TREE_MODE:
                    raise _Unusual()
                new = None
            else:
                if old is not None and old[0] in (_TREE_MODE, b"160000", b"120000"):
                    raise _Unusual()
                new = (change[0], name, change[1])
            if k is not None:
                replaced[k] = new
            elif new is not None:
                added.append(new)
        for k, entry in replaced.items():
            parts[k] = entry
        kept = [entry for entry in parts if entry is not None]
        for entry in added:
            bisect.insort(kept, entry, key=_git_order)
        if not kept:
            return None
        body = b"".join(b"%s %s\0%s" % entry for entry in kept)
        digest = hashlib.sha1 if self.width == 20 else hashlib.sha256
        oid = digest(b"tree %d\0" % len(body) + body).digest()
        self.written.append((oid, body))  # written by _write, all at once
        return oid

    def _entries(self) -> re.Pattern[bytes]:
        return re.compile(rb"([0-7]+) ([^\0]+)\0(.{%d})" % self.width, re.S)

    def _write(self) -> bool:
        """Store the new trees with one git process, which checks each one's format; True
        when git computed the very ids they were given."""
        files = []
        try:
            for k, (_, body) in enumerate(self.written):
                path = self.repo.git_dir / f"gitdesk-tree-{os.getpid()}-{k}"
                path.write_bytes(body)
                files.append(path)
            proc = subprocess.run(["git", "hash-object", "-t", "tree", "-w", "--no-filters", "--stdin-paths"],
                                  cwd=self.repo.root, env=clean_env(), capture_output=True,
                                  input="".join(f"{f}\n" for f in files).encode())
        finally:
            for path in files:
                path.unlink(missing_ok=True)
        return proc.returncode == 0 and proc.stdout.decode().split() == [oid.hex() for oid, _ in self.written]


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a second name of ``source``: git replaces an index file whole (it writes
    a new one and renames it), never in place, so the user's index is safe; at 100,000
    issues this saves copying 40 MB per commit."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _position(parts: list[tuple[bytes, bytes, bytes]], name: bytes) -> int | None:
    """Where the entry called ``name`` is in a tree's entries (in git's order), if anywhere."""
    for probe in (name, name + b"/"):  # a file's place, or a folder's
        k = bisect.bisect_left(parts, probe, key=_git_order)
        if k < len(parts) and parts[k][1] == name:
            return k
    return None


def _git_order(entry: tuple[bytes, bytes, bytes]) -> bytes:
    """git sorts a tree's entries by name, a folder's as if it ended in '/'."""
    return entry[1] + b"/" if entry[0] == _TREE_MODE else entry[1]


class _Unusual(Exception):
    """A tree _TreeEdit leaves to git's index."""
