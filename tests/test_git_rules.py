"""DESIGN.md "Git rules": one commit per change, only the touched paths, the user's work kept."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import BIN, commit_count, git, status
from gitdesk.core.repo import Repo
from gitdesk.errors import Conflict, GitError
from gitdesk.issues import actions

STAMPED = r"\d{8}T\d{6}Z"  # the stamp in a comment's file name


def head(root) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def paths_of(root, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--name-only", "--format=", rev).split()


def subject(root, rev: str = "HEAD") -> str:
    return git(root, "log", "-1", "--format=%s", rev).strip()


def author(root, rev: str = "HEAD") -> str:
    return git(root, "log", "-1", "--format=%an <%ae>", rev).strip()


def staged(root) -> str:
    return git(root, "diff", "--cached", "--name-status")


def pending_work(root) -> dict[str, bytes]:
    """Leave the user's own work in the tree: a staged new file, a staged change, an unstaged change."""
    (root / "notes.txt").write_text("my staged notes\n")
    (root / "docs" / "index.md").write_text("# Staged home page\n")
    git(root, "add", "notes.txt", "docs/index.md")
    (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "# my unstaged tweak\n")
    return {rel: (root / rel).read_bytes() for rel in ("notes.txt", "docs/index.md", "mkdocs.yml")}


PENDING_STATUS = "M  docs/index.md\n M mkdocs.yml\nA  notes.txt\n"


def assert_pending_work_kept(root, saved: dict[str, bytes]) -> None:
    for rel, data in saved.items():
        assert (root / rel).read_bytes() == data, rel
    assert status(root) == PENDING_STATUS
    # the staged contents are still the user's, byte for byte
    assert git(root, "show", ":notes.txt") == "my staged notes\n"
    assert git(root, "show", ":docs/index.md") == "# Staged home page\n"
    assert "# my unstaged tweak" not in git(root, "show", ":mkdocs.yml")
    # and none of it reached a commit
    assert "notes.txt" not in git(root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert "Staged" not in git(root, "show", "HEAD:docs/index.md")
    assert "# my unstaged tweak" not in git(root, "show", "HEAD:mkdocs.yml")


# -- the user's own work --------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("issue", "new", "Another issue", "-m", "Text"),
    ("issue", "comment", "1", "-m", "A comment"),
    ("issue", "set", "1", "priority=high", "labels+=dns"),
])
def test_staged_and_modified_files_of_the_user_stay_as_they_were(cli, tracker_dir, command):
    cli("issue", "new", "First")
    saved = pending_work(tracker_dir)
    before = commit_count(tracker_dir)
    cli(*command)
    assert commit_count(tracker_dir) == before + 1
    committed = paths_of(tracker_dir)
    assert committed and all(p.startswith("issues/") for p in committed)
    assert_pending_work_kept(tracker_dir, saved)
    assert staged(tracker_dir) == "M\tdocs/index.md\nA\tnotes.txt\n"


def test_a_modified_tracked_file_is_neither_committed_nor_reverted(cli, tracker_dir):
    home = tracker_dir / "docs" / "index.md"
    home.write_text("# Half-written page\n")
    cli("issue", "new", "Thing")
    cli("issue", "close", "1", "-m", "Done")
    assert home.read_text() == "# Half-written page\n"
    assert status(tracker_dir) == " M docs/index.md\n"
    assert "Half-written" not in git(tracker_dir, "show", "HEAD:docs/index.md")


# -- one commit per command, only its paths, a sentence for a message ----------------------

EDITED_ISSUE = """\
---
title: Site is down hard
type: ticket
status: new
priority: normal
visibility: private
created: 2026-01-02T03:04:05Z
updated: 2026-01-02T03:04:05Z
---

Now with a description.
"""

EDITED_ARTICLE = """\
---
title: SSH keys
visibility: public
---

How to add an SSH key, revised.
"""

