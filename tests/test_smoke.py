"""The basic round trip: init, new, comment, set, show, list, log."""

import json

from conftest import commit_count, git, status


def test_new_issue_is_one_commit_with_the_contract_message(cli, tracker_dir):
    before = commit_count(tracker_dir)
    out = cli("issue", "new", "Site is down", "-m", "It is down.", "--customer", "bob@example.com")
    assert out.output.startswith("#1 issues/1/issue.md")
    assert commit_count(tracker_dir) == before + 1
    assert git(tracker_dir, "log", "-1", "--format=%s").strip() == "#1 new: Site is down"
    assert git(tracker_dir, "log", "-1", "--format=%an <%ae>").strip() == "Alice Admin <alice@example.com>"
    assert git(tracker_dir, "show", "--name-only", "--format=", "HEAD").split() == ["issues/1/issue.md"]
    assert status(tracker_dir) == ""


def test_show_json_has_the_contract_fields(cli):
    cli("issue", "new", "Mail bounces", "-t", "bug", "-p", "high", "-l", "mail", "-m", "Body")
    cli("issue", "comment", "#1", "-m", "Looking")
    cli("issue", "comment", "1", "-m", "Staff only", "--internal")
    data = json.loads(cli("issue", "show", "1", "--json").output)
    for key in ("id", "title", "type", "status", "priority", "visibility", "labels", "customer",
                "assignee", "created", "updated", "path", "comments"):
        assert key in data
    assert (data["id"], data["type"], data["priority"], data["labels"]) == (1, "bug", "high", ["mail"])
    assert data["visibility"] == "public"  # bugs default to public in the default schema
    assert [c["visibility"] for c in data["comments"]] == ["public", "internal"]
    assert data["comments"][0]["body"] == "Looking"
    assert data["comments"][0]["author"] == "Alice Admin <alice@example.com>"


def test_set_close_reopen_messages(cli, tracker_dir):
    cli("issue", "new", "Thing")
    cli("issue", "set", "1", "status=open")
    assert git(tracker_dir, "log", "-1", "--format=%s").strip() == "#1 status: new -> open"
    cli("issue", "close", "1", "-r", "fixed")
    assert git(tracker_dir, "log", "-1", "--format=%s").strip() == \
        "#1 status: open -> closed; resolution: none -> fixed"
    shown = json.loads(cli("issue", "show", "1", "--json").output)
    assert shown["closed"] is True and shown["closed_at"]
    cli("issue", "reopen", "1")
    shown = json.loads(cli("issue", "show", "1", "--json").output)
    assert (shown["status"], shown["resolution"], shown["closed_at"]) == ("open", None, None)
    log = json.loads(cli("issue", "log", "1", "--json").output)
    assert [e["message"] for e in log][-1] == "#1 new: Thing"
    assert len(log) == 4
