"""MkDocs hooks of this tracker: a thin adapter; the pages are built by gitdesk.site."""

from gitdesk.site.mkdocs_hooks import on_files  # noqa: F401
