"""gitdesk.site.pages.build_site, without MkDocs: which pages exist, what they link to,
and that nothing from a ticket can run script or show an address."""

from __future__ import annotations

import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gitdesk.issues import actions
from gitdesk.kb import actions as kb_actions
from gitdesk.site.pages import build_site, published_name


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _pages(site) -> dict:
    return {page.src_uri: page for page in site.pages}


@pytest.fixture
def desk(tracker, tmp_path):
    """#1 public open (label mail), #2 public closed (label billing), #3 private (label
    secret), #4 public with an internal note; KB: public ssh-keys, internal runbook."""
    upload = tmp_path / "upload.txt"
    upload.write_text("x\n")
    actions.new_issue(tracker, "Mail bounces", type="bug", visibility="public", labels=["mail"],
                      body="Mail to our host bounces.", attachments=[upload])
    actions.new_issue(tracker, "Invoice wrong", type="bug", visibility="public",
                      labels=["billing"], body="Fixed now.")
    actions.close(tracker, 2, resolution="fixed")
    actions.new_issue(tracker, "Secret ticket", visibility="private", labels=["secret"],
                      body="Private body", customer="carol@example.org")
    actions.add_comment(tracker, 3, "A public-looking comment on a private issue")
    actions.new_issue(tracker, "Disk full", type="bug", visibility="public", labels=["mail"],
                      body="Full.")
    actions.add_comment(tracker, 4, "We are on it.")
    note = tmp_path / "note-file.txt"
    note.write_text("internal\n")
    actions.add_comment(tracker, 4, "Customer is angry", internal=True, attachments=[note])
    kb_actions.new_article(tracker, "SSH keys", slug="ssh-keys", tags=["ssh"], body="Use ed25519.")
    kb_actions.new_article(tracker, "Runbook", slug="runbook", internal=True, body="Restart it.")
    return tracker


# -- which pages exist -------------------------------------------------------------------

def test_public_site_has_pages_for_public_things_only(desk):
    site = build_site(desk)
    assert set(_pages(site)) == {
        "issues/1.md", "issues/2.md", "issues/4.md", "issues/index.md", "issues/closed.md",
        "issues/label/mail.md", "issues/label/billing.md", "issues/type/bug.md",
        "kb/ssh-keys.md", "kb/index.md",
        "reports/index.md",
    }
    pages = _pages(site)
    open_index, closed_index = pages["issues/index.md"].html, pages["issues/closed.md"].html
    assert "Mail bounces" in open_index and "Disk full" in open_index
    assert "Invoice wrong" not in open_index and "Invoice wrong" in closed_index
    assert "Mail bounces" not in closed_index
    assert "Secret" not in open_index + closed_index and "secret" not in open_index
    assert "Mail bounces" in pages["issues/label/mail.md"].html
    assert "Disk full" in pages["issues/label/mail.md"].html
    assert "Invoice wrong" not in pages["issues/label/mail.md"].html
    assert "SSH keys" in pages["kb/index.md"].html and "Runbook" not in pages["kb/index.md"].html
    assert all("Secret" not in p.html and "Runbook" not in p.html for p in site.pages)


def test_public_issue_page_shows_public_comments_only(desk):
    page = _pages(build_site(desk))["issues/4.md"]
    assert "We are on it." in page.html
    assert "Customer is angry" not in page.html and "note-file" not in page.html
    assert "Internal note" not in page.html and "gd-internal" not in page.html


def test_public_attachments_only_are_assets(desk):
    site = build_site(desk)
    assert [a.src_uri for a in site.assets] == ["issues/1/files/upload.txt"]
    assert site.assets[0].path.read_text() == "x\n"


def test_staff_site_has_everything_and_marks_internal_notes(desk):
    site = build_site(desk, staff=True)
    pages = _pages(site)
    assert {"issues/3.md", "issues/label/secret.md", "kb/runbook.md"} <= set(pages)
    note_page = pages["issues/4.md"].html
    assert "Customer is angry" in note_page and "Internal note" in note_page
    assert 'class="gd-comment gd-internal"' in note_page
    assert "note-file.txt" in note_page
    assert '<span class="gd-key">visibility</span> private' in pages["issues/3.md"].html
    assert "carol@example.org" in pages["issues/3.md"].html  # staff see the customer
    assert "Internal article" in pages["kb/runbook.md"].html
    assert "issues/4/files/note-file.txt" in [a.src_uri for a in site.assets]


