"""The HTML of each kind of generated page (issue, issue list, KB article), and the links
between them. Which issues, comments and articles a page may show is decided by
``pages.build_site``; everything here only lays out what it is given.

Every value from a file is escaped with ``esc`` or rendered by ``render.markdown_html``; the
class names (``gd-*``) are styled by ``theme/gitdesk.css``.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from ..config import Schema
from ..issues.model import Comment, Issue
from ..issues.store import slug_of
from ..kb.model import Article
from ..timeutil import iso
from .render import esc, link_refs, markdown_html, redact


class Links:
    """Relative links between generated pages, for MkDocs' two URL styles."""

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


def facet_sources(values: Iterable[str], folder: str) -> dict[str, str]:
    """One page per label (or type) under ``issues/<folder>/``; values whose slugs clash
    ('Mail', 'mail') get -2, -3, ..."""
    taken: set[str] = set()
    out = {}
    for value in sorted(values):
        base = f"issues/{folder}/{slug_of(value, 60) or folder}"
        src, n = base, 2
        while src in taken:
            src, n = f"{base}-{n}", n + 1
        taken.add(src)
        out[value] = src + ".md"
    return out


@dataclass
class View:
    """What every page of one build shares: who reads it, and where things are."""

    links: Links
    public: bool
    schema: Schema
    who: Callable[[str | None], str]
    titles: dict[int, str]  # the issues this site shows
    private_ids: set[int]  # issues that exist but are not shown: "#42 (private)"
    label_srcs: dict[str, str] = field(default_factory=dict)
    type_srcs: dict[str, str] = field(default_factory=dict)

    def text(self, body: str, src: str, top: int = 3, ticket: bool = True) -> str:
        """Untrusted Markdown as safe HTML, with '#42' linked (or marked private)."""
        def target(number: int):
            if number in self.titles:
                title = self.titles[number]
                return self.links.href(src, issue_src(number)), redact(title) if self.public else title
            return "" if number in self.private_ids else None
        return link_refs(markdown_html(body, self.public, top=top, ticket=ticket), target)

    def is_closed(self, issue: Issue) -> bool:
        return self.schema.is_closed(issue.status)


def when(moment: dt.datetime | dt.date | None) -> str:
    """A time as readers read it (UTC, to the minute), machine-readable in ``datetime``."""
    if moment is None:
        return ""
    shown = moment.strftime("%Y-%m-%d %H:%M UTC") if isinstance(moment, dt.datetime) \
        else moment.isoformat()
    return f'<time datetime="{esc(iso(moment))}">{esc(shown)}</time>'


def _badge(kind: str, value: str, href: str | None = None, extra: str = "") -> str:
    cls = f"gd-badge gd-{kind} gd-{kind}-{slug_of(value, 30) or 'x'}{extra}"
    inner = f'<span class="gd-key">{esc(kind)}</span> {esc(value)}'
    if href:
        return f'<a class="{cls}" href="{href}">{inner}</a>'
    return f'<span class="{cls}">{inner}</span>'


def _label(view: View, src: str, label: str) -> str:
    if label in view.label_srcs:
        href = view.links.href(src, view.label_srcs[label])
        return f'<a class="gd-badge gd-label" href="{href}">{esc(label)}</a>'
    return f'<span class="gd-badge gd-label">{esc(label)}</span>'


def badges(view: View, issue: Issue, src: str) -> str:
    state = " gd-closed" if view.is_closed(issue) else " gd-open"
    out = [_badge("status", issue.status, extra=state),
           _badge("type", issue.type, view.links.href(src, view.type_srcs[issue.type])
                  if issue.type in view.type_srcs else None),
           _badge("priority", issue.priority)]
    if issue.resolution and view.is_closed(issue):
        out.append(_badge("resolution", issue.resolution))
    if not view.public:
        out.append(_badge("visibility", issue.visibility))
    out += [_label(view, src, label) for label in issue.labels]
    return '<p class="gd-badges">' + " ".join(out) + "</p>"


# -- the issue page --------------------------------------------------------------------------

