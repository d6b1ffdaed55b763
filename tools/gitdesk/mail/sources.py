"""Where mail comes from in batches: an mbox file, a Maildir, the listener's spool folder.

Each yields raw messages to one Gateway (one process, one SeenIndex, a commit per message
authored by its sender). A Maildir message moves from new/ to cur/ (flag S) once it is
stored or quarantined, so a second run skips it; a busy tracker (LockTimeout) stops the run
and leaves the rest in new/ for the next one.
"""

from __future__ import annotations

import mailbox
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import GitdeskError, LockTimeout
from . import quarantine
from .gateway import Envelope, Gateway, Outcome

Report = Callable[[str, Outcome], None]

_FROM_QUOTED = re.compile(rb"^>(>*From )", re.M)


def unquote_from(raw: bytes) -> bytes:
    """A message as it was before the mbox quoted it: mbox writers put '>' before each body
    line starting 'From ' (and mboxrd before '>From ' too); one '>' comes off again."""
    return _FROM_QUOTED.sub(rb"\1", raw)


def mbox_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        box = mailbox.mbox(str(path), create=False)
        keys = box.keys()
    except (OSError, mailbox.Error) as err:
        raise GitdeskError(f"{path}: cannot read as mbox: {err}") from None
    for n, key in enumerate(keys, 1):
        yield f"{path.name}#{n}", unquote_from(box.get_bytes(key))


def safe_ingest(gateway: Gateway, raw: bytes, envelope: Envelope | None = None) -> Outcome:
    """``gateway.ingest``, and a message that still raises (a bug of ours) is quarantined
    with the reason, so a batch goes on past it; only LockTimeout is raised, for a retry."""
    try:
        return gateway.ingest(raw, envelope)
    except LockTimeout:
        raise
    except Exception as err:  # noqa: BLE001 - one bad message must not stop the rest
        print(traceback.format_exc(), file=sys.stderr)
        held = quarantine.hold(gateway.tracker.local_dir, raw,
                               f"internal error: {type(err).__name__}: {err}"[:300])
        return Outcome("quarantined", None, f"{held.reason} ({held.name})")


def ingest_mbox(gateway: Gateway, path: Path, report: Report) -> list[Outcome]:
    outcomes = []
    for label, raw in mbox_messages(path):
        outcome = safe_ingest(gateway, raw)
        report(label, outcome)
        outcomes.append(outcome)
    return outcomes


def _maildir(path: Path) -> Path:
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise GitdeskError(f"{path}: not a Maildir (it needs new/, cur/ and tmp/ folders)")
    return path


def ingest_maildir(gateway: Gateway, path: Path, report: Report) -> list[Outcome]:
    folder = _maildir(Path(path))
    outcomes = []
    for name in sorted(os.listdir(folder / "new")):
        outcome = ingest_maildir_file(gateway, folder, name)
        if outcome is not None:
            report(name, outcome)
            outcomes.append(outcome)
    return outcomes


def ingest_maildir_file(gateway: Gateway, folder: Path, name: str) -> Outcome | None:
    """Store new/<name> and move it to cur/; None if it is gone (another run took it)."""
    if name.startswith("."):
        return None
    source = folder / "new" / name
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    outcome = safe_ingest(gateway, raw)  # LockTimeout propagates: the file stays in new/
    base = name.split(":2,", 1)[0]
    try:
        os.replace(source, folder / "cur" / f"{base}:2,S")
    except FileNotFoundError:
        pass
    return outcome


def spool_dir(local_dir: Path) -> Path:
    path = Path(local_dir) / "incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def drain_spool(gateway: Gateway, folder: Path, report: Report) -> int:
    """Ingest what the listener stored (``<name>.eml`` with ``<name>.env``), oldest first."""
    done = 0
    for path in sorted(folder.glob("*.eml")):
        env_path = path.with_suffix(".env")
        lines = env_path.read_text(encoding="utf-8").split("\n") if env_path.exists() else []
        envelope = Envelope(mail_from=lines[0] if lines else None,
                            recipients=[x for x in lines[1:] if x])
        try:
            outcome = safe_ingest(gateway, path.read_bytes(), envelope)
        except LockTimeout:
            return done
        report(path.name, outcome)
        path.unlink()
        env_path.unlink(missing_ok=True)
        done += 1
    return done
