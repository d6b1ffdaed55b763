"""MkDocs hooks of this tracker: a thin adapter; the pages are built by gitdesk.site."""

from gitdesk.site.mkdocs_hooks import *  # noqa: F401,F403  (on_config, on_files, on_page_content)
