"""``gitdesk site build``: the staff site goes to its own folder only, and a failed build
keeps the previous site and says why in one line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_bin

MKDOCS = Path(sys.executable).parent / "mkdocs"
QUIET = {"NO_MKDOCS_2_WARNING": "1"}


def _site(root: Path, *args: str, env=None):
    return run_bin("gitdesk", "site", "build", *args, cwd=root, env={**QUIET, **(env or {})})


def _tree(folder: Path) -> dict[str, str]:
    """Every file under folder and a digest of its bytes: a snapshot to compare."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def _no_leftovers(root: Path) -> None:
    assert not [p.name for p in root.parent.iterdir() if p.name.startswith(".desk")]
    assert not [p.name for p in root.iterdir() if p.name.startswith(".site")]


@pytest.fixture
def desk(cli, tracker_dir):
    cli("issue", "new", "Public bug", "-t", "bug", "--public", "-m", "Public body")
    cli("issue", "new", "Private ticket SECRETMARK", "--private", "-m", "Private body")
    cli("issue", "comment", "1", "--internal", "-m", "Internal NOTEMARK")
    return tracker_dir


def test_public_build_writes_site(desk):
    result = _site(desk)
    assert result.returncode == 0, result.stderr
    assert "Built public site" in result.stdout
    assert (desk / "site" / "issues" / "1" / "index.html").is_file()
    assert not (desk / "site" / "issues" / "2").exists()
    _no_leftovers(desk)


def test_staff_build_writes_site_staff_only(desk):
    result = _site(desk, "--staff")
    assert result.returncode == 0, result.stderr
    staff = desk / "site-staff"
    assert "SECRETMARK" in (staff / "issues" / "2" / "index.html").read_text()
    page = (staff / "issues" / "1" / "index.html").read_text()
    assert "NOTEMARK" in page and "Internal note" in page
    assert not (desk / "site").exists()
    _no_leftovers(desk)


@pytest.mark.parametrize("target", ["site", "site/", "./site", "site/staff"])
def test_staff_build_refuses_the_public_folder(desk, target):
    assert _site(desk).returncode == 0
    before = _tree(desk / "site")
    result = _site(desk, "--staff", "-d", target)
    assert result.returncode != 0
    assert "public folder" in _one_error_line(result)
    assert _tree(desk / "site") == before
    assert not (desk / "site" / "staff").exists()
    _no_leftovers(desk)


def test_staff_build_refuses_a_configured_public_folder(desk):
    config = desk / "mkdocs.yml"
    config.write_text(config.read_text() + "site_dir: public\n")
    assert _site(desk).returncode == 0
    assert (desk / "public" / "index.html").is_file()  # the public build follows mkdocs.yml
    before = _tree(desk / "public")
    result = _site(desk, "--staff", "-d", "public")
    assert result.returncode != 0 and "public folder" in _one_error_line(result)
    assert _tree(desk / "public") == before


def test_staff_environment_never_turns_mkdocs_build_into_a_staff_build(desk):
    """GITDESK_SITE_STAFF=1 left in a shell must not publish the staff site into site/."""
    assert _site(desk).returncode == 0
    before = _tree(desk / "site")
    env = {**QUIET, "GITDESK_SITE_STAFF": "1"}
    result = subprocess.run([str(MKDOCS), "build"], cwd=desk, capture_output=True, text=True,
                            env={**os.environ, **env})
    assert result.returncode != 0
    assert "public folder" in result.stderr
    assert _tree(desk / "site") == before  # refused before MkDocs emptied the folder
    # and gitdesk's own public build ignores it
    result = _site(desk, env={"GITDESK_SITE_STAFF": "1"})
    assert result.returncode == 0
    assert not (desk / "site" / "issues" / "2").exists()
    assert "NOTEMARK" not in (desk / "site" / "issues" / "1" / "index.html").read_text()


