"""Sharing a desk between clones: fetch, replay this clone's unshared commits on the shared
branch, renumber the issues that clash, merge edits of the same file field by field, push,
and try again if someone pushed meanwhile (``gitdesk sync``).

Why replay rather than ``git rebase``: gitdesk knows what its files mean. A commit is
replayed as the files it changed, onto the shared branch's newest commit, so that

- an issue this clone created that the shared branch also has (both made #42 offline) is
  moved to the next free number, with its folder, the ``#42`` in the files and commit
  messages of this clone's unshared work, and the ``issues:`` lists of its KB articles;
  an id that reached the shared branch is never renumbered, since only unshared commits
  are replayed;
- comments never clash (each is its own file);
- a file both sides changed (the same issue's fields, a KB article) is merged key by key:
  different fields both survive; the same field changed on both sides takes this clone's
  value (it syncs later: "last writer wins"), and the commit message records the value it
  replaced, so nothing is lost silently (and the other value stays in history) -- except a
  claim (``assignee``, set by ``issue take`` or ``issue assign``): the one that reached the
  shared repository first holds, and this clone's is undone and reported.

The worktree follows with ``git reset --keep``, which keeps uncommitted work and refuses,
changing nothing, when such work is in a file the sync must change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import parse_sync
from .core.document import Document, load_yaml_file, parse, render
from .core.repo import Repo
from .core.tracker import email_of
from .errors import GitdeskError, GitError, InvalidDocument
from .timeutil import iso, parse_time

if TYPE_CHECKING:
    from .core.tracker import Tracker

ATTEMPTS = 5
CLAIM = "assignee"  # the one field where the shared side wins a clash
_LOST = re.compile(r"; dropped |was undone")  # a decision against this clone's value
FOLLOW_STATUS = ("closed", "waiting_since", "paused_seconds", "resolution")  # set with the status
_ISSUE_PATH = re.compile(r"issues/([1-9][0-9]{0,11})/(.+)")
# What another clone's sync decided against a value that came from the shared side:
_DECIDED = re.compile(r"\((synced later|chosen) by [^)]*\); replaced |a later (take|assignment) \(.*\) was undone")
_DOCUMENT = re.compile(r"issues/[1-9][0-9]*/[^/.][^/]*\.md|kb/[^/.][^/]*\.md")  # what gitdesk reads as Markdown + YAML
_NEW = re.compile(r"#([1-9][0-9]{0,11}) new: ")  # the subject of the commit that made an issue
_REFERENCE = re.compile(r"(?<![\w#&/])#([1-9][0-9]{0,11})\b")


class SyncError(GitdeskError):
    exit_code = 1


@dataclass
class SyncReport:
    remote: str
    branch: str
    fetched: int = 0                       # shared commits this clone did not have
    replayed: int = 0                      # this clone's commits put on top of them
    pushed: int = 0                        # commits the shared branch gained
    renumbered: dict[int, int] = field(default_factory=dict)
    merged: list[str] = field(default_factory=list)  # what a field-by-field merge decided
    attempts: int = 1
    unpushed: int = 0                      # with --no-push: commits the shared branch lacks
    told: list[str] = field(default_factory=list)  # what other clones' syncs decided, from their commits
    followed: list[str] = field(default_factory=list)  # what the outbox did about it (subscribers)
    joined: int = 0                        # merge commits left out (their commits are replayed)

    def lines(self) -> list[str]:
        where = f"{self.remote}/{self.branch}"
        out = [f"fetched {self.fetched} commit{'s' * (self.fetched != 1)} from {where}"] if self.fetched else []
        if self.joined:
            out.append(f"left out {self.joined} merge commit{'s' * (self.joined != 1)} (a plain git pull): "
                       "replayed the commits it joined instead")
        out += [f"#{old} is now #{new}" for old, new in sorted(self.renumbered.items())]
        out += [f"from {where}: {line}" for line in dict.fromkeys(self.told)]
        out += list(dict.fromkeys(self.merged))
        out += self.followed
        if self.attempts > 1:
            out.append(f"{where} moved while syncing: tried {self.attempts} times")
        if self.pushed:
            out.append(f"pushed {self.pushed} commit{'s' * (self.pushed != 1)} to {where}")
        elif self.unpushed:
            out.append(f"{self.unpushed} commit{'s' * (self.unpushed != 1)} not pushed (--no-push)")
        else:
            out.append(f"up to date with {where}")
        return out


def sync(tracker: "Tracker", push: bool = True, ask: Ask | None = None) -> SyncReport:
    """Bring this clone and the shared branch together; see the module's text. ``ask`` is
    how to ask the user about a field both sides changed, when gitdesk.yml says to ask."""
    repo = tracker.repo
    doing = repo.unfinished()
    if doing:
        raise SyncError(f"a git {doing} is in progress: abort it (git {doing} --abort), then run gitdesk "
                        "sync, which settles what gitdesk knows how to (two clones' #42 included)")
    here = repo.branch()
    if (here is None or not repo.tracks(here)) and repo.upstream() is not None:
        repo.learn_default("origin")  # a clone made by `git remote add`: which branch is shared?
    shared = repo.upstream()
    if shared is None:
        raise SyncError("no shared repository: add one with `git remote add origin URL` "
                        "(and push once with `git push -u origin main`)")
    remote, branch = shared
    if here is None:
        raise SyncError(f"HEAD is detached (no branch is checked out): switch to the desk's branch "
                        f"(git switch {branch}), then run gitdesk sync")
    if here != branch and not repo.tracks(here):
        raise SyncError(f"this clone is on branch {here}, not the desk's shared branch {remote}/{branch}: "
                        f"switch to it (git switch {branch}), or share this one (git branch -u {remote}/{branch})")
    report = SyncReport(remote, branch)
    rule = Rule(tracker.settings.sync.same_field, f"{remote}/{branch}", ask)
    with tracker.locked():  # no gitdesk command writes while the branch is rewritten
        for attempt in range(1, ATTEMPTS + 1):
            report.attempts = attempt
            repo.fetch(remote)
            theirs = repo.resolve(f"refs/remotes/{remote}/{branch}")
            rule.name = _shared_rule(repo, theirs) or rule.name
            ours = repo.head()
            if ours is None:
                raise SyncError("this clone has no commit yet")
            if theirs is not None and theirs != ours:
                ours = _catch_up(tracker, ours, theirs, report, rule)
            elif theirs is not None:  # nothing came: the mailer may still owe mail (a new mailer)
                _tell_fetched(tracker, [], report)
            if ours == theirs:
                return report
            if not push:
                report.unpushed = len(repo.commits_between(theirs, ours))
                return report
            done, why = repo.push(remote, branch)
            if done:
                report.pushed = len(repo.commits_between(theirs, ours))
                for subscriber in tracker.subscribers:
                    subscriber.published(ours)
                return report
            repo.fetch(remote)
            if repo.resolve(f"refs/remotes/{remote}/{branch}") == theirs:  # not a race: refused
                raise SyncError(f"git push to {remote}/{branch} was refused: {why}")
    raise SyncError(f"{remote}/{branch} kept moving while syncing ({ATTEMPTS} tries); run gitdesk sync again")


@dataclass(frozen=True)
class Clash:
    number: int
    where: str      # remote/branch
    joined: str     # what put both in one folder: "merge" (a plain git pull), "rebase" (git pull --rebase), ""


def clashes(tracker: "Tracker") -> list[Clash]:
    """Issues this clone created in unshared commits whose number the shared branch also
    has, as this clone last fetched it (no network): what the next sync renumbers."""
    repo = tracker.repo
    shared, ours = repo.upstream(), repo.head()
    theirs = repo.resolve("refs/remotes/{}/{}".format(*shared)) if shared else None
    if shared is None or ours is None or theirs is None or theirs == ours:
        return []
    base = repo.merge_base(ours, theirs)
    if base is None:
        raise SyncError(f"this clone and {'/'.join(shared)} have no commit in common: gitdesk sync "
                        "cannot join them (was the shared repository made from another desk?)")
    if base == ours:
        return []
    local, joined = _split(repo.commits_between(base, ours))
    replay = _Replay(repo, base, theirs, local)
    mapping = replay._renumbering() if local else {}
    return [Clash(n, "/".join(shared), "rebase" if n in replay.overwritten else "merge" if joined else "")
            for n in sorted(mapping)]


@dataclass(frozen=True)
class Joined:
    """Two issues that a plain git pull put under one number, in shared history."""
    number: int
    commit: str     # the merge commit, or the commit a rebase replayed over the shared issue
    how: str        # "merge" or "rebase"
    sides: tuple[tuple[str, ...], ...]  # each issue's identity (``issue_identity``)


def joined_issues(tracker: "Tracker", limit: int = 20) -> list[Joined]:
    """Numbers under which a plain git pull put two issues, in the newest merge commits (both
    sides created the number; the conflict was resolved and committed) and in the newest
    commits that say they made an issue but changed one that existed (a `git pull --rebase`
    settled by taking one side)."""
    repo = tracker.repo
    found = []
    for merge in repo.merges(limit):
        parents = repo.commit_parents(merge)
        base = repo.merge_base(parents[0], parents[1]) if len(parents) == 2 else None
        if base is not None:
            before = _issue_ids(repo, base)
            for n in sorted((_issue_ids(repo, parents[0]) - before) & (_issue_ids(repo, parents[1]) - before)):
                found.append(Joined(n, merge, "merge", _identities(repo, parents, n)))
    for commit, subject, paths in repo.changed_in("issues/*/issue.md", limit * 10):
        n = _made_issue(subject)
        if f"issues/{n}/issue.md" in paths:
            sides = _identities(repo, [f"{commit}^", commit], n)
            if len(set(sides)) == 2:  # else the same issue, amended
                found.append(Joined(n, commit, "rebase", sides))
    return found


def separated(join: Joined, present: list[tuple[int, tuple[str, ...]]]) -> bool:
    """Is each of the two joined issues in a folder of its own again? ``present``: each issue
    of the worktree, (number, ``issue_identity``)."""
    homes = {n for n, identity in present if identity in join.sides}
    return set(join.sides) <= {identity for _, identity in present} and len(homes) >= len(join.sides)


def issue_identity(data: bytes) -> tuple[str, ...]:
    """Which issue a file is, as far as an amend leaves it alone and its number does not say:
    when, for whom and by whom it was opened (two issues opened in one second by one person
    for one customer are one)."""
    head = data.split(b"\n---", 1)[0]
    return (_created(head), *sorted(f"{m.group(1).decode()}={m.group(2).decode('utf-8', 'replace')}"
                                    for m in _MADE_BY.finditer(head)))


def _identities(repo: Repo, commits: list[str], number: int) -> tuple[tuple[str, ...], ...]:
    path = f"issues/{number}/issue.md"
    files = repo.read_objects([f"{c}:{path}" for c in commits])
    return tuple(issue_identity(data) for data in files.values())


def _made_issue(subject: str) -> int:
    """The number a commit says it made (gitdesk writes ``#42 new: title``), or 0."""
    found = _NEW.match(subject)
    return int(found.group(1)) if found else 0


def _catch_up(tracker: "Tracker", ours: str, theirs: str, report: SyncReport, rule: Rule) -> str:
    """This clone's unshared commits replayed on ``theirs``; the branch and worktree moved
    there; the subscribers (the outbox) told which commits and numbers changed."""
    repo = tracker.repo
    base = repo.merge_base(ours, theirs)
    if base is None:
        raise SyncError("this clone and the shared branch have no commit in common")
    unshared = repo.commits_between(base, ours)
    # A merge commit (a plain `git pull`) is left out, as `git rebase` does: the commits it
    # joined are replayed one by one, and a number both sides created is renumbered rather
    # than settled by however the merge's conflict was resolved.
    local, joined = _split(unshared)
    replay = _Replay(repo, base, theirs, local, rule, joined)
    _refuse_unreadable(repo, ours, replay)
    _refuse_lost_issue(replay)
    if base == theirs and not joined and not replay.overwritten:
        # nothing new on the shared branch (and no issue written over one of it): just push,
        # once the mailer has mailed what a plain pull may have brought in
        _tell_fetched(tracker, [], report)
        return ours
    fetched = repo.commits_between(base, theirs) if base != theirs else []
    report.fetched = len(fetched)
    for commit, _ in fetched:  # what another clone's sync decided over this clone's values
        report.told += [line for line in repo.commit_info(commit)[2].splitlines()[1:] if _DECIDED.search(line)]
    new = replay.run(report) if local else theirs
    folders = [f"issues/{n}/" for n in sorted(replay.mapping)]
    stray = repo.untracked(folders) + repo.dirty(folders) if folders else []
    if stray:  # left behind, it would join the shared issue that keeps the number (and its page)
        number = int(stray[0].split("/")[1])
        raise SyncError(f"{stray[0]} is in no commit, and this clone's #{number} is about to become "
                        f"#{replay.mapping[number]} (#{number} is another issue on {report.remote}/{report.branch}): "
                        "commit it, or move it out of the folder, then run gitdesk sync again; nothing was changed")
    repo.move_to(ours, new)
    report.replayed = len(local)
    report.joined = len(joined)
    replay.replaced.update(dict.fromkeys(joined, new))
    if unshared:  # first, so that the waiting mail follows even if what comes next fails
        for subscriber in tracker.subscribers:
            report.followed += subscriber.rewritten(replay.replaced, replay.mapping, replay.lost)
    tracker.reread_settings()  # the shared gitdesk.yml may have changed (mail.send_from, ...)
    _tell_fetched(tracker, [(c, parents[0]) for c, parents in fetched if len(parents) == 1], report)
    return new


def _refuse_lost_issue(replay: "_Replay") -> None:
    """Stop when a commit that made an issue no longer writes its file: a `git pull --rebase`
    whose clash was settled by keeping the shared #42 left only this clone's comments, which
    would be shared as comments on someone else's ticket."""
    for commit, _ in replay.local:
        number = _made_issue(replay.subjects.get(commit, ""))
        path = f"issues/{number}/issue.md"
        if number and not any(p == path and status in "AM" for status, _, _, p in replay.changes[commit]):
            raise SyncError(f"commit {commit[:10]} ({replay.subjects[commit][:60]}) made #{number} but no longer writes "
                            f"{path}: a git pull --rebase kept the shared #{number} in its place. Undo the pull "
                            "(git reset --keep ORIG_HEAD, or the commit before it in git reflog), then run "
                            f"gitdesk sync, which gives this clone's #{number} the next free number; nothing was changed")


def _shared_rule(repo: Repo, theirs: str | None) -> str | None:
    """``sync.same_field`` as the shared branch's gitdesk.yml says it (the team's rule, which
    holds over a change of it this clone has not shared yet); None if it cannot be read."""
    if theirs is None:
        return None
    data = repo.read_files(theirs, ["gitdesk.yml"]).get("gitdesk.yml")
    try:
        settings = load_yaml_file(data.decode("utf-8", "replace"), "gitdesk.yml") if data else None
        raw = settings.get("sync") if isinstance(settings, dict) else None
        return parse_sync(raw, "gitdesk.yml", None).same_field if isinstance(raw, dict) else "later"
    except InvalidDocument:
        return None


def _refuse_unreadable(repo: Repo, ours: str, replay: "_Replay") -> None:
    """Stop before sharing an issue or KB file this clone's commits left unreadable (git's
    conflict markers committed by hand, broken frontmatter): every clone would inherit it,
    and merging it field by field with the shared side's changes is impossible."""
    paths = {path for changes in replay.changes.values() for status, _, _, path in changes
             if status != "D" and _DOCUMENT.fullmatch(path)}
    for path, data in sorted(repo.read_files(ours, sorted(paths)).items()):
        try:
            parse(data.decode("utf-8", "surrogateescape"), path)
        except InvalidDocument as err:
            where = f"{err.path}, line {err.line}" if err.line else err.path
            why = "git's conflict markers were committed" if "conflict markers" in err.reason else err.reason
            raise SyncError(f"{where}: {why}; fix the file and commit it, then run gitdesk sync "
                            "(nothing was shared or changed)") from None


def _tell_fetched(tracker: "Tracker", fetched: list[tuple[str, str]], report: SyncReport) -> None:
    """The subscribers (the mailer's outbox) told which shared commits came in, as (commit, parent)."""
    try:
        for subscriber in tracker.subscribers:
            report.followed += subscriber.fetched(fetched)
    except InvalidDocument as err:  # the gitdesk.yml that came in is not readable here: still push
        report.followed.append(f"warning: {err}; nothing was done about the fetched changes' mail")


class _Replay:
    def __init__(self, repo: Repo, base: str, theirs: str, local: list[tuple[str, list[str]]],
                 rule: Rule | None = None, joined: list[str] | None = None):
        self.repo = repo
        self.joined = joined or []  # merge commits (a plain git pull) that joined the histories
        self.here: dict[int, int] = {}  # the renumbering that applies to the commit in hand
        self.rule = rule or Rule()
        self.base = base
        self.theirs = theirs
        self.local = local
        self.mapping: dict[int, int] = {}
        self.replaced: dict[str, str | None] = {}  # each local commit -> its replay (None: left out)
        self.lost: dict[str, set[int]] = {}  # each local commit -> issues where its change lost
        self.changes = {commit: repo.commit_changes(commit, parents[0]) for commit, parents in local}

    def run(self, report: SyncReport) -> str:
        self.mapping = self._renumbering()
        for old, new in self.mapping.items():  # a second try may move a number moved before
            first = next((k for k, v in report.renumbered.items() if v == old), old)
            report.renumbered[first] = new
        parent = self.theirs
        for index, (commit, (before,)) in enumerate(self.local):
            self.here = {n: m for n, m in self._renumbering_at(before).items()
                         if self.overwritten.get(n, -1) <= index}  # before it, #n was the shared one
            author, date, message = self.repo.commit_info(commit)
            changes: dict[str, tuple[str, str] | None] = {}
            notes: list[str] = []
            kept = self._kept(commit, notes)
            for status, mode, oid, path in self.changes[commit]:
                target = self._path(path)
                if target != path and path.endswith("/issue.md") and self.overwritten.get(
                        int(path.split("/")[1])) == index:
                    status = "A"  # this clone's issue, moved off the shared one it was written over
                if status == "D":
                    found = _ISSUE_PATH.fullmatch(path)
                    if found and int(found.group(1)) in kept:
                        continue
                    if target == path and self._changed_there(path):
                        notes.append(f"{path}: kept, as it changed on {self.rule.where} since; this clone's "
                                     "deletion was undone")
                        continue
                    changes[target] = None
                    continue
                oid = self._rewritten(path, oid)
                if status in "MT":
                    oid = self._merged(parent, before, path, target, oid, notes)
                elif status == "A":
                    target = self._beside(parent, target, oid, notes)
                    oid = self._merge_file(parent, target, None, oid, notes)
                changes[target] = (mode, oid)
            text = renumber_text(message, self.here)
            self.lost[commit] = {int(m.group(1)) for note in notes if _LOST.search(note)
                                 for m in [re.match(r"#(\d+) ", note)] if m}
            if notes:  # printed for this clone; recorded for everyone, naming whose value it was
                text += "\n\n" + "\n".join(_recorded(note, author.email) for note in notes)
                report.merged += notes
            try:
                made = self.repo.make_commit(parent, changes, text, author, date)
            except GitError as err:
                raise SyncError(f"cannot replay commit {commit[:10]} ({message.splitlines()[0][:60]}: "
                                f"{', '.join(sorted(changes))[:200]}): {err}; nothing was changed") from None
            self.replaced[commit] = made if made != parent else None
            parent = made
        return parent

    # -- deletions ---------------------------------------------------------------------------
    def _kept(self, commit: str, notes: list[str]) -> set[int]:
        """Shared issues this commit deletes though the shared side changed them meanwhile (a
        comment, a field): they are kept whole, and the deletion is undone and reported."""
        numbers = {int(found.group(1)) for status, _, _, path in self.changes[commit]
                   if status == "D" and (found := _ISSUE_PATH.fullmatch(path)) and found.group(2) == "issue.md"
                   and int(found.group(1)) not in self.here}
        kept = {n for n in sorted(numbers) if self._changed_there(f"issues/{n}")}
        notes += [f"#{n}: kept, as it changed on {self.rule.where} since; this clone's deletion was undone"
                  for n in sorted(kept)]
        return kept

    def _changed_there(self, path: str) -> bool:
        """Did the shared side change this file or folder since the common commit (and keep it)?"""
        there = self.repo.entry(self.theirs, path)
        return there is not None and there != self.repo.entry(self.base, path)

    # -- ids -----------------------------------------------------------------------------------
    def _renumbering(self) -> dict[int, int]:
        """This clone's new issues whose number the shared branch also uses -> free numbers."""
        def ids(commit: str) -> set[int]:
            return _issue_ids(self.repo, commit)

        added = [(commit, int(found.group(1))) for commit, _ in self.local
                 for status, _, _, path in self.changes[commit]
                 if status == "A" and (found := _ISSUE_PATH.fullmatch(path)) and found.group(2) == "issue.md"]
        if not added and not self.overwritten:
            return {}  # no new issue here: nothing to compare (three tree reads saved)
        shared, before = ids(self.theirs), ids(self.base)
        created: list[int] = [n for n in self.overwritten if n in shared]
        for commit, number in added:
            # Both sides know an issue of the common history as the same one; but a commit
            # made before a plain `git pull` joined the shared history did not.
            known = number in before and self.repo.is_ancestor(self.base, commit)
            if not known and number not in created:
                created.append(number)
        # every number this clone's commits made, even one deleted since: replaying that commit
        # puts it back for a while
        taken = shared | ids(self.local[-1][0]) | {number for _, number in added}
        mapping: dict[int, int] = {}
        free = max(taken, default=0) + 1
        for number in created:
            if number in shared:
                mapping[number] = free
                free += 1
        return mapping

    @functools.cached_property
    def overwritten(self) -> dict[int, int]:
        """Issues of the common history that a local commit replaced by another issue (the
        commit says it made #42, and ``issue_identity`` changed: not an amended #42): what a
        `git pull --rebase` leaves when both sides made #42 and the conflict was settled by
        taking this clone's file. Number -> index of that commit."""
        candidates = []
        seen: set[int] = set()
        for index, (commit, (before,)) in enumerate(self.local):
            for status, _, _, path in self.changes[commit]:
                match = _ISSUE_PATH.fullmatch(path)
                if not match or match.group(2) != "issue.md" or int(match.group(1)) in seen:
                    continue
                seen.add(int(match.group(1)))  # only its first change here can be the one a rebase wrote
                if status == "M":
                    candidates.append((index, commit, before, path, int(match.group(1))))
        found: dict[int, int] = {}
        if candidates:
            files = self.repo.read_objects([f"{c}:{path}" for _, commit, before, path, _ in candidates
                                            for c in (before, self.base, commit)])
            for index, commit, before, path, number in candidates:
                was = files.get(f"{before}:{path}")
                if was is None or was != files.get(f"{self.base}:{path}"):
                    continue  # not the common history's issue
                if _made_issue(self.subjects.get(commit, "")) == number and \
                        issue_identity(was) != issue_identity(files.get(f"{commit}:{path}", b"")):
                    found[number] = index  # the commit that made it, over another issue (not amended)
        return found

    @functools.cached_property
    def subjects(self) -> dict[str, str]:
        """Each local commit's subject."""
        return {c: key[2] for c, key in self.repo.authorship([commit for commit, _ in self.local]).items()}

    def _renumbering_at(self, parent: str) -> dict[int, int]:
        """The renumbering for a commit made on ``parent``. After a merge joined two #42s, a
        later commit touching issues/42 meant whichever issue the merge left there: this
        clone's (same creation), which moves, or the shared one, which stays."""
        if not self.joined or not self.mapping or not self.repo.is_ancestor(self.joined[0], parent):
            return self.mapping  # made before any merge: on this clone's own line
        merge = self.joined[-1]
        shared = next((p for p in self.repo.commit_parents(merge) if self.repo.is_ancestor(p, self.theirs)), None)

        def mine(number: int) -> bool:  # made after the merge, or the merge kept this clone's
            kept = self.repo.entry(merge, f"issues/{number}/issue.md")
            return shared is None or kept is None or kept != self.repo.entry(shared, f"issues/{number}/issue.md")

        return {n: m for n, m in self.mapping.items() if mine(n)}

    def _path(self, path: str) -> str:
        found = _ISSUE_PATH.fullmatch(path)
        if found and int(found.group(1)) in self.here:
            return f"issues/{self.here[int(found.group(1))]}/{found.group(2)}"
        return path

    def _rewritten(self, path: str, oid: str) -> str:
        """The file with renumbered references (``#42``; a KB article's ``issues:``)."""
        if not self.here or not path.endswith(".md") or "/files/" in path:
            return oid  # an attached file is the sender's, as sent
        text = self.repo.read_blob(oid).decode("utf-8", "surrogateescape")
        if path.startswith("issues/") and _customers_words(text, path):
            return oid  # "my invoice #42" is the customer's number, not the desk's
        new = renumber_text(text, self.here)
        if path.startswith("kb/"):
            try:
                doc = parse(new, path)
            except InvalidDocument:
                doc = None
            if doc is not None and isinstance(doc.meta.get("issues"), list):
                mapped = [self.here.get(n, n) if isinstance(n, int) else n for n in doc.meta["issues"]]
                if mapped != doc.meta["issues"]:
                    new = render(Document({**doc.meta, "issues": mapped}, doc.body))
        return oid if new == text else self.repo.write_blob(new.encode("utf-8", "surrogateescape"))

    # -- files both sides changed -----------------------------------------------------------
    def _beside(self, parent: str, target: str, oid: str, notes: list[str]) -> str:
        """Where a file this clone added goes when the shared side added one of that name too:
        a comment (named by its second and author) gets a free name beside it, so both
        survive; anything else keeps this clone's version, the other staying in history."""
        now = self.repo.entry(parent, target)
        if now is None or now[1] == oid:
            return target
        found = _ISSUE_PATH.fullmatch(target)
        if found and found.group(2) == "issue.md":  # two issues under one number: never merged
            raise SyncError(f"#{found.group(1)} was created on both sides and not renumbered (a bug in "
                            "gitdesk sync); nothing was changed: please report it")
        if found and found.group(2) != "issue.md" and "/" not in found.group(2) and target.endswith(".md"):
            stem = target[:-3]
            for k in range(2, 1000):
                if self.repo.entry(parent, f"{stem}-{k}.md") is None:
                    return f"{stem}-{k}.md"
        return target  # the caller merges it with the other (a KB article of the same name)

    def _merged(self, parent: str, before: str, path: str, target: str, oid: str, notes: list[str]) -> str:
        """Our version of ``target``, merged with what the shared side made of it meanwhile."""
        was = self.repo.entry(before, path)
        if was is None:
            return oid
        # the common version as this clone's renumbering would have it, so that the
        # renumbering itself is not taken for a change made on the shared side
        return self._merge_file(parent, target, self._rewritten(path, was[1]), oid, notes)

    def _merge_file(self, parent: str, target: str, base: str | None, oid: str, notes: list[str]) -> str:
        """``oid`` (this clone's version of ``target``) merged with the shared one, from their
        common version ``base`` (None: both sides added the file). Issue and KB files merge
        field by field, other text files line by line (gitdesk.yml); what both sides changed
        differently follows the rule."""
        now = self.repo.entry(parent, target)
        if now is None or now[1] == base or now[1] == oid:
            return oid  # they did not change it (or made the same change)
        data = [self.repo.read_blob(x) if x else b"" for x in (base, now[1], oid)]
        label = _label(target)
        if target.endswith(".md"):
            try:
                texts = [d.decode("utf-8", "surrogateescape") for d in data]
                shared = parse(texts[1], target)
                common = parse(texts[0], target) if base else Document({}, "")
                doc, lost = merge_documents(common, shared, parse(texts[2], target),
                                            lambda key, t, o: self.rule.settle(label, key, t, o),
                                            "text" if target.startswith("kb/") else "description")
            except InvalidDocument:
                doc, lost = None, []
            if doc is not None:
                notes += [f"{label} {what}" for what in lost]
                if doc.body == shared.body and _but_updated(doc.meta) == _but_updated(shared.meta):
                    return now[1]  # nothing of this clone's change is left: the file stays as shared
                return self.repo.write_blob(render(doc).encode("utf-8", "surrogateescape"))
        merged = self.repo.merge_lines(*data) if b"\0" not in b"".join(data) else None
        if merged is not None:
            return self.repo.write_blob(merged)
        theirs, ours = (d.decode("utf-8", "replace") for d in data[1:])
        kept, what = self.rule.settle(label, "file", theirs, ours)
        notes.append(f"{label} {what}")
        return oid if kept == ours else now[1]


Settle = Callable[[str, Any, Any], "tuple[Any, str]"]  # (field, theirs, ours) -> (value, what was decided)
Ask = Callable[[str, str, Any, Any], bool]  # (#12, field, shared value, this clone's) -> keep this clone's?


class Rule:
    """How a field both sides changed is settled (gitdesk.yml ``sync.same_field``): ``later``
    keeps this clone's value (it syncs later: last writer wins), ``earlier`` keeps the shared
    one, ``ask`` asks through ``ask`` (and stops the sync, changing nothing, without one).
    Whatever loses is named in the replayed commit's message."""

    def __init__(self, name: str = "later", where: str = "the shared repository", ask: Ask | None = None):
        self.name, self.where, self.ask = name, where, ask

    def settle(self, label: str, key: str, theirs: Any, ours: Any) -> tuple[Any, str]:
        t, o = (("the shared text", "this clone's text") if key in ("description", "text")
                else ("the shared version", "this clone's version") if key == "file"
                else (_show(theirs), _show(ours)))
        name = self.name
        if name == "ask":
            if self.ask is None:
                raise SyncError(f"{label} {key}: changed here ({o}) and on {self.where} ({t}), and "
                                "sync.same_field is ask: run gitdesk sync in a terminal to choose, or set "
                                "sync.same_field to later or earlier (nothing was changed)")
            if self.ask(label, key, theirs, ours):
                return ours, f"{key}: kept {o} (chosen in this clone); replaced {t}"
            return theirs, f"{key}: kept {t} (chosen in this clone); dropped {o}"
        if name == "earlier":
            return theirs, f"{key}: kept {t} (on {self.where} first); dropped {o}"
        return ours, f"{key}: kept {o} (this clone, synced later); replaced {t}"


def merge_documents(base: Document, theirs: Document, ours: Document,
                    settle: Settle | None = None, body_name: str = "description") -> tuple[Document, list[str]]:
    """Three-way merge of frontmatter key by key and of the body as a whole. Where both sides
    changed the same thing differently, ``settle`` decides (by default this clone's value
    wins) and says what it decided; a claim (``assignee``) always keeps the shared one."""
    if settle is None:
        settle = lambda key, t, o: Rule().settle("", key, t, o)  # noqa: E731
    lost: list[str] = []
    meta: dict[str, Any] = {}
    keys = list(theirs.meta) + [k for k in ours.meta if k not in theirs.meta]
    for key in keys:
        b, t, o = base.meta.get(key), theirs.meta.get(key), ours.meta.get(key)
        if o == b:
            value = t
        elif t == b or t == o:
            value = o
        elif isinstance(t, list) and isinstance(o, list) and isinstance(b, (list, type(None))):
            value = _merge_list(b or [], t, o)  # labels, cc, kb: both sides' edits apply
        elif key == "updated":
            value = max(t, o, key=str)
        elif key == CLAIM:  # a claim is first come, first served: the shared one holds
            value = t
            lost.append(f"is assigned to {_show(t)} (on the shared repository first); this clone's "
                        f"assignment ({_show(o)}) was undone")
        else:
            value, what = settle(key, t, o)
            lost.append(what)
        if value is not None or key in ours.meta and key in theirs.meta:
            meta[key] = value
    status = (base.meta.get("status"), theirs.meta.get("status"), ours.meta.get("status"))
    if status[1] != status[0] and status[2] != status[0] and status[1] != status[2]:
        side = theirs if meta.get("status") == status[1] else ours  # the fields a status sets follow it
        for key in FOLLOW_STATUS:
            if side.meta.get(key) is not None:
                meta[key] = side.meta[key]
            else:
                meta.pop(key, None)
    if ours.body == base.body:
        body = theirs.body
    elif theirs.body in (base.body, ours.body):
        body = ours.body
    else:
        body, what = settle(body_name, theirs.body, ours.body)
        lost.append(what + " (both are in the history)")
    return Document(meta, body), lost


def _recorded(note: str, who: str) -> str:
    """A decision as the commit message records it, read in other clones: 'this clone' is
    the one that synced, named by the replayed commit's author."""
    for mine, theirs in (("(this clone, synced later)", f"(synced later by {who})"),
                         ("(chosen in this clone)", f"(chosen by {who})"),
                         ("this clone's assignment", "a later assignment"), ("this clone's", f"{who}'s")):
        note = note.replace(mine, theirs)
    return note


def _merge_list(base: list, theirs: list, ours: list) -> list:
    """Both sides' additions and removals: theirs, less what ours removed, plus what ours added."""
    return [x for x in theirs if x in ours or x not in base] + [x for x in ours if x not in base and x not in theirs]


def renumber_text(text: str, mapping: dict[int, int]) -> str:
    """``text`` with each ``#N`` of ``mapping`` made ``#new`` (not ``&#N;``, ``a#N``, ``/#N``)."""
    if not mapping:
        return text
    return _REFERENCE.sub(lambda m: f"#{mapping.get(int(m.group(1)), int(m.group(1)))}", text)


_CREATED = re.compile(rb"^created:[ \t]*(.*?)[ \t]*$", re.M)
_MADE_BY = re.compile(rb"^(customer|author):[ \t]*(.*?)[ \t]*$", re.M)


def _created(head: bytes) -> str:
    """When the issue whose frontmatter this is was created, in one form whichever way the
    YAML wrote it (gitdesk rewrites it as ...Z when it changes the file)."""
    found = _CREATED.search(head)
    raw = found.group(1).strip(b"'\"").decode("utf-8", "replace") if found else ""
    try:
        return iso(parse_time(raw)) or raw
    except ValueError:
        return raw


def _issue_ids(repo: Repo, commit: str) -> set[int]:
    return {int(n) for n in repo.names(commit, "issues") if n.isdigit() and n[0] != "0"}


def _split(unshared: list[tuple[str, list[str]]]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Unshared commits -> (the plain ones, to replay; the merge commits, left out)."""
    return ([(c, parents) for c, parents in unshared if len(parents) == 1],
            [c for c, parents in unshared if len(parents) > 1])


def _customers_words(text: str, path: str) -> bool:
    """Is this issue file a customer's text (their mail, or the control panel)?"""
    try:
        meta = parse(text, path).meta
    except InvalidDocument:
        return False
    if path.endswith("/issue.md"):
        customer = email_of(meta.get("customer"))
        return bool(meta.get("message_id")) or bool(customer) and email_of(meta.get("author")) == customer
    return meta.get("via") in ("email", "web")


def _but_updated(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "updated"}


def _label(path: str) -> str:
    """How a decision names the file: ``#42`` for an issue's fields, else its path."""
    found = _ISSUE_PATH.fullmatch(path)
    return f"#{found.group(1)}" if found and found.group(2) == "issue.md" else path


def _show(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value) if value is not None else "(none)"
    return text if len(text) <= 60 else text[:57] + "..."


