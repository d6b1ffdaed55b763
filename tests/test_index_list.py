"""`issue list`, `issue queue` and `issue next` answered from the index (kb/search.md, "The
index: never stale"): the same answers as reading every file, and never stale.

What is proved: on a desk with varied fields (custom keys, dates, unknown values, responses
by staff and by the customer, internal notes, waiting and closed issues) every listing and
the queue answer exactly as the files do; once warm no issue file is read; a hand edit of a
priority or a status that was never committed changes the very next queue; a deleted or
garbage cache, and a `git checkout` of another branch, give the right answer at once; an
issue file that cannot be read gives the same one-line warning as before; and a value the
index cannot keep is read from its file.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import Cli, git

NOW = "2026-03-02T12:00:00Z"
SETTINGS = """\
staff:
  - {name: Alice Admin, email: alice@example.com, role: admin}
  - {name: Bob Builder, email: bob.builder@example.com}
sla:
  high: {response: 4h, resolve: 1d}
  normal: {response: 1h, resolve: 8h}
  types:
    feature: none
"""
HAND_WRITTEN = """\
---
title: Written by hand
type: ticket
status: open
priority: urgent
visibility: public
labels: [Hand, extra]
customer: carol@example.com
created: 2026-03-01T08:00:00Z
updated: 2026-03-01T09:30:00Z
due: 2026-03-05
deadline: 2026-04-01
team: {name: web, size: 3, 7: seven}
ratio: 1.5
flag: true
---

