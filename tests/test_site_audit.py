"""``gitdesk site audit`` and the audit inside ``gitdesk site build``.

The audit reads what is private from the tracker, not from the page generator, so it
catches leaks that the generator never made: a private issue copied by hand into docs/, a
navigation entry naming one, an editor's leftover, a script added through mkdocs.yml. A
failed audit publishes nothing. Injection tests write hostile files into a copy of a real
built site and check each is found, and that look-alikes (the same text inside an attribute
value or a sentence, a phrase that public text shares) are not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import USER, run_bin

MKDOCS = Path(sys.executable).parent / "mkdocs"
QUIET = {"NO_MKDOCS_2_WARNING": "1"}

PRIVATE_TITLE = "Outage at Brightwater Dairy"
PRIVATE_BODY = "The backup key for brightwater is kept in vault seven."
PRIVATE_COMMENT = "Customer threatened to cancel the contract next week."
INTERNAL_NOTE = "Escalated to the datacentre night shift by phone."
INTERNAL_KB_TITLE = "Root access runbook for the mail cluster"
INTERNAL_KB_BODY = "Log in as operator on the jump host before midnight."
SHARED = "Thanks, that fixed it for me."  # said in a private and in a public ticket
THEME_TEXT = "Type to start searching"  # what the theme itself prints on every page


def _site(root: Path, *args: str):
    return run_bin("gitdesk", "site", *args, cwd=root, env=QUIET)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(root: Path) -> None:
    """#1 public with an internal note, #2 private; a public and an internal article."""
    from gitdesk import Tracker
    from gitdesk.issues import actions
    from gitdesk.kb import actions as kb_actions

    tracker = Tracker(root)
    actions.new_issue(tracker, "Webmail login loops", type="bug", visibility="public",
                      body="Logging in to webmail sends me back to the login page.")
    actions.add_comment(tracker, 1, SHARED)
    actions.add_comment(tracker, 1, INTERNAL_NOTE, internal=True)
    actions.new_issue(tracker, PRIVATE_TITLE, visibility="private", body=PRIVATE_BODY,
                      customer="milk@brightwater.example")
    actions.add_comment(tracker, 2, PRIVATE_COMMENT)
    actions.add_comment(tracker, 2, f"{SHARED}\n\n{THEME_TEXT}\n\nok thanks")
    kb_actions.new_article(tracker, "Resetting a webmail password", body="Use the panel.")
    kb_actions.new_article(tracker, INTERNAL_KB_TITLE, internal=True, body=INTERNAL_KB_BODY,
                           slug="runbook")


@pytest.fixture
def desk(tracker_dir):
    _fill(tracker_dir)
    result = _site(tracker_dir, "build")
    assert result.returncode == 0, result.stderr
    return tracker_dir


def _no_leftovers(root: Path) -> None:
    assert not [p.name for p in root.iterdir() if p.name.startswith(".site")]


def test_a_clean_site_passes(desk):
    """The theme's scripts pass as its own; text that public pages share with a private
    ticket, short phrases and the theme's own words are no leak."""
    page = (desk / "site" / "issues" / "1" / "index.html").read_text()
    assert page.count("<script") >= 3 and SHARED.split(",")[0] in page
    result = _site(desk, "audit", "site")
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stdout + result.stderr


LEAKS = {
    # a private issue copied by hand into docs/: its title, body and a comment
    "copied issue": ("docs/leak.md", f"# #2 {PRIVATE_TITLE}\n\n{PRIVATE_BODY}\n\n> {PRIVATE_COMMENT}\n",
                     "leak/index.html: private issue #2", [PRIVATE_BODY, PRIVATE_COMMENT]),
    "internal note": ("docs/notes.md", f"Notes\n\n- *{INTERNAL_NOTE}*\n",
                      "notes/index.html: internal note on #1", [INTERNAL_NOTE]),
    "internal article": ("docs/howto.md", f"# {INTERNAL_KB_TITLE}\n\n{INTERNAL_KB_BODY}\n",
                         "howto/index.html: internal article runbook", [INTERNAL_KB_BODY]),
    "editor leftover": ("docs/index.md~", f"{PRIVATE_BODY}\n", "index.md~: private issue #2",
                        [PRIVATE_BODY]),
    "address in a file": ("docs/contact.txt", "Write to milk@brightwater.example\n",
                          "contact.txt: e-mail address", ["milk@brightwater.example"]),
}


