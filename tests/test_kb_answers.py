"""KB answers: `issue link --kb`, `issue suggest`, `issue reply --kb` and `kb new --from`.

What is proved: linking writes both sides (the issue's `kb:`, the article's `issues:`)
in one commit, and both `show` commands and the site then name the link; suggestions
put the article that fits the ticket first; a reply is one public comment quoting the
article's first paragraph and its address, mailed to the customer through the outbox;
an article drafted from a ticket is internal, holds the description and the public
replies (not the internal notes), and links back.
"""

from __future__ import annotations

import json

import pytest

from conftest import commit_count, git, status

BOB = "bob@customer.example"
SSH_SUMMARY = "Open the control panel, go to SSH keys and upload your new public key."


@pytest.fixture
def desk(tracker_dir, cli):
    """Ticket #1 from Bob about SSH keys (a public reply, an internal note); bug #2 about DNS;
    articles on SSH keys, DNS, backups and 502 errors (one internal)."""
    cli("issue", "new", "Cannot log in with my SSH key", "--customer", BOB,
        "-m", "Since I changed laptops, ssh says permission denied (publickey). Which key do I upload?")
    cli("issue", "comment", "1", "-m", "Upload the public key of your new laptop in the panel.")
    cli("issue", "comment", "1", "--internal", "-m", "INTERNAL_NOTE_MARKER his old key is revoked")
    cli("issue", "new", "DNS change not visible", "-t", "bug", "--public", "-m", "The A record is old.")
    cli("kb", "new", "Resetting your SSH keys", "--slug", "ssh-keys", "-l", "ssh",
        "-m", f"## Before you start\n\n{SSH_SUMMARY}\n\nUse ed25519 keys; upload the .pub file.")
    cli("kb", "new", "When a DNS change shows", "--slug", "dns-propagation",
        "-m", "A changed record is visible after its TTL; the A record of a domain may take an hour.")
    cli("kb", "new", "Restoring a backup", "--slug", "backups", "-m", "Backups run nightly; restore from the panel.")
    cli("kb", "new", "Fixing 502 errors", "--slug", "errors-502", "--internal",
        "-m", "Restart php-fpm when nginx shows 502.")
    return tracker_dir


# -- link ---------------------------------------------------------------------------------------

def test_link_writes_both_sides_in_one_commit(desk, cli):
    before = commit_count(desk)
    out = cli("issue", "link", "#2", "--kb", "dns-propagation").output
    assert out.splitlines() == ["#2 kb: none -> dns-propagation", "kb dns-propagation issues: none -> #2"]
    assert commit_count(desk) == before + 1
    assert git(desk, "log", "-1", "--format=%s").strip() == "#2 link kb dns-propagation"
    assert sorted(git(desk, "show", "--name-only", "--format=", "HEAD").split()) == [
        "issues/2/issue.md", "kb/dns-propagation.md"]
    assert status(desk) == ""
    assert json.loads(cli("issue", "show", "2", "--json").output)["kb"] == ["dns-propagation"]
    assert "kb: dns-propagation" in cli("issue", "show", "2").output
    assert "issues: #2" in cli("kb", "show", "dns-propagation").output
    assert cli("issue", "link", "2", "--kb", "dns-propagation").output.strip() == \
        "#2 and kb dns-propagation: already linked"
    assert commit_count(desk) == before + 1


def test_unlink_removes_both_sides_in_one_commit(desk, cli):
    cli("issue", "link", "2", "--kb", "dns-propagation")
    before = commit_count(desk)
    cli("issue", "link", "2", "--kb", "dns-propagation", "--remove")
    assert commit_count(desk) == before + 1
    assert json.loads(cli("issue", "show", "2", "--json").output)["kb"] == []
    assert json.loads(cli("kb", "show", "dns-propagation", "--json").output)["issues"] == []


@pytest.mark.parametrize("args, message", [
    (["9", "--kb", "dns-propagation"], "Error: no issue #9"),
    (["2", "--kb", "nope"], "Error: no KB article 'nope'"),
    (["2", "--kb", "../x"], "Error: not an article slug"),
])
def test_link_refuses_what_does_not_exist(desk, cli, args, message):
    before = commit_count(desk)
    result = cli("issue", "link", *args, ok=False)
    assert result.exit_code == 1 and result.stderr.startswith(message)
    assert commit_count(desk) == before and status(desk) == ""


def test_the_site_lists_a_linked_public_issue_on_the_article(desk, cli):
    from gitdesk import Tracker
    from gitdesk.site.pages import build_site

    cli("issue", "link", "2", "--kb", "dns-propagation")
    cli("issue", "link", "1", "--kb", "dns-propagation")  # private: never named
    pages = {p.src_uri: p.html for p in build_site(Tracker(desk)).pages}
    related = pages["kb/dns-propagation.md"].split("Related issues", 1)[1]
    assert "DNS change not visible" in related and "SSH" not in related


# -- suggest ------------------------------------------------------------------------------

