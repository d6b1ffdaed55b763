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
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..core.tracker import Tracker
from ..errors import InvalidDocument
from ..issues.model import SLUG_RE, Issue
from ..issues.store import slug_of
from ..kb.model import Article
from ..timeutil import iso
from .render import EMAIL_RE, esc, markdown_html, person, plain_title, redact, redact_html


@dataclass
class Page:
    src_uri: str
    title: str
    html: str

    @property
    def content(self) -> str:
        """Markdown source handed to MkDocs: a title, then our already-safe HTML.

        The hook's ``on_page_content`` puts ``html`` back as the page's output, so what
        Markdown would make of it (a code line starting with a fence) never matters.
        """
        return f"---\ntitle: {json.dumps(self.title)}\n---\n\n{self.html}\n"


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


class _Links:
    def __init__(self, directory_urls: bool):
        self.directory_urls = directory_urls

    def url(self, src_uri: str) -> str:
        if not src_uri.endswith(".md"):
            return src_uri
        stem = src_uri[:-3]
        if stem == "index" or stem.endswith("/index"):
            return stem[:-5] if self.directory_urls else stem + ".html"
        return stem + "/" if self.directory_urls else stem + ".html"

    def href(self, from_src: str, to_src: str) -> str:
        here = self.url(from_src)
        base = here if here.endswith("/") or not here else posixpath.dirname(here) + "/"
        target = self.url(to_src)
        rel = posixpath.relpath(target or ".", base.rstrip("/") or ".")
        if target.endswith("/") and not rel.endswith("/"):
            rel += "/"
        return esc(rel)


def issue_src(issue_id: int) -> str:
    return f"issues/{issue_id}.md"


def label_src(label: str) -> str:
    return f"issues/label/{slug_of(label, 60) or 'label'}.md"


def _label_sources(labels) -> dict[str, str]:
    """One page per label; labels whose slugs clash ('Mail', 'mail') get -2, -3, ..."""
    taken: set[str] = set()
    out = {}
    for label in sorted(labels):
        base = label_src(label)[:-3]
        src, n = base, 2
        while src in taken:
            src, n = f"{base}-{n}", n + 1
        taken.add(src)
        out[label] = src + ".md"
    return out


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


def build_site(tracker: Tracker, staff: bool = False, directory_urls: bool = True) -> SiteContent:
    schema = tracker.settings.schema
    public = not staff
    site = SiteContent()
    issues, broken = tracker.issues.load_all()
    shown = [i for i in issues if staff or i.is_public]
    articles, broken_articles = tracker.kb.load_all()
    site.warnings += [f"{err} (left out of the site)" for err in [*broken, *broken_articles]]
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
    links = _Links(directory_urls)
    kb_titles = {a.slug: a.title for a in kb}
    who = lambda author: _who(tracker, author, public)  # noqa: E731
    for issue in shown:
        full = tracker.issues.load(issue.id)
        comments = []
        for name in tracker.issues.comment_names(issue.id):
            try:
                comment = tracker.issues.load_comment(issue.id, name)
            except InvalidDocument as err:  # unreadable: its visibility is unknown, so left out
                site.warnings.append(f"{err} (comment left out of the site)")
                continue
            if staff or comment.is_public:
                comments.append(comment)
        published = {}
        for name in dict.fromkeys([*full.attachments, *(n for c in comments for n in c.attachments)]):
            path = _attachment_file(tracker, issue.id, name, public)
            if path is not None:
                published[name] = _attachment_src(issue.id, name)
                site.assets.append(Asset(published[name], path))
        site.pages.append(_issue_page(full, comments, kb_titles, links, public,
                                      schema.is_closed(full.status), published, who))
    open_issues = [i for i in shown if not schema.is_closed(i.status)]
    closed_issues = [i for i in shown if schema.is_closed(i.status)]
    label_counts = Counter(label for i in shown for label in i.labels)
    label_srcs = _label_sources(label_counts)
    site.pages.append(_index_page("issues/index.md", "Open issues", open_issues, links, public,
                                  label_counts, schema, label_srcs, closed_count=len(closed_issues)))
    site.pages.append(_index_page("issues/closed.md", "Closed issues", closed_issues, links,
                                  public, None, schema, label_srcs))
    for label in sorted(label_counts):
        tagged = [i for i in shown if label in i.labels]
        site.pages.append(_index_page(label_srcs[label], f"Label: {label}", tagged, links, public,
                                      None, schema, label_srcs))
    shown_ids = {i.id for i in shown}
    for article in kb:
        site.pages.append(_article_page(article, links, public, shown_ids))
    site.pages.append(_kb_index(kb, links, public))
    if public:  # the last line of defence: no address in any page, whatever field it came from
        for page in site.pages:
            page.html = redact_html(page.html)
            page.title = redact(page.title)
    return site


def _badges(issue: Issue, public: bool) -> str:
    parts = [("status", issue.status), ("priority", issue.priority), ("type", issue.type)]
    if not public:
        parts.append(("visibility", issue.visibility))
    out = [f'<span class="gd-badge gd-{esc(kind)}">{esc(kind)}: {esc(value)}</span>'
           for kind, value in parts]
    out += [f'<span class="gd-badge gd-label">{esc(label)}</span>' for label in issue.labels]
    return '<p class="gd-badges">' + " ".join(out) + "</p>"


def _file_list(names: list[str], published: dict[str, str], src: str, links: _Links) -> str:
    """Attachment names, linked where the file is published."""
    items = []
    for name in names:
        if name in published:
            href = links.href(src, quote(published[name]))
            items.append(f'<li><a href="{href}">{esc(name)}</a></li>')
        else:
            items.append(f"<li>{esc(name)}</li>")
    return "".join(items)


