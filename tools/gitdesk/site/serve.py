"""``gitdesk site serve``: a live preview on MkDocs' own server that rebuilds when the tracker changes.

MkDocs' server builds into a temporary folder of its own (never site/ or site-staff/) and
removes it on exit; it watches docs/ and mkdocs.yml, and we add what MkDocs does not know
is a source: every issue, comment, attachment and KB file, and gitdesk.yml. The hook's
``on_serve`` adds the same paths, so plain ``mkdocs serve`` rebuilds on them too.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from ..core.tracker import Tracker
from ..errors import GitdeskError

DEFAULT_ADDRESS = "127.0.0.1:8000"
SOURCES = ("issues", "kb", "gitdesk.yml")  # what the generated pages are made from


class ServeFailed(GitdeskError):
    pass


def watched_paths(root: Path) -> list[str]:
    """The tracker's sources that MkDocs does not watch by itself (those that exist)."""
    return [str(root / name) for name in SOURCES if (root / name).exists()]


def parse_address(address: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT', 'PORT' or '[v6]:PORT' -> (host, port); the host defaults to 127.0.0.1."""
    text = address.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeFailed(f"{address!r}: not an address; give HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(tracker: Tracker, staff: bool = False, address: str = DEFAULT_ADDRESS) -> None:
    """Serve the public (or staff) site until interrupted (Ctrl-C or SIGTERM)."""
    from mkdocs.commands.serve import serve as mkdocs_serve
    from mkdocs.exceptions import MkDocsException

    config_file = tracker.root / "mkdocs.yml"
    if not config_file.is_file():
        raise ServeFailed(f"{config_file.name}: not found in {tracker.root}")
    host, port = parse_address(address)
    if staff and not is_loopback(host):
        # the staff site holds private tickets, internal notes and customer addresses
        raise ServeFailed(f"the staff preview listens on this machine only (127.0.0.1, ::1 or "
                          f"localhost), not on {host}")
    os.environ["GITDESK_SITE_STAFF"] = "1" if staff else "0"
    _show_mkdocs_log()
    # SIGTERM (a service manager, a test) stops the server the way Ctrl-C does, so that
    # MkDocs removes its temporary build folder.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        mkdocs_serve(config_file=str(config_file), livereload=True,
                     watch=watched_paths(tracker.root), dev_addr=f"{_bracket(host)}:{port}")
    except OSError as err:
        raise ServeFailed(f"cannot serve on {host}:{port}: {err.strerror or err}") from None
    except MkDocsException as err:
        raise ServeFailed(f"site serve failed: {' '.join(str(err).split())}") from None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _show_mkdocs_log() -> None:
    """MkDocs' own lines ('Serving on ...', 'Building documentation...', warnings) on stderr."""
    logger = logging.getLogger("mkdocs")
    if not any(getattr(h, "_gitdesk", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-7s -  %(message)s"))
        handler._gitdesk = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
