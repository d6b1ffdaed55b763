"""The site does not depend on MkDocs' internals: ``gitdesk site stage DIR`` writes its sources
into a plain folder that MkDocs builds with no gitdesk hook, and ``properdocs build`` (the
maintained MkDocs 1.6 fork) builds the tracker itself, with the same hooks, into the same pages.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_bin, status

BIN = Path(sys.executable).parent
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
PRIVATE = ["SECRETMARK", "PRIVBODYMARK", "NOTEMARK", "INTERNALKBMARK", "customer@example.net"]
FENCES = "~~~~\nfirst\n```\n<b>bold</b> *stars*\n\n\n[x](javascript:alert(1))\n```\n~~~~\n"
PLAIN_MKDOCS_YML = """\
site_name: Staged
docs_dir: {docs}
theme: {{name: material, font: false}}
extra_css: [assets/gitdesk/gitdesk.css]
nav:
  - Home: index.md
  - Issues: issues/index.md
  - Knowledge base: kb/index.md
validation: {{nav: {{omitted_files: ignore}}}}
"""


def _run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **QUIET})
    assert result.returncode == 0, result.stderr
    return result


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _pages(site: Path) -> set[str]:
    """The site's pages, without the theme's assets."""
    return {name for name in _files(site) if name.endswith(".html") and not name.startswith("assets/")}


def _leaks(folder: Path, markers: list[str]) -> list[str]:
    """Every (file, marker) where a marker shows: in a file's bytes, gunzipped, or its name."""
    found = []
    for path in sorted(folder.rglob("*")):
        data = path.read_bytes() if path.is_file() else b""
        if path.suffix == ".gz":
            data += gzip.decompress(data)
        text = data.decode("utf-8", errors="replace") + path.name
        found += [f"{path.relative_to(folder)}: {m}" for m in markers if m.lower() in text.lower()]
    return found


def _issue_and_kb_pages(root: Path) -> dict[str, str]:
    """build_site's issue and KB pages, by the file MkDocs makes of each: {path: HTML}."""
    from gitdesk import Tracker
    from gitdesk.site.pages import build_site

    pages = {}
    for page in build_site(Tracker(root)).pages:
        if page.src_uri.startswith(("issues/", "kb/")):  # other pages may show the build's time
            stem = page.src_uri[:-3]
            pages[stem + ".html" if stem.endswith("index") else stem + "/index.html"] = page.html
    return pages


def _audit(site: Path, root: Path) -> list[str]:
    """The independent audit of a built folder, with what the tracker says is private."""
    from gitdesk import Tracker
    from gitdesk.site.audit import audit_site

    return [str(finding) for finding in audit_site(site, Tracker(root))]


@pytest.fixture
def desk(cli, tracker_dir):
    cli("issue", "new", "Public bug", "-t", "bug", "--public", "-m", "Public body PUBMARK")
    attachment = tracker_dir.parent / "trace.log"
    attachment.write_text("log line PUBATTACHMARK\n")
    cli("issue", "comment", "1", "-m", "A public comment", "--attach", str(attachment))
    cli("issue", "new", "Private ticket SECRETMARK", "--private", "-m", "PRIVBODYMARK",
        "--customer", "customer@example.net")
    cli("issue", "comment", "1", "--internal", "-m", "Internal NOTEMARK")
    cli("issue", "new", "Fences", "-t", "bug", "--public", "-m", FENCES)
    cli("kb", "new", "Public article", "--slug", "public-article", "-m", "KB text, see #1 and #2")
    cli("kb", "new", "Internal article", "--slug", "internal", "--internal", "-m", "INTERNALKBMARK")
    docs = tracker_dir / "docs"
    (docs / "about.md").write_text("# About\n\nWrite to boss@example.org.\n")
    return tracker_dir


