"""The outbox: notifications spooled in the same step as their change, delivered over SMTP.

``.gitdesk/outbox/`` has four folders. ``pending/`` holds what a change prepared before its
commit; the commit moves it to ``queue/`` (a failed change deletes it, and after a crash
``recover`` keeps an entry only if git holds the very file it reports). ``gitdesk mail send``
delivers ``queue/`` with retries and backoff into ``sent/``; a permanent refusal (5xx), or
``mail.retry_hours`` of temporary ones, moves an entry to ``failed/`` with the reason.
An entry is marked before it is handed to SMTP, so a crash mid-send costs at most one
duplicate, with the same Message-ID.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..timeutil import iso, now, parse_time, stamp

if TYPE_CHECKING:
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
        name = f"{stamp(now())}-{entry['issue']}-{secrets.token_hex(4)}.json"
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
            os.replace(path, root / "queue" / path.name)
            moved += 1
        else:
            path.unlink(missing_ok=True)
    return moved


# -- delivery ---------------------------------------------------------------------------------

@dataclass
class Delivery:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    waiting: int = 0
    busy: bool = False
    errors: list[str] = field(default_factory=list)


class _Connection:
    """One SMTP session for a run, opened on first use."""

    def __init__(self, tracker: "Tracker"):
        self.mail = tracker.settings.mail
        self.local_dir = tracker.local_dir
        self.smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.smtp is None:
            mail = self.mail
            if mail.smtp_tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(mail.smtp_host, mail.smtp_port, timeout=30,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=30)
                if mail.smtp_tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if mail.smtp_user:
                smtp.login(mail.smtp_user, smtp_password(self.local_dir))
            self.smtp = smtp
        return self.smtp

    def close(self) -> None:
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


def _permanent(err: Exception) -> str | None:
    """The reason, if the server refused for good (5xx); None for a temporary problem."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in err.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return "; ".join(f"{r}: {c} {m.decode('utf-8', 'replace') if isinstance(m, bytes) else m}"
                             for r, (c, m) in err.recipients.items())
        return None
    code = getattr(err, "smtp_code", 0)
    if isinstance(code, int) and code >= 500:
        text = getattr(err, "smtp_error", b"")
        return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
    return None


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
        try:
            for path in sorted((root / "queue").glob("*.json")):
                if not _deliver_one(tracker, connection, path, report):
                    break  # the server is unreachable: the rest waits for the next run
        finally:
            connection.close()
    finally:
        os.close(lock)
    return report


def _deliver_one(tracker: "Tracker", connection: _Connection, path: Path, report: Delivery) -> bool:
    root = path.parent.parent
    entry = _read(path)
    if entry is None:
        os.replace(path, root / "failed" / path.name)
        report.failed += 1
        return True
    moment = now()
    if parse_time(entry["next_try"]) > moment:
        report.waiting += 1
        return True
    entry["attempts"] += 1
    entry["last_try"] = iso(moment)
    _write(path, entry)  # marked before SMTP sees it: a crash now means one resend at most
    try:
        smtp = connection.get()
        smtp.sendmail(entry["envelope_from"], entry["to"],
                      entry["message"].encode("utf-8", "surrogateescape"))
    except (smtplib.SMTPException, OSError) as err:
        reason = _permanent(err)
        entry["last_error"] = reason or f"{type(err).__name__}: {err}"[:500]
        report.errors.append(f"{path.name}: {entry['last_error']}")
        gave_up = moment - parse_time(entry["created"]) > dt.timedelta(hours=tracker.settings.mail.retry_hours)
        if reason or gave_up:
            if gave_up and not reason:
                entry["last_error"] = f"gave up after {entry['attempts']} attempts: {entry['last_error']}"
            _write(root / "failed" / path.name, entry)
            path.unlink()
            report.failed += 1
            return True
        delay = BACKOFF[min(entry["attempts"] - 1, len(BACKOFF) - 1)]
        entry["next_try"] = iso(moment + dt.timedelta(seconds=delay))
        _write(path, entry)
        report.deferred += 1
        connection.close()
        return not isinstance(err, OSError)  # a refused connection: stop this run
    entry["sent"] = iso(now())
    _write(root / "sent" / path.name, entry)
    path.unlink()
    report.sent += 1
    return True


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
    for path in sorted((root / "queue").glob("*.json")):
        entry = _read(path) or {}
        if entry.get("attempts"):
            waiting.append({"name": path.name, "to": entry.get("to"), "next_try": entry.get("next_try"),
                            "error": entry.get("last_error"), "attempts": entry.get("attempts")})
    return {"counts": counts, "failed": failed, "retrying": waiting}
