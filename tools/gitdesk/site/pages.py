"""Tracker -> site pages: a plain function, tested without MkDocs.

Generation is an allow-list: the public site takes only issues whose file says
``visibility: public``, only their public comments and listed attachments, and only public
KB articles. The staff site (``staff=True``) takes everything and marks internal notes.
Every public page is redacted as a whole (no e-mail address survives, whatever field it
came from), and attachments that a browser would run (HTML, SVG, ...) or MkDocs would
render (Markdown) are published as plain text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core.tracker import LOCAL_DIR, Tracker
from ..errors import InvalidDocument, NotFound
from ..issues.model import SLUG_RE, Comment, Issue
from ..kb.model import Article
from . import views
from .render import EMAIL_RE, person, plain_title, redact, redact_html
from .views import Links, View, facet_sources, issue_src

THEME_CSS = Path(__file__).with_name("theme") / "gitdesk.css"  # the look of generated pages
THEME_SRC = "assets/gitdesk/gitdesk.css"  # where the site serves it


@dataclass
class Page:
    src_uri: str
    title: str
    html: str
    search: bool = True  # False: left out of the search index (lists of issues)

    @property
    def content(self) -> str:
        """Markdown source handed to MkDocs: a title, then our already-safe HTML.

        The hook's ``on_page_content`` puts ``html`` back as the page's output, so what
        Markdown would make of it (a code line starting with a fence) never matters.
        """
        meta = "" if self.search else "search:\n  exclude: true\n"
        return f"---\ntitle: {json.dumps(self.title)}\n{meta}---\n\n{self.html}\n"


@dataclass
class Asset:
    src_uri: str
    path: Path


@dataclass
class SiteContent:
    pages: list[Page] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# Attachments published under their own name: types a browser shows or downloads without
# running anything. Every other name gets ".txt" added, so a static host serves it as plain
# text: an allow-list, because the list of types that can carry script (HTML, SVG, XML
# dialects such as RSS or MathML, Markdown that MkDocs would render) has no end.
PASSIVE_EXTENSIONS = {
    "png", "jpg", "jpeg", "gif", "webp", "bmp", "avif", "pdf", "txt", "log", "csv", "tsv",
    "json", "zip", "gz", "tgz", "tar", "bz2", "xz", "7z", "doc", "docx", "xls", "xlsx", "ppt",
    "pptx", "odt", "ods", "odp", "rtf", "mp3", "mp4", "wav", "ogg", "webm", "mov", "patch",
    "diff", "pcap",
}


def published_name(name: str) -> str:
    """The name an attachment gets on the site: anything not known to be passive gets '.txt'."""
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return name if ext in PASSIVE_EXTENSIONS else f"{name}.txt"


def _attachment_src(issue_id: int, name: str) -> str:
    return f"issues/{issue_id}/files/{published_name(name)}"


def _attachment_file(tracker: Tracker, issue_id: int, name: str, public: bool) -> Path | None:
    """The attachment's file, if it may be published: a plain file (no link) in files/."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    if public and EMAIL_RE.search(name):
        return None
    issue_dir = tracker.root / "issues" / str(issue_id)
    files_dir = tracker.root / tracker.issues.files_dir(issue_id)
    path = files_dir / name
    if any(p.is_symlink() for p in (issue_dir, files_dir, path)) or not path.is_file():
        return None
    return path


def _who(tracker: Tracker, author: str | None, public: bool) -> str:
    """A person's display name: a staff member's name from gitdesk.yml, else ``person``."""
    if not author:
        return ""
    match = re.search(r"<([^<>]+@[^<>]+)>", author)
    member = tracker.settings.find_staff(match.group(1) if match else author.strip())
    if member:
        return member.name
    return person(author, public)


def _comments(tracker: Tracker, issue: Issue, staff: bool, site: SiteContent) -> list[Comment]:
    """The comments a page shows: public ones (all, for staff); an unreadable one is left out,
    since its visibility is unknown."""
    comments = []
    for name in tracker.issues.comment_names(issue.id):
        try:
            comment = tracker.issues.load_comment(issue.id, name)
        except InvalidDocument as err:
            site.warnings.append(f"{err} (comment left out of the site)")
            continue
        if staff or comment.is_public:
            comments.append(comment)
    return comments


def build_site(tracker: Tracker, staff: bool = False, directory_urls: bool = True) -> SiteContent:
    schema = tracker.settings.schema
    public = not staff
    site = SiteContent()
    issues, broken, whole = _all_issues(tracker)
    shown = [i for i in issues if staff or i.is_public]
    if not whole:
        shown = _full(tracker, shown, staff, site)
    articles, broken_articles = tracker.kb.load_all()
    site.warnings += [f"{err} (left out of the site)" for err in [*broken, *broken_articles]]
    kb = _published_articles(articles, staff, site)
    by_label: dict[str, list[Issue]] = {}
    by_type: dict[str, list[Issue]] = {}
    for issue in shown:
        by_type.setdefault(issue.type, []).append(issue)
        for label in issue.labels:
            by_label.setdefault(label, []).append(issue)
    view = View(links=Links(directory_urls), public=public, schema=schema,
                who=lambda author: _who(tracker, author, public),
                titles={i.id: i.title for i in shown},
                private_ids={i.id for i in issues} - {i.id for i in shown},
                label_srcs=facet_sources(by_label, "label"), type_srcs=facet_sources(by_type, "type"))
    issues_of = _related_issues(kb, shown)
    articles_of: dict[int, list[Article]] = {}
    for article in kb:
        for number in issues_of[article.slug]:
            articles_of.setdefault(number, []).append(article)
    for issue in shown:
        site.pages.append(_issue_page(tracker, view, issue, articles_of.get(issue.id, []), site))
    site.pages += _list_pages(view, shown, by_label, by_type)
    by_id = {i.id: i for i in shown}
    for article in kb:
        related = [by_id[n] for n in sorted(issues_of[article.slug])]
        site.pages.append(Page(f"kb/{article.slug}.md", plain_title(article.title),
                               views.article_page(view, article, related)))
    site.pages.append(Page("kb/index.md", "Knowledge base", views.kb_index(view, kb)))
    from .reports_page import reports_page  # here: it builds on Page, defined in this module

    site.pages.append(reports_page(shown, schema, staff=staff))
    if public:  # the last line of defence: no address in any page, whatever field it came from
        for page in site.pages:
            page.html = redact_html(page.html)
            page.title = redact(page.title)
    return site


