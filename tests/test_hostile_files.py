"""What an adversarial tester did to a tracker: every case is refused with one line, or
handled, and never crashes, hangs, leaks or commits somewhere else."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import commit_count, git, status

MKDOCS = Path(sys.executable).parent / "mkdocs"
ISSUE = "---\ntitle: {title}\nvisibility: {vis}\ncreated: 2026-01-01T00:00:00Z\nupdated: 2026-01-01T00:00:00Z\n---\n\n{body}\n"


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("line", ["created: 2026-13-45", "due: 2026-02-30", "closed: 2026-13-01",
                                  "created: 2026-01-01T25:61:00Z", "created: 0001-01-01T00:00:00+14:00"])
def test_an_impossible_date_is_named_not_a_crash(cli, tracker_dir, line):
    cli("issue", "new", "Good one")
    text = ISSUE.format(title="Bad date", vis="private", body="x")
    key = line.split(":")[0]
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(key + ":"))
    _write(tracker_dir, "issues/2/issue.md", text.replace("---\n\n", f"{line}\n---\n\n", 1))
    result = cli("gitdesk", "check", ok=False)
    assert result.exit_code == 1 and "internal error" not in result.output
    assert "issues/2/issue.md:" in result.output and "is not a date" in result.output
    listed = cli("issue", "list", "--all", "--json")
    assert [i["id"] for i in json.loads(listed.stdout)] == [2, 1]


def test_a_yaml_bomb_is_refused_at_once(cli, tracker_dir):
    bomb = ("---\ntitle: x\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(f"{chr(98 + n)}: &{chr(98 + n)} [" + ", ".join([f"*{chr(97 + n)}"] * 9) + "]\n"
                      for n in range(8))
            + "visibility: *i\n---\n")
    _write(tracker_dir, "issues/1/issue.md", bomb)
    started = time.monotonic()
    result = cli("issue", "show", "1", ok=False)
    assert time.monotonic() - started < 5
    assert result.exit_code == 1 and "aliases (*name) are not allowed" in result.output


def test_merge_keys_and_non_text_field_names_are_refused(cli, tracker_dir):
    _write(tracker_dir, "issues/1/issue.md", "---\ntitle: x\n<<: {visibility: public}\n---\n")
    assert "merge keys (<<) are not allowed" in cli("issue", "show", "1", ok=False).output
    _write(tracker_dir, "issues/1/issue.md", "---\ntitle: x\nnull: 1\n---\n")
    assert "issues/1/issue.md:3: invalid YAML: a field name must be plain text" in \
        cli("issue", "show", "1", ok=False).output


def test_symlinks_are_never_read_or_published(cli, tracker_dir, tmp_path):
    cli("issue", "new", "Private ticket", "--private", "-m", "x")
    cli("issue", "comment", "1", "-m", "PRIVREPLY to the customer")
    cli("issue", "new", "Public bug", "-t", "bug", "--public", "-m", "x")
    reply = next((tracker_dir / "issues/1").glob("2*.md"))
    (tracker_dir / "issues/2/20270101T000000Z-link.md").symlink_to(Path("..") / "1" / reply.name)
    outside = tmp_path / "outside"
    _write(outside, "9/issue.md", ISSUE.format(title="ZQXOUTSIDEMARK", vis="public", body="x"))
    _write(outside, "x.md", "---\ntitle: ZQXOUTSIDEKB\nvisibility: public\n---\n\nOUTSIDEKB\n")
    (tracker_dir / "issues/4").symlink_to(outside / "9")
    (tracker_dir / "kb/outside-kb.md").symlink_to(outside / "x.md")
    checked = cli("gitdesk", "check", ok=False).output
    assert checked.count("is a symbolic link") == 3
    subprocess.run([str(MKDOCS), "build", "-q"], cwd=tracker_dir, capture_output=True, check=True)
    for path in (tracker_dir / "site").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVREPLY" not in data and b"ZQXOUTSIDE" not in data, path


def test_a_fifo_named_like_a_comment_does_not_hang(cli, tracker_dir):
    cli("issue", "new", "Public bug", "-t", "bug", "--public")
    os.mkfifo(tracker_dir / "issues/1/20270101T000000Z-fifo.md")
    result = cli("gitdesk", "check", ok=False)
    assert "issues/1/20270101T000000Z-fifo.md: not a regular file" in result.output


def test_a_nested_tracker_without_its_own_repository_is_refused(tmp_path):
    from conftest import Cli

    outer = tmp_path / "outer"
    Cli(tmp_path)("gitdesk", "init", str(outer))
    from gitdesk.scaffold import tracker_files

    for rel, text in tracker_files("Inner", "https://x.example/").items():
        _write(outer / "desk", rel, text)
    (outer / "desk" / ".git").mkdir()  # an empty .git folder: git would use the outer repo
    before = commit_count(outer)
    result = Cli(outer / "desk")("issue", "new", "where does this go", ok=False)
    assert result.exit_code == 1 and "not the top folder of a git repository" in result.output
    assert commit_count(outer) == before


def test_unicode_digit_folders_are_not_ids(cli, tracker_dir):
    cli("issue", "new", "Real")
    for name in ("²", "４２"):
        _write(tracker_dir, f"issues/{name}/issue.md", ISSUE.format(title="odd", vis="public", body="x"))
    assert [i["id"] for i in json.loads(cli("issue", "list", "--json").stdout)] == [1]
    assert cli("issue", "new", "Next").output.startswith("#2 ")
    checked = cli("gitdesk", "check", ok=False).output
    assert "issues/²: folder name is not an issue id" in checked


def test_a_slug_with_a_newline_is_refused(cli, tracker_dir):
    result = cli("kb", "new", "Evil", "--slug", "evil\n", ok=False)
    assert result.exit_code == 1 and "not an article slug" in result.output
    assert [p.name for p in (tracker_dir / "kb").iterdir() if p.suffix == ".md"] == []


def test_ten_digit_ids_can_be_addressed(cli, tracker_dir):
    _write(tracker_dir, "issues/999999999/issue.md", ISSUE.format(title="big", vis="private", body="x"))
    assert cli("issue", "new", "After").output.startswith("#1000000000 ")
    assert json.loads(cli("issue", "show", "1000000000", "--json").stdout)["title"] == "After"


def test_terminal_escapes_from_files_are_not_printed(cli, tracker_dir):
    cli("issue", "new", "Title \x1b]0;pwned\x07", "-m", "body \x1b]52;c;ZXZpbA==\x07 end")
    shown = cli("issue", "show", "1").output
    assert "\x1b]" not in shown and "\x07" not in shown and "body ]52;c;ZXZpbA== end" in shown
    assert "\x1b]" not in cli("issue", "list").output


def test_xml_dialect_attachments_are_published_as_text(cli, tracker_dir, tmp_path):
    feed = tmp_path / "feed.rss"
    feed.write_text('<rss xmlns:x="http://www.w3.org/1999/xhtml"><x:script>alert(1)</x:script></rss>')
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n")
    cli("issue", "new", "Feed", "-t", "bug", "--public", "-a", str(feed), "-a", str(photo))
    subprocess.run([str(MKDOCS), "build", "-q"], cwd=tracker_dir, capture_output=True, check=True)
    files = sorted(p.name for p in (tracker_dir / "site/issues/1/files").iterdir())
    assert files == ["feed.rss.txt", "photo.png"]


def test_too_many_labels_are_refused(cli, tracker_dir):
    labels = [arg for n in range(101) for arg in ("-l", f"l{n}")]
    result = cli("issue", "new", "Labels", *labels, ok=False)
    assert result.exit_code == 1 and "101 labels; an issue has at most 100" in result.output


def test_a_user_git_command_holding_the_index_is_waited_for(cli, tracker_dir):
    """gitdesk takes git's index.lock while HEAD moves, so it waits for a running git
    command instead of racing it, and the user's index ends up consistent."""
    cli("issue", "new", "First")
    lock = tracker_dir / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(0.5, lock.unlink).start()
    started = time.monotonic()
    cli("issue", "set", "1", "priority=high")
    assert time.monotonic() - started >= 0.45
    assert status(tracker_dir) == ""
    assert "priority: high" in git(tracker_dir, "show", "HEAD:issues/1/issue.md")
