"""The outbox: notifications spooled in the same step as their change, delivered over SMTP.

``.gitdesk/outbox/`` has four folders. ``pending/`` holds what a change prepared before its
commit; the commit moves it to ``queue/`` (a failed change deletes it, and after a crash
``recover`` keeps an entry only if git holds the very file it reports). ``gitdesk mail send``
delivers ``queue/`` with retries and backoff into ``sent/``; a permanent refusal (5xx) of a
message, or ``mail.retry_hours`` of temporary ones, moves an entry to ``failed/`` with the
reason. Trouble reaching or logging in to the server (down, wrong password) is never the
message's fault: it is retried, and the rest of the queue waits for the next run; a 4xx for
one message does not hold up the others.
An entry is marked before it is handed to SMTP, so a crash mid-send costs at most one
duplicate, with the same Message-ID.

In a clone that shares its branch (``gitdesk sync``; an upstream, or ``origin``), an entry
waits in the queue until the commit of its change is on the shared branch
(``mail.wait_for_push``): until then ``gitdesk sync`` may still give the ticket another
number, and a customer must never hold a number that later names someone else's ticket.
When sync replays the commit or renumbers the ticket, ``follow_sync`` makes the waiting
entries name the new commit and say the new number.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.tracker import email_of
from ..timeutil import iso, now, parse_time, stamp

if TYPE_CHECKING:
    import smtplib
    from collections.abc import Callable

    from ..core.tracker import Tracker

FOLDERS = ("pending", "queue", "sent", "failed")
BACKOFF = (60, 300, 900, 1800, 3600, 7200, 14400)  # seconds before attempt 2, 3, ...
KEEP_SENT = dt.timedelta(days=30)


def outbox_dir(tracker: "Tracker") -> Path:
    root = tracker.local_dir / "outbox"
    for name in FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def _write(path: Path, entry: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(entry, handle, ensure_ascii=False, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def blob_id(data: bytes) -> str:
    """git's object id for a file's content (what HEAD:path must be for the change to exist)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id


def new_entry(message: bytes, recipients: list[str], envelope_from: str, message_id: str,
              issue: int, kind: str, requires: dict[str, str]) -> dict[str, Any]:
    return {"message_id": message_id, "to": recipients, "envelope_from": envelope_from,
            "issue": issue, "kind": kind, "created": iso(now()), "attempts": 0,
            "next_try": iso(now()), "last_error": "", "requires": requires,
            "message": message.decode("utf-8", "surrogateescape")}


