"""``gitdesk site build``: run MkDocs into a fresh folder, then swap it into place.

A failed build leaves the previous output as it was: the new site is written to a
temporary folder beside the target and only renamed into place once it is complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..core.tracker import Tracker
from ..errors import GitdeskError


class BuildFailed(GitdeskError):
    pass


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


def _check_output(root: Path, out: Path) -> None:
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
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    config_file = tracker.root / "mkdocs.yml"
    if not config_file.is_file():
        raise BuildFailed(f"{config_file.name}: not found in {tracker.root}")
    default = tracker.root / "site-staff" if staff else public_site_dir(tracker.root)
    out = Path(out_dir or default).resolve()
    if staff:
        check_staff_output(tracker.root, out)
    _check_output(tracker.root, out)
    out.parent.mkdir(parents=True, exist_ok=True)
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
    (tmp / MARKER).write_text("Built by gitdesk site build; replaced by the next build.\n")
    _swap(tmp, out)
    for warning in collect.warnings:
        sys.stderr.write(f"warning: {_one_line(warning)}\n")
    return out


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


def _swap(new: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        os.rename(out, old)
    os.rename(new, out)
    os.chmod(out, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