def test_empty_tracker_still_has_its_index_pages(tracker):
    pages = _pages(build_site(tracker))
    assert set(pages) == {"issues/index.md", "issues/closed.md", "kb/index.md", "reports/index.md"}
    assert "None." in pages["issues/index.md"].html
    assert "No articles yet." in pages["kb/index.md"].html


# -- fail closed ---------------------------------------------------------------------------

ISSUE = """---
title: {title}
type: bug
status: open
priority: normal
{visibility}labels: [{label}]
created: 2026-01-02T03:04:05Z
updated: 2026-01-02T03:04:05Z
---

Body of {title}
"""


@pytest.mark.parametrize("visibility", ["", "visibility: pubic\n", "visibility: Public\n",
                                        "visibility: 'public '\n", "visibility: [public]\n",
                                        "visibility: true\n", "visibility:\n"])
def test_issue_without_a_valid_public_visibility_is_private(tracker, visibility):
    _write(tracker.root, "issues/1/issue.md",
           ISSUE.format(title="Hand written", visibility=visibility, label="handlabel"))
    pages = _pages(build_site(tracker))
    assert "issues/1.md" not in pages
    assert not any("Hand written" in p.html or "handlabel" in p.html for p in pages.values())
    assert "issues/1.md" in _pages(build_site(tracker, staff=True))  # it is there, for staff


def test_hand_written_public_issue_is_published(tracker):
    _write(tracker.root, "issues/1/issue.md",
           ISSUE.format(title="Hand written", visibility="visibility: public\n", label="x"))
    assert "Body of Hand written" in _pages(build_site(tracker))["issues/1.md"].html


@pytest.mark.parametrize("visibility", ["", "visibility: pubic\n", "visibility: PUBLIC\n",
                                        "visibility: private\n", "visibility: [public]\n"])
def test_comment_without_a_valid_public_visibility_is_internal(tracker, visibility):
    actions.new_issue(tracker, "Open issue", type="bug", visibility="public")
    _write(tracker.root, "issues/1/files/secret.txt", "s\n")
    _write(tracker.root, "issues/1/20260101T000000Z-bob.md",
           f"---\nauthor: Bob <bob@example.com>\ndate: 2026-01-01T00:00:00Z\n{visibility}"
           "attachments: [secret.txt]\n---\n\nHand comment\n")
    site = build_site(tracker)
    page = _pages(site)["issues/1.md"].html
    assert "Hand comment" not in page and "secret.txt" not in page
    assert site.assets == []
    staff = _pages(build_site(tracker, staff=True))["issues/1.md"].html
    assert "Hand comment" in staff and "Internal note" in staff


def test_unreadable_comment_is_left_out_with_a_warning(tracker):
    actions.new_issue(tracker, "Open issue", type="bug", visibility="public")
    actions.add_comment(tracker, 1, "Readable comment")
    _write(tracker.root, "issues/1/20260101T000000Z-bob.md",
           "---\nvisibility: public\nauthor: [unclosed\n---\n\nBroken comment\n")
    site = build_site(tracker)
    page = _pages(site)["issues/1.md"].html
    assert "Readable comment" in page and "Broken comment" not in page
    assert len(site.warnings) == 1 and "20260101T000000Z-bob.md" in site.warnings[0]


def test_article_without_a_valid_public_visibility_is_internal(tracker):
    _write(tracker.root, "kb/typo.md", "---\ntitle: Typo article\nvisibility: pubic\n---\n\nText\n")
    _write(tracker.root, "kb/none.md", "---\ntitle: No visibility article\n---\n\nText\n")
    pages = _pages(build_site(tracker))
    assert "kb/typo.md" not in pages and "kb/none.md" not in pages
    assert "article" not in pages["kb/index.md"].html.lower().replace("no articles yet", "")