def test_suggest_puts_the_article_that_fits_first(desk, cli):
    hits = json.loads(cli("issue", "suggest", "1", "--json").output)
    assert hits[0]["slug"] == "ssh-keys" and hits[0]["score"] > 0
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert len(hits) <= 5
    assert hits[0]["linked"] is False
    assert json.loads(cli("issue", "suggest", "2", "--json").output)[0]["slug"] == "dns-propagation"
    text = cli("issue", "suggest", "1").output
    assert text.splitlines()[0].startswith("Articles like #1 (words: ")
    assert "ssh-keys" in text.splitlines()[2]


def test_suggest_public_leaves_internal_articles_out(desk, cli):
    cli("issue", "new", "Nginx shows 502", "-m", "php-fpm died, nginx shows 502")
    assert json.loads(cli("issue", "suggest", "3", "--json").output)[0]["slug"] == "errors-502"
    assert "errors-502" not in cli("issue", "suggest", "3", "--public").output


# -- reply ----------------------------------------------------------------------------------

def test_reply_is_one_public_comment_quoting_the_article_and_mailed(desk, cli):
    queue = desk / ".gitdesk/outbox/queue"
    queued = set(queue.glob("*.json"))
    before = commit_count(desk)
    out = cli("issue", "reply", "1", "--kb", "ssh-keys", "-m", "Hi Bob,").output
    assert out.startswith("comment issues/1/") and out.strip().endswith("(kb ssh-keys)")
    assert commit_count(desk) == before + 1 and status(desk) == ""
    assert git(desk, "log", "-1", "--format=%s").strip() == "#1 reply with kb ssh-keys by Alice Admin"
    changed = sorted(git(desk, "show", "--name-only", "--format=", "HEAD").split())
    assert changed[0].startswith("issues/1/2") and changed[1:] == ["issues/1/issue.md", "kb/ssh-keys.md"]
    comments = json.loads(cli("issue", "show", "1", "--json").output)["comments"]
    reply = comments[-1]
    assert reply["visibility"] == "public" and len(comments) == 3
    url = "https://support.example.com/kb/ssh-keys/"
    assert reply["body"] == (f"Hi Bob,\n\n> **Resetting your SSH keys**\n>\n> {SSH_SUMMARY}\n\n"
                             f"Read the whole article: {url}")
    assert json.loads(cli("kb", "show", "ssh-keys", "--json").output)["issues"] == [1]
    new = [json.loads(p.read_text()) for p in set(queue.glob("*.json")) - queued]
    assert [entry["to"] for entry in new] == [[BOB]]
    message = (queue / next(p.name for p in set(queue.glob("*.json")) - queued)).read_text()
    assert url in message and "INTERNAL_NOTE_MARKER" not in message


def test_reply_with_an_internal_article_is_refused(desk, cli):
    before = commit_count(desk)
    result = cli("issue", "reply", "1", "--kb", "errors-502", ok=False)
    assert result.exit_code == 1 and "is internal" in result.stderr
    assert commit_count(desk) == before and status(desk) == ""


def test_summary_skips_headings_and_code():
    from gitdesk.kb.actions import summary

    assert summary("## Title\n\n```\ncode\n```\n\nFirst words\nstill first.\n\nSecond.") == \
        "First words\nstill first."
    assert summary("#42 is the ticket.") == "#42 is the ticket."
    assert summary("") == "" and len(summary("word " * 500)) < 610


# -- kb new --from --------------------------------------------------------------------------

def test_kb_new_from_an_issue_drafts_an_internal_article_and_links_back(desk, cli):
    before = commit_count(desk)
    out = cli("kb", "new", "--from", "1").output
    assert out.strip() == "cannot-log-in-with-my-ssh-key kb/cannot-log-in-with-my-ssh-key.md (internal)"
    assert commit_count(desk) == before + 1 and status(desk) == ""
    assert sorted(git(desk, "show", "--name-only", "--format=", "HEAD").split()) == [
        "issues/1/issue.md", "kb/cannot-log-in-with-my-ssh-key.md"]
    article = json.loads(cli("kb", "show", "cannot-log-in-with-my-ssh-key", "--json").output)
    assert (article["title"], article["visibility"], article["issues"]) == \
        ("Cannot log in with my SSH key", "internal", [1])
    assert "Which key do I upload?" in article["body"]
    assert "Upload the public key of your new laptop" in article["body"]
    assert "INTERNAL_NOTE_MARKER" not in article["body"]
    assert json.loads(cli("issue", "show", "1", "--json").output)["kb"] == ["cannot-log-in-with-my-ssh-key"]


def test_kb_new_from_takes_a_title_and_refuses_text(desk, cli):
    cli("kb", "new", "SSH after a new laptop", "--from", "1", "--slug", "new-laptop", "-l", "ssh")
    article = json.loads(cli("kb", "show", "new-laptop", "--json").output)
    assert (article["title"], article["tags"]) == ("SSH after a new laptop", ["ssh"])
    result = cli("kb", "new", "--from", "1", "-m", "text", ok=False)
    assert result.exit_code == 2
    assert cli("kb", "new", ok=False).exit_code == 2