@pytest.mark.parametrize("kind", list(LEAKS))
def test_a_leak_made_by_hand_fails_the_build_and_keeps_the_old_site(desk, kind):
    rel, text, finding, markers = LEAKS[kind]
    before = _tree(desk / "site")
    (desk / rel).write_text(text)
    result = _site(desk, "build")
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("Error: site audit failed:"), result.stderr
    assert "the previous site is kept" in result.stderr
    assert finding in result.stderr
    assert all(m in result.stderr for m in markers), result.stderr
    assert _tree(desk / "site") == before
    _no_leftovers(desk)
    # the same leak built by plain MkDocs is reported by the audit command
    audit = _plain_build_then_audit(desk)
    assert audit.returncode == 1
    assert finding in audit.stdout and "problem(s)" in audit.stderr


def _plain_build_then_audit(desk):
    """Build with plain MkDocs (no gitdesk audit inside), then run the audit command."""
    run = subprocess.run([str(MKDOCS), "build", "-q"], cwd=desk, capture_output=True, text=True,
                         env={**os.environ, **QUIET})
    assert run.returncode == 0, run.stderr
    return _site(desk, "audit", "site")


def test_a_nav_entry_naming_a_private_issue_fails_the_build(desk):
    config = desk / "mkdocs.yml"
    config.write_text(config.read_text().replace(
        "  - Knowledge base: kb/index.md\n",
        f'  - Knowledge base: kb/index.md\n  - "#2 {PRIVATE_TITLE}": issues/2.md\n'))
    before = _tree(desk / "site")
    result = _site(desk, "build")
    assert result.returncode == 1
    # the navigation is on every page: the first file that shows it is named
    assert f"404.html: private issue #2 (#2 {PRIVATE_TITLE})" in result.stderr, result.stderr
    assert _tree(desk / "site") == before
    _no_leftovers(desk)
    audit = _plain_build_then_audit(desk)
    assert audit.returncode == 1 and f"#2 {PRIVATE_TITLE}" in audit.stdout


def test_a_failed_audit_of_a_first_build_leaves_no_site(desk):
    shutil.rmtree(desk / "site")
    (desk / "docs" / "leak.md").write_text(PRIVATE_BODY + "\n")
    result = _site(desk, "build")
    assert result.returncode == 1 and "no site was written" in result.stderr
    assert not (desk / "site").exists()
    _no_leftovers(desk)


def test_a_script_added_through_mkdocs_yml_fails_public_and_staff_builds(desk):
    (desk / "docs" / "js").mkdir()
    (desk / "docs" / "js" / "extra.js").write_text("document.title = 'pwned';\n")
    config = desk / "mkdocs.yml"
    config.write_text(config.read_text() + "extra_javascript: [js/extra.js]\n")
    for args, folder in ((["build"], "site"), (["build", "--staff"], "site-staff")):
        result = _site(desk, *args)
        assert result.returncode == 1, result.stdout
        assert "script that the theme does not ship (<script src=" in result.stderr
        assert (folder == "site") == (desk / folder).exists()
    _no_leftovers(desk)


def test_staff_site_is_noindex_and_audited_for_scripts_only(desk):
    result = _site(desk, "build", "--staff")
    assert result.returncode == 0, result.stderr
    staff = desk / "site-staff"
    pages = list(staff.rglob("*.html"))
    assert len(pages) > 5
    assert all('<meta name="robots" content="noindex, nofollow">' in p.read_text() for p in pages)
    assert (staff / "robots.txt").read_text() == "User-agent: *\nDisallow: /\n"
    assert _site(desk, "audit", "--staff", "site-staff").stdout.strip() == "ok"
    # the control: read as a public site, it holds every kind of private text
    audit = _site(desk, "audit", "site-staff")
    assert audit.returncode == 1
    for what in ("private issue #2", "internal note on #1", "internal article runbook",
                 "e-mail address"):
        assert what in audit.stdout, what