def test_public_pages_name_private_things_by_number_at_most(tracker):
    actions.new_issue(tracker, "Private one", visibility="private")
    actions.new_issue(tracker, "Public one", type="bug", visibility="public")
    kb_actions.new_article(tracker, "Internal how-to", slug="internal-howto", internal=True)
    actions.set_fields(tracker, 2, [("kb", "=", "internal-howto")])
    _write(tracker.root, "kb/public-howto.md",
           "---\ntitle: Public how-to\nvisibility: public\nissues: [1, 2]\n---\n\nSee #1.\n")
    pages = _pages(build_site(tracker))
    assert "Internal how-to" not in pages["issues/2.md"].html
    article = pages["kb/public-howto.md"].html
    assert "Private one" not in article and "issues/1" not in article
    assert "#2" in article  # the public issue is linked


# -- links ---------------------------------------------------------------------------------

def _output_path(src_uri: str, directory_urls: bool) -> str:
    """Where MkDocs writes a page or file given by its src_uri."""
    if not src_uri.endswith(".md"):
        return src_uri
    stem = src_uri[:-3]
    if stem == "index" or stem.endswith("/index"):
        return stem + ".html"
    return stem + "/index.html" if directory_urls else stem + ".html"


HREF_RE = re.compile(r'href="([^"]*)"')


@pytest.mark.parametrize("directory_urls", [True, False])
def test_every_link_between_pages_resolves(desk, directory_urls):
    from urllib.parse import unquote

    kb_actions.new_article(desk, "Linked", slug="linked", body="x")
    actions.set_fields(desk, 1, [("kb", "=", "ssh-keys,linked")])
    _write(desk.root, "kb/with-issues.md",
           "---\ntitle: With issues\nvisibility: public\nissues: [1, 4]\n---\n\nx\n")
    site = build_site(desk, directory_urls=directory_urls)
    outputs = {_output_path(p.src_uri, directory_urls) for p in site.pages}
    outputs |= {a.src_uri for a in site.assets}
    checked = 0
    for page in site.pages:
        here = _output_path(page.src_uri, directory_urls)
        for href in HREF_RE.findall(page.html):
            if re.match(r"^[a-z]+:", href) or href.startswith("#"):
                continue
            assert not href.startswith("/"), f"{page.src_uri}: absolute link {href}"
            target = posixpath.normpath(posixpath.join(posixpath.dirname(here), unquote(href)))
            if href.endswith("/") or href in (".", ".."):
                target = posixpath.join(target, "index.html")
            assert target in outputs, f"{page.src_uri}: {href} -> {target} is not built"
            checked += 1
    assert checked > 20


def test_attachment_names_are_quoted_in_links(tracker, tmp_path):
    odd = tmp_path / "a b#c?.txt"  # the CLI makes this a_b_c_.txt; hand-written names stay
    odd.write_text("x")
    actions.new_issue(tracker, "Files", type="bug", visibility="public", attachments=[odd])
    _write(tracker.root, "issues/1/files/x y#z.txt", "y")
    text = (tracker.root / "issues/1/issue.md").read_text().replace(
        "attachments:\n- a_b_c_.txt", "attachments:\n- a_b_c_.txt\n- 'x y#z.txt'")
    (tracker.root / "issues/1/issue.md").write_text(text)
    page = _pages(build_site(tracker))["issues/1.md"].html
    assert 'href="../1/files/x%20y%23z.txt"' in page or 'href="files/x%20y%23z.txt"' in page \
        or "x%20y%23z.txt" in page
    assert "x y#z.txt</a>" in page


# -- untrusted text --------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "style", "svg", "math", "form", "input",
                  "button", "base", "meta", "link", "frame", "frameset", "template"}
EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '<a href="javascript:alert(3)">click</a>',
    "[md link](javascript:alert(4))",
    "[spaced](  JaVaScRiPt:alert(5))",
    '<a href="jav&#x09;ascript:alert(6)">tab</a>',
    '<div onclick="alert(7)" style="background:url(javascript:alert(8))">div</div>',
    "<iframe src=//evil.example></iframe>",
    "<svg onload=alert(9)><circle/></svg>",
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    "![img](javascript:alert(10))",
    "<style>body{display:none}</style>",
    '<form action="https://evil.example"><input name=x></form>',
    "<math><mi xlink:href=javascript:alert(11)>x</mi></math>",
    '<p title="x" onmouseover="alert(12)">hover</p>',
    '<object data="x.swf"></object><embed src="x.swf">',
]


def _assert_harmless(markup: str, where: str, charts: bool = False) -> None:
    """``charts``: the page draws SVG charts and styles them itself (no ticket text in it)."""
    parser = _Tags()
    parser.feed(markup)
    for tag, attrs in parser.tags:
        assert tag not in DANGEROUS_TAGS - ({"style", "svg"} if charts else set()), \
            f"{where}: <{tag}> survived"
        for name, value in attrs:
            assert not name.lower().startswith("on"), f"{where}: {name} on <{tag}> survived"
            assert charts or name.lower() != "style", f"{where}: style on <{tag}> survived"
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href", "data"):
                bare = re.sub(r"[\x00-\x20]", "", value or "").lower()
                assert not bare.startswith(("javascript:", "vbscript:", "data:")), \
                    f"{where}: {name}={value!r} survived"


@pytest.mark.parametrize("staff", [False, True])
def test_html_in_every_field_is_escaped_or_sanitized(tracker, tmp_path, staff):
    evil = "\n\n".join(EVIL)
    title = '<script>alert("t")</script><img src=x onerror=alert(1)> "quoted" & more'
    actions.new_issue(tracker, title, type="bug", visibility="public",
                      labels=['<b onmouseover=alert(1)>label</b>', 'x" onclick="alert(2)'],
                      body=evil)
    actions.add_comment(tracker, 1, evil)
    actions.add_comment(tracker, 1, evil, internal=True)
    kb_actions.new_article(tracker, '<script>alert("kb")</script>', slug="evil",
                           tags=['<img src=x onerror=alert(3)>'], body=evil)
    site = build_site(tracker, staff=staff)
    for page in site.pages:
        _assert_harmless(page.html, page.src_uri, charts=page.src_uri == "reports/index.md")
        assert "<" not in page.title and ">" not in page.title and '"' not in page.title
    issue = _pages(site)["issues/1.md"].html
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in issue  # shown, not run
    assert "md link" in issue and "click" in issue  # the text stays, the link goes
    assert "&lt;b onmouseover=alert(1)&gt;label&lt;/b&gt;" in issue


def test_links_keep_safe_schemes_only(tracker):
    actions.new_issue(tracker, "Links", type="bug", visibility="public",
                      body="[web](https://example.com/a) [plain](http://example.com/) "
                           "[mail](mailto:someone@example.com) [rel](other.html)")
    page = _pages(build_site(tracker))["issues/1.md"].html
    assert 'href="https://example.com/a"' in page and 'href="http://example.com/"' in page
    assert "mailto:" not in page  # public pages never link an address
    assert 'rel="nofollow noopener noreferrer"' in page


def test_attachments_a_browser_would_run_are_published_as_text(tracker, tmp_path):
    names = ["page.html", "image.SVG", "notes.md", "script.js", "photo.png", "log.txt"]
    uploads = []
    for name in names:
        (tmp_path / name).write_text("<script>alert(1)</script>")
        uploads.append(tmp_path / name)
    actions.new_issue(tracker, "Files", type="bug", visibility="public", attachments=uploads)
    site = build_site(tracker)
    assert sorted(a.src_uri.rsplit("/", 1)[1] for a in site.assets) == sorted(
        ["page.html.txt", "image.SVG.txt", "notes.md.txt", "script.js.txt", "photo.png", "log.txt"])
    assert published_name("archive.tar.gz") == "archive.tar.gz"
    page = _pages(site)["issues/1.md"].html
    assert "files/page.html.txt" in page and ">page.html<" in page


