"""Bad input is refused with one line naming the file (and line), a non-zero exit, no commit, nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import Cli, commit_count, git, run_bin, status

BROKEN_YAML = """\
---
title: Broken
type: ticket
status: open: now
priority: normal
visibility: private
created: 2026-01-02T03:04:05Z
updated: 2026-01-02T03:04:05Z
---

The colon on line 4 makes this invalid YAML.
"""
YAML_ERROR = "issues/2/issue.md:4: invalid YAML: mapping values are not allowed in this context"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the worktree (not .git, not the local .gitdesk cache) and its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in (".git", ".gitdesk") or not path.is_file():
            continue
        files[rel] = path.read_bytes()
    return files


class Watch:
    """Remembers HEAD and every file, to show that a refused command changed nothing."""

    def __init__(self, root: Path):
        self.root = root
        self.head = git(root, "rev-parse", "HEAD").strip() if (root / ".git").exists() else None
        self.files = snapshot(root)
        self.status = status(root) if self.head else None

    def refused(self, result, message: str, exit_code: int = 1) -> str:
        """The command failed with exactly one line, ``Error: <message>...``, and changed nothing."""
        assert result.exit_code == exit_code, result.output
        assert "Traceback" not in result.output and "internal error" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"Error: {message}"), lines[0]
        self.unchanged()
        return lines[0]

    def unchanged(self) -> None:
        if self.head:
            assert git(self.root, "rev-parse", "HEAD").strip() == self.head
            assert status(self.root) == self.status
        assert snapshot(self.root) == self.files


def commit_file(root: Path, rel: str, content: str | bytes) -> None:
    """A hand edit that was committed (and maybe pushed) without going through gitdesk."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    git(root, "add", rel)
    git(root, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-qm", f"hand: {rel}")


@pytest.fixture
def three(cli, tracker_dir):
    for title in ("One", "Two", "Three"):
        cli("issue", "new", title)
    return tracker_dir


# -- invalid YAML ------------------------------------------------------------------------------

def test_broken_yaml_is_refused_naming_file_and_line(cli, three):
    commit_file(three, "issues/2/issue.md", BROKEN_YAML)
    watch = Watch(three)
    for command in (("show", "2"), ("show", "2", "--json"), ("set", "2", "status=open"),
                    ("comment", "2", "-m", "Hi"), ("close", "2"), ("assign", "2", "bob@example.com")):
        watch.refused(cli("issue", *command, ok=False), YAML_ERROR)


def test_issue_edit_repairs_a_file_with_broken_yaml(cli, three, tmp_path):
    commit_file(three, "issues/2/issue.md", BROKEN_YAML)
    fixed = tmp_path / "fixed.md"
    fixed.write_text("---\ntitle: Repaired\nvisibility: private\ncreated: 2026-01-01T00:00:00Z\n"
                     "updated: 2026-01-01T00:00:00Z\n---\n\nBody\n")
    before = commit_count(three)
    result = cli("issue", "edit", "2", "-F", str(fixed))
    assert result.output.strip() == "#2 edited: repaired"
    assert commit_count(three) == before + 1
    assert git(three, "log", "-1", "--format=%s").strip() == "#2 edit: repaired"
    assert json.loads(cli("issue", "show", "2", "--json").output)["title"] == "Repaired"


def test_broken_yaml_in_an_uncommitted_hand_edit_is_refused_and_kept(cli, three):
    (three / "issues/2/issue.md").write_text(BROKEN_YAML)
    watch = Watch(three)
    watch.refused(cli("issue", "set", "2", "priority=high", ok=False), YAML_ERROR)
    assert (three / "issues/2/issue.md").read_text() == BROKEN_YAML


def test_check_reports_broken_yaml_as_path_line_reason(cli, three):
    commit_file(three, "issues/2/issue.md", BROKEN_YAML)
    watch = Watch(three)
    result = cli("gitdesk", "check", ok=False)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [YAML_ERROR]
    assert result.stderr.strip() == "1 problem(s), 0 warning(s)"
    assert "Traceback" not in result.output
    watch.unchanged()
    data = json.loads(cli("gitdesk", "check", "--json", ok=False).stdout)
    assert [(f["path"], f["line"], f["warning"]) for f in data] == [("issues/2/issue.md", 4, False)]


def test_list_with_one_broken_file_lists_the_others_and_warns(cli, three):
    commit_file(three, "issues/2/issue.md", BROKEN_YAML)
    result = cli("issue", "list")
    assert result.exit_code == 0
    ids = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert ids == ["#3", "#1"]
    assert result.stderr.strip() == f"warning: skipped {YAML_ERROR}"
    data = json.loads(cli("issue", "list", "--json").stdout)
    assert [i["id"] for i in data] == [3, 1]


def test_a_duplicate_field_is_refused_not_silently_dropped(cli, three):
    text = (three / "issues/2/issue.md").read_text().replace("priority: normal\n",
                                                             "priority: normal\nstatus: closed\n")
    commit_file(three, "issues/2/issue.md", text)
    watch = Watch(three)
    watch.refused(cli("issue", "show", "2", ok=False),
                  "issues/2/issue.md:6: invalid YAML: duplicate field 'status' (also on line 4)")
    assert cli("gitdesk", "check", ok=False).stdout.startswith("issues/2/issue.md:6: invalid YAML")


def test_broken_gitdesk_yml_names_the_file_and_line(cli, tracker_dir):
    settings = tracker_dir / "gitdesk.yml"
    lines = settings.read_text().splitlines(keepends=True)
    lines[2] = "site_url: [https://example.com\n"  # line 3: an unclosed list
    settings.write_text("".join(lines))
    watch = Watch(tracker_dir)
    message = watch.refused(cli("issue", "list", ok=False), "gitdesk.yml:")
    assert "invalid YAML" in message
    line = int(message.split(":")[2])
    assert 3 <= line <= 5  # libyaml notices the missing ']' on the next line holding a key


# -- schema problems in a hand-edited file -------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    ("status: new", "status: bogus",
     "issues/1/issue.md:4: unknown status 'bogus' (expected one of: new, open, waiting, resolved, closed)"),
    ("type: ticket", "type: gizmo",
     "issues/1/issue.md:3: unknown type 'gizmo' (expected one of: ticket, bug, feature, task)"),
    ("priority: normal", "priority: urgent",
     "issues/1/issue.md:5: unknown priority 'urgent' (expected one of: critical, high, normal, low)"),
    ("title: One\n", "", "issues/1/issue.md: missing title"),
    ("labels: []", "labels: []\ncustomer: not-an-email",
     "issues/1/issue.md:8: customer 'not-an-email' is not an email address"),
])
def test_check_names_path_line_and_reason_of_schema_problems(cli, three, old, new, expected):
    text = (three / "issues/1/issue.md").read_text()
    assert old in text
    (three / "issues/1/issue.md").write_text(text.replace(old, new))
    watch = Watch(three)
    result = cli("gitdesk", "check", ok=False)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [expected]
    watch.unchanged()


