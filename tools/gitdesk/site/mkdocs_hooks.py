"""MkDocs adapter: adds the generated pages and attachments to a build. No logic of its own.

A tracker's hooks/gitdesk_hooks.py imports these functions; MkDocs calls them.
Set GITDESK_SITE_STAFF=1 to build the staff site (``gitdesk site build --staff`` does);
it is refused when the output folder is the public one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from ..core.tracker import Tracker
from ..errors import GitdeskError
from .build import check_staff_output
from .pages import THEME_CSS, THEME_SRC, build_site
from .render import redact, redact_html

__all__ = ["on_config", "on_files", "on_page_markdown", "on_page_content", "on_serve", "on_post_page"]

log = logging.getLogger("mkdocs.plugins.gitdesk")
_html: dict[str, str] = {}  # src_uri -> the finished HTML of each generated page, this build


def _staff() -> bool:
    return os.environ.get("GITDESK_SITE_STAFF") == "1"


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_config(config):
    """Before MkDocs empties the output folder: a staff build never goes to the public one."""
    if _staff():
        try:
            check_staff_output(_root(config), Path(config.site_dir))
        except GitdeskError as err:
            raise PluginError(f"gitdesk: {err}") from None
    if THEME_SRC not in config.extra_css:
        config.extra_css.append(THEME_SRC)
    return config


def on_files(files: Files, config) -> Files:
    root = _root(config)
    try:
        if _staff():
            check_staff_output(root, Path(config.site_dir))
        content = build_site(Tracker(root), staff=_staff(), directory_urls=config.use_directory_urls)
    except GitdeskError as err:
        raise PluginError(f"gitdesk: {err}") from None
    for warning in content.warnings:
        log.warning(warning)
    _html.clear()
    for page in content.pages:
        old = files.get_file_from_path(page.src_uri)
        if old is not None:
            files.remove(old)
        files.append(File.generated(config, page.src_uri, content=page.content))
        _html[page.src_uri] = page.html
    if files.get_file_from_path(THEME_SRC) is None:
        files.append(File.generated(config, THEME_SRC, abs_src_path=str(THEME_CSS)))
    for asset in content.assets:
        files.append(File.generated(config, asset.src_uri, abs_src_path=str(asset.path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """A generated page is already HTML (put back in on_page_content): give Markdown
    nothing to read, which saves converting every issue page twice."""
    return "" if page.file.src_uri in _html and page.file.generated_by else markdown


def on_page_content(html: str, page, config, files) -> str:
    """A generated page's output is our HTML as built, not Markdown's reading of it;
    hand-written pages (docs/) are published with every address hidden, like ours."""
    if page.file.generated_by:
        return _html.get(page.file.src_uri, html)
    if _staff():
        return html
    # A hand-written page: its title, headings (the search index reads them) and
    # description are published too, so they lose their addresses with the body.
    page.title = redact(page.title or "")
    for key in ("title", "description"):
        if isinstance(page.meta.get(key), str):
            page.meta[key] = redact(page.meta[key])
    links = list(page.toc)
    while links:
        link = links.pop()
        link.title = redact(link.title)
        links += link.children
    return redact_html(html)


def on_post_page(output: str, page, config) -> str:
    """The last look at each public page: nothing the theme printed keeps an address."""
    return output if _staff() else redact_html(output)


def on_serve(server, config, builder):
    """Live preview: a change to any issue, comment, attachment, KB article or gitdesk.yml
    rebuilds the site, as a change under docs/ does."""
    from .serve import watched_paths

    for path in watched_paths(_root(config)):
        server.watch(path)
    return server