@pytest.mark.parametrize("breakage", [
    "theme: [unclosed\n",                   # not YAML
    "theme: {name: no-such-theme}\n",       # MkDocs refuses the config
    "hooks: [hooks/missing.py]\n",          # a hook that is not there
    "plugins: [no-such-plugin]\n",          # a plugin that is not installed
])
def test_failed_build_keeps_the_previous_site_and_says_why_in_one_line(desk, breakage):
    assert _site(desk).returncode == 0
    before = _tree(desk / "site")
    config = desk / "mkdocs.yml"
    config.write_text(config.read_text() + breakage)
    result = _site(desk)
    assert result.returncode != 0
    line = _one_error_line(result)
    assert "site build failed" in line and "Aborted with" not in line
    assert _tree(desk / "site") == before
    _no_leftovers(desk)


def test_failed_staff_build_keeps_the_previous_staff_site(desk):
    assert _site(desk, "--staff").returncode == 0
    before = _tree(desk / "site-staff")
    (desk / "mkdocs.yml").write_text("site_name: [broken\n")
    result = _site(desk, "--staff")
    assert result.returncode != 0 and _one_error_line(result)
    assert _tree(desk / "site-staff") == before


def test_missing_mkdocs_yml_is_one_line(desk):
    (desk / "mkdocs.yml").unlink()
    result = _site(desk)
    assert result.returncode != 0 and "mkdocs.yml" in _one_error_line(result)


@pytest.mark.parametrize("target", [".", "..", "issues", "docs/out", "kb/site"])
def test_output_folder_that_would_lose_work_is_refused(desk, target):
    before = _tree(desk)
    result = _site(desk, "-d", target)
    assert result.returncode != 0, result.stdout
    assert "refusing" in _one_error_line(result)
    assert _tree(desk) == before
    _no_leftovers(desk)


def test_non_empty_folder_that_is_no_site_is_not_replaced(desk, tmp_path):
    keep = tmp_path / "my-documents"
    keep.mkdir()
    (keep / "thesis.txt").write_text("years of work")
    result = _site(desk, "-d", str(keep))
    assert result.returncode != 0 and "gitdesk did not build it" in _one_error_line(result)
    assert (keep / "thesis.txt").read_text() == "years of work"
    # an index.html does not make a folder a site (the breaker's data-loss case)
    repo = tmp_path / "pages-repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "index.html").write_text("<h1>mine</h1>")
    (repo / "blog.md").write_text("work")
    result = _site(desk, "-d", str(repo))
    assert result.returncode != 0 and "it is a git repository" in _one_error_line(result)
    assert (repo / "blog.md").read_text() == "work" and (repo / ".git").is_dir()
    (repo / ".git").rmdir()
    result = _site(desk, "-d", str(repo))
    assert result.returncode != 0 and "gitdesk did not build it" in _one_error_line(result)
    # a folder holding an earlier build is replaced as usual
    out = tmp_path / "out"
    assert _site(desk, "-d", str(out)).returncode == 0
    assert (out / ".gitdesk-site").is_file()
    assert _site(desk, "-d", str(out)).returncode == 0
    assert (out / "issues" / "1" / "index.html").is_file()


def test_generated_pages_are_not_read_again_as_markdown(cli, tracker_dir):
    """Our HTML goes out as built: a fence line inside a code block stays code."""
    body = "~~~~\nfirst\n```\n<b>bold</b> *stars* {{ config.site_name }}\n```\n~~~~\n"
    cli("issue", "new", "Fences", "-t", "bug", "--public", "-m", body)
    run = subprocess.run([str(MKDOCS), "build", "-q"], cwd=tracker_dir, capture_output=True,
                         text=True, env={**os.environ, **QUIET})
    assert run.returncode == 0, run.stderr
    page = (tracker_dir / "site" / "issues" / "1" / "index.html").read_text()
    assert page.count("<pre") == 1
    assert "&lt;b&gt;bold&lt;/b&gt; *stars* {{ config.site_name }}" in page
    assert "&amp;lt;" not in page


def test_a_tracker_with_the_old_hook_shim_still_builds_safely(desk):
    """Trackers made before on_page_content was added import on_files only."""
    (desk / "hooks" / "gitdesk_hooks.py").write_text(
        "from gitdesk.site.mkdocs_hooks import on_files  # noqa: F401\n")
    result = _site(desk)
    assert result.returncode == 0, result.stderr
    assert "Public body" in (desk / "site" / "issues" / "1" / "index.html").read_text()
    assert not (desk / "site" / "issues" / "2").exists()
