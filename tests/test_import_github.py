"""`gitdesk import github FILE`: gh issue list exports and i-d-template archives.

The fixtures in tests/fixtures/github/ are hand-written (not corpus data):
- gh-issue-list.json: what `gh issue list --state all --json number,title,body,state,labels,
  author,createdAt,closedAt,comments` prints, for example-org/widget (#1 #2 #3 #5; #2 closed;
  CRLF bodies; #1 refers to issue #2 and pull request #99; #5 has "#1" inside a code block).
- archive.json: an i-d-template archive of example-wg/draft-example-widget (issues #1 #2 #4,
  pull request #3 which must be left out; #2 has two comments by one person in one second).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, USER, commit_count, git, status

GH = FIXTURES / "github" / "gh-issue-list.json"
ARCHIVE = FIXTURES / "github" / "archive.json"
GH_URL = "https://github.com/example-org/widget/issues/"
ARCHIVE_URL = "https://github.com/example-wg/draft-example-widget/issues/"


def imp(cli, path: Path, *args: str, ok=True):
    return cli("gitdesk", "import", "github", str(path), *args, ok=ok)


def show(cli, issue_id: int) -> dict:
    return json.loads(cli("issue", "show", str(issue_id), "--json").stdout)


def ids(root: Path) -> list[int]:
    return sorted(int(p.name) for p in (root / "issues").iterdir() if p.name.isdigit())


def last_commit_files(root: Path) -> list[str]:
    return git(root, "show", "--name-status", "--format=", "HEAD").splitlines()


def subject(root: Path) -> str:
    return git(root, "log", "-1", "--format=%s").strip()


# -- gh issue list -----------------------------------------------------------------------

def test_gh_export_keeps_free_numbers_and_every_field(cli, tracker_dir):
    out = imp(cli, GH)
    assert out.stdout.startswith("example-org/widget: 4 new, 0 updated, 0 unchanged, "
                                 "3 comments added, 0 pull requests left out; commit ")
    assert ids(tracker_dir) == [1, 2, 3, 5]

    one = show(cli, 1)
    assert {k: one[k] for k in ("id", "title", "type", "status", "closed", "priority", "visibility",
                                "labels", "author", "created", "closed_at", "source", "assignee",
                                "customer")} == {
        "id": 1, "title": "Login page shows 500 after password reset", "type": "bug",
        "status": "open", "closed": False, "priority": "normal", "visibility": "public",
        "labels": ["bug", "area: auth"], "author": "mira-k", "created": "2024-03-01T09:15:00Z",
        "closed_at": None, "source": GH_URL + "1", "assignee": None, "customer": None,
    }
    assert one["updated"] == "2024-03-02T08:30:00Z"  # the newest comment

    two = show(cli, 2)
    assert (two["status"], two["closed"], two["closed_at"]) == ("closed", True, "2024-03-05T16:40:12Z")
    assert (two["created"], two["updated"]) == ("2024-02-27T14:03:51Z", "2024-03-05T16:40:12Z")
    assert (two["author"], two["labels"], two["type"]) == ("tkovacs", ["bug"], "bug")

    three = show(cli, 3)
    assert three["title"] == "Übersetzung der Fehlermeldungen ins Deutsche"
    assert (three["type"], three["labels"], three["author"]) == ("feature", ["enhancement"], "jschmidt")
    assert three["body"] == ("Bitte die Fehlermeldungen übersetzen – z. B. „Passwort falsch“ statt "
                             "“wrong password”. 🇩🇪\n\nなお、日本語も後で。")
    assert three["comments"] == []

    five = show(cli, 5)
    assert (five["title"], five["type"], five["labels"], five["author"], five["source"]) == \
        ("Nightly link check failed", "task", [], "app/github-actions", GH_URL + "5")
    assert all(show(cli, n)["visibility"] == "public" for n in (1, 2, 3, 5))


def test_gh_export_frontmatter_is_plain(cli, tracker_dir):
    imp(cli, GH)
    text = (tracker_dir / "issues/2/issue.md").read_text(encoding="utf-8")
    assert text == (
        "---\n"
        "title: Session cookie is not renewed\n"
        "type: bug\n"
        "status: closed\n"
        "priority: normal\n"
        "visibility: public\n"
        "labels:\n"
        "- bug\n"
        "author: tkovacs\n"
        "created: 2024-02-27T14:03:51Z\n"
        "updated: 2024-03-05T16:40:12Z\n"
        "closed: 2024-03-05T16:40:12Z\n"
        "source: https://github.com/example-org/widget/issues/2\n"
        "---\n"
        "\n"
        "The session cookie is not renewed when the user stays active,\n"
        "so people are logged out after 30 minutes.\n"
    )
    # created == updated must not turn into a YAML anchor and alias (&id001 / *id001)
    assert "&id" not in (tracker_dir / "issues/5/issue.md").read_text(encoding="utf-8")


def test_gh_comments_are_kept_with_authors_dates_and_via_import(cli, tracker_dir):
    imp(cli, GH)
    comments = show(cli, 1)["comments"]
    assert [(c["id"], c["author"], c["date"], c["visibility"], c["via"]) for c in comments] == [
        ("20240301T100244Z-tkovacs", "tkovacs", "2024-03-01T10:02:44Z", "public", "import"),
        ("20240302T083000Z-mira-k", "mira-k", "2024-03-02T08:30:00Z", "public", "import"),
    ]
    assert comments[0]["body"] == ("Reproduced on staging.\n"
                                   "The log says `session #1 expired` before the redirect.")
    assert comments[1]["body"] == "Thanks! example-org/widget#99 fixes it for me."
    [closing] = show(cli, 2)["comments"]
    assert (closing["author"], closing["date"], closing["body"]) == \
        ("tkovacs", "2024-03-05T16:40:10Z", "Closed by example-org/widget#99.")
    assert sorted(p.name for p in (tracker_dir / "issues/1").iterdir()) == [
        "20240301T100244Z-tkovacs.md", "20240302T083000Z-mira-k.md", "issue.md"]


def test_crlf_is_normalized_and_refs_are_rewritten(cli, tracker_dir):
    imp(cli, GH)
    for path in (tracker_dir / "issues").rglob("*.md"):
        assert b"\r" not in path.read_bytes(), path
    assert show(cli, 1)["body"] == (
        "After a password reset the login page answers with a 500.\n\n"
        "Steps:\n1. Reset the password from the mail link\n2. Log in with the new password\n\n"
        "Probably the same cause as #2; a fix is proposed in example-org/widget#99.")
    # code is left as written; prose refers to our #3
    assert show(cli, 5)["body"] == ("The nightly link check failed:\n\n```\n"
                                    "#1 docs/api.md: 404 https://example.org/limits\n```\n\n"
                                    "See #3 for the translated pages.")


def test_one_import_is_exactly_one_commit(cli, tracker_dir):
    before = commit_count(tracker_dir)
    imp(cli, GH)
    assert commit_count(tracker_dir) == before + 1
    assert subject(tracker_dir) == "import github example-org/widget: 4 new, 0 updated, 3 comments"
    assert git(tracker_dir, "log", "-1", "--format=%an <%ae>").strip() == USER
    assert last_commit_files(tracker_dir) == [
        "A\tissues/1/20240301T100244Z-tkovacs.md", "A\tissues/1/20240302T083000Z-mira-k.md",
        "A\tissues/1/issue.md", "A\tissues/2/20240305T164010Z-tkovacs.md", "A\tissues/2/issue.md",
        "A\tissues/3/issue.md", "A\tissues/5/issue.md"]
    assert status(tracker_dir) == ""


def test_reimport_of_the_same_file_changes_nothing(cli, tracker_dir):
    imp(cli, GH)
    head = git(tracker_dir, "rev-parse", "HEAD")
    out = imp(cli, GH)
    assert out.stdout.strip() == ("example-org/widget: 0 new, 0 updated, 4 unchanged, 0 comments "
                                  "added, 0 pull requests left out; nothing to commit")
    assert git(tracker_dir, "rev-parse", "HEAD") == head
    assert status(tracker_dir) == ""


def test_reimport_keeps_local_triage_and_makes_no_commit(cli, tracker_dir):
    imp(cli, GH)
    cli("issue", "set", "1", "priority=high", "status=waiting", "assignee=alice", "type=feature")
    cli("issue", "comment", "1", "-m", "Staff note", "--internal")
    head = git(tracker_dir, "rev-parse", "HEAD")
    assert "nothing to commit" in imp(cli, GH).stdout
    assert git(tracker_dir, "rev-parse", "HEAD") == head
    one = show(cli, 1)
    assert (one["priority"], one["status"], one["assignee"], one["type"]) == \
        ("high", "waiting", "alice", "feature")
    assert len(one["comments"]) == 3


def test_reimport_after_one_new_comment_adds_exactly_that_file(cli, tracker_dir, tmp_path):
    export = tmp_path / "export.json"
    shutil.copy(GH, export)
    imp(cli, export)
    data = json.loads(export.read_text(encoding="utf-8"))
    data[1]["comments"].append({
        "id": "IC_kwDOLb0001M5xAAA9", "author": {"login": "mira-k"}, "authorAssociation": "CONTRIBUTOR",
        "body": "Confirmed fixed in 2.4.1, see #1.\r\n", "createdAt": "2024-03-06T11:22:33Z",
        "includesCreatedEdit": False, "isMinimized": False, "minimizedReason": "",
        "reactionGroups": [], "url": "https://github.com/example-org/widget/issues/2#issuecomment-2009",
        "viewerDidAuthor": False})
    export.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    before = commit_count(tracker_dir)
    out = imp(cli, export)
    assert "0 new, 1 updated, 3 unchanged, 1 comments added" in out.stdout
    assert commit_count(tracker_dir) == before + 1
    assert subject(tracker_dir) == "import github example-org/widget: 0 new, 1 updated, 1 comment"
    assert last_commit_files(tracker_dir) == ["A\tissues/2/20240306T112233Z-mira-k.md"]
    new = show(cli, 2)["comments"][-1]
    assert (new["author"], new["date"], new["body"], new["via"]) == \
        ("mira-k", "2024-03-06T11:22:33Z", "Confirmed fixed in 2.4.1, see #1.", "import")
    assert "nothing to commit" in imp(cli, export).stdout


def test_reimport_applies_what_changed_on_github(cli, tracker_dir, tmp_path):
    export = tmp_path / "export.json"
    shutil.copy(GH, export)
    imp(cli, export)
    cli("issue", "set", "1", "priority=high")
    data = json.loads(export.read_text(encoding="utf-8"))
    data[0]["state"], data[0]["closedAt"] = "CLOSED", "2024-03-07T09:00:00Z"
    data[2]["title"] = "Fehlermeldungen auf Deutsch"
    export.write_text(json.dumps(data), encoding="utf-8")
    imp(cli, export)
    assert last_commit_files(tracker_dir) == ["M\tissues/1/issue.md", "M\tissues/3/issue.md"]
    one = show(cli, 1)
    assert (one["status"], one["closed_at"], one["priority"]) == ("closed", "2024-03-07T09:00:00Z", "high")
    assert show(cli, 3)["title"] == "Fehlermeldungen auf Deutsch"


# -- i-d-template archives -----------------------------------------------------------------

def test_archive_leaves_pulls_out_and_keeps_everything_else(cli, tracker_dir):
    out = imp(cli, ARCHIVE)
    assert out.stdout.startswith("example-wg/draft-example-widget: 3 new, 0 updated, 0 unchanged, "
                                 "4 comments added, 1 pull requests left out; commit ")
    assert ids(tracker_dir) == [1, 2, 4]  # #3 is a pull request
    one = show(cli, 1)
    assert {k: one[k] for k in ("title", "status", "closed_at", "created", "updated", "labels",
                                "assignee", "author", "source", "type", "visibility")} == {
        "title": "Define the widget frame format", "status": "closed",
        "closed_at": "2023-05-30T17:45:00Z", "created": "2023-05-02T08:00:00Z",
        "updated": "2023-06-01T12:00:00Z", "labels": ["design"], "assignee": "lhansen",
        "author": "lhansen", "source": ARCHIVE_URL + "1", "type": "task", "visibility": "public"}
    assert one["body"] == ("Section 3 says the frame has a length field but not its size.\n"
                           "Proposal: a 16-bit length, see example-wg/draft-example-widget#3.")
    assert [(c["author"], c["date"], c["body"]) for c in one["comments"]] == [
        ("pnoor", "2023-05-03T09:10:11Z", "16 bits is too small for bulk transfers; a varint would do."),
        ("lhansen", "2023-05-30T17:45:00Z", "Fixed in example-wg/draft-example-widget#3; a varint it is."),
    ]
    two = show(cli, 2)
    assert (two["status"], two["closed_at"], two["labels"]) == ("open", None, ["editorial"])
    # two comments by one person in the same second: both kept, in order
    assert [(c["id"], c["body"]) for c in two["comments"]] == [
        ("20230504T100500Z-marco-r", 'Also "seperate" in section 2.'),
        ("20230504T100500Z-marco-r-2", 'And "occured" in section 4.'),
    ]
    assert show(cli, 4)["title"] == "Follow-up to #1: what about zero-length frames?"


def test_clashing_numbers_get_new_ids_after_the_highest(cli, tracker_dir):
    imp(cli, GH)
    out = imp(cli, ARCHIVE, "--json")
    data = json.loads(out.stdout)
    assert [(i["number"], i["id"], i["action"]) for i in data["issues"]] == [
        (1, 6, "new"), (2, 7, "new"), (4, 8, "new")]
    assert ids(tracker_dir) == [1, 2, 3, 5, 6, 7, 8]
    assert [show(cli, n)["source"] for n in (6, 7, 8)] == [ARCHIVE_URL + s for s in ("1", "2", "4")]
    assert show(cli, 8)["title"] == "Follow-up to #6: what about zero-length frames?"
    assert show(cli, 6)["comments"][1]["body"] == \
        "Fixed in example-wg/draft-example-widget#3; a varint it is."
    assert show(cli, 1)["title"] == "Login page shows 500 after password reset"  # untouched
    head = git(tracker_dir, "rev-parse", "HEAD")
    assert "nothing to commit" in imp(cli, ARCHIVE).stdout
    assert "nothing to commit" in imp(cli, GH).stdout
    assert git(tracker_dir, "rev-parse", "HEAD") == head


def test_check_is_clean_after_import(cli):
    imp(cli, GH)
    imp(cli, ARCHIVE)
    result = cli("gitdesk", "check", "--json")
    assert json.loads(result.stdout) == []


def test_json_output(cli):
    data = json.loads(imp(cli, GH, "--json").stdout)
    assert {k: data[k] for k in ("created", "updated", "unchanged", "comments", "skipped_pulls", "repo")} \
        == {"created": 4, "updated": 0, "unchanged": 0, "comments": 3, "skipped_pulls": 0,
            "repo": "example-org/widget"}
    assert len(data["commit"]) == 40
    assert data["issues"][0] == {"number": 1, "id": 1, "source": GH_URL + "1", "action": "new",
                                 "comments_added": 2}
    again = json.loads(imp(cli, GH, "--json").stdout)
    assert (again["commit"], again["unchanged"], again["created"]) == (None, 4, 0)


def test_progress_is_reported_through_the_api(tracker):
    from gitdesk.importers.github import import_github

    calls = []
    import_github(tracker, GH, progress=lambda n, total: calls.append((n, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_rest_api_issue_list_is_read_too(cli, tracker_dir, tmp_path):
    rest = tmp_path / "rest.json"
    rest.write_text(json.dumps([
        {"number": 7, "title": "Crash on start", "state": "closed", "user": {"login": "dana"},
         "html_url": "https://github.com/acme/app/issues/7", "labels": [{"name": "bug"}],
         "body": None, "comments": 3, "created_at": "2022-01-01T00:00:00Z",
         "updated_at": "2022-01-03T00:00:00Z", "closed_at": "2022-01-02T00:00:00Z"},
        {"number": 8, "title": "Fix crash", "state": "closed", "user": {"login": "dana"},
         "html_url": "https://github.com/acme/app/pull/8", "pull_request": {"url": "x"},
         "comments": 0, "created_at": "2022-01-01T00:00:00Z"},
    ]), encoding="utf-8")
    out = imp(cli, rest)
    assert "acme/app: 1 new" in out.stdout and "1 pull requests left out" in out.stdout
    seven = show(cli, 7)
    assert (seven["author"], seven["status"], seven["closed_at"], seven["body"], seven["comments"]) == \
        ("dana", "closed", "2022-01-02T00:00:00Z", "", [])


def test_export_without_urls_needs_repo(cli, tracker_dir, tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"number": 3, "title": "No URL anywhere", "state": "OPEN",
                                 "author": {"login": "x"}, "createdAt": "2024-01-01T00:00:00Z",
                                 "comments": [], "labels": [], "body": "", "closedAt": None}]))
    before = commit_count(tracker_dir)
    out = imp(cli, bare, ok=False)
    assert out.exit_code == 1
    assert "give it with --repo owner/name" in out.stderr
    assert commit_count(tracker_dir) == before
    imp(cli, bare, "--repo", "acme/tools")
    assert show(cli, 3)["source"] == "https://github.com/acme/tools/issues/3"
    bad = imp(cli, bare, "--repo", "not a repo", ok=False)
    assert bad.exit_code == 1 and "expected owner/name" in bad.stderr


# -- bad input: refused with file, line and reason; no commit; nothing written --------------

def refused(cli, tracker_dir, path: Path, message: str) -> None:
    before = commit_count(tracker_dir)
    out = imp(cli, path, ok=False)
    assert out.exit_code == 1, out.output
    assert out.stderr.strip() == f"Error: {path}{message}"
    assert commit_count(tracker_dir) == before
    assert status(tracker_dir) == ""
    assert ids(tracker_dir) == []


def test_invalid_json_names_file_and_line(cli, tracker_dir, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"number": 1,\n   "title": "x",,\n  }\n]\n', encoding="utf-8")
    refused(cli, tracker_dir, broken, ":3: invalid JSON: Expecting property name enclosed in "
                                      "double quotes (column 17)")


def test_a_json_object_that_is_not_an_export_is_refused(cli, tracker_dir, tmp_path):
    other = tmp_path / "package.json"
    other.write_text('{"name": "widget", "version": "1.0.0"}\n', encoding="utf-8")
    refused(cli, tracker_dir, other, ":1: not a GitHub issue export (expected a list of issues as "
                                     "'gh issue list --json' prints, or an archive with an 'issues' key)")
    weird = tmp_path / "weird.json"
    weird.write_text('{"issues": 12}', encoding="utf-8")
    refused(cli, tracker_dir, weird, ": 'issues' must be a list of issues")


def test_an_issue_without_title_is_refused_with_its_line(cli, tracker_dir, tmp_path):
    export = tmp_path / "export.json"
    records = json.loads(GH.read_text(encoding="utf-8"))
    records[2]["title"] = "   "
    export.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    starts = [n for n, text in enumerate(export.read_text().splitlines(), 1) if text == "  {"]
    line = starts[2]  # where record 3 begins
    refused(cli, tracker_dir, export, f":{line}: record 3 (number 3): no title")


@pytest.mark.parametrize("change, message", [
    ({"number": "seven"}, "record 1 (number seven): number 'seven' is not a positive whole number"),
    ({"number": None}, "record 1: no number"),
    ({"state": "MERGED"}, "record 1 (number 1): unknown state 'MERGED' (expected OPEN or CLOSED)"),
    ({"createdAt": "yesterday"}, "record 1 (number 1): createdAt: 'yesterday' is not a date"),
])
def test_bad_records_are_refused(cli, tracker_dir, tmp_path, change, message):
    export = tmp_path / "export.json"
    records = json.loads(GH.read_text(encoding="utf-8"))
    records[0].update(change)
    export.write_text(json.dumps(records), encoding="utf-8")
    refused(cli, tracker_dir, export, f":1: {message}")


def test_a_number_given_twice_is_refused(cli, tracker_dir, tmp_path):
    export = tmp_path / "export.json"
    records = json.loads(GH.read_text(encoding="utf-8"))
    records[3]["number"] = 2
    export.write_text(json.dumps(records), encoding="utf-8")
    refused(cli, tracker_dir, export, ":1: record 4 (number 2): number 2 is also record 2")