def test_symlinked_attachments_are_not_published(tracker, tmp_path):
    actions.new_issue(tracker, "Private", visibility="private")
    _write(tracker.root, "issues/1/files/secret.txt", "private data\n")
    actions.new_issue(tracker, "Public", type="bug", visibility="public")
    files = tracker.root / "issues/2/files"
    files.mkdir(parents=True)
    (files / "linked.txt").symlink_to(tracker.root / "issues/1/files/secret.txt")
    (files / "outside.txt").symlink_to("/etc/hostname")
    text = (tracker.root / "issues/2/issue.md").read_text().replace(
        "created:", "attachments: [linked.txt, outside.txt]\ncreated:", 1)
    (tracker.root / "issues/2/issue.md").write_text(text)
    site = build_site(tracker)
    assert site.assets == []
    assert "linked.txt" in _pages(site)["issues/2.md"].html  # the name, without a link
    assert 'href="../2/files/linked.txt"' not in _pages(site)["issues/2.md"].html


# -- addresses ---------------------------------------------------------------------------------

EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def test_public_pages_hold_no_address_but_staff_pages_do(tracker, monkeypatch):
    monkeypatch.setenv("GITDESK_USER", "Dana Staff <dana@example.com>")
    body = ("Mail bob@example.com, <carol@example.org>, `dan@example.net`, eve@<em>ex</em>.com, "
            "fr&#97;nk@example.com, [x](mailto:gina@example.com), **hal@example.com**")
    actions.new_issue(tracker, "From ivy@example.com", type="bug", visibility="public",
                      labels=["jack@example.com"], customer="kim@example.com",
                      cc=["lou@example.com"], assignee="mo@example.com", body=body)
    actions.add_comment(tracker, 1, "Reply to ned@example.com")
    kb_actions.new_article(tracker, "Contact oz@example.com", slug="contact", tags=["pat@x.org"],
                           body="Write to quinn@example.com")
    site = build_site(tracker)
    for page in site.pages:
        assert not EMAIL_RE.search(page.html), (page.src_uri, EMAIL_RE.findall(page.html))
        assert not EMAIL_RE.search(page.title), page.src_uri
    issue = _pages(site)["issues/1.md"].html
    assert "Dana Staff" in issue  # authors by name
    assert "[address hidden]" in issue
    staff = _pages(build_site(tracker, staff=True))["issues/1.md"].html
    assert "kim@example.com" in staff and "bob@example.com" in staff


def test_staff_members_show_by_their_name(tracker):
    settings = (tracker.root / "gitdesk.yml").read_text().replace(
        "staff: []", "staff:\n  - {name: Alice Admin, email: alice@example.com, role: admin}")
    (tracker.root / "gitdesk.yml").write_text(settings)
    from gitdesk import Tracker

    tracker = Tracker(tracker.root)
    actions.new_issue(tracker, "Assigned", type="bug", visibility="public", assignee="alice")
    page = _pages(build_site(tracker))["issues/1.md"].html
    assert "Assignee: Alice Admin" in page


def test_labels_whose_slugs_clash_get_their_own_pages(tracker):
    actions.new_issue(tracker, "One", type="bug", visibility="public", labels=["Mail"])
    actions.new_issue(tracker, "Two", type="bug", visibility="public", labels=["mail"])
    pages = _pages(build_site(tracker))
    assert "issues/label/mail.md" in pages and "issues/label/mail-2.md" in pages
    assert "One" in pages["issues/label/mail.md"].html
    assert "Two" not in pages["issues/label/mail.md"].html
    assert "Two" in pages["issues/label/mail-2.md"].html


@pytest.mark.parametrize("name", ["bob@example.com", "Has Spaces", "index", "UPPER"])
def test_article_whose_file_name_is_no_slug_is_left_out(tracker, name):
    _write(tracker.root, f"kb/{name}.md", "---\ntitle: Odd name\nvisibility: public\n---\n\nText\n")
    site = build_site(tracker)
    assert [p.src_uri for p in site.pages if p.src_uri.startswith("kb/")] == ["kb/index.md"]
    assert "Odd name" not in _pages(site)["kb/index.md"].html
    assert len(site.warnings) == 1 and name in site.warnings[0]


