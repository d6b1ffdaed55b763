"""What people do to KB articles; each action is one commit."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.document import parse, render
from ..core.repo import Identity
from ..core.tracker import Tracker
from ..errors import Conflict, InvalidDocument, InvalidValue
from .model import Article, article_from_document, article_to_document
from .store import KB_DIR, RESERVED_SLUGS, check_slug


def new_article(tracker: Tracker, title: str, *, internal: bool = False,
                tags: Iterable[str] = (), body: str = "", slug: str | None = None,
                author: Identity | None = None) -> Article:
    title = (title or "").strip()
    if not title or "\n" in title:
        raise InvalidValue("title: give a one-line title")
    with tracker.change(author=author) as change:
        if slug:
            check_slug(slug)
            if slug in RESERVED_SLUGS:
                raise InvalidValue(f"slug {slug!r} is reserved for the KB index page; choose another")
            if tracker.kb.exists(slug):
                raise InvalidValue(f"KB article {slug!r} already exists ({KB_DIR}/{slug}.md)")
        else:
            slug = tracker.kb.new_slug(title)
        article = Article(slug=slug, title=title, visibility="internal" if internal else "public",
                          tags=[t.strip() for t in tags if t.strip()], body=body)
        change.write(article.path, render(article_to_document(article)))
        change.message = f"kb {slug}: new: {title}"
    return article


def describe_changes(old: Article, new: Article) -> str:
    """'visibility: internal -> public, text': what an edit changed, visibility spelled out."""
    parts = []
    if old.visibility != new.visibility:
        parts.append(f"visibility: {old.visibility} -> {new.visibility}")
    parts += [name for name in ("title", "tags", "issues") if getattr(old, name) != getattr(new, name)]
    if old.body != new.body:
        parts.append("text")
    return ", ".join(parts) or "fields"


def replace_text(tracker: Tracker, slug: str, text: str, author: Identity | None = None,
                 base: str | None = None) -> tuple[Article, str]:
    """Replace an article with edited text; refused (file untouched) if invalid.

    ``base`` works as in ``issues.actions.replace_text``: the text an editor started from.
    """
    with tracker.change(author=author) as change:
        old = tracker.kb.load(slug)
        if base is not None and (tracker.root / old.path).read_text(encoding="utf-8") != base:
            raise Conflict(f"{old.path} changed while you were editing it")
        doc = parse(text, old.path)
        new = article_from_document(doc, slug)
        errors = sorted((p for p in new.problems if not p.warning or p.field == "visibility"),
                        key=lambda p: p.warning)  # a typo in visibility is refused on edit, too
        if errors:
            raise InvalidDocument(old.path, f"{errors[0].field}: {errors[0].message}",
                                  doc.line_of(errors[0].field))
        if new == old:
            return old, ""
        change.write(old.path, render(article_to_document(new)), guard=base is None)
        described = describe_changes(old, new)
        change.message = f"kb {slug}: edit: {described}"
    return new, described