# (setup commands, the command, expected message, expected paths as regular expressions)
COMMANDS = {
    "new": ([], ("issue", "new", "Site is down"), "#1 new: Site is down", [r"issues/1/issue\.md"]),
    "comment": ([("issue", "new", "Site is down")], ("issue", "comment", "1", "-m", "On it"),
                "#1 comment by Carol Staff", [rf"issues/1/{STAMPED}-carol-staff\.md"]),
    "internal": ([("issue", "new", "Site is down")],
                 ("issue", "comment", "1", "-m", "Psst", "--internal"),
                 "#1 internal note by Carol Staff", [rf"issues/1/{STAMPED}-carol-staff\.md"]),
    "set": ([("issue", "new", "Site is down")], ("issue", "set", "1", "priority=high"),
            "#1 priority: normal -> high", [r"issues/1/issue\.md"]),
    "close": ([("issue", "new", "Site is down")], ("issue", "close", "1"),
              "#1 status: new -> closed", [r"issues/1/issue\.md"]),
    "close-with-comment": ([("issue", "new", "Site is down")],
                           ("issue", "close", "1", "-r", "fixed", "-m", "Fixed it"),
                           "#1 status: new -> closed; resolution: none -> fixed",
                           [rf"issues/1/{STAMPED}-carol-staff\.md", r"issues/1/issue\.md"]),
    "reopen": ([("issue", "new", "Site is down"), ("issue", "close", "1")],
               ("issue", "reopen", "1"), "#1 status: closed -> open", [r"issues/1/issue\.md"]),
    "assign": ([("issue", "new", "Site is down")], ("issue", "assign", "1", "bob@example.com"),
               "#1 assignee: none -> bob@example.com", [r"issues/1/issue\.md"]),
    "edit": ([("issue", "new", "Site is down")], ("issue", "edit", "1", "-F", "{issue_file}"),
             "#1 edit: title, description", [r"issues/1/issue\.md"]),
    "kb-new": ([], ("kb", "new", "SSH keys", "-m", "How to add one."), "kb ssh-keys: new: SSH keys",
               [r"kb/ssh-keys\.md"]),
    "kb-edit": ([("kb", "new", "SSH keys", "-m", "How to add one.")],
                ("kb", "edit", "ssh-keys", "-F", "{article_file}"), "kb ssh-keys: edit: text",
                [r"kb/ssh-keys\.md"]),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_is_one_commit_of_its_own_paths(cli, tracker_dir, tmp_path, name):
    setup, command, message, expected = COMMANDS[name]
    files = {"issue_file": tmp_path / "issue.md", "article_file": tmp_path / "article.md"}
    files["issue_file"].write_text(EDITED_ISSUE)
    files["article_file"].write_text(EDITED_ARTICLE)
    for step in setup:
        cli(*step)
    saved = pending_work(tracker_dir)
    before, parent = commit_count(tracker_dir), head(tracker_dir)
    actor = {"GITDESK_USER": "Carol Staff <carol@example.com>"}
    cli(*(arg.format(**{k: str(v) for k, v in files.items()}) for arg in command), env=actor)

    assert commit_count(tracker_dir) == before + 1
    assert git(tracker_dir, "rev-parse", "HEAD^").strip() == parent
    assert subject(tracker_dir) == message
    assert author(tracker_dir) == "Carol Staff <carol@example.com>"
    committed = paths_of(tracker_dir)
    assert len(committed) == len(expected)
    for path, pattern in zip(sorted(committed), sorted(expected), strict=True):
        assert re.fullmatch(pattern, path), (path, pattern)
    # the touched paths are clean, and only the user's own work is still pending
    assert git(tracker_dir, "status", "--porcelain", "--", *committed) == ""
    assert_pending_work_kept(tracker_dir, saved)


def test_the_author_is_gits_user_when_gitdesk_user_is_unset(cli, tracker_dir, monkeypatch):
    monkeypatch.delenv("GITDESK_USER")
    git(tracker_dir, "config", "user.name", "Bob Builder")
    git(tracker_dir, "config", "user.email", "bob@example.com")
    cli("issue", "new", "Leaky tap")
    cli("issue", "comment", "1", "-m", "Fixed the washer")
    assert author(tracker_dir) == "Bob Builder <bob@example.com>"
    assert author(tracker_dir, "HEAD^") == "Bob Builder <bob@example.com>"
    assert subject(tracker_dir) == "#1 comment by Bob Builder"
    shown = json.loads(cli("issue", "show", "1", "--json").output)
    assert shown["author"] == "Bob Builder <bob@example.com>"
    assert shown["comments"][0]["author"] == "Bob Builder <bob@example.com>"


def test_gitdesk_user_wins_over_gits_user_as_author(cli, tracker_dir):
    git(tracker_dir, "config", "user.name", "Gateway")
    git(tracker_dir, "config", "user.email", "gateway@example.com")
    cli("issue", "new", "Thing", env={"GITDESK_USER": "Dana Dev <dana@example.com>"})
    assert author(tracker_dir) == "Dana Dev <dana@example.com>"
    assert git(tracker_dir, "log", "-1", "--format=%cn <%ce>").strip() == "Gateway <gateway@example.com>"


# -- no change, no commit -----------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("issue", "set", "1", "status=new"),
    ("issue", "set", "1", "labels-=absent"),
    ("issue", "assign", "1", "none"),
    ("issue", "edit", "1", "-F", "{same}"),
])
def test_a_change_that_changes_nothing_makes_no_commit(cli, tracker_dir, tmp_path, command):
    cli("issue", "new", "Thing")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    original = issue_file.read_bytes()
    (tmp_path / "same.md").write_bytes(original)
    before = head(tracker_dir)
    result = cli(*(arg.format(same=tmp_path / "same.md") for arg in command))
    assert "nothing to change" in result.output or "no changes" in result.output
    assert head(tracker_dir) == before
    assert issue_file.read_bytes() == original
    assert status(tracker_dir) == ""


