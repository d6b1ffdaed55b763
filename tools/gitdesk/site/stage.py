"""``gitdesk site stage DIR``: the site's sources in a plain folder, for MkDocs or any other generator.

The folder holds what the hook hands MkDocs: build_site's pages (Markdown files of a title
and already-sanitized HTML), the published attachments, the pages' stylesheet (THEME_SRC,
for the generator's ``extra_css``), and the hand-written pages of docs/. Pointing any
MkDocs-compatible generator's ``docs_dir`` at it builds the site with no gitdesk hook, so
the site does not depend on MkDocs' plugin API. Like ``site build``, the folder is written
beside its target, audited (a public stage), and swapped in whole; a failure leaves the old one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.tracker import Tracker
from ..errors import GitdeskError
from .audit import audit_site
from .build import MARKER, check_output, check_staff_output, swap_in
from .pages import THEME_CSS, THEME_SRC, Page, build_site
from .render import EMAIL_RE, HIDDEN, redact_html

# Names an editor, a merge or a patch leaves beside the real file: never published.
LEFTOVER_SUFFIXES = ("~", ".orig", ".rej", ".bak", ".swp", ".swo", ".tmp")


class StageFailed(GitdeskError):
    pass


@dataclass
class Staged:
    folder: Path
    pages: int = 0
    attachments: int = 0
    hand_written: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def stage(tracker: Tracker, out: Path, staff: bool = False, directory_urls: bool = True) -> Staged:
    """Write the public (or staff) site's sources into ``out``, replacing an earlier stage."""
    out = Path(out).resolve()
    if staff:
        check_staff_output(tracker.root, out)
    check_output(tracker.root, out)
    content = build_site(tracker, staff=staff, directory_urls=directory_urls)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    result = Staged(out, warnings=list(content.warnings))
    try:
        _copy_hand_written(tracker.root / "docs", tmp, public=not staff, result=result)
        for page in content.pages:  # a generated page replaces a hand-written one, as in the hook
            _write(tmp / page.src_uri, staged_source(page).encode("utf-8"))
            result.pages += 1
        for asset in content.assets:
            _write(tmp / asset.src_uri, asset.path.read_bytes())
            result.attachments += 1
        if THEME_CSS.is_file() and not (tmp / THEME_SRC).exists():
            _write(tmp / THEME_SRC, THEME_CSS.read_bytes())
        if not staff:  # a hand-copied private issue in docs/ would be published by any generator
            findings = audit_site(tmp, tracker)
            if findings:
                more = f" (and {len(findings) - 3} more)" if len(findings) > 3 else ""
                raise StageFailed("site stage failed the audit: "
                                  + "; ".join(str(f) for f in findings[:3]) + more)
        (tmp / MARKER).write_text("Staged by gitdesk site stage; replaced by the next stage.\n")
        swap_in(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StageFailed(f"site stage failed: {err.strerror or err}: {err.filename or out}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def staged_source(page: Page) -> str:
    """The page as a Markdown file whose body every Markdown reader passes through untouched.

    Without the hook to put our HTML back, a generator reads the page as Markdown: a line of
    a code block that looks like a fence, or text after a blank line, would be read again
    (escaped twice, or made a link). So the HTML is one block on one line: newlines become
    ``&#10;``, which the browser reads as the same newline, and a Markdown reader (Python-
    Markdown, CommonMark) keeps an HTML block that has no blank line as raw HTML.
    """
    flat = page.html.replace("\r\n", "\n").replace("\r", "&#13;").replace("\n", "&#10;")
    return f"---\ntitle: {json.dumps(page.title)}\n---\n\n<div class=\"gd-page\">{flat}</div>\n"


def _copy_hand_written(docs: Path, tmp: Path, public: bool, result: Staged) -> None:
    """docs/ as MkDocs would read it, failing closed: plain files only (a link could point at a
    private issue), no dot files, no editor leftovers; public pages lose their addresses."""
    if docs.is_symlink():
        result.skipped.append("docs/ itself (a symbolic link)")
    if not docs.is_dir() or docs.is_symlink():
        return
    for folder, dirs, files in os.walk(docs):
        here = Path(folder)
        for name in list(dirs):
            if name.startswith(".") or (here / name).is_symlink():
                dirs.remove(name)
                result.skipped.append((here / name).relative_to(docs).as_posix() + "/")
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(docs).as_posix()
            if name.startswith(".") or name.endswith(LEFTOVER_SUFFIXES) \
                    or not stat.S_ISREG(os.lstat(path).st_mode):
                result.skipped.append(rel)
                continue
            _write(tmp / rel, _published_bytes(path, public))
            result.hand_written += 1


def _published_bytes(path: Path, public: bool) -> bytes:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if not public or suffix not in {".md", ".markdown", ".html", ".htm"}:
        return data
    text = data.decode("utf-8", errors="replace")
    # Markdown source is not HTML: its entities and '>' quotes stay as written
    text = EMAIL_RE.sub(HIDDEN, text) if suffix in {".md", ".markdown"} else redact_html(text)
    return text.encode("utf-8")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
