"""Mail that was not turned into a ticket or comment, kept with the reason: never dropped.

``.gitdesk/quarantine/<name>.eml`` holds the message byte for byte and ``<name>.json`` says
why, when, from whom and about what. The name is the message's SHA-256, so the same
message delivered twice is kept once. ``gitdesk mail quarantine`` lists them and
``gitdesk mail retry NAME`` feeds one to the gateway again (after a fix, say).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFound
from ..timeutil import iso, now
from .charsets import valid_text

FOLDER = "quarantine"


@dataclass(frozen=True)
class Held:
    name: str
    reason: str
    received: str
    sender: str
    subject: str
    size: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


def folder_of(local_dir: Path) -> Path:
    path = Path(local_dir) / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def _durable_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def hold(local_dir: Path, raw: bytes, reason: str, sender: str = "", subject: str = "",
         when: dt.datetime | None = None) -> Held:
    """Keep ``raw`` with ``reason``; returns what was recorded (the first reason stays)."""
    folder = folder_of(local_dir)
    name = hashlib.sha256(raw).hexdigest()[:32]
    meta_path = folder / f"{name}.json"
    if meta_path.exists():
        try:
            return Held(**json.loads(meta_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            pass
    _durable_write(folder / f"{name}.eml", raw)  # the message first: it is kept whatever follows
    held = Held(name, _text(reason, 500), iso(when or now()) or "", _text(sender, 200),
                _text(subject, 200), len(raw))
    try:
        meta = json.dumps(held.to_json(), ensure_ascii=True, indent=1).encode("ascii")
    except (TypeError, ValueError):  # never expected after _text; the reason is kept anyway
        held = Held(name, _text(reason, 500) or "(no reason)", held.received, "", "", len(raw))
        meta = json.dumps(held.to_json(), ensure_ascii=True, indent=1).encode("ascii")
    _durable_write(meta_path, meta)
    return held


def _text(value: object, limit: int) -> str:
    """One short line of valid Unicode (a lone surrogate from a decoded header becomes U+FFFD)."""
    return valid_text(str(value or "")[:limit])


def listing(local_dir: Path) -> list[Held]:
    folder = Path(local_dir) / FOLDER
    if not folder.is_dir():
        return []
    held = []
    for meta in sorted(folder.glob("*.json")):
        try:
            held.append(Held(**json.loads(meta.read_text(encoding="utf-8"))))
        except (ValueError, TypeError, OSError):
            held.append(Held(meta.stem, "(unreadable record)", "", "", "", 0))
    for eml in sorted(folder.glob("*.eml")):  # a message whose record was never written
        if not eml.with_suffix(".json").exists():
            try:
                info = eml.stat()
                when = iso(dt.datetime.fromtimestamp(info.st_mtime, dt.timezone.utc)) or ""
            except OSError:
                continue
            held.append(Held(eml.stem, "(no record kept)", when, "", "", info.st_size))
    return sorted(held, key=lambda h: h.received)


def raw_of(local_dir: Path, name: str) -> bytes:
    path = Path(local_dir) / FOLDER / f"{name}.eml"
    if not name.isalnum() or not path.is_file():
        raise NotFound(f"no quarantined message {name!r} (see gitdesk mail quarantine)")
    return path.read_bytes()


def release(local_dir: Path, name: str) -> None:
    folder = Path(local_dir) / FOLDER
    for suffix in (".eml", ".json"):
        (folder / f"{name}{suffix}").unlink(missing_ok=True)