@dataclass
class Spooled:
    """The entries one change prepared; ``commit`` queues them, ``abort`` forgets them."""

    paths: list[Path] = field(default_factory=list)
    on_commit: list = field(default_factory=list)

    def commit(self, sha: str) -> None:
        for path in self.paths:
            entry = _read(path)
            if entry is not None:  # the commit it waits for, when the branch is shared
                entry["commit"] = sha
                _write(path, entry)
            os.replace(path, path.parent.parent / "queue" / path.name)
        for hook in self.on_commit:
            hook()

    def abort(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


def spool(tracker: "Tracker", entries: list[dict[str, Any]]) -> Spooled:
    root = outbox_dir(tracker)
    spooled = Spooled()
    for entry in entries:
        # The name sorts in the order the changes were made (``deliver`` sends in name
        # order), also within one second or under a fixed GITDESK_NOW.
        name = f"{stamp(now())}-{time.time_ns():019d}-{entry['issue']}-{secrets.token_hex(3)}.json"
        _write(root / "pending" / name, entry)
        spooled.paths.append(root / "pending" / name)
    return spooled


def recover(tracker: "Tracker") -> int:
    """After a crash: queue the pending entries whose change git holds, drop the others.
    Call it holding the tracker's lock, so no change is in flight."""
    root = outbox_dir(tracker)
    moved = 0
    for path in sorted((root / "pending").glob("*.json")):
        entry = _read(path)
        held = entry is not None and all(tracker.committed_blob(rel) == oid
                                         for rel, oid in entry.get("requires", {}).items())
        if held:
            entry["commit"] = tracker.head()  # its own commit is not known: wait for HEAD's
            _write(path, entry)
            os.replace(path, root / "queue" / path.name)
            moved += 1
        else:
            path.unlink(missing_ok=True)
    return moved


def follow_sync(tracker: "Tracker", commits: dict[str, str | None], renumbered: dict[int, int],
                lost: dict[str, set[int]] | None = None) -> list[str]:
    """After ``gitdesk sync`` replayed commits (old -> new; None: left out, nothing of the
    change survived) and renumbered issues: the queued entries of those commits name the new
    commit and say the new numbers; an entry whose change is gone is moved to failed/ with
    the reason. Call it holding the tracker's lock. Returns what it did, for the report."""
    from .compose import UnsafeMessage
    from .compose import renumbered as rewrite
    from .signing import Signer, load_secret

    root = outbox_dir(tracker)
    signer = None
    told: list[str] = []
    moved: dict[tuple[int, int], int] = {}  # (old, new) -> how many mails now say new
    same = _same_change(tracker, commits)
    for path in sorted((root / "queue").glob("*.json")):
        entry = _read(path)
        commit = same(entry.get("commit")) if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or commit is None:
            continue
        new = commits[commit]
        what = f"mail to {', '.join(map(str, entry.get('to') or []))} about #{entry.get('issue')}"
        issue = entry.get("issue")
        undone = entry.get("kind") in ("update", "assigned") and \
            renumbered.get(issue, issue) in (lost or {}).get(commit, ())
        if new is None or undone or entry.get("kind") == "assigned" and not _still_assigned(
                tracker, renumbered.get(issue, issue), entry.get("to")):
            _drop(path, entry, "not sent: gitdesk sync undid the change it reports (the shared "
                               "repository had already decided otherwise)")
            told.append(f"{what} not sent: its change was undone")
            continue
        entry["commit"] = new
        if renumbered and isinstance(entry.get("requires"), dict):  # the files as they are now
            entry["requires"] = _renumbered_files(tracker, new, entry["requires"], renumbered)
        if renumbered and isinstance(entry.get("message"), str) and entry.get("to"):
            signer = signer or Signer(load_secret(tracker.local_dir), tracker.settings.mail.address)
            raw = entry["message"].encode("utf-8", "surrogateescape")
            try:
                msg = rewrite(raw, renumbered, signer, str(entry["to"][0]))
                again = msg.as_bytes()
            except (UnsafeMessage, ValueError, TypeError) as err:
                _drop(path, entry, f"not sent: cannot say the ticket's new number: {err}")
                told.append(f"{what} not sent: {entry['last_error']}")
                continue
            if again != raw:
                entry["message"] = again.decode("utf-8", "surrogateescape")
                entry["message_id"] = str(msg["Message-ID"]).strip().strip("<>")
                if isinstance(issue, int) and issue in renumbered:
                    entry["issue"] = renumbered[issue]
                    moved[issue, renumbered[issue]] = moved.get((issue, renumbered[issue]), 0) + 1
        _write(path, entry)
    told += [f"{n} waiting mail{'s' * (n != 1)} about #{old} now say{'s' * (n == 1)} #{new}"
             for (old, new), n in sorted(moved.items())]
    return told


def mailer_decides(tracker: "Tracker", commit: str, seen: dict[str, bool]) -> bool:
    """Did gitdesk.yml say ``send_from: mailer`` in ``commit``, the parent of a change, as
    the clone that made the change had it? Then the mailer mails about that change, and the
    clone that made it does not; otherwise that clone does. ``seen`` caches by file."""
    from ..core.document import load_yaml_file
    from ..errors import InvalidDocument

    found = tracker.repo.entry(commit, "gitdesk.yml")
    if found is None:
        return False
    if found[1] not in seen:
        try:
            data = load_yaml_file(tracker.repo.read_blob(found[1]).decode("utf-8", "replace"), "gitdesk.yml")
            mail = data.get("mail") if isinstance(data, dict) else None
            seen[found[1]] = isinstance(mail, dict) and mail.get("send_from") == "mailer"
        except InvalidDocument:
            seen[found[1]] = False
    return seen[found[1]]


SHARED_MARK = "refs/gitdesk/mailed"  # on the shared repository: the mailer's mark, for the next mailer


@contextmanager
def mailed_up_to(tracker: "Tracker", commits: list[tuple[str, str]]):
    """The shared commits not mailed about yet: those after the mailer's mark, the newer of
    this clone's (``.gitdesk/mailed``) and the shared repository's (``refs/gitdesk/mailed``,
    so that a clone that takes the mailer's place goes on where the last one stopped: no
    change mailed twice, none skipped). Without a mark: ``commits``, the ones just fetched.
    Both marks move to the shared tip when the block ends without an error."""
    repo = tracker.repo
    where = repo.upstream()
    tip = repo.resolve("refs/remotes/{}/{}".format(*where)) if where else None
    shared = repo.remote_ref(where[0], SHARED_MARK) if where else None
    mark = _newer(repo, _mark(tracker), shared if shared and repo.resolve(shared) else "")
    if mark and tip and repo.is_ancestor(mark, tip):
        new = [(c, parents[0]) for c, parents in repo.commits_between(mark, tip) if len(parents) == 1]
    elif mark:
        new = [(c, p) for c, p in commits if not repo.is_ancestor(c, mark)]
    else:
        new = list(commits)
    if new:  # its own changes, pushed with plain git (or rebased first), were mailed when made
        own = _own_commits(tracker)
        new = [(c, p) for c, p in new if c not in own]
        rewritten = own - set(repo.authored("HEAD", 1000))  # by a rebase: known by author, second, subject
        if new and rewritten:
            gone = set(repo.authorship(sorted(rewritten)).values())
            made = repo.authorship([c for c, _ in new])
            new = [(c, p) for c, p in new if made.get(c) not in gone]
    yield new
    end = tip or (commits[-1][0] if commits else "")
    if end:
        mark_mailed(tracker, end)
        if where and shared != end and repo.is_ancestor(shared or end, end):
            repo.push_ref(where[0], end, SHARED_MARK)


def _own_commits(tracker: "Tracker") -> set[str]:
    """The commits this clone's outbox holds mail about (queued, sent, failed)."""
    root = outbox_dir(tracker)
    return {entry["commit"] for folder in FOLDERS for path in (root / folder).glob("*.json")
            if isinstance(entry := _read(path), dict) and isinstance(entry.get("commit"), str)}


def mark_mailed(tracker: "Tracker", commit: str) -> None:
    """Move the mailer's mark to ``commit`` unless it is there or beyond already."""
    mark = _mark(tracker)
    if not mark or not tracker.repo.is_ancestor(commit, mark):
        (tracker.local_dir / "mailed").write_text(commit + "\n", encoding="utf-8")


def share_mark(tracker: "Tracker", commit: str) -> None:
    """After the mailer pushed ``commit``: the shared mark says its changes are mailed."""
    mark_mailed(tracker, commit)
    where = tracker.repo.upstream()
    if where:
        tracker.repo.push_ref(where[0], commit, SHARED_MARK)


def _newer(repo: Any, one: str, other: str) -> str:
    if not one or not other:
        return one or other
    return other if repo.is_ancestor(one, other) else one


def _mark(tracker: "Tracker") -> str:
    """The newest commit the mailer mailed about (``.gitdesk/mailed``), if this clone has it."""
    try:
        mark = (tracker.local_dir / "mailed").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return mark if mark and tracker.repo.resolve(mark) else ""


def mail_role(tracker: "Tracker") -> str:
    """'every' (each clone mails its own changes), else 'mailer' (this clone mails everyone's:
    git config gitdesk.mailer true) or 'silent' (mail.send_from: mailer, and not the one)."""
    if tracker.settings.mail.send_from != "mailer":
        return "every"
    return "mailer" if tracker.repo.config_flag("gitdesk.mailer") else "silent"


def _renumbered_files(tracker: "Tracker", commit: str, files: dict, renumbered: dict[int, int]) -> dict:
    """An entry's files after a renumbering: the new folder, the content the commit holds."""
    out = {}
    for rel, oid in files.items():
        parts = str(rel).split("/")
        if len(parts) > 2 and parts[0] == "issues" and parts[1].isdigit() and int(parts[1]) in renumbered:
            parts[1] = str(renumbered[int(parts[1])])
        rel = "/".join(parts)
        found = tracker.repo.entry(commit, rel)
        out[rel] = found[1] if found else oid
    return out


def _drop(path: Path, entry: dict[str, Any], reason: str) -> None:
    """A queued entry that must not go out: to failed/, with the reason."""
    entry["last_error"] = reason[:500]
    _write(path.parent.parent / "failed" / path.name, entry)
    path.unlink()


def _still_assigned(tracker: "Tracker", issue: Any, to: Any) -> bool:
    """Is the issue (as the sync left it) still assigned to the one recipient of ``to``?"""
    from ..errors import GitdeskError

    try:
        assignee = tracker.issues.load(int(issue)).assignee or ""
    except (GitdeskError, TypeError, ValueError):
        return False
    return isinstance(to, list) and [str(t).lower() for t in to] == [email_of(assignee)]


# -- delivery ---------------------------------------------------------------------------------

@dataclass
class Delivery:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    waiting: int = 0
    held: int = 0      # waiting for their change to reach the shared branch
    left: int = 0      # left to the mailer clone (mail.send_from: mailer)
    untried: int = 0   # not tried: the server could not be reached (they wait for the next run)
    busy: bool = False
    errors: list[str] = field(default_factory=list)


class _Connection:
    """One SMTP session for a run, opened on first use."""

    def __init__(self, tracker: "Tracker"):
        self.mail = tracker.settings.mail
        self.local_dir = tracker.local_dir
        self.smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        import smtplib  # here, as in each function that delivers: 5 ms of imports
        import ssl

        if self.smtp is None:
            mail = self.mail
            if mail.smtp_tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(mail.smtp_host, mail.smtp_port, timeout=30,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=30)
            try:
                if mail.smtp_tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if mail.smtp_user:
                    smtp.login(mail.smtp_user, smtp_password(self.local_dir))
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        return self.smtp

    def close(self) -> None:
        import smtplib

        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.smtp = None


def smtp_password(local_dir: Path) -> str:
    env = os.environ.get("GITDESK_SMTP_PASSWORD")
    if env is not None:
        return env
    try:
        return (Path(local_dir) / "smtp-password").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _text(message: object) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _describe(err: Exception) -> str:
    """The server's answer as people read it ('550 5.1.1 no such user'), else the error."""
    import smtplib

    if isinstance(err, smtplib.SMTPRecipientsRefused):
        answers = [(rcpt, f"{code} {_text(msg)}") for rcpt, (code, msg) in err.recipients.items()]
        if len(answers) == 1:
            return answers[0][1]
        return "; ".join(f"{rcpt}: {answer}" for rcpt, answer in answers)
    code = getattr(err, "smtp_code", None)
    if isinstance(code, int) and code > 0:
        return f"{code} {_text(getattr(err, 'smtp_error', b''))}"
    return f"{type(err).__name__}: {err}"


def _permanent(err: Exception) -> bool:
    """Did the server refuse this message for good (5xx)? Otherwise the problem is temporary."""
    import smtplib

    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in err.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    code = getattr(err, "smtp_code", 0)
    return isinstance(code, int) and code >= 500


def _connection_lost(err: Exception) -> bool:
    """A network problem, not an SMTP answer about one message: the rest waits for the next run.
    (smtplib's SMTPException is an OSError too: only its disconnection counts here.)"""
    import smtplib

    return isinstance(err, smtplib.SMTPServerDisconnected) or not isinstance(err, smtplib.SMTPException)


def deliver(tracker: "Tracker") -> Delivery:
    root = outbox_dir(tracker)
    report = Delivery()
    lock = os.open(root / "send.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                report.busy = True
                return report
            raise
        with tracker.locked():
            recover(tracker)
        _prune_sent(root)
        connection = _Connection(tracker)
        shared = Shared(tracker)
        try:
            queued = sorted((root / "queue").glob("*.json"))
            for k, path in enumerate(queued):
                if not _deliver_one(tracker, connection, shared, path, report):
                    report.untried = len(queued) - k - 1  # the server is unreachable: they wait
                    break
        finally:
            connection.close()
    finally:
        os.close(lock)
    return report


def _same_change(tracker: "Tracker", commits: dict[str, str | None]) -> Callable[[Any], str | None]:
    """Which of the commits sync replayed an entry's commit is: itself, or, when git rewrote
    it before the sync (``commit --amend``, ``pull --rebase``, which keep the author and
    the author date), the one commit of the same author and author date (and, where the
    author made several in that second, of the same subject)."""
    repo = tracker.repo
    replayed: dict[str, tuple[str, str, str]] | None = None

    def find(commit: Any) -> str | None:
        nonlocal replayed
        if not isinstance(commit, str) or not commit or commit in commits:
            return commit if commit in commits else None
        key = repo.authorship([commit]).get(commit)
        if key is None or repo.is_ancestor(commit, "HEAD"):
            return None  # gone, or already in the history sync built on: nothing to follow
        if replayed is None:
            replayed = repo.authorship(list(commits))
        found = [c for c, k in replayed.items() if k[:2] == key[:2]]
        if len(found) > 1:
            found = [c for c in found if replayed[c] == key]
        return found[0] if len(found) == 1 else None

    return find


class Shared:
    """Whether an entry's change is on the shared branch yet, as far as this clone knows
    (its remote-tracking branch, which ``gitdesk sync``, ``git fetch`` and ``git push``
    update). Entries of a clone that shares nothing, or with mail.wait_for_push off, and
    entries written before entries named their commit, never wait."""

    def __init__(self, tracker: "Tracker"):
        self.tracker = tracker
        self.repo = tracker.repo
        self.where = self.repo.upstream() if tracker.settings.mail.wait_for_push else None
        self.silent = mail_role(tracker) == "silent"
        self.modes: dict[str, bool] = {}
        self.tip = self.repo.resolve("refs/remotes/{}/{}".format(*self.where)) if self.where else None
        self.known: dict[str, bool] = {}
        self.shared: set[tuple[str, str, str]] | None = None  # (author, date, subject) of the newest shared commits
        self.here: set[tuple[str, str]] | None = None  # (author, date) of the newest commits here

    def waits(self, entry: dict[str, Any]) -> bool:
        commit = entry.get("commit")
        if self.where is None or not isinstance(commit, str) or not commit:
            return False
        if self.tip is None:
            return True  # nothing was ever shared
        if commit not in self.known:
            self.known[commit] = self.repo.is_ancestor(commit, self.tip)
        if self.known[commit]:
            return False
        # Its commit was rewritten outside gitdesk (git pull --rebase, commit --amend): the
        # change has reached the shared branch if the very file it wrote is there, or the
        # rewritten commit (same author, author date and subject) is.
        needs = entry.get("requires")
        return not (isinstance(needs, dict) and needs and all(
            isinstance(oid, str) and (self.repo.entry(self.tip, str(rel)) or ("", ""))[1] == oid
            for rel, oid in needs.items())) and not self._rewritten_and_shared(commit)

    def _rewritten_and_shared(self, commit: str) -> bool:
        key = self._rewritten(commit)
        if key is None or self.tip is None:
            return False
        if self.shared is None:
            self.shared = set(self.repo.authored(self.tip, 500).values())
        return key in self.shared

    def dropped(self, entry: dict[str, Any]) -> bool:
        """Is the change of a held entry gone from this clone's history (a rebase that took
        the other side, a reset), with nothing of its author and second left? Then it will
        never be shared, and its mail must not wait for ever."""
        commit = entry.get("commit")
        key = self._rewritten(commit) if isinstance(commit, str) and commit else None
        if key is None:
            return False  # in this clone's history, or unknown here: it may still be shared
        if self.here is None:
            self.here = {k[:2] for k in self.repo.authored("HEAD", 500).values()}
        return key[:2] not in self.here

    def _rewritten(self, commit: str) -> tuple[str, str, str] | None:
        """(author, date, subject) of a commit git still has but that is no longer in this
        clone's history (rewritten, or dropped); None otherwise."""
        key = self.repo.authorship([commit]).get(commit)
        return None if key is None or self.repo.is_ancestor(commit, "HEAD") else key

    def left_to_mailer(self, entry: dict[str, Any]) -> bool:
        """In a clone that sends no mail: was this entry's change made on top of a desk that
        had a mailer (so the mailer mails about it)? Entries of changes made before stay."""
        commit = entry.get("commit")
        if not self.silent or not isinstance(commit, str):
            return False
        parents = self.repo.commit_parents(commit) if self.repo.resolve(commit) else []
        return bool(parents) and mailer_decides(self.tracker, parents[0], self.modes)


def _deliver_one(tracker: "Tracker", connection: _Connection, shared: Shared, path: Path,
                 report: Delivery) -> bool:
    import smtplib

    root = path.parent.parent
    entry = _read(path)
    moment = now()
    try:
        if not isinstance(entry, dict):
            raise ValueError("not a JSON object")
        parse_time(entry["created"])
        ready = parse_time(entry["next_try"]) <= moment
        attempts = int(entry["attempts"])
        message = entry["message"].encode("utf-8", "surrogateescape")
        envelope_from, to = _envelope(entry)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        # A broken entry (hand-edited, truncated, or one no SMTP command may carry) must not
        # stop the outbox: it goes to failed/ with the reason, and the rest is delivered.
        if not isinstance(entry, dict):
            os.replace(path, root / "failed" / path.name)
            report.errors.append(f"{path.name}: unreadable outbox entry")
            report.failed += 1
            return True
        entry["last_error"] = f"invalid outbox entry: {type(err).__name__}: {err}"[:500]
        report.errors.append(f"{path.name}: {entry['last_error']}")
        _fail(path, entry, report)
        return True
    held = shared.waits(entry)
    if held and shared.dropped(entry):
        _drop(path, entry, "not sent: its change is no longer in this clone's history (a git rebase that "
                           "kept the other side, or a reset, dropped it)")
        report.failed += 1
        report.errors.append(f"{path.name}: {entry['last_error']}")
        return True
    if held:
        report.held += 1
        if "held" not in entry:
            entry["held"] = iso(moment)
            _write(path, entry)
        return True
    if shared.left_to_mailer(entry):
        _drop(path, entry, "not sent from this clone: the mailer clone sends it (mail.send_from: mailer)")
        report.left += 1
        return True
    if not ready:
        report.waiting += 1
        return True
    if "held" in entry and "released" not in entry:
        entry["released"] = iso(moment)  # mail.retry_hours count from here, not from its making
    entry["attempts"] = attempts + 1
    entry["last_try"] = iso(moment)
    _write(path, entry)  # marked before SMTP sees it: a crash now means one resend at most
    try:
        smtp = connection.get()
    except (smtplib.SMTPException, OSError) as err:
        # The server is down, or refuses us (a wrong password, a 554 greeting): no fault of
        # this message, so never a permanent failure of it; the rest waits for the next run.
        _defer(tracker, path, entry, moment, _describe(err), report)
        connection.close()
        return False
    try:
        smtp.sendmail(envelope_from, to, message)
    except ValueError as err:  # smtplib refuses to say it (a non-ASCII address): never will
        entry["last_error"] = f"cannot be sent: {err}"[:500]
        report.errors.append(f"{path.name}: {entry['last_error']}")
        _fail(path, entry, report)
        connection.close()  # the session may be half way through a transaction
        return True
    except (smtplib.SMTPException, OSError) as err:
        reason = _describe(err)
        if _permanent(err):
            entry["last_error"] = reason
            report.errors.append(f"{path.name}: {reason}")
            _fail(path, entry, report)
        else:
            _defer(tracker, path, entry, moment, reason, report)
        if _connection_lost(err):
            connection.close()
            return False
        return True
    entry["sent"] = iso(now())
    _write(root / "sent" / path.name, entry)
    path.unlink()
    report.sent += 1
    return True


def _envelope(entry: dict[str, Any]) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO of an entry; ValueError if SMTP could not carry them safely."""
    sender, to = entry["envelope_from"], entry["to"]
    if not isinstance(sender, str) or not isinstance(to, list) or not to \
            or not all(isinstance(r, str) and r for r in to):
        raise ValueError("envelope_from must be text and to a list of addresses")
    for address in (sender, *to):
        if any(c in address for c in "\r\n\0<> ") or len(address) > 320:
            raise ValueError(f"{address!r} cannot be an SMTP address")
    return sender, to


def _fail(path: Path, entry: dict[str, Any], report: Delivery) -> None:
    _write(path.parent.parent / "failed" / path.name, entry)
    path.unlink()
    report.failed += 1


def _defer(tracker: "Tracker", path: Path, entry: dict[str, Any], moment: dt.datetime, reason: str,
           report: Delivery) -> None:
    """A temporary failure: try again after the backoff, or give up after mail.retry_hours."""
    entry["last_error"] = reason[:500]
    report.errors.append(f"{path.name}: {entry['last_error']}")
    since = parse_time(entry.get("released") or entry["created"])
    if moment - since > dt.timedelta(hours=tracker.settings.mail.retry_hours):
        entry["last_error"] = f"gave up after {entry['attempts']} attempts: {entry['last_error']}"
        _fail(path, entry, report)
        return
    delay = BACKOFF[min(entry["attempts"] - 1, len(BACKOFF) - 1)]
    entry["next_try"] = iso(moment + dt.timedelta(seconds=delay))
    _write(path, entry)
    report.deferred += 1


def _prune_sent(root: Path) -> None:
    cutoff = now() - KEEP_SENT
    for path in (root / "sent").glob("*.json"):
        entry = _read(path)
        try:
            if entry is None or parse_time(entry.get("sent") or entry["created"]) < cutoff:
                path.unlink()
        except (KeyError, ValueError):
            path.unlink()


def status(tracker: "Tracker") -> dict[str, Any]:
    root = outbox_dir(tracker)
    counts = {name: len(list((root / name).glob("*.json"))) for name in FOLDERS}
    failed = []
    for path in sorted((root / "failed").glob("*.json")):
        entry = _read(path) or {}
        failed.append({"name": path.name, "to": entry.get("to"), "issue": entry.get("issue"),
                       "reason": entry.get("last_error"), "attempts": entry.get("attempts")})
    waiting = []
    shared = Shared(tracker)
    held = 0
    for path in sorted((root / "queue").glob("*.json")):
        entry = _read(path) or {}
        if shared.waits(entry):
            held += 1
        elif entry.get("attempts"):
            waiting.append({"name": path.name, "to": entry.get("to"), "next_try": entry.get("next_try"),
                            "error": entry.get("last_error"), "attempts": entry.get("attempts")})
    where = "/".join(shared.where) if shared.where else None
    role = mail_role(tracker)
    return {"counts": counts, "failed": failed, "retrying": waiting, "held": held, "shared": where,
            "role": None if role == "every" else role}