def test_unreadable_issue_is_left_out_with_a_warning(tracker):
    actions.new_issue(tracker, "Fine", type="bug", visibility="public")
    _write(tracker.root, "issues/2/issue.md", "---\ntitle: [broken\nvisibility: public\n---\n")
    site = build_site(tracker)
    assert "issues/2.md" not in _pages(site) and "issues/1.md" in _pages(site)
    assert len(site.warnings) == 1 and "issues/2/issue.md" in site.warnings[0]


# -- pages that help -------------------------------------------------------------------------

def test_issue_references_link_public_issues_and_name_private_ones_by_number(tracker):
    actions.new_issue(tracker, "Public target", type="bug", visibility="public")
    actions.new_issue(tracker, "Secret target", visibility="private")
    actions.new_issue(tracker, "Referrer", type="bug", visibility="public",
                      body="Same as #1, see #2 and #99.\n\n`#1` in code, owner/repo#1, "
                           "[#2 link](https://example.com/), x#1\n\n```\n#1 in a block\n```")
    actions.add_comment(tracker, 3, "Duplicate of #2.")
    kb_actions.new_article(tracker, "Guide", slug="guide", body="Fixed in #1, not #2.")
    pages = _pages(build_site(tracker))
    issue, guide = pages["issues/3.md"].html, pages["kb/guide.md"].html
    assert 'Same as <a class="gd-ref" href="../1/" title="Public target">#1</a>, see ' in issue
    assert '<span class="gd-ref gd-ref-private">#2 (private)</span> and #99.' in issue
    assert "Duplicate of <span class=\"gd-ref gd-ref-private\">#2 (private)</span>." in issue
    assert "<code>#1</code>" in issue and "owner/repo#1" in issue and "x#1" in issue
    assert ">#2 link</a>" in issue and "#1 in a block" in issue
    assert issue.count('class="gd-ref"') == 1
    assert 'href="../../issues/1/"' in guide and "#2 (private)" in guide
    assert all("Secret target" not in p.html for p in pages.values())
    staff = _pages(build_site(tracker, staff=True))["issues/3.md"].html
    assert 'title="Secret target">#2</a>' in staff  # staff see every issue


def test_type_pages_list_issues_of_one_type_and_the_index_links_them(tracker):
    actions.new_issue(tracker, "A bug", type="bug", visibility="public", labels=["mail"])
    actions.new_issue(tracker, "A wish", type="feature", visibility="public")
    actions.new_issue(tracker, "Closed bug", type="bug", visibility="public")
    actions.close(tracker, 3)
    actions.new_issue(tracker, "Hidden task", type="task", visibility="private")
    pages = _pages(build_site(tracker))
    assert {"issues/type/bug.md", "issues/type/feature.md"} <= set(pages)
    assert "issues/type/task.md" not in pages  # only types of shown issues
    bugs = pages["issues/type/bug.md"]
    assert "A bug" in bugs.html and "Closed bug" in bugs.html and "A wish" not in bugs.html
    assert "2 issue(s): 1 open, 1 closed." in bugs.html
    assert bugs.html.index("A bug") < bugs.html.index("Closed bug")  # open ones first
    index = pages["issues/index.md"].html
    assert 'href="type/bug/">bug <span class="gd-count">2</span></a>' in index
    assert 'href="label/mail/">mail <span class="gd-count">1</span></a>' in index
    issue = pages["issues/1.md"].html
    assert 'href="../type/bug/"><span class="gd-key">type</span> bug</a>' in issue
    assert '<a class="gd-badge gd-label" href="../label/mail/">mail</a>' in issue
    assert "Type: bug" == bugs.title and not bugs.search  # lists stay out of the search index
    assert "search:\n  exclude: true" in bugs.content
    assert "exclude" not in pages["issues/1.md"].content