def test_a_change_to_a_file_with_a_schema_problem_is_refused(cli, three):
    commit_file(three, "issues/1/issue.md",
                (three / "issues/1/issue.md").read_text().replace("status: new", "status: bogus"))
    watch = Watch(three)
    watch.refused(cli("issue", "set", "1", "priority=high", ok=False),
                  "issues/1/issue.md: status: unknown status 'bogus'")


# -- bad values on the command line ------------------------------------------------------------

SET_ERRORS = [
    ("status=bogus", "issues/1/issue.md: status: unknown status 'bogus' (expected one of: new, open, waiting, "
                     "resolved, closed)"),
    ("priority=urgent", "issues/1/issue.md: priority: unknown priority 'urgent'"),
    ("type=gizmo", "issues/1/issue.md: type: unknown type 'gizmo'"),
    ("title=", "issues/1/issue.md: title: missing title"),
    ("customer=nope", "issues/1/issue.md: customer: customer 'nope' is not an email address"),
    ("visibility=secret", "visibility: 'secret' is not public or private"),
    ("due=someday", "due: 'someday' is not a date"),
    ("colour=red", "cannot set 'colour'"),
    ("nonsense", "expected FIELD=VALUE, got 'nonsense'"),
    ("status+=open", "status: '+=' works only on lists"),
]


