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
        "issues/label/mail.md", "issues/label/billing.md", "kb/ssh-keys.md", "kb/index.md",
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
    assert "visibility: private" in pages["issues/3.md"].html
    assert "carol@example.org" in pages["issues/3.md"].html  # staff see the customer
    assert "Internal article" in pages["kb/runbook.md"].html
    assert "issues/4/files/note-file.txt" in [a.src_uri for a in site.assets]


def test_empty_tracker_still_has_its_index_pages(tracker):
    pages = _pages(build_site(tracker))
    assert set(pages) == {"issues/index.md", "issues/closed.md", "kb/index.md"}
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


def _assert_harmless(markup: str, where: str) -> None:
    parser = _Tags()
    parser.feed(markup)
    for tag, attrs in parser.tags:
        assert tag not in DANGEROUS_TAGS, f"{where}: <{tag}> survived"
        for name, value in attrs:
            assert not name.lower().startswith("on"), f"{where}: {name} on <{tag}> survived"
            assert name.lower() != "style", f"{where}: style on <{tag}> survived"
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
        _assert_harmless(page.html, page.src_uri)
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