def issue_page(view: View, issue: Issue, comments: list[Comment], related: list[tuple[str, str]],
               files: Callable[[list[str]], str]) -> str:
    """``related``: (src, title) of KB articles; ``files(names)``: the attachment list items."""
    src = issue_src(issue.id)
    title = redact(issue.title) if view.public else issue.title
    author = view.who(issue.author)
    meta = [f"Opened {when(issue.created)}" + (f" by {esc(author)}" if author else "")]
    if issue.activity != issue.created:
        meta.append(f"updated {when(issue.activity)}")
    if issue.closed and view.is_closed(issue):
        meta.append(f"closed {when(issue.closed)}")
    parts = [f'<h1 class="gd-title">{esc(title)} <span class="gd-num">#{issue.id}</span></h1>',
             badges(view, issue, src), '<p class="gd-meta">' + " · ".join(meta) + "</p>"]
    if not view.public:
        staff = [("Customer", issue.customer), ("Assignee", issue.assignee),
                 ("Cc", ", ".join(issue.cc)), ("Due", iso(issue.due))]
        shown = [f"{k}: <strong>{esc(v)}</strong>" for k, v in staff if v]
        if shown:
            parts.append('<p class="gd-meta gd-staff">' + " · ".join(shown) + "</p>")
    elif issue.assignee:
        parts.append(f'<p class="gd-meta">Assignee: {esc(view.who(issue.assignee))}</p>')
    if issue.body.strip():
        parts.append(f'<div class="gd-body">{view.text(issue.body, src)}</div>')
    if issue.attachments:
        parts.append(f'<div class="gd-files"><h2>Attachments</h2><ul>{files(issue.attachments)}</ul></div>')
    if related:
        items = "".join(f'<li><a href="{view.links.href(src, to)}">{esc(name)}</a></li>'
                        for to, name in related)
        parts.append(f'<div class="gd-related"><h2>Related articles</h2><ul>{items}</ul></div>')
    if comments:
        parts.append(f'<h2 id="comments">Comments ({len(comments)})</h2>')
        items = [_comment(view, comment, n, src, files) for n, comment in enumerate(comments, 1)]
        parts.append('<ol class="gd-timeline">' + "".join(items) + "</ol>")
    back = "issues/closed.md" if view.is_closed(issue) else "issues/index.md"
    label = "closed" if view.is_closed(issue) else "open"
    parts.append(f'<p class="gd-back"><a href="{view.links.href(src, back)}">← All {label} issues</a></p>')
    return "\n".join(parts)


def _comment(view: View, comment: Comment, n: int, src: str, files) -> str:
    internal = not comment.is_public
    cls = "gd-comment gd-internal" if internal else "gd-comment"
    head = ['<strong class="gd-internal-mark">Internal note</strong>'] if internal else []
    head.append(f'<strong class="gd-author">{esc(view.who(comment.author) or "someone")}</strong>')
    head.append(f'<a class="gd-permalink" href="#comment-{n}">{when(comment.date)}</a>')
    if not view.public and comment.via and comment.via != "cli":
        head.append(f'<span class="gd-via">via {esc(comment.via)}</span>')
    attached = files(comment.attachments) if comment.attachments else ""
    return (f'<li class="{cls}" id="comment-{n}"><p class="gd-comment-head">{" · ".join(head)}</p>'
            f'<div class="gd-comment-body">{view.text(comment.body, src)}'
            + (f'<ul class="gd-files">{attached}</ul>' if attached else "") + "</div></li>")


def file_items(names: list[str], published: dict[str, str], src: str, links: Links) -> str:
    """Attachment names, linked where the file is published."""
    items = []
    for name in names:
        if name in published:
            href = links.href(src, quote(published[name]))
            items.append(f'<li><a href="{href}">{esc(name)}</a></li>')
        else:
            items.append(f"<li>{esc(name)}</li>")
    return "".join(items)


# -- lists of issues ---------------------------------------------------------------------------