def test_set_refuses_bad_values(cli, three):
    watch = Watch(three)
    for assignment, message in SET_ERRORS:
        watch.refused(cli("issue", "set", "1", "priority=high", assignment, ok=False), message)


NEW_ERRORS = [
    (("",), "title: missing title"),
    (("   ",), "title: missing title"),
    (("Thing", "-t", "gizmo"), "type: unknown type 'gizmo' (expected one of: ticket, bug, feature, task)"),
    (("Thing", "-p", "urgent"), "priority: unknown priority 'urgent'"),
    (("Thing", "--customer", "not-an-email"), "customer: customer 'not-an-email' is not an email address"),
    (("Thing", "--cc", "a@example.com", "--cc", "nope"), "cc: cc 'nope' is not an email address"),
    (("Thing", "--due", "someday"), "due: 'someday' is not a date"),
    (("Thing", "-F", "/nonexistent/text.md"), "/nonexistent/text.md: cannot read: No such file"),
]


def test_new_refuses_bad_input_and_allocates_no_id(cli, three):
    watch = Watch(three)
    for args, message in NEW_ERRORS:
        watch.refused(cli("issue", "new", *args, ok=False), message)
        assert not (three / "issues" / "4").exists()


def test_an_empty_comment_is_refused(cli, three):
    watch = Watch(three)
    watch.refused(cli("issue", "comment", "1", "-m", "", ok=False), "empty comment")


# -- ids --------------------------------------------------------------------------------------------

def test_an_id_that_does_not_exist(cli, three):
    watch = Watch(three)
    for command in (("show", "999"), ("show", "#999"), ("set", "999", "status=open"),
                    ("comment", "999", "-m", "Hi"), ("close", "999"), ("edit", "999"), ("log", "999")):
        watch.refused(cli("issue", *command, ok=False),
                      "no issue #999 (issues/999/issue.md does not exist)")
        assert not (three / "issues" / "999").exists()


def test_a_bad_id_is_refused(cli, three):
    watch = Watch(three)
    for bad in ("abc", "0", "#", "1.5", "-3", "12abc", "#07", "1 2"):
        watch.refused(cli("issue", "show", "--", bad, ok=False), f"not an issue id: {bad!r}")
        watch.refused(cli("issue", "set", "--", bad, "status=open", ok=False),
                      f"not an issue id: {bad!r}")


def test_a_duplicate_id_folder_is_reported_by_check(cli, three):
    folder = three / "issues" / "01"
    folder.mkdir()
    (folder / "issue.md").write_bytes((three / "issues/1/issue.md").read_bytes())
    watch = Watch(three)
    result = cli("gitdesk", "check", ok=False)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["issues/01: duplicate id: issues/1 is also #1"]
    watch.unchanged()
    listed = [i["id"] for i in json.loads(cli("issue", "list", "--json").stdout)]
    assert listed == [3, 2, 1]


# -- files that are not text ---------------------------------------------------------------------