Frontmatter the Issue model keeps in ``extra``, and an unknown priority.
"""
COMMANDS = [
    ("issue", "list"), ("issue", "list", "--all", "--json"), ("issue", "list", "--closed"),
    ("issue", "list", "--all", "--sort", "updated"), ("issue", "list", "--sort", "priority", "--asc"),
    ("issue", "list", "--all", "--sort", "title", "-n", "3"), ("issue", "list", "-l", "web"),
    ("issue", "list", "-n", "2"), ("issue", "list", "--all", "-n", "3", "--asc", "--json"),
    ("issue", "list", "-l", "web", "-n", "1"), ("issue", "list", "--closed", "-n", "1"),
    ("issue", "list", "--customer", "BOB@example.com"), ("issue", "list", "--assignee", "none"),
    ("issue", "list", "--overdue"), ("issue", "list", "--overdue", "--all", "--json"),
    ("issue", "queue"), ("issue", "queue", "--json"), ("issue", "queue", "--unassigned"),
    ("issue", "next"), ("issue", "next", "--json"), ("issue", "next", "-p", "normal"),
]


def commit_all(root, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.name=Owner", "-c", "user.email=owner@example.com", "commit", "-qm", message)


@pytest.fixture
def desk(cli, tracker_dir, monkeypatch):
    path = tracker_dir / "gitdesk.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("staff: []\n", SETTINGS), encoding="utf-8")
    commit_all(tracker_dir, "settings")
    for hhmm, args in [
        ("06:00", ["Site down", "-t", "ticket", "-p", "high", "--customer", "bob@example.com", "-l", "web"]),
        ("06:30", ["Slow pages", "-t", "ticket", "-p", "normal", "--customer", "bob@example.com"]),
        ("07:00", ["Crash on save", "-t", "bug", "-p", "normal", "-l", "web", "-l", "App"]),
        ("07:30", ["Dark mode", "-t", "feature", "-p", "low", "--due", "2026-04-01"]),
        ("08:00", ["Invoice", "-t", "ticket", "-p", "high", "--customer", "dave@example.com",
                   "--assignee", "bob.builder@example.com"]),
        ("08:30", ["Old question", "-t", "ticket", "-p", "low"]),
        ("09:00", ["Waiting on customer", "-t", "ticket", "-p", "critical", "--customer", "eve@example.com"]),
    ]:
        monkeypatch.setenv("GITDESK_NOW", f"2026-03-02T{hhmm}:00Z")
        cli("issue", "new", *args, "-m", "Text.")
    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T09:10:00Z")
    cli("issue", "comment", "1", "-m", "We are on it.",                      # a response by staff
        env={"GITDESK_USER": "Bob Builder <bob.builder@example.com>"})
    cli("issue", "comment", "2", "--internal", "-m", "Looks like the cache.")  # a note: no response
    cli("issue", "comment", "5", "-m", "Any news?", env={"GITDESK_USER": "Dave <dave@example.com>"})
    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T09:20:00Z")
    cli("issue", "close", "6", "-r", "answered")
    cli("issue", "set", "7", "status=waiting")
    folder = tracker_dir / "issues/8"
    folder.mkdir()
    (folder / "issue.md").write_text(HAND_WRITTEN, encoding="utf-8")
    commit_all(tracker_dir, "a hand-written issue")
    monkeypatch.setenv("GITDESK_NOW", NOW)
    return tracker_dir


@pytest.fixture
def settled(monkeypatch):
    """Files count as settled at once (not re-read as 'just written'): the signature decides."""
    monkeypatch.setattr("gitdesk.index.sync.RACY_NS", 0)


def from_files(cli: Cli, monkeypatch, *args: str):
    """The answer as before the index: every issue file read."""
    from gitdesk.index.db import IndexUnavailable

    def unavailable(tracker, *args, **kwargs):
        raise IndexUnavailable("no index in this answer")

    with monkeypatch.context() as patch:
        patch.setattr("gitdesk.index.records.load", unavailable)
        return cli(*args, ok=False)


def answer(cli: Cli, *args: str):
    result = cli(*args, ok=False)
    return result.exit_code, result.stdout, result.stderr


def queue_ids(cli: Cli) -> list[int]:
    return [item["id"] for item in json.loads(cli("issue", "queue", "--json").stdout)]


def same_as_files(cli: Cli, monkeypatch, *args: str) -> None:
    expected = from_files(cli, monkeypatch, *args)
    assert answer(cli, *args) == (expected.exit_code, expected.stdout, expected.stderr)


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[1:]) for a in COMMANDS])
def test_answers_are_those_of_the_files(desk, cli, monkeypatch, settled, args):
    monkeypatch.setattr("gitdesk.index.records.CHUNK", 1)  # -n N stops early even on 8 issues
    cli("issue", "list")  # builds the index
    same_as_files(cli, monkeypatch, *args)


def test_the_desk_is_varied_enough_to_tell(desk, cli, monkeypatch, settled):
    data = {i["id"]: i for i in json.loads(cli("issue", "list", "--all", "--json").stdout)}
    assert data[8]["extra"] == {"deadline": "2026-04-01", "team": {"name": "web", "size": 3, "7": "seven"},
                                "ratio": 1.5, "flag": True}
    assert data[8]["priority"] == "urgent" and data[8]["due"] == "2026-03-05"
    assert data[5]["updated"] == "2026-03-02T09:10:00Z"  # the customer's comment is activity
    queue = {q["id"]: q for q in json.loads(cli("issue", "queue", "--json").stdout)}
    assert queue[1]["sla"]["response"]["state"] == "met"        # answered by staff
    assert queue[2]["sla"]["response"]["state"] == "running"    # an internal note is no response
    assert queue[5]["sla"]["response"]["state"] == "running"    # nor is the customer's own comment
    assert 6 not in queue and 7 not in queue                    # closed, waiting


def test_once_warm_no_issue_file_is_read(desk, cli, monkeypatch, settled):
    expected = [answer(cli, *args) for args in COMMANDS]
    from gitdesk.issues.store import IssueStore

    def no_reading(*args, **kwargs):
        raise AssertionError("an issue file was read")

    monkeypatch.setattr(IssueStore, "load", no_reading)
    monkeypatch.setattr(IssueStore, "load_comment", no_reading)
    assert [answer(cli, *args) for args in COMMANDS] == expected


@pytest.mark.parametrize("racy_ns", [0, 10**18], ids=["settled files", "just-written files"])
def test_a_hand_edit_of_priority_or_status_changes_the_next_queue(desk, cli, monkeypatch, racy_ns):
    monkeypatch.setattr("gitdesk.index.sync.RACY_NS", racy_ns)
    assert queue_ids(cli) == [5, 1, 2, 3, 4, 8]
    path = desk / "issues/4/issue.md"
    path.write_text(path.read_text().replace("priority: low", "priority: critical"))
    assert queue_ids(cli) == [4, 5, 1, 2, 3, 8]
    assert json.loads(cli("issue", "next", "--json").stdout)["id"] == 4
    path = desk / "issues/5/issue.md"
    path.write_text(path.read_text().replace("status: new", "status: waiting"))
    assert queue_ids(cli) == [4, 1, 2, 3, 8]
    assert [line.split()[0] for line in cli("issue", "list", "--status", "waiting").stdout.splitlines()[1:]] \
        == ["#7", "#5"]
    assert git(desk, "status", "--porcelain").split() == ["M", "issues/4/issue.md", "M", "issues/5/issue.md"]
    same_as_files(cli, monkeypatch, "issue", "queue")


def test_a_new_comment_and_a_deleted_issue_show_at_once(desk, cli, monkeypatch, settled):
    cli("issue", "queue")
    reply = desk / "issues/2/20260302T110000Z-bob.md"
    reply.write_text("---\nauthor: Bob Builder <bob.builder@example.com>\ndate: 2026-03-02T11:00:00Z\n"
                     "visibility: public\n---\n\nFixed the cache.\n")
    queue = {q["id"]: q for q in json.loads(cli("issue", "queue", "--json").stdout)}
    assert queue[2]["sla"]["response"]["state"] == "missed" and queue[2]["updated"] == "2026-03-02T11:00:00Z"
    git(desk, "rm", "-rq", "issues/1")
    assert 1 not in queue_ids(cli)
    for args in (("issue", "queue"), ("issue", "list", "--all", "--json")):
        same_as_files(cli, monkeypatch, *args)


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_deleted_or_garbage_cache_gives_the_right_answer(desk, cli, monkeypatch, settled, damage):
    assert queue_ids(cli) == [5, 1, 2, 3, 4, 8]
    cache = desk / ".gitdesk/cache/search.sqlite"
    for suffix in ("-wal", "-shm"):
        (desk / f".gitdesk/cache/search.sqlite{suffix}").unlink(missing_ok=True)
    if damage == "deleted":
        cache.unlink()
    else:
        cache.write_bytes(os.urandom(cache.stat().st_size))
    path = desk / "issues/3/issue.md"
    path.write_text(path.read_text().replace("priority: normal", "priority: high"))
    assert queue_ids(cli) == [3, 5, 1, 2, 4, 8]  # high now, and its response is overdue
    for args in (("issue", "list", "--all"), ("issue", "queue", "--json")):
        same_as_files(cli, monkeypatch, *args)


def test_a_git_checkout_of_another_branch_shows_at_once(desk, cli, monkeypatch, settled):
    assert queue_ids(cli) == [5, 1, 2, 3, 4, 8]
    git(desk, "checkout", "-qb", "other")
    cli("issue", "new", "Only on the other branch", "-t", "ticket", "-p", "critical")
    cli("issue", "close", "5", "-r", "fixed")
    assert queue_ids(cli) == [9, 1, 2, 3, 4, 8]
    git(desk, "checkout", "-q", "main")
    assert queue_ids(cli) == [5, 1, 2, 3, 4, 8]
    assert "#9" not in cli("issue", "list", "--all").stdout
    git(desk, "checkout", "-q", "other")
    assert queue_ids(cli) == [9, 1, 2, 3, 4, 8]
    same_as_files(cli, monkeypatch, "issue", "list", "--all", "--json")


@pytest.mark.parametrize("args", [("issue", "list"), ("issue", "list", "--json"), ("issue", "queue"),
                                  ("issue", "next"), ("issue", "list", "-n", "1")],
                         ids=["list", "list json", "queue", "next", "list first"])
def test_an_unreadable_issue_file_gives_the_same_warning(desk, cli, monkeypatch, settled, args):
    (desk / "issues/3/issue.md").write_text("---\ntitle: [broken\nstatus: open\n---\n")
    (desk / "issues/2/20260302T100000Z-x.md").write_text("---\nauthor: [x\n---\n")  # a broken comment
    cli("issue", "list", ok=False)  # builds the index
    result = cli(*args, ok=False)
    expected = from_files(cli, monkeypatch, *args)
    assert (result.exit_code, result.stdout, result.stderr) == \
        (expected.exit_code, expected.stdout, expected.stderr)
    if args[1] != "next":
        assert result.stderr.startswith("warning: skipped issues/3/issue.md:3: invalid YAML")
        assert result.stderr.count("\n") == 1


def test_a_value_the_index_cannot_keep_is_read_from_the_file(desk, cli, monkeypatch, settled):
    path = desk / "issues/4/issue.md"
    path.write_text(path.read_text().replace("title:", "odd: !!set {a, b}\ntitle:", 1))
    cli("issue", "list")
    import sqlite3

    db = sqlite3.connect(desk / ".gitdesk/cache/search.sqlite")
    records = dict(db.execute("SELECT id, record FROM issue").fetchall())
    db.close()
    assert records[4] is None and all(records[i] for i in (1, 2, 3, 5, 8))
    for args in (("issue", "list", "--all", "--json"), ("issue", "queue", "--json")):
        same_as_files(cli, monkeypatch, *args)