# -- hostile files in a copy of a built site ------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A built public site and its tracker, made once; each test audits a copy."""
    from gitdesk.scaffold import init

    base = tmp_path_factory.mktemp("audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(base))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GITDESK_USER", USER)
        root = init(base / "desk", name="Audit Desk")
        _fill(root)
        result = run_bin("gitdesk", "site", "build", cwd=root, env=QUIET)
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def site(built, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(built / "site", copy)
    return copy


def _audit(built: Path, site: Path, content: bool = True) -> list[str]:
    from gitdesk import Tracker
    from gitdesk.site.audit import audit_site

    return [str(f) for f in audit_site(site, Tracker(built), content=content)]


PAGE = '<!doctype html><html><head><title>x</title></head><body>{}</body></html>\n'

ACTIVE = {
    "script tag": ('<p><script>document.title="pwned"</script></p>', "inline script"),
    "upper-case script": ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "script from another host"),
    "img onerror": ('<img src=x onerror="alert(1)">', "on* attribute (<img onerror=alert(1)>)"),
    "svg onload": ("<svg><g/onload=alert(1)></svg>", "on* attribute (<g onload=alert(1)>)"),
    "attr_list handler": ('<p onmouseover="alert(1)">text</p>', "on* attribute"),
    "javascript link": ('<a href="javascript:alert(1)">x</a>', "javascript: URL"),
    "entity-hidden scheme": ('<a href="java&#x09;scr&#105;pt&colon;alert(1)">x</a>',
                             "javascript: URL"),
    "split scheme": ('<a href="  java\nscript:alert(1)">x</a>', "javascript: URL"),
    "svg xlink": ('<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
                  "javascript: URL"),
    "data iframe": ('<iframe src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
                    "data: URL"),
    "vbscript": ('<a href="vbscript:msgbox(1)">x</a>', "vbscript: URL"),
    "meta refresh": ('<meta http-equiv="refresh" content="0; url=javascript:alert(1)">',
                     "javascript: URL"),
    "base": ('<base href="https://evil.example/">', "<base> element"),
    "srcdoc": ('<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>', "on* attribute"),
    # a browser ends <title> at the first </title>: the img that follows is live
    "title breakout": ("<title><b title='</title><img src=x onerror=alert(1)>'></title>",
                       "on* attribute"),
    "comment breakout": ("<!-- <b title=' --><img src=x onerror=alert(1)>'> -->", "on* attribute"),
}


@pytest.mark.parametrize("kind", list(ACTIVE))
def test_active_content_is_found(built, site, kind):
    html_text, what = ACTIVE[kind]
    (site / "evil.html").write_text(PAGE.format(html_text))
    findings = _audit(built, site, content=False)
    assert [f for f in findings if f.startswith("evil.html: ") and what in f], findings
    assert all(f.startswith("evil.html: ") for f in findings), findings


@pytest.mark.parametrize("text", [
    '<a href="#" title="<script>alert(1)</script> onclick=x">look-alike in an attribute</a>',
    "<p>Set onclick= in the form; javascript: links are refused; see data: URLs.</p>",
    "<pre><code>&lt;img src=x onerror=alert(1)&gt;</code></pre>",
    '<a href="https://example.org/a?b=1&amp;c=2">a link</a> <img src="../x.png" alt="">',
])
def test_look_alikes_are_not_active_content(built, site, text):
    (site / "fine.html").write_text(PAGE.format(text))
    assert _audit(built, site, content=False) == []


def test_a_tampered_theme_script_is_not_the_themes_own(built, site):
    page = site / "index.html"
    text = page.read_text()
    assert 'new URL(".",location)' in text
    page.write_text(text.replace('new URL(".",location)', 'new URL(".",location),alert(1)'))
    findings = _audit(built, site, content=False)
    assert len(findings) == 1, findings
    assert findings[0].startswith('index.html: inline script (<script>__md_scope=new URL(".",location),alert(1)')
    # a script file beside the theme's, not shipped by it
    bundle = next((site / "assets" / "javascripts").glob("bundle.*.min.js"))
    (site / "extra.js").write_text("alert(1)\n")
    page.write_text(text.replace(f"assets/javascripts/{bundle.name}", "extra.js"))
    assert "index.html: script that the theme does not ship" in _audit(built, site, False)[0]
    bundle.write_text(bundle.read_text() + ";alert(1)")  # the theme's file itself, changed
    page.write_text(text)
    assert [f for f in _audit(built, site, False) if "does not ship" in f]


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode())


def _zip(name: str, text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, text)
    return out.getvalue()


