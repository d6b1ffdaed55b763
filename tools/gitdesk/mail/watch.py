"""``gitdesk mail watch --maildir DIR``: ingest mail the moment it lands in DIR/new.

watchdog reports new files; a poll every ``poll`` seconds catches anything an event missed
(network file systems, a burst while the gateway was busy). Processing is the same as
``gitdesk mail ingest --maildir``: stored or quarantined, then moved to cur/.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LockTimeout
from .gateway import Gateway, Outcome
from .sources import _maildir, ingest_maildir

if TYPE_CHECKING:
    from ..core.tracker import Tracker


def watch(tracker: "Tracker", folder: Path, report: Callable[[str, Outcome], None],
          stop: threading.Event | None = None, poll: float = 30.0) -> None:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    folder = _maildir(Path(folder))
    stop = stop or threading.Event()
    wake = threading.Event()

    class _Wake(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # created in new/, or moved there from tmp/
            wake.set()

    def _stopper() -> None:  # stop at once, not at the end of a poll interval
        stop.wait()
        wake.set()

    observer = Observer()
    observer.schedule(_Wake(), str(folder / "new"), recursive=False)
    observer.start()
    threading.Thread(target=_stopper, name="gitdesk-watch-stop", daemon=True).start()
    gateway = Gateway(tracker)
    try:
        wake.set()
        while not stop.is_set():
            wake.wait(timeout=poll)
            wake.clear()
            if stop.is_set():
                break
            try:
                ingest_maildir(gateway, folder, report)
            except LockTimeout:
                continue  # the tracker is busy; the files wait in new/
    finally:
        observer.stop()
        observer.join(timeout=10)
        gateway.close()
