"""``gitdesk site build``: run MkDocs into a fresh folder, audit it, then swap it into place.

The new site is written to a temporary folder beside the target and checked by the audit
(site/audit.py: nothing private, no e-mail address, no foreign script; for the staff site,
which holds private data by design, only the script part). Only a site that passes is
renamed into place; a failed build or audit deletes the temporary folder and leaves the
previous output as it was (or none). Staff pages are marked ``noindex``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from ..core.tracker import Tracker
from ..errors import GitdeskError
from .audit import audit_site
from .forbidden import forbidden


class BuildFailed(GitdeskError):
    pass


class AuditFailed(BuildFailed):
    """The built site holds something it must not; ``findings`` says what, and where."""

    def __init__(self, findings: list, out: Path, shown: int = 20):
        self.findings = findings
        kept = "the previous site is kept" if out.exists() else "no site was written"
        lines = [f"  {finding}" for finding in findings[:shown]]
        if len(findings) > shown:
            lines.append(f"  ... and {len(findings) - shown} more")
        super().__init__(f"site audit failed: {len(findings)} problem(s), so nothing was "
                         f"published ({kept}):\n" + "\n".join(lines))


def public_site_dir(root: Path) -> Path:
    """The public output folder: mkdocs.yml's ``site_dir`` (MkDocs' default: site/)."""
    from mkdocs.exceptions import MkDocsException
    from mkdocs.utils.yaml import yaml_load

    try:
        with open(root / "mkdocs.yml", "rb") as handle:
            data = yaml_load(handle)
    except (OSError, MkDocsException, ValueError, TypeError):
        data = {}
    site_dir = data.get("site_dir") if isinstance(data, dict) else None
    return (root / (site_dir if isinstance(site_dir, str) and site_dir else "site")).resolve()


def check_staff_output(root: Path, out: Path) -> None:
    """Refuse a staff build whose output is the public folder or inside it."""
    out = Path(out).resolve()
    for public in dict.fromkeys([(root / "site").resolve(), public_site_dir(root)]):
        if out == public or public in out.parents:
            raise BuildFailed(f"refusing to write the staff site into the public folder {public}")


def check_output(root: Path, out: Path) -> None:
    """Refuse an output folder whose replacement would lose work: the tracker, its data, a
    folder holding it, or any non-empty folder that is not a site built before."""
    root = root.resolve()
    if out == root or out in root.parents:
        raise BuildFailed(f"refusing to build the site into {out}: it holds the tracker")
    if root in out.parents and out.relative_to(root).parts[0] in _SOURCE_DIRS:
        raise BuildFailed(f"refusing to build the site into {out}: it is inside the tracker's "
                          f"{out.relative_to(root).parts[0]}/ folder")
    if out.is_dir() and any(out.iterdir()):
        if (out / ".git").exists():
            raise BuildFailed(f"refusing to replace {out}: it is a git repository")
        ours = {(root / "site").resolve(), (root / "site-staff").resolve()}
        if not (out / MARKER).is_file() and out not in ours:
            raise BuildFailed(f"refusing to replace {out}: it is not empty and gitdesk did not "
                              f"build it (no {MARKER}); choose an empty or new folder")
    if out.exists() and not out.is_dir():
        raise BuildFailed(f"refusing to build the site into {out}: it is a file")


MARKER = ".gitdesk-site"  # written into every folder gitdesk builds: safe to replace later
_SOURCE_DIRS = {".git", ".gitdesk", "issues", "kb", "docs", "hooks", "tools", "tests"}


def build(tracker: Tracker, staff: bool = False, out_dir: Path | None = None) -> Path:
    config_file = tracker.root / "mkdocs.yml"
    if not config_file.is_file():
        raise BuildFailed(f"{config_file.name}: not found in {tracker.root}")
    default = tracker.root / "site-staff" if staff else public_site_dir(tracker.root)
    out = Path(out_dir or default).resolve()
    if staff:
        check_staff_output(tracker.root, out)
    check_output(tracker.root, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pending = None if staff else _read_private_meanwhile(tracker)
    try:
        return _build(tracker, staff, out, config_file, pending)
    finally:
        _stop(pending)


def _build(tracker: Tracker, staff: bool, out: Path, config_file: Path, pending) -> Path:
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    previous = os.environ.get("GITDESK_SITE_STAFF")
    os.environ["GITDESK_SITE_STAFF"] = "1" if staff else "0"
    logger = logging.getLogger("mkdocs")
    saved = logger.level, logger.propagate
    collect = _Collect()
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        config = load_config(str(config_file), site_dir=str(tmp))
        mkdocs_build(config)
    except (MkDocsException, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        # MkDocs logs the reason and raises a generic "Aborted with ..."; say the reason.
        reason = collect.errors[0] if collect.errors else _one_line(err)
        raise BuildFailed(f"site build failed: {_one_line(reason)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        logger.removeHandler(collect)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        if previous is None:
            os.environ.pop("GITDESK_SITE_STAFF", None)
        else:
            os.environ["GITDESK_SITE_STAFF"] = previous
    try:
        (tmp / MARKER).write_text("Built by gitdesk site build; replaced by the next build.\n")
        if staff:
            mark_noindex(tmp)
        findings = audit_site(tmp, tracker, content=not staff, private=_result(pending))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if findings:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AuditFailed(findings, out)
    swap_in(tmp, out)
    for warning in collect.warnings:
        sys.stderr.write(f"warning: {_one_line(warning)}\n")
    return out


def _read_private_meanwhile(tracker: Tracker):
    """Start reading what is private (the audit's list, which means parsing every file of
    the tracker) in a forked process, so that it runs on another core while MkDocs builds.
    None where forking is not safe (not Linux, or threads running): the audit reads it then."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None  # (macOS forks badly; Windows cannot)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_send_private, args=(tracker.root, send), daemon=True)
    process.start()
    send.close()
    return process, receive


def _send_private(root: Path, send) -> None:
    try:
        private = forbidden(Tracker(root))
    except BaseException:  # the parent reads it again itself, and sees the error there
        private = None
    try:
        send.send(private)
    except OSError:
        pass  # the build failed and the parent is gone: nothing to say
    finally:
        send.close()


def _result(pending):
    if pending is None:
        return None
    try:
        return pending[1].recv()
    except (EOFError, OSError):
        return None


def _stop(pending) -> None:
    if pending is not None:
        process, receive = pending
        receive.close()
        process.join(timeout=0.5)  # done once its result was read; else no longer wanted
        if process.is_alive():
            process.kill()
            process.join()


NOINDEX = '<meta name="robots" content="noindex, nofollow">'


def mark_noindex(site: Path) -> None:
    """Ask search engines to keep away from every page of a (staff) site."""
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    for path in site.rglob("*.html"):
        text = path.read_text("utf-8", errors="surrogateescape")
        if 'name="robots"' not in text:
            head = text.find("<head>")
            at = head + len("<head>") if head >= 0 else 0
            text = text[:at] + f"\n{NOINDEX}" + text[at:]
            path.write_text(text, "utf-8", errors="surrogateescape")


class _Collect(logging.Handler):
    """MkDocs' log of one build: errors become the failure's one line, warnings are shown."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        (self.errors if record.levelno >= logging.ERROR else self.warnings).append(
            record.getMessage())


def _one_line(err: object) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def swap_in(new: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        os.rename(out, old)
    os.rename(new, out)
    os.chmod(out, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