CONTENT = {
    "plain text file": ("notes.txt", PRIVATE_BODY, "notes.txt: private issue #2"),
    "split by tags": ("a.html", PAGE.format("<p><em>Escalated</em> to the <b>datacentre</b> "
                                            "night\u00a0shift by phone.</p>"),
                      "a.html: internal note on #1"),
    "entities": ("b.html", PAGE.format("&#79;utage at Brightwater&#x20;Dairy"),
                 "b.html: private issue #2 (Outage at Brightwater Dairy)"),
    "url-encoded": ("c.html", PAGE.format('<a href="/s?q=Root%20access%20runbook%20for%20the'
                                          '%20mail%20cluster">x</a>'),
                    "c.html: internal article runbook"),
    "in an attribute": ("d.html", PAGE.format(f'<img alt="{PRIVATE_COMMENT}" src="x.png">'),
                        "d.html: private issue #2"),
    "gzip": ("sitemap2.xml.gz", _gz(f"<loc>{PRIVATE_TITLE}</loc>"), "sitemap2.xml.gz: private issue #2"),
    "zip member": ("files/bundle.zip", _zip("inner/readme.txt", INTERNAL_KB_BODY),
                   "files/bundle.zip: internal article runbook"),
    "file name": ("outage-at-brightwater-dairy.html", PAGE.format("x"),
                  "outage-at-brightwater-dairy.html: private issue #2"),
    "folder name": ("Outage at Brightwater Dairy/index.html", PAGE.format("x"),
                    "Outage at Brightwater Dairy/: private issue #2"),
    "json": ("search/extra.json", '{"text": "Log in as operator on the jump host before midnight."}',
             "search/extra.json: internal article runbook"),
    "address split by a tag": ("e.html", PAGE.format("<p>Mail judy@<em>example</em>.com</p>"),
                               "e.html: e-mail address (judy@example.com)"),
    "address as entity": ("f.html", PAGE.format("mallory&#64;example.com"),
                          "f.html: e-mail address (mallory@example.com)"),
    "address with invisible": ("g.txt", "rup\u200bert@example.com", "g.txt: e-mail address (rupert@example.com)"),
    "address in a name": ("h/bob@example.com.txt", "x", "h/bob@example.com.txt: e-mail address"),
}


@pytest.mark.parametrize("kind", list(CONTENT))
def test_private_text_and_addresses_are_found_in_any_form(built, site, kind):
    rel, data, finding = CONTENT[kind]
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    findings = _audit(built, site)
    assert [f for f in findings if f.startswith(finding)], findings


def test_the_audit_is_read_from_the_tracker_not_from_the_site(built, site):
    """A private issue the audit has never seen on any page is still forbidden text:
    the markers come from issues/, and a public copy of the text makes it allowed."""
    from gitdesk import Tracker
    from gitdesk.site.forbidden import forbidden

    pieces = {shown for what, shown in forbidden(Tracker(built)).values()}
    assert {PRIVATE_BODY, PRIVATE_COMMENT, INTERNAL_NOTE, INTERNAL_KB_BODY,
            f"#2 {PRIVATE_TITLE}", PRIVATE_TITLE} <= pieces
    assert SHARED not in pieces and THEME_TEXT not in pieces and "ok thanks" not in pieces


def test_a_zip_bomb_is_reported_within_one_budget(built, site, monkeypatch):
    """Everything one file unpacks to shares one budget: a zip of many members of zeros is
    reported (the build fails) after reading at most the budget, not held whole in memory;
    the marker in a member before the budget runs out is still found."""
    from gitdesk.site import audit

    monkeypatch.setattr(audit, "MAX_EXPANDED", 3 * 2**20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("first.txt", INTERNAL_KB_BODY)
        for n in range(8):
            archive.writestr(f"zeros{n}.bin", b"\0" * 2**20)
    (site / "files").mkdir(exist_ok=True)
    (site / "files" / "bomb.zip").write_bytes(out.getvalue())
    assert len(out.getvalue()) < 100_000
    findings = _audit(built, site)
    assert [f for f in findings if f.startswith("files/bomb.zip/zeros2.bin: compressed file too large")], findings
    assert not [f for f in findings if "zeros3.bin" in f]  # reading stopped at the budget
    assert [f for f in findings if f.startswith("files/bomb.zip: internal article runbook")], findings
