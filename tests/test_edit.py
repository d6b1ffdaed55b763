"""`issue edit` and `kb edit`: $EDITOR or -F FILE, checked before commit, the user's text never lost."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import BIN, commit_count, git, status

EDITOR = f"""\
#!{sys.executable}
# A stand-in for the user's editor: applies EDIT_FROM -> EDIT_TO and EDIT_APPEND to the file,
# and runs EDIT_MEANWHILE (a shell command) as if someone else worked while the editor was open.
import os, subprocess, sys
path = sys.argv[-1]
with open(path, encoding="utf-8") as handle:
    text = handle.read()
with open(os.environ["EDIT_SEEN"], "w", encoding="utf-8") as handle:
    handle.write(text)
if os.environ.get("EDIT_MEANWHILE"):
    subprocess.run(os.environ["EDIT_MEANWHILE"], shell=True, check=True)
if os.environ.get("EDIT_FROM"):
    assert os.environ["EDIT_FROM"] in text, text
    text = text.replace(os.environ["EDIT_FROM"], os.environ.get("EDIT_TO", ""))
text += os.environ.get("EDIT_APPEND", "")
with open(path, "w", encoding="utf-8") as handle:
    handle.write(text)
"""


@pytest.fixture
def editor(tmp_path, monkeypatch):
    """Install the scripted editor; returns a function that sets what the next edit does."""
    script = tmp_path / "fake-editor"
    script.write_text(EDITOR)
    script.chmod(0o755)
    seen = tmp_path / "seen.md"
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(script))
    monkeypatch.setenv("EDIT_SEEN", str(seen))

    def configure(old: str = "", new: str = "", append: str = "", meanwhile: str = "") -> Path:
        for name, value in (("EDIT_FROM", old), ("EDIT_TO", new), ("EDIT_APPEND", append),
                            ("EDIT_MEANWHILE", meanwhile)):
            monkeypatch.setenv(name, value)
        return seen

    return configure


def head(root) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def last(root, fmt: str = "%s") -> str:
    return git(root, "log", "-1", f"--format={fmt}").strip()


def rescued(root) -> list[Path]:
    folder = root / ".gitdesk" / "rescue"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def issue_file(cli, tracker_dir) -> Path:
    cli("issue", "new", "Printer jams", "-m", "It jams on page 2.")
    return tracker_dir / "issues" / "1" / "issue.md"


@pytest.fixture
def article_file(cli, tracker_dir) -> Path:
    cli("kb", "new", "SSH keys", "-m", "Paste your public key.")
    return tracker_dir / "kb" / "ssh-keys.md"


# -- issue edit in $EDITOR --------------------------------------------------------------------

def test_edit_in_the_editor_commits_the_result(cli, tracker_dir, issue_file, editor):
    seen = editor(old="title: Printer jams", new="title: Printer jams on duplex",
                  append="\nAlso on page 4.\n")
    before = commit_count(tracker_dir)
    result = cli("issue", "edit", "1")
    assert result.output.strip() == "#1 edited: title, description"
    assert seen.read_text() == git(tracker_dir, "show", "HEAD~1:issues/1/issue.md")
    assert commit_count(tracker_dir) == before + 1
    assert last(tracker_dir) == "#1 edit: title, description"
    assert last(tracker_dir, "%an <%ae>") == "Alice Admin <alice@example.com>"
    assert git(tracker_dir, "show", "--name-only", "--format=", "HEAD").split() == ["issues/1/issue.md"]
    text = issue_file.read_text()
    assert "title: Printer jams on duplex\n" in text
    assert text.endswith("It jams on page 2.\n\nAlso on page 4.\n")
    assert status(tracker_dir) == ""
    assert rescued(tracker_dir) == []


def test_edit_that_changes_a_field_names_it_in_the_message(cli, tracker_dir, issue_file, editor):
    editor(old="priority: normal", new="priority: high")
    cli("issue", "edit", "#1")
    assert last(tracker_dir) == "#1 edit: priority"
    assert json.loads(cli("issue", "show", "1", "--json").output)["priority"] == "high"


def test_leaving_the_editor_without_saving_changes_nothing(cli, tracker_dir, issue_file, monkeypatch):
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "true")
    before, original = head(tracker_dir), issue_file.read_bytes()
    assert cli("issue", "edit", "1").output.strip() == "No changes."
    assert head(tracker_dir) == before and issue_file.read_bytes() == original


@pytest.mark.parametrize("old, new, message", [
    ("status: new", "status: bogus",
     "Error: issues/1/issue.md:4: status: unknown status 'bogus' (expected one of: new, open, "
     "waiting, resolved, closed) (nothing was changed; your text is kept in .gitdesk/rescue/issue-1-"),
    ("priority: normal", "priority: [high",
     "Error: issues/1/issue.md:6: invalid YAML: did not find expected ',' or ']' (nothing was "
     "changed; your text is kept in .gitdesk/rescue/issue-1-"),
    ("title: Printer jams\n", "",
     "Error: issues/1/issue.md: title: missing title (nothing was changed; your text is kept in "
     ".gitdesk/rescue/issue-1-"),
])
def test_an_invalid_edit_is_refused_and_the_text_rescued(cli, tracker_dir, issue_file, editor,
                                                         old, new, message):
    editor(old=old, new=new, append="\nMy long careful analysis.\n")
    before, original = head(tracker_dir), issue_file.read_bytes()
    result = cli("issue", "edit", "1", ok=False)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(message), result.stderr
    assert head(tracker_dir) == before
    assert issue_file.read_bytes() == original
    assert status(tracker_dir) == ""
    (kept,) = rescued(tracker_dir)
    assert kept.name.startswith("issue-1-") and kept.suffix == ".md"
    assert str(kept.relative_to(tracker_dir)) in result.stderr
    text = kept.read_text()
    assert text.endswith("\nMy long careful analysis.\n")
    assert text == original.decode().replace(old, new) + "\nMy long careful analysis.\n"


def test_edit_of_a_missing_issue_opens_no_editor(cli, tracker_dir, issue_file, editor):
    seen = editor(append="x")
    result = cli("issue", "edit", "42", ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no issue #42 (issues/42/issue.md does not exist)"
    assert not seen.exists()


def test_the_editor_shows_uncommitted_hand_edits_and_commits_them_with_the_edit(
        cli, tracker_dir, issue_file, editor):
    issue_file.write_text(issue_file.read_text() + "\nHand-written line.\n")
    seen = editor(old="priority: normal", new="priority: low")
    cli("issue", "edit", "1")
    assert "Hand-written line." in seen.read_text()
    assert "Hand-written line." in git(tracker_dir, "show", "HEAD:issues/1/issue.md")
    assert status(tracker_dir) == ""


def test_an_edit_is_refused_if_the_issue_changed_while_the_editor_was_open(
        cli, tracker_dir, issue_file, editor):
    # someone closes the issue while the editor is open; saving must not silently reopen it
    editor(old="priority: normal", new="priority: low", append="\nMy notes.\n",
           meanwhile=f"'{BIN / 'issue'}' -C '{tracker_dir}' close 1 >/dev/null")
    result = cli("issue", "edit", "1", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: issues/1/issue.md changed while you were editing it")
    assert last(tracker_dir) == "#1 status: new -> closed"
    assert "status: closed" in issue_file.read_text()
    (kept,) = rescued(tracker_dir)
    assert "priority: low" in kept.read_text() and kept.read_text().endswith("\nMy notes.\n")
    assert str(kept.relative_to(tracker_dir)) in result.stderr


# -- issue edit -F -----------------------------------------------------------------------------

def test_edit_from_a_file(cli, tracker_dir, issue_file, tmp_path):
    new_text = issue_file.read_text().replace("type: ticket", "type: bug").replace(
        "It jams on page 2.", "It jams on every page.")
    source = tmp_path / "new.md"
    source.write_text(new_text)
    assert cli("issue", "edit", "1", "-F", str(source)).output.strip() == \
        "#1 edited: type, description"
    assert last(tracker_dir) == "#1 edit: type, description"
    assert "type: bug\n" in issue_file.read_text()
    assert issue_file.read_text().endswith("It jams on every page.\n")
    assert status(tracker_dir) == ""


def test_edit_from_stdin(cli, tracker_dir, issue_file):
    new_text = issue_file.read_text().replace("labels: []", "labels: [printer, hardware]")
    cli("issue", "edit", "1", "-F", "-", input=new_text)
    assert last(tracker_dir) == "#1 edit: labels"
    assert "- printer\n- hardware\n" in issue_file.read_text()


def test_an_invalid_file_is_refused_and_nothing_changes(cli, tracker_dir, issue_file, tmp_path):
    source = tmp_path / "bad.md"
    source.write_text(issue_file.read_text().replace("visibility: private", "visibility: private\n"
                                                     "customer: bob at example"))
    before, original = head(tracker_dir), issue_file.read_bytes()
    result = cli("issue", "edit", "1", "-F", str(source), ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: issues/1/issue.md:7: customer: customer 'bob at example' "
                                     "is not an email address")
    assert head(tracker_dir) == before and issue_file.read_bytes() == original
    assert rescued(tracker_dir) == []  # the text is still in the user's own file


def test_edit_from_a_file_refuses_to_overwrite_uncommitted_hand_edits(cli, tracker_dir, issue_file,
                                                                       tmp_path):
    source = tmp_path / "new.md"
    source.write_text(issue_file.read_text().replace("priority: normal", "priority: high"))
    hand = issue_file.read_text() + "\nHand-written, not committed.\n"
    issue_file.write_text(hand)
    before = head(tracker_dir)
    result = cli("issue", "edit", "1", "-F", str(source), ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: issues/1/issue.md has changes that are not committed")
    assert issue_file.read_text() == hand
    assert head(tracker_dir) == before


def test_edit_from_a_missing_file(cli, tracker_dir, issue_file):
    result = cli("issue", "edit", "1", "-F", "/nonexistent.md", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: /nonexistent.md: cannot read:")


# -- kb edit ------------------------------------------------------------------------------------

def test_kb_edit_in_the_editor(cli, tracker_dir, article_file, editor):
    editor(old="Paste your public key.", new="Paste your public key into the panel.")
    assert cli("kb", "edit", "ssh-keys").output.strip() == "kb ssh-keys: edited: text"
    assert last(tracker_dir) == "kb ssh-keys: edit: text"
    assert git(tracker_dir, "show", "--name-only", "--format=", "HEAD").split() == ["kb/ssh-keys.md"]
    assert article_file.read_text().endswith("Paste your public key into the panel.\n")
    assert status(tracker_dir) == ""


def test_kb_edit_invalid_is_refused_and_rescued(cli, tracker_dir, article_file, editor):
    editor(old="title: SSH keys\n", new="", append="\nA paragraph I worked hard on.\n")
    before, original = head(tracker_dir), article_file.read_bytes()
    result = cli("kb", "edit", "ssh-keys", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: kb/ssh-keys.md: title: missing title (nothing was changed; "
                                    "your text is kept in .gitdesk/rescue/kb-ssh-keys-")
    assert head(tracker_dir) == before and article_file.read_bytes() == original
    (kept,) = rescued(tracker_dir)
    assert kept.read_text().endswith("\nA paragraph I worked hard on.\n")
    assert "title:" not in kept.read_text()


def test_kb_edit_from_a_file(cli, tracker_dir, article_file, tmp_path):
    source = tmp_path / "article.md"
    source.write_text("---\ntitle: SSH keys\nvisibility: internal\ntags: [ssh]\n---\n\nStaff only now.\n")
    cli("kb", "edit", "ssh-keys", "-F", str(source))
    assert last(tracker_dir) == "kb ssh-keys: edit: visibility: public -> internal, tags, text"
    assert article_file.read_text() == ("---\ntitle: SSH keys\nvisibility: internal\ntags:\n- ssh\n---\n"
                                        "\nStaff only now.\n")
    committed = article_file.read_text()
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: SSH keys\ntags: {a: b}\n---\n")
    before = head(tracker_dir)
    result = cli("kb", "edit", "ssh-keys", "-F", str(bad), ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: kb/ssh-keys.md:3: tags: tags must be a list of words"
    assert head(tracker_dir) == before and article_file.read_text() == committed


def test_kb_edit_from_a_file_refuses_to_overwrite_hand_edits(cli, tracker_dir, article_file, tmp_path):
    source = tmp_path / "article.md"
    source.write_text(article_file.read_text() + "\nMore.\n")
    hand = article_file.read_text() + "\nMine, uncommitted.\n"
    article_file.write_text(hand)
    result = cli("kb", "edit", "ssh-keys", "-F", str(source), ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: kb/ssh-keys.md has changes that are not committed")
    assert article_file.read_text() == hand


def test_kb_edit_of_a_missing_article(cli, tracker_dir, editor):
    seen = editor(append="x")
    result = cli("kb", "edit", "nope", ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no KB article 'nope' (kb/nope.md does not exist)"
    assert not seen.exists()
