"""``gitdesk init``: the files of a new tracker, and its first commit."""

from __future__ import annotations

import os
from pathlib import Path

from .config import DEFAULT_SETTINGS, SETTINGS_FILE
from .core.repo import Identity, Repo
from .core.tracker import acting_identity
from .errors import GitdeskError

HOOK_SHIM = '''\
"""MkDocs hooks of this tracker: a thin adapter; the pages are built by gitdesk.site."""

from gitdesk.site.mkdocs_hooks import *  # noqa: F401,F403  (on_config, on_files, on_page_content)
'''

MKDOCS_YML = """\
site_name: {name}
site_url: {site_url}
docs_dir: docs
theme:
  name: material
  font: false          # no web fonts from other hosts: the site works offline
  features:
    - navigation.tabs
    - search.highlight
hooks:
  - hooks/gitdesk_hooks.py
plugins:
  - search
# Issue pages stay out of the navigation (reached through the index pages):
# a navigation listing every issue would make each page, and the build, grow with the tracker.
nav:
  - Home: index.md
  - Issues: issues/index.md
  - Knowledge base: kb/index.md
  - Reports: reports/index.md
validation:
  nav:
    omitted_files: ignore
"""

HOME_PAGE = """\
# {name}

Welcome. Browse the [open issues](issues/index.md) or search the
[knowledge base](kb/index.md).
"""

GITIGNORE = """\
/site/
/site-staff/
/.site-*/
/.site-staff-*/
/.gitdesk/
"""


def tracker_files(name: str, site_url: str, default_type: str = "ticket") -> dict[str, str]:
    """The files of a new tracker; values are quoted as YAML strings."""
    settings = DEFAULT_SETTINGS.format(
        name=_yaml_text(name), site_url=_yaml_text(site_url), default_type=default_type,
        mail_from=_yaml_text(f"{name} <support@desk.example.com>"))
    return {
        SETTINGS_FILE: settings,
        "mkdocs.yml": MKDOCS_YML.format(name=_yaml_text(name), site_url=_yaml_text(site_url)),
        "hooks/gitdesk_hooks.py": HOOK_SHIM,
        "docs/index.md": HOME_PAGE.format(name=name),
        ".gitignore": GITIGNORE,
        "issues/.gitkeep": "",
        "kb/.gitkeep": "",
    }


def init(folder: Path, name: str | None = None, site_url: str = "https://support.example.com/",
         author: Identity | None = None) -> Path:
    """Make ``folder`` a tracker repository with one commit; refuses to clobber anything."""
    folder = Path(folder).expanduser().resolve()
    if (folder / SETTINGS_FILE).exists():
        raise GitdeskError(f"{folder}: already a gitdesk tracker ({SETTINGS_FILE} exists)")
    is_repo = (folder / ".git").exists()
    if folder.exists() and not folder.is_dir():
        raise GitdeskError(f"{folder}: exists and is not a folder")
    if folder.exists() and os.listdir(folder) and not is_repo:
        raise GitdeskError(f"{folder}: folder is not empty and not a git repository; "
                           "give an empty or new folder, or a git repository")
    name = name or folder.name.replace("-", " ").replace("_", " ").title() + " Support"
    files = tracker_files(name, site_url)
    clash = [rel for rel in files if (folder / rel).exists()]
    if clash:
        raise GitdeskError(f"{folder}: would overwrite {', '.join(clash)}; move them away first")
    who = author or acting_identity(Repo(folder if is_repo else Path.cwd()))
    folder.mkdir(parents=True, exist_ok=True)
    repo = Repo(folder) if is_repo else Repo.init(folder)
    written = []
    try:
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(rel)
        repo.commit(written, f"gitdesk init: {name}", who)
    except BaseException:
        for rel in written:
            (folder / rel).unlink(missing_ok=True)
        raise
    return folder


def _yaml_text(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