def test_stage_writes_the_generated_pages_and_the_hand_written_ones(desk, tmp_path):
    docs = desk / "docs"  # what should never be published from docs/ (MkDocs copies some)
    (docs / "about.md~").write_text("editor leftover SECRETMARK\n")
    (docs / ".draft.md").write_text("dot file SECRETMARK\n")
    (docs / "copied.md").symlink_to(desk / "issues" / "2" / "issue.md")
    before = status(desk)
    out = tmp_path / "staged"
    result = run_bin("gitdesk", "site", "stage", str(out), cwd=desk)
    assert result.returncode == 0, result.stderr
    assert f"in {out}" in result.stdout
    assert "left out of docs/: .draft.md, about.md~, copied.md" in result.stderr
    files = _files(out)
    assert {"index.md", "about.md", "issues/index.md", "issues/closed.md", "issues/1.md",
            "issues/3.md", "kb/index.md", "kb/public-article.md", ".gitdesk-site",
            "assets/gitdesk/gitdesk.css"} <= files
    assert not {"issues/2.md", "kb/internal.md", "about.md~", ".draft.md", "copied.md"} & files
    assert _leaks(out, PRIVATE) == []
    assert (out / "about.md").read_text() == "# About\n\nWrite to [address hidden].\n"
    assert (out / "issues" / "1" / "files" / "trace.log").read_text() == "log line PUBATTACHMARK\n"
    page = (out / "issues" / "1.md").read_text()
    assert page.startswith('---\ntitle: "#1 Public bug"\n---\n\n<div class="gd-page"><h1')
    assert page.count("\n") == 5  # the HTML is one line: no Markdown reader re-reads it
    assert "Public body PUBMARK" in page and "A public comment" in page
    assert status(desk) == before  # staging changes nothing in the tracker


def test_a_staged_folder_builds_with_plain_mkdocs_into_the_same_pages(desk, tmp_path):
    staged, plain = tmp_path / "staged", tmp_path / "plain"
    assert run_bin("gitdesk", "site", "stage", str(staged), cwd=desk).returncode == 0
    plain.mkdir()
    (plain / "mkdocs.yml").write_text(PLAIN_MKDOCS_YML.format(docs=staged))
    _run("mkdocs", "build", "-q", cwd=plain)  # no hooks: MkDocs knows nothing of gitdesk
    assert run_bin("gitdesk", "site", "build", cwd=desk, env=QUIET).returncode == 0
    hooked = desk / "site"
    assert _pages(plain / "site") == _pages(hooked)
    assert (plain / "site" / "assets/gitdesk/gitdesk.css").read_bytes() == \
        (hooked / "assets/gitdesk/gitdesk.css").read_bytes()
    assert 'href="../../assets/gitdesk/gitdesk.css"' in (plain / "site/issues/1/index.html").read_text()
    assert {"issues/1/index.html", "issues/3/index.html", "kb/public-article/index.html",
            "about/index.html"} <= _pages(hooked)
    pages = _issue_and_kb_pages(desk)
    assert len(pages) >= 7
    for built, html in pages.items():
        assert html in (hooked / built).read_text(), built
        flat = html.replace("\n", "&#10;")  # byte for byte, on one line
        assert f'<div class="gd-page">{flat}</div>' in (plain / "site" / built).read_text(), built
    fences = (plain / "site" / "issues" / "3" / "index.html").read_text()
    assert fences.count("<pre>") == 1 and "&lt;b&gt;bold&lt;/b&gt; *stars*" in fences
    assert "&amp;lt;" not in fences and not re.search(r"href=[\"']?javascript", fences)
    assert _leaks(plain / "site", PRIVATE) == []
    assert _audit(plain / "site", desk) == []


def test_a_private_issue_copied_into_docs_fails_the_stage_and_leaves_the_old_one(desk, tmp_path):
    out = tmp_path / "staged"
    assert run_bin("gitdesk", "site", "stage", str(out), cwd=desk).returncode == 0
    before = {name: (out / name).read_bytes() for name in _files(out)}
    (desk / "docs" / "ticket.md").write_bytes((desk / "issues" / "2" / "issue.md").read_bytes())
    result = run_bin("gitdesk", "site", "stage", str(out), cwd=desk)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: site stage failed the audit: ticket.md: ")
    assert {name: (out / name).read_bytes() for name in _files(out)} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".staged")] == []


def test_stage_refuses_folders_that_would_lose_work(desk, tmp_path):
    for target in ["docs", "issues", "."]:
        result = run_bin("gitdesk", "site", "stage", target, cwd=desk)
        assert result.returncode == 1 and result.stderr.startswith("Error: refusing"), result.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("mine")
    result = run_bin("gitdesk", "site", "stage", str(mine), cwd=desk)
    assert result.returncode == 1 and "gitdesk did not build it" in result.stderr
    assert (mine / "notes.md").read_text() == "mine"
    result = run_bin("gitdesk", "site", "stage", "--staff", "site/staged", cwd=desk)
    assert result.returncode == 1 and "public folder" in result.stderr
    assert not (desk / "site").exists()


