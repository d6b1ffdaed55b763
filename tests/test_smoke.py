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


def test_the_programs_exit_with_the_command_code_and_all_their_output(tracker_dir):
    """The console scripts skip the interpreter's teardown (cli.common.run_program): every
    byte written must still arrive, and the exit code must be the command's."""
    from conftest import run_bin

    body = "".join(f"line {k} of a long description\n" for k in range(20_000))  # ~600 KB
    made = run_bin("issue", "new", "Long", "-F", "-", cwd=tracker_dir, input=body)
    assert made.returncode == 0 and made.stdout.startswith("#1 ")
    shown = run_bin("issue", "show", "1", cwd=tracker_dir)
    assert shown.returncode == 0 and shown.stdout.count("of a long description") == 20_000
    assert shown.stdout.rstrip().endswith("line 19999 of a long description")
    missing = run_bin("issue", "show", "99", cwd=tracker_dir)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("Error: no issue #99")
    assert run_bin("issue", "no-such-command", cwd=tracker_dir).returncode == 2
    assert run_bin("kb", "--version", cwd=tracker_dir).stdout.startswith("kb, version ")
    assert run_bin("gitdesk", "check", cwd=tracker_dir).returncode == 0
