"""Article: a knowledge-base page, its checks, and Document conversion. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.document import Document
from ..issues.model import SLUG_RE, Problem

ARTICLE_VISIBILITIES = ("public", "internal")


@dataclass
class Article:
    slug: str
    title: str
    visibility: str = "public"
    tags: list[str] = field(default_factory=list)
    issues: list[int] = field(default_factory=list)
    body: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list, compare=False)

    @property
    def path(self) -> str:
        return f"kb/{self.slug}.md"

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    def to_json(self, with_body: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"slug": self.slug, "title": self.title, "visibility": self.visibility,
                                "tags": list(self.tags), "issues": list(self.issues), "path": self.path}
        if with_body:
            data["body"] = self.body
        return data


def article_from_document(doc: Document, slug: str) -> Article:
    meta = dict(doc.meta)
    problems = []
    if not SLUG_RE.fullmatch(slug):
        problems.append(Problem("slug", f"file name {slug!r} is not a slug (a-z, 0-9, -)"))
    title = meta.pop("title", None)
    if not isinstance(title, (str, int, float)) or isinstance(title, bool) or not str(title).strip():
        problems.append(Problem("title", "missing title"))
        title = ""
    raw_vis = meta.pop("visibility", None)
    visibility = raw_vis if raw_vis in ARTICLE_VISIBILITIES else "internal"
    if raw_vis is None:
        problems.append(Problem("visibility", "no visibility: treated as internal", warning=True))
    elif raw_vis not in ARTICLE_VISIBILITIES:
        problems.append(Problem("visibility", f"visibility {raw_vis!r} is not public or internal: "
                                              "treated as internal", warning=True))
    tags = meta.pop("tags", None) or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, (str, int)) for t in tags):
        problems.append(Problem("tags", "tags must be a list of words"))
        tags = []
    issues = meta.pop("issues", None) or []
    if not isinstance(issues, list):
        issues = [issues]
    numbers = []
    for ref in issues:
        text = str(ref).lstrip("#")
        if (text.isascii() and text.isdigit()) and int(text) > 0:
            numbers.append(int(text))
        else:
            problems.append(Problem("issues", f"issues: {ref!r} is not an issue number"))
    return Article(slug=slug, title=str(title).strip(), visibility=visibility,
                   tags=[str(t) for t in tags], issues=numbers, body=doc.body, extra=meta,
                   problems=problems)


def article_to_document(article: Article) -> Document:
    meta: dict[str, Any] = {"title": article.title, "visibility": article.visibility}
    if article.tags:
        meta["tags"] = list(article.tags)
    if article.issues:
        meta["issues"] = list(article.issues)
    meta.update(article.extra)
    return Document(meta, article.body)