def test_a_second_stage_replaces_the_first_and_staff_stage_has_everything(desk, tmp_path):
    out = tmp_path / "staged"
    assert run_bin("gitdesk", "site", "stage", str(out), cwd=desk).returncode == 0
    (out / "stale.md").write_text("from before")
    assert run_bin("gitdesk", "site", "stage", "--staff", str(out), cwd=desk).returncode == 0
    assert not (out / "stale.md").exists()
    assert "SECRETMARK" in (out / "issues" / "2.md").read_text()
    assert "NOTEMARK" in (out / "issues" / "1.md").read_text()
    assert (out / "kb" / "internal.md").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".staged")] == []


def test_properdocs_builds_the_same_site_with_the_same_hooks(desk, tmp_path):
    """``properdocs build`` reads the tracker's mkdocs.yml and hook shim unchanged."""
    assert run_bin("gitdesk", "site", "build", cwd=desk, env=QUIET).returncode == 0
    out = tmp_path / "properdocs-site"
    result = _run("properdocs", "build", "-q", "-f", "mkdocs.yml", "-d", str(out), cwd=desk)
    assert "Traceback" not in result.stderr
    assert _pages(out) == _pages(desk / "site")
    assert "issues/1/index.html" in _pages(out) and "issues/2/index.html" not in _pages(out)
    for built, html in _issue_and_kb_pages(desk).items():
        assert html in (desk / "site" / built).read_text(), built
        assert html in (out / built).read_text(), built
    assert "Public body PUBMARK" in (out / "issues" / "1" / "index.html").read_text()
    assert _audit(out, desk) == []
    assert _leaks(out, PRIVATE) == []
    # and the staged folder builds with properdocs too, with no hook at all
    staged, plain = tmp_path / "staged", tmp_path / "plain"
    assert run_bin("gitdesk", "site", "stage", str(staged), cwd=desk).returncode == 0
    plain.mkdir()
    (plain / "mkdocs.yml").write_text(PLAIN_MKDOCS_YML.format(docs=staged))
    _run("properdocs", "build", "-q", "-f", "mkdocs.yml", cwd=plain)
    assert _pages(plain / "site") == _pages(desk / "site")
    assert _leaks(plain / "site", PRIVATE) == []
    assert _audit(plain / "site", desk) == []


@pytest.mark.slow
def test_the_site_benchmark_runs_both_builds_on_the_same_pages(tmp_path):
    """A smoke run of benchmarks/site/run.py (the real harness, at 20 issues, one round)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "site" / "run.py"
    out = tmp_path / "site.md"
    result = subprocess.run([sys.executable, str(script), "--sizes", "20", "--rounds", "1",
                             "--out", str(out), "--keep", str(tmp_path / "work")],
                            capture_output=True, text=True, env={**os.environ, **QUIET})
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    assert table in result.stdout
    wall, cpu, memory = [line for line in table.splitlines() if line.startswith("| 20 |")
                         or line.startswith("| | | | ")]
    desk, plain = tmp_path / "work" / "n20" / "desk", tmp_path / "work" / "n20" / "plain"
    comments = len([p for p in (desk / "issues").rglob("*.md") if p.name != "issue.md"])
    assert 40 <= comments <= 80  # two to four per issue
    assert wall.startswith(f"| 20 | {comments} | ")
    assert re.search(r"\| wall \| [\d.]+ s \([\d.]+–[\d.]+\) \| [\d.]+ s .* \| [\d.]+× [✓✗] \|$", wall)
    assert "CPU (user+sys)" in cpu and re.search(r"\| \d+ MiB \| \d+ MiB \|", memory)
    # the plain site is the same issues as ordinary Markdown, with no hook
    assert len(list((plain / "docs" / "issues").glob("*.md"))) == 20 + 2  # and index, closed
    assert "gitdesk_hooks" not in (plain / "mkdocs.yml").read_text()
    assert "gitdesk_hooks" in (desk / "mkdocs.yml").read_text()
    for n in range(1, 21):
        assert (tmp_path / "work" / "n20" / "out-gitdesk" / "issues" / str(n) / "index.html").is_file()
        assert (tmp_path / "work" / "n20" / "out-mkdocs" / "issues" / str(n) / "index.html").is_file()