def _issue_page(issue: Issue, comments, kb_titles, links: _Links, public: bool,
                closed: bool, published: dict[str, str], who) -> Page:
    src = issue_src(issue.id)
    title = f"#{issue.id} {issue.title}"
    parts = [f"<h1>#{issue.id} {esc(redact(issue.title) if public else issue.title)}</h1>",
             _badges(issue, public),
             f'<p class="gd-dates">Opened {esc(iso(issue.created))} · updated '
             f'{esc(iso(issue.activity))}</p>']
    if not public:
        staff_bits = [("customer", issue.customer), ("assignee", issue.assignee),
                      ("cc", ", ".join(issue.cc))]
        parts.append("<p>" + " · ".join(f"{k}: {esc(v)}" for k, v in staff_bits if v) + "</p>")
    elif issue.assignee:
        parts.append(f"<p>Assignee: {esc(who(issue.assignee))}</p>")
    parts.append(f'<div class="gd-body">{markdown_html(issue.body, public)}</div>')
    related = [slug for slug in issue.kb if slug in kb_titles]
    if related:
        items = "".join(f'<li><a href="{links.href(src, f"kb/{s}.md")}">{esc(kb_titles[s])}</a></li>'
                        for s in related)
        parts.append(f"<h2>Related articles</h2><ul>{items}</ul>")
    if comments:
        parts.append(f"<h2>Comments ({len(comments)})</h2>")
    for comment in comments:
        internal = not comment.is_public
        cls = "gd-comment gd-internal" if internal else "gd-comment"
        marker = '<strong class="gd-internal-mark">Internal note</strong> · ' if internal else ""
        files = _file_list(comment.attachments, published, src, links)
        parts.append(
            f'<div class="{cls}"><p class="gd-comment-head">{marker}'
            f"<strong>{esc(who(comment.author))}</strong> · {esc(iso(comment.date))}</p>"
            f"{markdown_html(comment.body, public)}"
            + (f"<ul>{files}</ul>" if files else "") + "</div>")
    if issue.attachments:
        items = _file_list(issue.attachments, published, src, links)
        parts.append(f"<h2>Attachments</h2><ul>{items}</ul>")
    back = "closed" if closed else "index"
    parts.append(f'<p><a href="{links.href(src, f"issues/{back}.md")}">All issues</a></p>')
    return Page(src, plain_title(title), "\n".join(parts))


def _issue_table(issues: list[Issue], src: str, links: _Links, public: bool) -> str:
    if not issues:
        return "<p>None.</p>"
    rows = []
    for issue in sorted(issues, key=lambda i: -i.id):
        labels = ", ".join(esc(label) for label in issue.labels)
        title = redact(issue.title) if public else issue.title
        rows.append(
            f'<tr><td><a href="{links.href(src, issue_src(issue.id))}">#{issue.id}</a></td>'
            f'<td><a href="{links.href(src, issue_src(issue.id))}">{esc(title)}</a></td>'
            f"<td>{esc(issue.status)}</td><td>{esc(issue.priority)}</td><td>{esc(issue.type)}</td>"
            f"<td>{labels}</td><td>{esc((iso(issue.activity) or '')[:10])}</td></tr>")
    head = ("<tr><th>#</th><th>Title</th><th>Status</th><th>Priority</th><th>Type</th>"
            "<th>Labels</th><th>Updated</th></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _index_page(src: str, title: str, issues: list[Issue], links: _Links, public: bool,
                labels: Counter | None, schema, label_srcs: dict[str, str],
                closed_count: int | None = None) -> Page:
    parts = [f"<h1>{esc(title)}</h1>", f"<p>{len(issues)} issue(s).</p>"]
    if closed_count is not None:
        parts.append(f'<p><a href="{links.href(src, "issues/closed.md")}">Closed issues '
                      f"({closed_count})</a></p>")
    if labels:
        items = " ".join(
            f'<a class="gd-badge gd-label" href="{links.href(src, label_srcs[name])}">'
            f"{esc(name)} ({count})</a>" for name, count in sorted(labels.items()))
        parts.append(f'<p class="gd-labels">Labels: {items}</p>')
    parts.append(_issue_table(issues, src, links, public))
    return Page(src, plain_title(title), "\n".join(parts))


def _article_page(article: Article, links: _Links, public: bool, shown_ids: set[int]) -> Page:
    src = f"kb/{article.slug}.md"
    parts = [f"<h1>{esc(article.title)}</h1>"]
    if article.tags:
        parts.append('<p class="gd-badges">' + " ".join(
            f'<span class="gd-badge gd-label">{esc(t)}</span>' for t in article.tags) + "</p>")
    if not public and not article.is_public:
        parts.append('<p><strong class="gd-internal-mark">Internal article</strong></p>')
    parts.append(f'<div class="gd-body">{markdown_html(article.body, public)}</div>')
    related = [n for n in article.issues if n in shown_ids]
    if related:
        items = "".join(f'<li><a href="{links.href(src, issue_src(n))}">#{n}</a></li>' for n in related)
        parts.append(f"<h2>Related issues</h2><ul>{items}</ul>")
    return Page(src, plain_title(article.title), "\n".join(parts))


def _kb_index(articles: list[Article], links: _Links, public: bool) -> Page:
    src = "kb/index.md"
    items = "".join(
        f'<li><a href="{links.href(src, f"kb/{a.slug}.md")}">{esc(a.title)}</a></li>'
        for a in sorted(articles, key=lambda a: a.title.lower()))
    body = f"<ul>{items}</ul>" if items else "<p>No articles yet.</p>"
    return Page(src, "Knowledge base", f"<h1>Knowledge base</h1>\n{body}")

