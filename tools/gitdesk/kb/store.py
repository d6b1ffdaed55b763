"""Articles on disk: ``kb/<slug>.md``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InvalidDocument, InvalidValue, NotFound
from ..issues.model import SLUG_RE
from ..issues.store import read_document, slug_of
from .model import Article, article_from_document

if TYPE_CHECKING:
    from ..core.tracker import Tracker

KB_DIR = "kb"


RESERVED_SLUGS = ("index",)  # kb/index is the site's list of articles


def check_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug or ""):
        raise InvalidValue(f"not an article slug: {slug!r} (use a-z, 0-9 and -)")
    return slug


class ArticleStore:
    def __init__(self, tracker: "Tracker"):
        self.tracker = tracker
        self.root = tracker.root

    def slugs(self) -> list[str]:
        try:
            names = os.listdir(self.root / KB_DIR)
        except FileNotFoundError:
            return []
        return sorted(n[:-3] for n in names if n.endswith(".md") and not n.startswith("."))

    def exists(self, slug: str) -> bool:
        return (self.root / KB_DIR / f"{slug}.md").is_file()

    def load(self, slug: str) -> Article:
        check_slug(slug)
        rel = f"{KB_DIR}/{slug}.md"
        if not (self.root / rel).is_file():
            raise NotFound(f"no KB article {slug!r} ({rel} does not exist)")
        return article_from_document(read_document(self.root, rel), slug)

    def load_all(self) -> tuple[list[Article], list[InvalidDocument]]:
        articles, errors = [], []
        for slug in self.slugs():
            try:
                articles.append(article_from_document(read_document(self.root, f"{KB_DIR}/{slug}.md"), slug))
            except InvalidDocument as err:
                errors.append(err)
        return articles, errors

    def new_slug(self, title: str) -> str:
        base = slug_of(title, limit=60) or "article"
        slug, n = base, 2
        while self.exists(slug) or slug in RESERVED_SLUGS:
            slug, n = f"{base}-{n}", n + 1
        return slug
