"""The index learns what changed from git and from the folders' stamps (kb/search.md, "The
index: never stale"), not by reading or stat'ing every file: each way a file can change
outside gitdesk shows in the very next answer.

What is proved: a `git pull` from another clone, a plain `git commit` of a hand edit, a
`git reset --hard` to an older commit, a hand edit taken back with `git checkout -- FILE`,
a comment written by hand and never committed (and then edited in place, which leaves its
folder's stamp as it was), and an index whose last tree git no longer knows all give the
answer the files give; `gitdesk report` answers from the index exactly as from the files;
and a commit built by editing trees (`_TreeEdit`) is the very tree git's own index builds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess

import pytest

import test_index_list as shared
from conftest import BIN, Cli, git

desk, settled = shared.desk, shared.settled  # the fixtures: the same varied desk
commit_all, from_files, queue_ids, same_as_files = (shared.commit_all, shared.from_files, shared.queue_ids,
                                                    shared.same_as_files)


def queue_by_id(cli: Cli) -> dict[int, dict]:
    return {q["id"]: q for q in json.loads(cli("issue", "queue", "--json").stdout)}


def test_a_git_pull_from_another_clone_shows_at_once(desk, cli, monkeypatch, settled, tmp_path):
    assert queue_ids(cli) == [5, 1, 2, 3, 4, 8]
    shared = tmp_path / "shared.git"
    git(desk, "clone", "-q", "--bare", str(desk), str(shared))
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(shared), str(other))
    theirs = Cli(other)
    theirs("issue", "new", "Made in the other clone", "-t", "ticket", "-p", "critical")
    theirs("issue", "close", "5", "-r", "fixed")
    theirs("issue", "set", "3", "priority=high")
    git(other, "push", "-q", "origin", "HEAD:main")
    git(desk, "pull", "-q", "--no-rebase", str(shared), "main")
    assert queue_ids(cli) == [9, 3, 1, 2, 4, 8]
    for args in (("issue", "list", "--all", "--json"), ("issue", "queue", "--json")):
        same_as_files(cli, monkeypatch, *args)


def test_plain_git_commits_and_a_reset_show_at_once(desk, cli, monkeypatch, settled):
    before = cli("issue", "list", "--all", "--json").stdout
    path = desk / "issues/4/issue.md"
    path.write_text(path.read_text().replace("priority: low", "priority: critical"))
    commit_all(desk, "by hand")
    assert queue_ids(cli)[0] == 4
    cli("issue", "close", "1", "-r", "fixed")
    assert 1 not in queue_ids(cli)
    git(desk, "reset", "-q", "--hard", "HEAD~2")
    assert cli("issue", "list", "--all", "--json").stdout == before
    same_as_files(cli, monkeypatch, "issue", "queue", "--json")


def test_a_hand_edit_taken_back_shows_at_once(desk, cli, monkeypatch, settled):
    before = cli("issue", "queue", "--json").stdout
    path = desk / "issues/2/issue.md"
    path.write_text(path.read_text().replace("status: new", "status: closed"))
    assert 2 not in queue_ids(cli)
    git(desk, "checkout", "--", "issues/2/issue.md")
    assert cli("issue", "queue", "--json").stdout == before
    path.write_text(path.read_text().replace("status: new", "status: waiting"))
    git(desk, "add", "issues/2/issue.md")  # staged, not committed
    assert 2 not in queue_ids(cli)
    git(desk, "reset", "-q", "--hard")
    assert cli("issue", "queue", "--json").stdout == before


def test_an_uncommitted_comment_is_watched_until_committed(desk, cli, monkeypatch, settled):
    cli("issue", "queue")
    reply = desk / "issues/2/20260302T110000Z-bob.md"
    reply.write_text("---\nauthor: Bob Builder <bob.builder@example.com>\ndate: 2026-03-02T11:00:00Z\n"
                     "visibility: internal\n---\n\nOnly a note so far.\n")
    queue = queue_by_id(cli)
    assert queue[2]["sla"]["response"]["state"] != "missed"  # a note is no response
    folder_stamp = os.stat(reply.parent).st_mtime_ns
    with open(reply, "r+", encoding="utf-8") as file:  # in place: the folder's stamp stays
        text = file.read().replace("visibility: internal", "visibility: public  ")
        file.seek(0)
        file.write(text)
    assert os.stat(reply.parent).st_mtime_ns == folder_stamp
    queue = queue_by_id(cli)
    assert queue[2]["sla"]["response"]["state"] == "missed"  # answered at 11:00, after its 1h
    same_as_files(cli, monkeypatch, "issue", "queue", "--json")
    commit_all(desk, "the reply")
    with open(reply, "r+", encoding="utf-8") as file:  # tracked now: git sees the edit
        text = file.read().replace("visibility: public  ", "visibility: internal")
        file.seek(0)
        file.write(text + "\n")
    queue = queue_by_id(cli)
    assert queue[2]["sla"]["response"]["state"] != "missed"


def test_a_tree_git_no_longer_knows_means_every_folder_is_checked(desk, cli, monkeypatch, settled):
    cli("issue", "list")
    db = sqlite3.connect(desk / ".gitdesk/cache/search.sqlite")
    db.execute("UPDATE meta SET value = ? WHERE key = 'tree'", ("0123456789" * 4,))
    db.commit()
    db.close()
    path = desk / "issues/3/issue.md"
    path.write_text(path.read_text().replace("title: Crash on save", "title: Crash on load"))
    commit_all(desk, "retitled")
    assert "Crash on load" in cli("issue", "list").stdout
    same_as_files(cli, monkeypatch, "issue", "list", "--all", "--json")


@pytest.mark.parametrize("args", [("gitdesk", "report", "--json", "--since", "2026-01-01", "--until", "2026-04-01"),
                                  ("gitdesk", "report", "--public", "--json", "--by", "week"),
                                  ("gitdesk", "report", "--csv", "--table", "people")],
                         ids=["staff", "public", "people"])
def test_report_answers_from_the_index_as_from_the_files(desk, cli, monkeypatch, settled, args):
    (desk / "issues/2/20260302T100000Z-x.md").write_text("---\nauthor: [x\n---\n")  # a broken comment
    cli(*args, ok=False)  # builds the index
    from gitdesk.issues.store import IssueStore

    calls = []
    monkeypatch.setattr(IssueStore, "load_comment",
                        lambda *a, _real=IssueStore.load_comment, **k: calls.append(a) or _real(*a, **k))
    warm = cli(*args, ok=False)
    assert calls == []  # no comment file read: the index had them
    expected = from_files(cli, monkeypatch, *args)
    assert (warm.exit_code, warm.stdout, warm.stderr) == (expected.exit_code, expected.stdout, expected.stderr)
    assert warm.stdout.strip()
    assert ("20260302T100000Z-x.md" in warm.stderr) == ("--public" not in args)  # #2 is private


def test_commands_writing_and_reading_at_once_leave_a_sound_index(desk, cli, monkeypatch, settled):
    cli("issue", "list")
    env = dict(os.environ, GITDESK_DIR=str(desk), GITDESK_NOW="2026-03-02T12:00:00Z")
    script = ('for k in 1 2 3; do "$BIN/issue" comment $N -m "from $N, $k" >/dev/null || exit 1; '
              '"$BIN/issue" list --all --json >/dev/null || exit 2; "$BIN/issue" queue >/dev/null || exit 3; done')
    procs = [subprocess.Popen(["sh", "-c", script], env=dict(env, BIN=str(BIN), N=str(n)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2, 3, 4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    db = sqlite3.connect(desk / ".gitdesk/cache/search.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert git(desk, "status", "--porcelain") == ""
    shown = {i["id"]: len(i["comments"]) for i in
             [json.loads(cli("issue", "show", str(n), "--json").stdout) for n in (1, 2, 3, 4)]}
    assert shown == {1: 4, 2: 4, 3: 3, 4: 3}  # each had its comments before, and three more
    for args in (("issue", "list", "--all", "--json"), ("issue", "queue", "--json")):
        same_as_files(cli, monkeypatch, *args)


def test_tree_edits_make_the_tree_git_makes(tracker):
    from gitdesk.core.repo import Identity, _TreeEdit

    repo, root = tracker.repo, tracker.root
    for rel, text in [("issues/1/issue.md", "a\n"), ("issues/1/files/log.txt", "log\n"),
                      ("issues/10/issue.md", "b\n"), ("issues/2/issue.md", "c\n"), ("kb/x.md", "x\n")]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    repo.commit(["issues/1/issue.md", "issues/1/files/log.txt", "issues/10/issue.md", "issues/2/issue.md",
                 "kb/x.md"], "seed", Identity("T", "t@example.com"))
    parent = repo.head()
    (root / "issues/1/files/log.txt").unlink()                 # the folder files/ disappears
    (root / "issues/1/issue.md").write_text("changed\n")
    (root / "issues/1-x").mkdir()
    (root / "issues/1-x/issue.md").write_text("sorts between 1 and 10\n")
    (root / "issues/10/run.sh").write_text("#!/bin/sh\n")
    (root / "issues/10/run.sh").chmod(0o755 | stat.S_IFREG)
    (root / "issues/2/issue.md").unlink()                      # the folder 2/ disappears
    (root / "issues/300/a/b").mkdir(parents=True)
    (root / "issues/300/a/b/deep.md").write_text("deep\n")
    paths = sorted(["issues/1/files/log.txt", "issues/1/issue.md", "issues/1-x/issue.md", "issues/10/run.sh",
                    "issues/2/issue.md", "issues/300/a/b/deep.md"])
    edited = _TreeEdit(repo).apply(parent, paths)
    assert edited is not None
    assert edited == repo._tree_with_index(parent, paths)
    names = git(root, "ls-tree", "-r", "--name-only", edited).split()
    assert "issues/2/issue.md" not in names and "issues/1/files/log.txt" not in names
    assert "issues/300/a/b/deep.md" in names and "100755" in git(root, "ls-tree", edited, "issues/10/run.sh")
    (root / "issues/5").mkdir()
    (root / "issues/5/link.md").symlink_to("../1/issue.md")
    assert _TreeEdit(repo).apply(parent, ["issues/5/link.md"]) is None  # left to git's index


def test_head_read_from_git_files_is_what_git_says(tmp_path):
    from gitdesk.core.repo import Identity, Repo

    def says(root) -> str | None:
        out = git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}").strip()
        return out or None

    root = tmp_path / "r"
    root.mkdir()
    repo = Repo.init(root)
    assert repo.head() is None and repo._read_head() == ""         # a branch with no commit yet
    (root / "a.md").write_text("a\n")
    first = repo.commit(["a.md"], "first", Identity("T", "t@example.com"))
    assert repo.head() == first == says(root)
    git(root, "pack-refs", "--all")                                  # the branch only in packed-refs
    assert not (root / ".git/refs/heads/main").exists()
    assert Repo(root).head() == first
    (root / "a.md").write_text("b\n")
    second = Repo(root).commit(["a.md"], "second", Identity("T", "t@example.com"))
    assert Repo(root).head() == second == says(root)                 # a loose ref again, newer
    git(root, "checkout", "-q", "--detach", first)
    assert Repo(root).head() == first == says(root)                  # detached
    git(root, "checkout", "-q", "main")
    linked = tmp_path / "linked"
    git(root, "worktree", "add", "-q", "-b", "other", str(linked), first)
    other = Repo(linked)
    assert other._read_head() is None and other.head() == first      # a linked worktree: git answers
    assert Repo(root).head() == second


def _in_place(path, old: str, new: str) -> None:
    with open(path, "r+", encoding="utf-8") as file:  # the same inode: the folder's stamp stays
        text = file.read().replace(old, new)
        file.seek(0)
        file.write(text)
        file.truncate()


HAND_COMMENT = "---\nauthor: Bob <bob@example.com>\ndate: 2026-03-02T11:00:00Z\nvisibility: public\n---\n\n{}\n"


def test_an_ignored_comment_is_watched_like_any_untracked_one(desk, cli, monkeypatch, settled):
    (desk / ".git/info/exclude").write_text("issues/*/draft-*.md\n")
    draft = desk / "issues/1/draft-x.md"
    draft.write_text(HAND_COMMENT.format("hello original"))
    assert [h["id"] for h in json.loads(cli("issue", "search", "original", "--json").stdout)] == [1]
    _in_place(draft, "hello original", "hello capybara")
    assert [h["id"] for h in json.loads(cli("issue", "search", "capybara", "--json").stdout)] == [1]


def test_a_file_git_stops_tracking_is_watched_from_then_on(desk, cli, monkeypatch, settled):
    reply = desk / "issues/1/20260302T110000Z-bob.md"
    reply.write_text(HAND_COMMENT.format("hello original"))
    commit_all(desk, "a hand comment")
    cli("issue", "list")
    git(desk, "reset", "-q", "HEAD~1")  # still on disk, untracked now; its folder unchanged
    assert [h["id"] for h in json.loads(cli("issue", "search", "original", "--json").stdout)] == [1]
    _in_place(reply, "hello original", "hello okapi")
    assert [h["id"] for h in json.loads(cli("issue", "search", "okapi", "--json").stdout)] == [1]


def test_a_symlinked_issue_folder_gives_the_warning_reading_the_files_gives(desk, cli, monkeypatch, settled):
    (desk / "issues/70").symlink_to("3")
    result = cli("issue", "list", "--all", ok=False)
    expected = from_files(cli, monkeypatch, "issue", "list", "--all")
    assert (result.stdout, result.stderr) == (expected.stdout, expected.stderr)
    assert "issues/70/issue.md" in result.stderr


def test_a_sha256_repository_takes_commits(tmp_path, monkeypatch):
    from gitdesk.scaffold import init

    folder = tmp_path / "desk"
    made = subprocess.run(["git", "init", "-q", "--object-format=sha256", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("this git makes no SHA-256 repositories")
    init(folder, name="Long Ids")
    cli = Cli(folder)
    cli("issue", "new", "First", "-m", "x")
    cli("issue", "comment", "1", "-m", "y")
    assert len(git(folder, "rev-parse", "HEAD").strip()) == 64
    assert git(folder, "status", "--porcelain") == "" and git(folder, "fsck", "--strict") == ""
    assert [c["body"] for c in json.loads(cli("issue", "show", "1", "--json").stdout)["comments"]] == ["y"]