def test_kb_edit_with_the_same_text_makes_no_commit(cli, tracker_dir, tmp_path):
    cli("kb", "new", "SSH keys", "-m", "How.")
    same = tmp_path / "same.md"
    same.write_bytes((tracker_dir / "kb" / "ssh-keys.md").read_bytes())
    before = head(tracker_dir)
    assert "no changes" in cli("kb", "edit", "ssh-keys", "-F", str(same)).output
    assert head(tracker_dir) == before


# -- many processes at once --------------------------------------------------------------------

def test_twenty_processes_at_once_get_twenty_ids_and_twenty_commits(tracker_dir):
    before = commit_count(tracker_dir)
    procs = [subprocess.Popen([str(BIN / "issue"), "new", f"Parallel {n}"], cwd=tracker_dir,
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for n in range(20)]
    outputs = [(p.communicate(timeout=120), p.returncode) for p in procs]
    assert [rc for _, rc in outputs] == [0] * 20, [err for (_, err), _ in outputs]
    ids = sorted(int(re.match(r"#(\d+) issues/\1/issue\.md", out).group(1)) for (out, _), _ in outputs)
    assert ids == list(range(1, 21))
    assert commit_count(tracker_dir) == before + 20
    assert status(tracker_dir) == ""
    subjects = git(tracker_dir, "log", f"-n{20}", "--format=%s").splitlines()
    titles = {}
    for line in subjects:
        match = re.fullmatch(r"#(\d+) new: (Parallel \d+)", line)
        assert match, line
        titles[int(match.group(1))] = match.group(2)
    assert sorted(titles) == ids
    assert sorted(titles.values()) == sorted(f"Parallel {n}" for n in range(20))
    for issue_id, title in titles.items():
        assert f"title: {title}\n" in (tracker_dir / f"issues/{issue_id}/issue.md").read_text()
        assert paths_of(tracker_dir, git(tracker_dir, "log", "-1", "--format=%H", "--",
                                         f"issues/{issue_id}").strip()) == [f"issues/{issue_id}/issue.md"]


# -- a failure leaves nothing behind ----------------------------------------------------------

def break_commits(monkeypatch) -> None:
    """Make git fail at the last step of every change, as a full disk or a crash would."""
    def fail(self, *args, **kwargs):
        raise GitError("git commit-tree failed: simulated")

    monkeypatch.setattr(Repo, "commit", fail)


def test_a_failed_new_issue_leaves_no_folder_and_no_commit(tracker, tracker_dir, monkeypatch):
    actions.new_issue(tracker, "First")
    before = head(tracker_dir)
    attachment = tracker_dir.parent / "log.txt"
    attachment.write_text("log\n")
    break_commits(monkeypatch)
    with pytest.raises(GitError, match="simulated"):
        actions.new_issue(tracker, "Second", body="Text", attachments=[attachment])
    assert not (tracker_dir / "issues" / "2").exists()
    assert sorted(p.name for p in (tracker_dir / "issues").iterdir()) == [".gitkeep", "1"]
    assert head(tracker_dir) == before
    assert status(tracker_dir) == ""
    monkeypatch.undo()
    monkeypatch.setenv("GITDESK_USER", "Alice Admin <alice@example.com>")
    assert actions.new_issue(tracker, "Second again").id == 2  # and the lock was released
    assert subject(tracker_dir) == "#2 new: Second again"


def test_a_failed_comment_leaves_no_file_and_no_commit(tracker, tracker_dir, monkeypatch):
    actions.new_issue(tracker, "First")
    folder = tracker_dir / "issues" / "1"
    before = head(tracker_dir)
    break_commits(monkeypatch)
    with pytest.raises(GitError):
        actions.add_comment(tracker, 1, "Hello")
    assert sorted(p.name for p in folder.iterdir()) == ["issue.md"]
    assert head(tracker_dir) == before
    assert status(tracker_dir) == ""


def test_a_failed_set_restores_the_file_byte_for_byte(tracker, tracker_dir, monkeypatch):
    actions.new_issue(tracker, "First", body="Body text")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    original = issue_file.read_bytes()
    before = head(tracker_dir)
    break_commits(monkeypatch)
    with pytest.raises(GitError):
        actions.set_fields(tracker, 1, [("status", "=", "open"), ("labels", "+=", "x")],
                           comment="Also a comment")
    assert issue_file.read_bytes() == original
    assert sorted(p.name for p in issue_file.parent.iterdir()) == ["issue.md"]
    assert head(tracker_dir) == before
    assert status(tracker_dir) == ""


def test_a_real_git_failure_in_the_cli_leaves_nothing_behind(cli, tracker_dir):
    cli("issue", "new", "First")
    before = head(tracker_dir)
    lock = tracker_dir / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("")  # another git process is updating the branch
    result = cli("issue", "new", "Second", "-m", "Body", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: git update-ref failed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tracker_dir / "issues" / "2").exists()
    assert head(tracker_dir) == before

    result = cli("issue", "set", "1", "status=open", ok=False)
    assert result.exit_code == 1
    assert "status: open" not in (tracker_dir / "issues" / "1" / "issue.md").read_text()
    assert head(tracker_dir) == before
    lock.unlink()
    assert status(tracker_dir) == ""
    assert cli("issue", "new", "Second").output.startswith("#2 ")


# -- hand edits are never overwritten ------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("issue", "set", "1", "status=open"),
    ("issue", "close", "1"),
    ("issue", "assign", "1", "bob@example.com"),
    ("issue", "set", "1", "labels+=x"),
])
def test_a_command_refuses_to_overwrite_uncommitted_hand_edits(cli, tracker_dir, command):
    cli("issue", "new", "Thing")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    edited = issue_file.read_text() + "\nMy notes, not yet committed.\n"
    issue_file.write_text(edited)
    before = head(tracker_dir)
    result = cli(*command, ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: issues/1/issue.md has changes that are not committed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert issue_file.read_text() == edited
    assert head(tracker_dir) == before
    assert status(tracker_dir) == " M issues/1/issue.md\n"


def test_a_staged_hand_edit_is_refused_too_and_stays_staged(cli, tracker_dir):
    cli("issue", "new", "Thing")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    edited = issue_file.read_text().replace("priority: normal", "priority: low")
    issue_file.write_text(edited)
    git(tracker_dir, "add", "issues/1/issue.md")
    result = cli("issue", "set", "1", "status=open", ok=False)
    assert result.exit_code == 1 and "issues/1/issue.md" in result.stderr
    assert status(tracker_dir) == "M  issues/1/issue.md\n"
    assert git(tracker_dir, "show", ":issues/1/issue.md") == edited


def test_commenting_beside_a_hand_edit_commits_only_the_comment(cli, tracker_dir):
    cli("issue", "new", "Thing")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    edited = issue_file.read_text() + "\nHand edit.\n"
    issue_file.write_text(edited)
    cli("issue", "comment", "1", "-m", "Still here")
    (path,) = paths_of(tracker_dir)
    assert re.fullmatch(rf"issues/1/{STAMPED}-alice-admin\.md", path)
    assert issue_file.read_text() == edited
    assert status(tracker_dir) == " M issues/1/issue.md\n"


def test_the_api_raises_conflict_for_hand_edits(tracker, tracker_dir):
    actions.new_issue(tracker, "Thing")
    issue_file = tracker_dir / "issues" / "1" / "issue.md"
    issue_file.write_text(issue_file.read_text() + "\nmine\n")
    with pytest.raises(Conflict, match="issues/1/issue.md"):
        actions.set_fields(tracker, 1, [("priority", "=", "high")])
    assert issue_file.read_text().endswith("\nmine\n")


# -- history ------------------------------------------------------------------------------------

def test_issue_log_lists_the_history_newest_first_with_authors(cli, tracker_dir):
    cli("issue", "new", "Printer on fire")
    cli("issue", "new", "Unrelated")
    cli("issue", "comment", "1", "-m", "Got the extinguisher",
        env={"GITDESK_USER": "Bob Builder <bob@example.com>"})
    cli("issue", "set", "1", "status=open", env={"GITDESK_USER": "Carol Staff <carol@example.com>"})
    entries = json.loads(cli("issue", "log", "#1", "--json").output)
    assert [(e["author"], e["email"], e["message"]) for e in entries] == [
        ("Carol Staff", "carol@example.com", "#1 status: new -> open"),
        ("Bob Builder", "bob@example.com", "#1 comment by Bob Builder"),
        ("Alice Admin", "alice@example.com", "#1 new: Printer on fire"),
    ]
    assert entries[0]["commit"] == head(tracker_dir)
    lines = cli("issue", "log", "1").output.splitlines()
    assert lines[0].split() == ["COMMIT", "DATE", "AUTHOR", "CHANGE"]
    assert len(lines) == 4
    assert "Carol Staff" in lines[1] and lines[1].endswith("#1 status: new -> open")
    assert "Bob Builder" in lines[2] and lines[2].endswith("#1 comment by Bob Builder")
    assert "Alice Admin" in lines[3] and lines[3].endswith("#1 new: Printer on fire")
    assert len(json.loads(cli("issue", "log", "1", "-n", "1", "--json").output)) == 1