@pytest.mark.parametrize("content, reason", [
    (b"GIF89a\x01\x00\x01\x00\x00\xff\x00", "not UTF-8 text (byte 11); is it a binary file?"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "binary file (contains NUL bytes), not Markdown"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text (byte 0); is it a binary file?"),
    (b"---\ntitle: caf\xe9\n---\n", "not UTF-8 text (byte 14); is it a binary file?"),
])
def test_a_binary_issue_file_is_refused_and_kept(cli, three, content, reason):
    commit_file(three, "issues/2/issue.md", content)
    watch = Watch(three)
    for command in (("show", "2"), ("set", "2", "status=open"), ("comment", "2", "-m", "x")):
        watch.refused(cli("issue", *command, ok=False), f"issues/2/issue.md: {reason}")
    result = cli("gitdesk", "check", ok=False)
    assert result.stdout.splitlines() == [f"issues/2/issue.md: {reason}"]
    list_result = cli("issue", "list")
    assert [line.split()[0] for line in list_result.stdout.splitlines()[1:]] == ["#3", "#1"]
    assert f"issues/2/issue.md: {reason}" in list_result.stderr
    assert (three / "issues/2/issue.md").read_bytes() == content


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_issue_file_is_refused(cli, three):
    path = three / "issues/2/issue.md"
    path.chmod(0)
    try:
        before = commit_count(three)
        result = cli("issue", "set", "2", "status=open", ok=False)
        assert result.exit_code == 1
        assert result.stderr.strip() == "Error: issues/2/issue.md: cannot read: Permission denied"
        assert commit_count(three) == before
    finally:
        path.chmod(0o644)
    assert "status: new" in path.read_text()


# -- no tracker, no person ----------------------------------------------------------------------

def test_no_tracker_in_the_given_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    watch = Watch(empty)
    message = watch.refused(Cli(empty)("issue", "list", ok=False), "no gitdesk tracker (gitdesk.yml)")
    assert str(empty) in message
    watch.refused(Cli(empty)("issue", "new", "Thing", ok=False), "no gitdesk tracker")
    watch.refused(Cli(empty)("kb", "list", ok=False), "no gitdesk tracker")
    watch.refused(Cli(empty)("gitdesk", "check", ok=False), "no gitdesk tracker")
    assert list(empty.iterdir()) == []
    watch.refused(Cli(tmp_path / "missing")("issue", "list", ok=False), f"{tmp_path / 'missing'}: no such folder")
    assert not (tmp_path / "missing").exists()


def test_no_tracker_above_the_current_folder_in_a_real_process(tmp_path):
    empty = tmp_path / "nowhere"
    empty.mkdir()
    result = run_bin("issue", "list", cwd=empty)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: no gitdesk tracker (gitdesk.yml) in ")
    assert len(result.stderr.splitlines()) == 1
    result = run_bin("issue", "show", "1", cwd=tmp_path, env={"GITDESK_DIR": str(empty)})
    assert result.returncode == 1 and "no gitdesk tracker" in result.stderr
    assert list(empty.iterdir()) == []


def test_real_process_errors_have_no_traceback(three):
    commit_file(three, "issues/2/issue.md", BROKEN_YAML)
    result = run_bin("issue", "show", "2", cwd=three / "issues")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"Error: {YAML_ERROR}\n")
    result = run_bin("issue", "show", "999", cwd=three)
    assert (result.returncode, result.stderr) == (1, "Error: no issue #999 (issues/999/issue.md does not exist)\n")


def test_nobody_to_author_the_change(cli, three, monkeypatch):
    monkeypatch.delenv("GITDESK_USER")
    watch = Watch(three)
    watch.refused(cli("issue", "new", "Anonymous", ok=False), "who are you?")
    watch.refused(cli("issue", "comment", "1", "-m", "Hi", ok=False), "who are you?")


# -- gitdesk init ---------------------------------------------------------------------------------

def test_init_refuses_a_non_empty_folder_that_is_not_a_repository(cli, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    watch = Watch(folder)
    watch.refused(cli("gitdesk", "init", str(folder), ok=False),
                  f"{folder}: folder is not empty and not a git repository")
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


def test_init_refuses_an_existing_tracker(cli, tracker_dir):
    before = commit_count(tracker_dir)
    watch = Watch(tracker_dir)
    watch.refused(cli("gitdesk", "init", str(tracker_dir), ok=False),
                  f"{tracker_dir}: already a gitdesk tracker (gitdesk.yml exists)")
    assert commit_count(tracker_dir) == before
