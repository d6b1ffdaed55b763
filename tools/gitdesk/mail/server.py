"""``gitdesk mail serve``: an SMTP listener (aiosmtpd) in front of the gateway.

RCPT TO is accepted only for the desk's own addresses (``mail.address``, its
``+ticket.token`` forms and ``mail.aliases``). DATA is written to .gitdesk/incoming/ and
fsynced before the server answers 250, so an accepted message survives a crash; one worker
thread feeds the spool to the gateway in order, and the outbox is delivered every
``send_every`` seconds.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LockTimeout
from ..timeutil import now, stamp
from .gateway import Gateway, Outcome
from .outbox import deliver
from .signing import Signer
from .sources import drain_spool, spool_dir

if TYPE_CHECKING:
    from ..core.tracker import Tracker


def accepts(tracker: "Tracker", address: str) -> bool:
    """The desk's address, an alias, or a +ticket.token form of the address (the token is
    checked against the sender later, by routing); any other +form is nobody's."""
    mail = tracker.settings.mail
    text = address.strip().strip("<>").lower()
    if text == mail.address.lower() or text in mail.aliases:
        return True
    return Signer(b"", mail.address).parse_reply_address(text) is not None


def _store(folder: Path, content: bytes, mail_from: str, recipients: list[str]) -> Path:
    name = f"{stamp(now())}-{hashlib.sha256(content).hexdigest()[:16]}-{os.getpid()}"
    for suffix, data in ((".env", ("\n".join([mail_from, *recipients]) + "\n").encode()), (".eml", content)):
        tmp = folder / f".{name}{suffix}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / f"{name}{suffix}")  # .eml last: a spooled .eml is complete
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return folder / f"{name}.eml"


class Handler:
    """The aiosmtpd handler: refuse strangers' addresses, spool the rest, wake the worker."""

    def __init__(self, tracker: "Tracker", wake: threading.Event):
        self.tracker = tracker
        self.folder = spool_dir(tracker.local_dir)
        self.wake = wake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if not accepts(self.tracker, address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        try:
            _store(self.folder, content, envelope.mail_from or "", list(envelope.rcpt_tos))
        except OSError as err:
            return f"451 4.3.0 Cannot store the message now ({err.strerror}); try again later"
        self.wake.set()
        return "250 2.0.0 Message accepted"


class Listener:
    """The SMTP server, its worker thread and the periodic outbox delivery."""

    def __init__(self, tracker: "Tracker", host: str = "127.0.0.1", port: int = 2525,
                 send_every: float = 60.0, report: Callable[[str, Outcome], None] | None = None):
        self.tracker = tracker
        self.host, self.port = host, port
        self.send_every = send_every
        self.report = report or (lambda name, outcome: None)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.controller = None
        self.worker: threading.Thread | None = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        class _Controller(Controller):
            def _trigger_server(self) -> None:  # port 0: the port the kernel picked
                if self.port == 0 and self.server is not None:
                    self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        handler = Handler(self.tracker, self.wake)
        self.controller = _Controller(handler, hostname=self.host, port=self.port,
                                      data_size_limit=self.tracker.settings.mail.max_bytes,
                                      decode_data=False, server_hostname=self.tracker.settings.mail.domain)
        self.controller.start()
        self.port = self.controller.port
        self.worker = threading.Thread(target=self._work, name="gitdesk-mail", daemon=True)
        self.worker.start()
        self.wake.set()  # what an earlier run accepted but did not store yet

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.controller is not None:
            self.controller.stop()
        if self.worker is not None:
            self.worker.join(timeout=30)

    def _work(self) -> None:
        gateway = Gateway(self.tracker)
        folder = spool_dir(self.tracker.local_dir)
        last_send = 0.0
        try:
            while not self.stopping.is_set():
                self.wake.wait(timeout=1.0)
                self.wake.clear()
                try:
                    drain_spool(gateway, folder, self.report)
                    if self.send_every and time.monotonic() - last_send >= self.send_every:
                        last_send = time.monotonic()
                        deliver(self.tracker)
                except LockTimeout:
                    continue  # the tracker is busy (a long command): the next round tries again
                except Exception as err:  # noqa: BLE001 - keep serving; the spool keeps the mail
                    self.errors.append(f"{type(err).__name__}: {err}")
                    time.sleep(1.0)
        finally:
            gateway.close()