def test_issue_page_shows_badges_dates_and_comment_timeline(tracker, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", "2026-01-02T03:04:05Z")
    actions.new_issue(tracker, "Timeline", type="bug", priority="high", visibility="public",
                      labels=["mail", "dns"], body="Body")
    monkeypatch.setenv("GITDESK_NOW", "2026-01-03T10:00:00Z")
    actions.add_comment(tracker, 1, "First answer")
    monkeypatch.setenv("GITDESK_NOW", "2026-01-04T11:30:00Z")
    actions.add_comment(tracker, 1, "Second answer")
    monkeypatch.setenv("GITDESK_NOW", "2026-01-05T12:00:00Z")
    actions.add_comment(tracker, 1, "Internal remark", internal=True)
    page = _pages(build_site(tracker))["issues/1.md"].html
    assert '<span class="gd-key">status</span> new' in page
    assert '<span class="gd-key">priority</span> high' in page
    assert "gd-priority-high" in page and "gd-status gd-status-new gd-open" in page
    assert 'Opened <time datetime="2026-01-02T03:04:05Z">2026-01-02 03:04 UTC</time>' in page
    # updated: the newest comment this page shows, not the internal note's time
    assert 'updated <time datetime="2026-01-04T11:30:00Z">' in page
    assert "2026-01-05" not in page
    assert page.index("First answer") < page.index("Second answer")
    assert '<ol class="gd-timeline"><li class="gd-comment" id="comment-1">' in page
    assert 'href="#comment-2"' in page and "Comments (2)" in page
    assert 'href="../">← All open issues</a>' in page


def test_articles_and_issues_link_each_other_both_ways(tracker):
    actions.new_issue(tracker, "Names the article", type="bug", visibility="public")
    actions.new_issue(tracker, "Named by the article", type="bug", visibility="public")
    actions.new_issue(tracker, "Private, names it", visibility="private")
    actions.new_issue(tracker, "Unrelated", type="bug", visibility="public")
    _write(tracker.root, "kb/dns.md",
           "---\ntitle: DNS guide\nvisibility: public\nissues: [2, 3]\n---\n\nText\n")
    actions.set_fields(tracker, 1, [("kb", "=", "dns")])
    actions.set_fields(tracker, 3, [("kb", "=", "dns")])
    pages = _pages(build_site(tracker))
    article = pages["kb/dns.md"].html
    related = article[article.index("Related issues"):]
    assert "Names the article" in related and "Named by the article" in related
    assert "Unrelated" not in related and "Private" not in related and "issues/3" not in related
    for number in (1, 2):
        assert 'href="../../kb/dns/">DNS guide</a>' in pages[f"issues/{number}.md"].html
    assert "DNS guide" not in pages["issues/4.md"].html
    staff = _pages(build_site(tracker, staff=True))
    assert "Private, names it" in staff["kb/dns.md"].html
    assert "DNS guide" in staff["issues/3.md"].html


def test_remote_images_become_links_and_attachment_images_stay(tracker):
    actions.new_issue(tracker, "Pixels", type="bug", visibility="public", body=(
        "![logo](files/logo.png) ![pixel](https://track.example/p.gif) "
        '<img src="//track.example/q.gif"> <img src="/\\track.example/r.gif" alt="r"> '
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="d">'))
    page = _pages(build_site(tracker))["issues/1.md"].html
    assert '<img alt="logo" src="files/logo.png">' in page
    assert "<img" not in page.replace('<img alt="logo" src="files/logo.png">', "")
    assert ('<a class="gd-image" href="https://track.example/p.gif" '
            'rel="nofollow noopener noreferrer">[image: pixel]</a>') in page
    assert 'href="//track.example/q.gif"' in page and "[image: r]" in page
    assert "data:" not in page and "[d]" in page


def test_ticket_text_reads_as_on_github(tracker):
    body = ("#5 is back\nsecond line\nSteps:\n- one\n- two\n\n# Heading\n\n```\n#!/bin/sh\n# comment\n```")
    actions.new_issue(tracker, "Markdown", type="bug", visibility="public", body=body)
    kb_actions.new_article(tracker, "Article", slug="article", body="# Top\n\ntext\nwrapped\n\n## Sub")
    pages = _pages(build_site(tracker))
    page = pages["issues/1.md"].html
    assert "<p>#5 is back<br>\nsecond line<br>\nSteps:</p>\n<ul>\n<li>one</li>" in page
    assert "<h3>Heading</h3>" in page and "<h1>Heading" not in page  # below the page's own
    assert "#!/bin/sh\n# comment\n</code></pre>" in page
    article = pages["kb/article.md"].html
    assert "<h2>Top</h2>" in article and "<h3>Sub</h3>" in article
    assert "<p>text\nwrapped</p>" in article  # a KB article is plain Markdown


def test_titles_cannot_break_out_of_theme_markup(tracker):
    actions.new_issue(tracker, 'It\'s "quoted" </title><b>bold</b> & more', type="bug",
                      visibility="public")
    page = _pages(build_site(tracker))["issues/1.md"]
    assert page.title == "#1 It’s ”quoted” ‹/title›‹b›bold‹/b› & more"
    assert ("It&#x27;s &quot;quoted&quot; &lt;/title&gt;&lt;b&gt;bold&lt;/b&gt; &amp; more"
            in page.html)


# -- one real build: searchable, and nothing loaded from another host ------------------------

# Tags that make a browser fetch something when the page is shown (a plain <a href> does not).
_FETCHING = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"),
             ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")}
_FETCHING_LINKS = {"stylesheet", "preload", "modulepreload", "preconnect", "dns-prefetch",
                   "icon", "manifest", "prefetch"}
_CSS_URL_RE = re.compile(r"""@import\s+(?:url\()?\s*["']?([^"')\s;]+)|url\(\s*["']?([^"')]+)""")


def _remote(url: str) -> bool:
    bare = re.sub(r"[\x00-\x20]", "", url).lower()
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:|//|/\\|\\\\)", bare)) and not bare.startswith("data:")


class _Fetches(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self.urls += [v or "" for (t, a) in _FETCHING if t == tag for k, v in attrs if k == a]
        if tag == "link" and _FETCHING_LINKS & set((values.get("rel") or "").lower().split()):
            self.urls.append(values.get("href") or "")
        self.styles.append(values.get("style") or "")
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


@pytest.mark.slow
def test_real_build_is_searchable_and_loads_nothing_from_another_host(desk, tmp_path):
    import json
    import subprocess
    import sys

    kb_actions.new_article(desk, "Remote picture", slug="remote-picture",
                           body="![x](https://cdn.example/x.png) <link rel=stylesheet href=//cdn.example/a.css>")
    out = tmp_path / "out"
    mkdocs = Path(sys.executable).parent / "mkdocs"
    run = subprocess.run([str(mkdocs), "build", "-q", "-d", str(out)], cwd=desk.root,
                         capture_output=True, text=True, env={**__import__("os").environ,
                                                              "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr
    pages = sorted(out.rglob("*.html"))
    assert len(pages) >= 10
    fetched = 0
    for page in pages:
        parser = _Fetches()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in parser.urls:
            assert not _remote(url), f"{page.relative_to(out)} loads {url}"
            fetched += 1
        for css in parser.styles:
            for match in _CSS_URL_RE.finditer(css):
                assert not _remote(match.group(1) or match.group(2)), f"{page}: {match.group(0)}"
    assert fetched > 3 * len(pages)  # the theme's own scripts and styles were seen
    sheets = list(out.rglob("*.css"))
    assert any(p.name == "gitdesk.css" for p in sheets) and len(sheets) >= 3
    for sheet in sheets:
        for match in _CSS_URL_RE.finditer(sheet.read_text(encoding="utf-8")):
            url = match.group(1) or match.group(2)
            assert not _remote(url), f"{sheet.relative_to(out)}: {url}"
    assert "gitdesk/gitdesk.css" in (out / "issues/1/index.html").read_text()

    index = json.loads((out / "search/search_index.json").read_text(encoding="utf-8"))
    where = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert {"issues/1/", "issues/2/", "issues/4/", "kb/ssh-keys/", "kb/remote-picture/"} <= where
    assert not {"issues/3/", "kb/runbook/", "issues/", "issues/closed/", "issues/label/mail/",
                "issues/type/bug/"} & where  # private things, and the lists of issues
    text = json.dumps(index)
    assert "Mail to our host bounces" in text and "Use ed25519" in text
    assert "Secret" not in text and "Restart it" not in text
