"""gitdesk init: a working tracker repository, and a site that builds at once."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Cli, commit_count, git, status


def test_init_makes_a_tracker_with_one_commit(tmp_path):
    from gitdesk.cli import gitdesk

    result = Cli(tmp_path)("gitdesk", "init", str(tmp_path / "desk"))
    root = tmp_path / "desk"
    assert "Initialized gitdesk tracker" in result.output
    for rel in ("gitdesk.yml", "mkdocs.yml", "hooks/gitdesk_hooks.py", "docs/index.md", ".gitignore"):
        assert (root / rel).is_file(), rel
    assert (root / "issues").is_dir() and (root / "kb").is_dir()
    assert commit_count(root) == 1
    assert git(root, "log", "-1", "--format=%s").strip() == "gitdesk init: Desk Support"
    assert status(root) == ""
    assert git(root, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    ignored = (root / ".gitignore").read_text().split()
    assert {"/site/", "/site-staff/", "/.gitdesk/"} <= set(ignored)
    assert gitdesk  # the command module imports cleanly


def test_init_in_an_existing_repository_commits_only_its_own_files(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "notes.txt").write_text("mine\n")
    git(root, "add", "notes.txt")
    Cli(tmp_path)("gitdesk", "init", str(root), "--name", "Ops")
    committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert "notes.txt" not in committed and "gitdesk.yml" in committed
    assert status(root) == "A  notes.txt\n"  # still staged, still the user's


@pytest.mark.slow
def test_mkdocs_build_works_in_a_new_tracker(tmp_path):
    from gitdesk.scaffold import init

    root = init(tmp_path / "desk", name="Fresh")
    Cli(root)("issue", "new", "Hello world", "-t", "bug", "-m", "First public bug.")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    proc = subprocess.run([str(mkdocs), "build", "-q"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    page = (root / "site" / "issues" / "1" / "index.html").read_text()
    assert "Hello world" in page and "First public bug." in page
    assert (root / "site" / "kb" / "index.html").is_file()
    assert status(root) == ""  # site/ is ignored