def issue_list(view: View, issues: Iterable[Issue], src: str) -> str:
    """Open issues first, newest first: one line each, with status, type and labels."""
    ordered = sorted(issues, key=lambda i: (view.is_closed(i), -i.id))
    if not ordered:
        return '<p class="gd-empty">None.</p>'
    rows = []
    for issue in ordered:
        href = view.links.href(src, issue_src(issue.id))
        title = redact(issue.title) if view.public else issue.title
        state = "gd-closed" if view.is_closed(issue) else "gd-open"
        labels = "".join(" " + _label(view, src, label) for label in issue.labels)
        rows.append(
            f'<li class="{state}"><a class="gd-issue-title" href="{href}">{esc(title)}</a> '
            f'<span class="gd-num">#{issue.id}</span>{labels}<br>'
            f'<span class="gd-meta"><span class="gd-state">{esc(issue.status)}</span> · '
            f"{esc(issue.type)} · {esc(issue.priority)} · updated "
            f'<time datetime="{esc(iso(issue.activity))}">{esc((iso(issue.activity) or "")[:10])}'
            "</time></span></li>")
    return '<ul class="gd-issues">' + "".join(rows) + "</ul>"


def _facets(view: View, src: str, title: str, counts: Counter, srcs: dict[str, str]) -> str:
    items = " ".join(
        f'<a class="gd-badge gd-facet" href="{view.links.href(src, srcs[name])}">{esc(name)} '
        f'<span class="gd-count">{count}</span></a>' for name, count in sorted(counts.items()))
    return f'<p class="gd-facets"><span class="gd-facet-title">{esc(title)}</span> {items}</p>'


def index_page(view: View, src: str, title: str, issues: list[Issue], open_count: int,
               closed_count: int, labels: Counter, types: Counter) -> str:
    """A list of issues, under tabs for open and closed and the label and type pages."""
    here = {"issues/index.md": "open", "issues/closed.md": "closed"}.get(src)
    tabs = [f'<a class="gd-tab{" gd-current" if here == kind else ""}" '
            f'href="{view.links.href(src, to)}">{kind.title()} <span class="gd-count">{n}</span></a>'
            for kind, to, n in (("open", "issues/index.md", open_count),
                                ("closed", "issues/closed.md", closed_count))]
    parts = [f"<h1>{esc(title)}</h1>", '<p class="gd-tabs">' + " ".join(tabs) + "</p>"]
    if here:
        if types:
            parts.append(_facets(view, src, "Types", types, view.type_srcs))
        if labels:
            parts.append(_facets(view, src, "Labels", labels, view.label_srcs))
    else:
        still_open = sum(not view.is_closed(i) for i in issues)
        parts.append(f'<p class="gd-meta">{len(issues)} issue(s): {still_open} open, '
                     f"{len(issues) - still_open} closed.</p>")
    parts.append(issue_list(view, issues, src))
    return "\n".join(parts)


# -- the knowledge base --------------------------------------------------------------------------

def article_page(view: View, article: Article, related: list[Issue]) -> str:
    src = f"kb/{article.slug}.md"
    parts = [f'<h1 class="gd-title">{esc(article.title)}</h1>']
    if article.tags:
        parts.append('<p class="gd-badges">' + " ".join(
            f'<span class="gd-badge gd-label">{esc(t)}</span>' for t in article.tags) + "</p>")
    if not view.public and not article.is_public:
        parts.append('<p><strong class="gd-internal-mark">Internal article</strong></p>')
    parts.append(f'<div class="gd-body">{view.text(article.body, src, top=2, ticket=False)}</div>')
    if related:
        parts.append('<div class="gd-related"><h2>Related issues</h2>'
                     f"{issue_list(view, related, src)}</div>")
    parts.append(f'<p class="gd-back"><a href="{view.links.href(src, "kb/index.md")}">'
                 "← All articles</a></p>")
    return "\n".join(parts)


def kb_index(view: View, articles: list[Article]) -> str:
    src = "kb/index.md"
    items = []
    for article in sorted(articles, key=lambda a: a.title.lower()):
        tags = "".join(f' <span class="gd-badge gd-label">{esc(t)}</span>' for t in article.tags)
        internal = (' <strong class="gd-internal-mark">internal</strong>'
                    if not view.public and not article.is_public else "")
        items.append(f'<li><a class="gd-issue-title" href="{view.links.href(src, f"kb/{article.slug}.md")}">'
                     f"{esc(article.title)}</a>{internal}{tags}</li>")
    body = f'<ul class="gd-articles">{"".join(items)}</ul>' if items else "<p>No articles yet.</p>"
    return f"<h1>Knowledge base</h1>\n{body}"