def _all_issues(tracker: Tracker) -> tuple[list[Issue], list[InvalidDocument], bool]:
    """Every issue's fields (body and comments not needed yet): from the index when a
    command has made one (it is brought up to date first, so never stale), which saves
    parsing every private ticket; otherwise from the files, as a fresh clone has them
    (building an index only to publish would cost more than it saves). True: read whole."""
    from ..index.db import FILE_NAME, IndexUnavailable

    if (tracker.root / LOCAL_DIR / "cache" / FILE_NAME).is_file():
        from ..index.records import load

        try:
            found = load(tracker)
            return found.issues, found.errors, False
        except (IndexUnavailable, OSError):
            pass
    return (*tracker.issues.load_all(), True)


def _full(tracker: Tracker, chosen: list[Issue], staff: bool, site: SiteContent) -> list[Issue]:
    """The chosen issues read whole from their files (an index record has no body). Each
    file decides again: one that is not public now is not published."""
    shown = []
    for issue in chosen:
        try:
            whole = tracker.issues.load(issue.id)
        except InvalidDocument as err:  # changed since the index saw it
            site.warnings.append(f"{err} (left out of the site)")
            continue
        except NotFound:
            continue
        if staff or whole.is_public:
            shown.append(whole)
    return shown


def _published_articles(articles: list[Article], staff: bool, site: SiteContent) -> list[Article]:
    kb = []
    for article in articles:
        if not (staff or article.is_public):
            continue
        if not SLUG_RE.fullmatch(article.slug) or article.slug == "index":
            # the file name becomes the page's address: only a plain slug is published
            site.warnings.append(f"{article.path}: file name is not an article slug "
                                 "(a-z, 0-9, -; not 'index'): left out of the site")
            continue
        kb.append(article)
    return kb


def _related_issues(kb: list[Article], shown: list[Issue]) -> dict[str, set[int]]:
    """Each article's shown issues, linked either way: the article's ``issues:`` or the
    issue's ``kb:``. An issue the site does not show is never named."""
    ids = {i.id for i in shown}
    related = {a.slug: {n for n in a.issues if n in ids} for a in kb}
    for issue in shown:
        for slug in issue.kb:
            if slug in related:
                related[slug].add(issue.id)
    return related


def _issue_page(tracker: Tracker, view: View, issue: Issue, articles: list[Article],
                site: SiteContent) -> Page:
    comments = _comments(tracker, issue, not view.public, site)
    issue.comments = comments  # what the reports page may count: public ones in public
    # "updated" counts what this site shows: an internal note's time stays internal
    issue.last_activity = max((c.date for c in comments), default=None)
    src = issue_src(issue.id)
    published = {}
    for name in dict.fromkeys([*issue.attachments, *(n for c in comments for n in c.attachments)]):
        path = _attachment_file(tracker, issue.id, name, view.public)
        if path is not None:
            published[name] = _attachment_src(issue.id, name)
            site.assets.append(Asset(published[name], path))
    related = [(f"kb/{a.slug}.md", a.title) for a in articles]
    html = views.issue_page(view, issue, comments, related,
                            lambda names: views.file_items(names, published, src, view.links))
    return Page(src, plain_title(f"#{issue.id} {issue.title}"), html)


def _list_pages(view: View, shown: list[Issue], by_label: dict[str, list[Issue]],
                by_type: dict[str, list[Issue]]) -> list[Page]:
    """Open, closed, and one page per label and per type; left out of the search index."""
    closed = [i for i in shown if view.is_closed(i)]
    counts = len(shown) - len(closed), len(closed)
    labels = Counter({label: len(tagged) for label, tagged in by_label.items()})
    types = Counter({kind: len(of_type) for kind, of_type in by_type.items()})
    lists = [("issues/index.md", "Open issues", [i for i in shown if not view.is_closed(i)]),
             ("issues/closed.md", "Closed issues", closed)]
    lists += [(view.label_srcs[label], f"Label: {label}", tagged) for label, tagged in by_label.items()]
    lists += [(view.type_srcs[kind], f"Type: {kind}", of_type) for kind, of_type in by_type.items()]
    return [Page(src, plain_title(title), views.index_page(view, src, title, listed, *counts,
                                                           labels, types), search=False)
            for src, title, listed in lists]
