"""What people do to KB articles, and with them to issues (link, answer, write up); each action is one commit."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from ..core.document import parse, render
from ..core.repo import Identity
from ..core.tracker import Change, Tracker
from ..errors import Conflict, InvalidDocument, InvalidValue
from ..issues.actions import append_comment, update_issue
from ..issues.model import Comment, Issue
from .model import Article, article_from_document, article_to_document
from .store import KB_DIR, RESERVED_SLUGS, check_slug

SUMMARY_CHARS = 600
_HEADING = re.compile(r"#{1,6}(\s|$)")


def new_article(tracker: Tracker, title: str, *, internal: bool = False,
                tags: Iterable[str] = (), body: str = "", slug: str | None = None,
                author: Identity | None = None) -> Article:
    title = (title or "").strip()
    if not title or "\n" in title:
        raise InvalidValue("title: give a one-line title")
    with tracker.change(author=author) as change:
        slug = _free_slug(tracker, title, slug)
        article = Article(slug=slug, title=title, visibility="internal" if internal else "public",
                          tags=[t.strip() for t in tags if t.strip()], body=body)
        change.write(article.path, render(article_to_document(article)))
        change.message = f"kb {slug}: new: {title}"
    return article


def _free_slug(tracker: Tracker, title: str, slug: str | None) -> str:
    """The slug asked for (refused if taken or reserved), or a free one made from the title."""
    if not slug:
        return tracker.kb.new_slug(title)
    check_slug(slug)
    if slug in RESERVED_SLUGS:
        raise InvalidValue(f"slug {slug!r} is reserved for the KB index page; choose another")
    if tracker.kb.exists(slug):
        raise InvalidValue(f"KB article {slug!r} already exists ({KB_DIR}/{slug}.md)")
    return slug


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


# -- articles and issues --------------------------------------------------------------------

def link(tracker: Tracker, ref: str | int, slug: str, *, remove: bool = False,
         author: Identity | None = None) -> tuple[Issue, Article, list[str]]:
    """Link an issue and an article both ways (the issue's ``kb:`` and the article's
    ``issues:``) in one commit, or unlink them with ``remove``; returns what changed."""
    with tracker.change(author=author) as change:
        issue = tracker.issues.load(ref)
        article = tracker.kb.load(slug)
        issue, article, changes = _link(change, issue, article, remove)
        if changes:
            change.message = f"#{issue.id} {'unlink' if remove else 'link'} kb {slug}"
    return issue, article, changes


def _link(change: Change, issue: Issue, article: Article, remove: bool = False
          ) -> tuple[Issue, Article, list[str]]:
    updated, diffs = update_issue(change, issue, [("kb", "-=" if remove else "+=", article.slug)],
                                  notify=False)
    numbers = [n for n in article.issues if n != issue.id] if remove else \
        article.issues + ([] if issue.id in article.issues else [issue.id])
    changes = [f"#{issue.id} {d}" for d in diffs]
    if numbers != article.issues:
        before = ",".join(f"#{n}" for n in article.issues) or "none"
        article = dataclasses.replace(article, issues=numbers)
        _write_article(change, article)
        changes.append(f"kb {article.slug} issues: {before} -> {','.join(f'#{n}' for n in numbers) or 'none'}")
    return updated, article, changes


def _write_article(change: Change, article: Article) -> None:
    errors = [p for p in article.problems if not p.warning]
    if errors:
        raise InvalidValue(f"{article.path}: {errors[0].field}: {errors[0].message} (fix it with kb edit)")
    change.write(article.path, render(article_to_document(article)))


def article_url(tracker: Tracker, slug: str) -> str:
    """The article's address on the public site."""
    base = tracker.settings.site_url.strip()
    if not base:
        raise InvalidValue("site_url is not set in gitdesk.yml: a reply needs the article's full address")
    return f"{base.rstrip('/')}/kb/{slug}/"


def summary(body: str) -> str:
    """An article's first paragraph of text (headings, code, tables and pictures skipped)."""
    for block in body.replace("\r\n", "\n").split("\n\n"):
        block = block.strip("\n")
        first = block.lstrip()
        if not first or _HEADING.match(first) or block.startswith("    ") \
                or first.startswith(("```", "~~~", "<", "|", "---", "![")):
            continue
        if len(block) > SUMMARY_CHARS:
            block = block[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"
        return block
    return ""


def answer_text(tracker: Tracker, article: Article, text: str = "") -> str:
    """A reply that quotes the article's summary and links to it."""
    intro = text.strip() or "This article from our knowledge base should help:"
    quote = [f"**{article.title}**"]
    if summary(article.body):
        quote += ["", *summary(article.body).splitlines()]
    quoted = "\n".join(f"> {line}".rstrip() for line in quote)
    return f"{intro}\n\n{quoted}\n\nRead the whole article: {article_url(tracker, article.slug)}"


def reply(tracker: Tracker, ref: str | int, slug: str, text: str = "", *,
          author: Identity | None = None) -> Comment:
    """Answer an issue with a public article: one public comment quoting its summary and
    link (mailed to the customer like any public comment), and the two linked; one commit."""
    with tracker.change(author=author) as change:
        issue = tracker.issues.load(ref)
        article = tracker.kb.load(slug)
        if not article.is_public:
            raise InvalidValue(f"kb {slug} is internal: a customer cannot read it "
                               "(make it public with kb edit first)")
        comment = append_comment(change, issue, answer_text(tracker, article, text))
        _link(change, issue, article)
        change.message = f"#{issue.id} reply with kb {slug} by {change.author.name}"  # type: ignore[union-attr]
    return comment


def draft_from_issue(issue: Issue) -> str:
    """An article's first draft from a solved ticket: the question and the public answers."""
    answers = [c.body.strip() for c in issue.comments if c.is_public and c.body.strip()]
    parts = ["## Question", issue.body.strip() or "(no description)", "## Answer"]
    parts += answers or ["(no public reply yet)"]
    return "\n\n".join(parts)


def new_from_issue(tracker: Tracker, ref: str | int, *, title: str | None = None,
                   slug: str | None = None, tags: Iterable[str] | None = None,
                   author: Identity | None = None) -> Article:
    """Start an internal article from an issue (title, description, public comments), with
    ``issues: [ID]``, and link the issue back; one commit."""
    with tracker.change(author=author) as change:
        issue = tracker.issues.load(ref, comments=True)
        title = (title or issue.title).strip()
        if not title or "\n" in title:
            raise InvalidValue("title: give a one-line title")
        slug = _free_slug(tracker, title, slug)
        article = Article(slug=slug, title=title, visibility="internal",
                          tags=[t.strip() for t in (issue.labels if tags is None else tags) if t.strip()],
                          issues=[issue.id], body=draft_from_issue(issue))
        _write_article(change, article)
        update_issue(change, issue, [("kb", "+=", slug)], notify=False)
        change.message = f"kb {slug}: new from #{issue.id}: {title}"
    return article
