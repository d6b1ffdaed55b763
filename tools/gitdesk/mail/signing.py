"""Signed reply addresses and Message-IDs: proof that a reply answers mail we sent to that person.

``support+42.k7d2...@desk.example.com`` is issued to one recipient for one ticket; the token
is an HMAC of both under a secret that never enters git (GITDESK_MAIL_SECRET, or the file
.gitdesk/mail-secret made on first use). A copied token on another ticket, or used by
another sender, does not verify. Our Message-IDs carry the same kind of signature, so a
reply's In-Reply-To can be trusted exactly as far as its reply address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE = "mail-secret"
_TOKEN_LEN = 16
_REPLY_RE = re.compile(r"^(?P<local>[^+@]+)\+(?P<issue>[1-9][0-9]{0,11})\.(?:(?P<kind>n)\.)?"
                       r"(?P<token>[a-z2-7]{16})@(?P<domain>.+)$", re.I)
_MID_RE = re.compile(r"^gd\.(?P<issue>[1-9][0-9]{0,11})\.(?P<event>[A-Za-z0-9-]{1,60})\."
                     r"(?P<sig>[a-z2-7]{16})@(?P<domain>.+)$")

PUBLIC, NOTE = "reply", "note"


@dataclass(frozen=True)
class ReplyToken:
    issue: int
    kind: str     # reply (a public answer) or note (internal, for staff)
    token: str


def load_secret(local_dir: Path) -> bytes:
    """The signing key: the environment's, or the tracker's own, made once with mode 0600.

    Two processes may need it first at the same moment (the listener's worker and a staff
    comment): the key is written whole to a private temporary file and linked into place,
    so a reader sees no file or the whole key, and the loser of the race reads the winner's.
    """
    env = os.environ.get("GITDESK_MAIL_SECRET", "")
    if env:
        return env.encode("utf-8")
    path = Path(local_dir) / SECRET_FILE
    for _ in range(3):
        try:
            key = path.read_bytes().strip()
            if key:
                return key
        except FileNotFoundError:
            pass
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process won: then its key is read above
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    raise OSError(f"{path}: the mail signing key is empty; delete the file to make a new one")


class Signer:
    def __init__(self, secret: bytes, address: str):
        self.secret = secret
        self.local, _, self.domain = address.lower().rpartition("@")

    def _sign(self, *parts: str) -> str:
        digest = hmac.new(self.secret, "|".join(parts).encode("utf-8"), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").lower()[:_TOKEN_LEN]

    # -- reply addresses ------------------------------------------------------------------
    def reply_address(self, issue_id: int, recipient: str, kind: str = PUBLIC) -> str:
        token = self._sign("reply", str(issue_id), kind, recipient.lower())
        middle = "n." if kind == NOTE else ""
        return f"{self.local}+{issue_id}.{middle}{token}@{self.domain}"

    def parse_reply_address(self, address: str) -> ReplyToken | None:
        """The ticket a +address names, if it is one of ours (the token is not checked yet)."""
        match = _REPLY_RE.match(address.strip().lower())
        if not match or match["local"] != self.local or match["domain"] != self.domain:
            return None
        return ReplyToken(int(match["issue"]), NOTE if match["kind"] else PUBLIC, match["token"])

    def verify_reply(self, token: ReplyToken, sender: str) -> bool:
        expected = self._sign("reply", str(token.issue), token.kind, sender.lower())
        return hmac.compare_digest(expected, token.token)

    # -- Message-IDs ---------------------------------------------------------------------
    def message_id(self, issue_id: int, event: str, recipient: str) -> str:
        event = re.sub(r"[^A-Za-z0-9-]", "-", event)[:60] or "x"
        sig = self._sign("mid", str(issue_id), event, recipient.lower())
        return f"gd.{issue_id}.{event}.{sig}@{self.domain}"

    def thread_id(self, issue_id: int) -> str:
        """The root all of a ticket's mail refers to, so clients keep it in one thread."""
        return f"gd.{issue_id}@{self.domain}"

    def issue_of_message_id(self, message_id: str, recipient: str) -> int | None:
        """The ticket of one of our Message-IDs, if it was issued to ``recipient``."""
        match = _MID_RE.match(message_id.strip())
        if not match or match["domain"].lower() != self.domain:
            return None
        expected = self._sign("mid", match["issue"], match["event"], recipient.lower())
        return int(match["issue"]) if hmac.compare_digest(expected, match["sig"]) else None

    def named_issue(self, message_id: str) -> int | None:
        """The ticket one of our Message-IDs names, signature NOT checked: only to explain,
        in a note, why a reply that does not verify was not added to it."""
        match = _MID_RE.match(message_id.strip())
        if not match or match["domain"].lower() != self.domain:
            return None
        return int(match["issue"])

    def is_ours(self, message_id: str) -> bool:
        """Looks like one of our Message-IDs (signature not checked): never a new ticket."""
        return bool(_MID_RE.match(message_id.strip())) or message_id.startswith("gd.") \
            and message_id.endswith("@" + self.domain)
