"""Behaviour found by a first read-through of the manual against the commands."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import Cli, commit_count, git


def _add_fields(root: Path, text: str) -> None:
    settings = root / "gitdesk.yml"
    settings.write_text(settings.read_text().replace("  fields: {}\n", text))
    git(root, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qam", "fields")


def test_custom_fields_with_numeric_values_and_required_ones(cli, tracker_dir):
    _add_fields(tracker_dir, "  fields:\n    plan: {values: [1, 2]}\n    contract: {required: true}\n")
    refused = cli("issue", "new", "No contract", ok=False)
    assert refused.exit_code == 1 and "contract: missing contract" in refused.output
    cli("issue", "new", "Gold", "-f", "contract=C-7", "--field", "plan=2")
    data = json.loads(cli("issue", "show", "1", "--json").output)
    assert data["fields"] == {"contract": "C-7", "plan": "2"}
    cli("issue", "set", "1", "plan=1")
    assert json.loads(cli("issue", "show", "1", "--json").output)["fields"]["plan"] == "1"
    bad = cli("issue", "set", "1", "plan=3", ok=False)
    assert bad.exit_code == 1 and "unknown plan '3' (expected one of: 1, 2)" in bad.output
    unknown = cli("issue", "new", "x", "-f", "colour=red", ok=False)
    assert unknown.exit_code == 1 and "not a custom field" in unknown.output


def test_kb_never_takes_the_index_slug(cli, tracker_dir):
    assert cli("kb", "new", "Index", "-m", "x").output.split()[0] == "index-2"
    refused = cli("kb", "new", "Other", "--slug", "index", ok=False)
    assert refused.exit_code == 1 and "reserved" in refused.output
    assert not (tracker_dir / "kb" / "index.md").exists()


def test_init_without_an_identity_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("GITDESK_USER")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    result = Cli(tmp_path)("gitdesk", "init", str(tmp_path / "noid"), ok=False)
    assert result.exit_code == 1 and "who are you?" in result.output
    assert not (tmp_path / "noid").exists()


def test_hand_written_pages_publish_no_addresses(cli, tracker_dir):
    (tracker_dir / "docs" / "about.md").write_text("# About\n\nWrite to help@desk.example.com\n")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    subprocess.run([str(mkdocs), "build", "-q"], cwd=tracker_dir, check=True, capture_output=True)
    page = (tracker_dir / "site" / "about" / "index.html").read_text()
    assert "Write to [address hidden]" in page and "help@desk" not in page
    index = (tracker_dir / "site" / "search" / "search_index.json").read_text()
    assert "help@desk" not in index


def test_same_second_comments_keep_their_counter_order(cli, tracker_dir, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", "2026-01-01T00:00:00Z")
    cli("issue", "new", "Busy")
    for n in range(12):
        cli("issue", "comment", "1", "-m", f"note {n}")
    bodies = [c["body"] for c in json.loads(cli("issue", "show", "1", "--json").output)["comments"]]
    assert bodies == [f"note {n}" for n in range(12)]


def test_a_visibility_typo_in_an_edit_is_refused(cli, tracker_dir, tmp_path):
    cli("issue", "new", "Secret", "--private")
    text = (tracker_dir / "issues/1/issue.md").read_text().replace("visibility: private",
                                                                   "visibility: publik")
    edited = tmp_path / "e.md"
    edited.write_text(text)
    before = commit_count(tracker_dir)
    result = cli("issue", "edit", "1", "-F", str(edited), ok=False)
    assert result.exit_code == 1
    assert "issues/1/issue.md" in result.output and "'publik'" in result.output
    assert commit_count(tracker_dir) == before


def test_message_and_editor_together_are_a_usage_error(cli):
    result = cli("issue", "new", "t", "-m", "a", "-e", ok=False)
    assert result.exit_code == 2 and "only one of -m, -F and -e" in result.output


def test_show_prints_the_author_and_unknown_fields(cli, tracker_dir):
    cli("issue", "new", "Imported")
    path = tracker_dir / "issues/1/issue.md"
    path.write_text(path.read_text().replace("---\n\n", "---\n", 1).replace(
        "title: Imported\n", "title: Imported\nlegacy_id: RT-4411\n"))
    git(tracker_dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qam", "legacy")
    shown = cli("issue", "show", "1").output
    assert "author: Alice Admin <alice@example.com>" in shown and "legacy_id: RT-4411" in shown
    assert json.loads(cli("issue", "show", "1", "--json").output)["extra"] == {"legacy_id": "RT-4411"}


# -- from a new user's first half hour ------------------------------------------------------

def test_edit_message_names_hand_edits_made_before_the_editor(cli, tracker_dir, tmp_path):
    cli("issue", "new", "Old title", "-p", "high")
    path = tracker_dir / "issues/1/issue.md"
    path.write_text(path.read_text().replace("title: Old title", "title: New title"))
    edited = tmp_path / "e.md"
    edited.write_text(path.read_text().replace("priority: high", "priority: normal"))
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\ncp {edited} \"$1\"\n")
    script.chmod(0o755)
    result = cli("issue", "edit", "1", env={"EDITOR": str(script)})
    assert result.output.strip() == "#1 edited: title, priority"
    assert git(tracker_dir, "log", "-1", "--format=%s").strip() == "#1 edit: title, priority"


def test_the_editor_hint_is_not_saved(cli, tracker_dir, tmp_path):
    script = tmp_path / "editor.sh"
    script.write_text("#!/bin/sh\nprintf 'The disk is full.\\n' | cat - \"$1\" > \"$1.new\" && mv \"$1.new\" \"$1\"\n")
    script.chmod(0o755)
    cli("issue", "new", "Disk", "-e", env={"EDITOR": str(script)})
    assert json.loads(cli("issue", "show", "1", "--json").output)["body"] == "The disk is full."


def test_commas_separate_labels_everywhere_and_filters_ignore_case(cli):
    cli("issue", "new", "A", "-l", "dns,Needs-Info")
    assert json.loads(cli("issue", "show", "1", "--json").output)["labels"] == ["dns", "Needs-Info"]
    cli("issue", "set", "1", "labels-=dns,Needs-Info")
    assert json.loads(cli("issue", "show", "1", "--json").output)["labels"] == []
    cli("issue", "set", "1", "labels+=Needs-Info")
    listed = json.loads(cli("issue", "list", "-l", "needs-info", "--json").output)
    assert [i["id"] for i in listed] == [1]


def test_reopen_refuses_an_issue_that_is_open(cli, tracker_dir):
    cli("issue", "new", "A")
    before = commit_count(tracker_dir)
    result = cli("issue", "reopen", "1", ok=False)
    assert result.exit_code == 1 and "#1 is not closed (status: new)" in result.output
    assert commit_count(tracker_dir) == before


def test_log_json_dates_are_utc_with_z(cli):
    cli("issue", "new", "A")
    (entry,) = json.loads(cli("issue", "log", "1", "--json").output)
    assert entry["date"].endswith("Z") and entry["message"] == "#1 new: A"


def test_hand_written_page_titles_headings_and_descriptions_lose_addresses(cli, tracker_dir):
    (tracker_dir / "docs" / "about.md").write_text(
        "---\ntitle: About bob@example.com\ndescription: meta bob2@example.com\n---\n\n"
        "## Write to toc@example.com\n\nText.\n")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    subprocess.run([str(mkdocs), "build", "-q"], cwd=tracker_dir, check=True, capture_output=True)
    for path in (tracker_dir / "site").rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".xml"):
            text = path.read_text(errors="replace")
            for address in ("bob@example.com", "bob2@example.com", "toc@example.com"):
                assert address not in text, (path, address)
    assert "About [address hidden]" in (tracker_dir / "site" / "about" / "index.html").read_text()


def test_list_and_kb_filters_split_commas_and_ignore_case(cli):
    cli("issue", "new", "Printer", "-l", "hw,Office,web")
    assert [i["id"] for i in json.loads(cli("issue", "list", "-l", "hw,office", "--json").output)] == [1]
    cli("kb", "new", "Printers", "-l", "hw,Office", "-m", "x")
    assert json.loads(cli("kb", "show", "printers", "--json").output)["tags"] == ["hw", "Office"]
    assert [a["slug"] for a in json.loads(cli("kb", "list", "-l", "office", "--json").output)] == ["printers"]


def test_a_thirteen_digit_folder_is_not_an_issue(cli, tracker_dir):
    cli("issue", "new", "Real")
    big = tracker_dir / "issues" / "1234567890123"
    big.mkdir()
    (big / "issue.md").write_text((tracker_dir / "issues/1/issue.md").read_text())
    assert [i["id"] for i in json.loads(cli("issue", "list", "--json").output)] == [1]
    assert "issues/1234567890123: folder name is not an issue id" in cli("gitdesk", "check", ok=False).output
