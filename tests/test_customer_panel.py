"""The customer control panel's interface: `Tracker.customer(email)` and `gitdesk export`.

What is proved: a customer sees their own tickets with the description and the public
replies, and nothing else — no internal note, no other customer's ticket, no staff
address, no assignee, label or cc — whether they ask for a list, one ticket, a file, or
the whole export; asking for someone else's ticket looks exactly like asking for one that
does not exist; opening and replying are one commit each, authored by the customer, and
tell staff through the outbox like mail does.
"""

from __future__ import annotations

import json

import pytest

from conftest import commit_count, git, status

BOB = "bob@customer.example"
CAROL = "carol@other.example"


@pytest.fixture
def desk(tracker_dir, cli):
    """Bob's ticket #1 with a public reply and an internal note; Carol's ticket #2."""
    settings = tracker_dir / "gitdesk.yml"
    settings.write_text(settings.read_text().replace(
        "staff: []", "staff:\n  - {name: Alice Admin, email: alice@example.com, role: admin}"))
    git(tracker_dir, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-qam", "staff")
    cli("issue", "new", "Site down SECRET_NONE", "--customer", BOB, "-m", "Bob's site is down",
        "-l", "LABEL_MARKER", "--private", "-t", "ticket")
    cli("issue", "set", "1", "cc=cc-person@third.example", "assignee=alice@example.com")
    cli("issue", "comment", "1", "-m", "PUBLIC_REPLY_MARKER we restarted it")
    cli("issue", "comment", "1", "--internal", "-m", "INTERNAL_NOTE_MARKER disk full")
    cli("issue", "new", "CAROL_TICKET_MARKER", "--customer", CAROL, "-m", "CAROL_BODY_MARKER",
        "-t", "ticket")
    cli("issue", "new", "No customer INTERNAL_TASK_MARKER", "-t", "task")
    return tracker_dir


def test_a_customer_sees_their_tickets_and_public_replies_only(desk):
    from gitdesk import Tracker

    bob = Tracker(desk).customer("Bob@Customer.Example")
    tickets = bob.tickets()
    assert [t["id"] for t in tickets] == [1]
    ticket = bob.ticket("#1")
    assert ticket["body"] == "Bob's site is down"
    assert [c["body"] for c in ticket["comments"]] == ["PUBLIC_REPLY_MARKER we restarted it"]
    assert ticket["comments"][0]["author"] == "Alice Admin"
    assert ticket["comments"][0]["from_customer"] is False
    assert ticket["replies"] == 1
    assert set(ticket) >= {"id", "title", "status", "closed", "created", "updated", "comments"}
    assert not {"assignee", "labels", "cc", "customer", "path", "author"} & set(ticket)


def test_the_export_holds_no_private_or_foreign_byte(desk, cli):
    result = cli("gitdesk", "export", "--customer", BOB, "--json")
    data = json.loads(result.output)
    assert data["customer"] == BOB and [t["id"] for t in data["tickets"]] == [1]
    text = result.output
    for marker in ("INTERNAL_NOTE_MARKER", "CAROL_TICKET_MARKER", "CAROL_BODY_MARKER", "INTERNAL_TASK_MARKER",
                   "LABEL_MARKER", "alice@example.com", "cc-person@third.example", CAROL):
        assert marker not in text, marker
    assert "PUBLIC_REPLY_MARKER" in text


def test_someone_elses_ticket_answers_like_a_missing_one(desk, cli):
    foreign = cli("gitdesk", "export", "--customer", CAROL, "--ticket", "1", ok=False)
    missing = cli("gitdesk", "export", "--customer", CAROL, "--ticket", "99", ok=False)
    assert foreign.exit_code == missing.exit_code == 1
    assert foreign.output.strip() == f"Error: no ticket #1 for {CAROL}"
    assert missing.output.strip() == f"Error: no ticket #99 for {CAROL}"
    assert "Bob" not in foreign.output


def test_a_bad_address_is_one_line(desk, cli):
    result = cli("gitdesk", "export", "--customer", "not-an-address", ok=False)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: customer: 'not-an-address' is not an email address"


def test_opening_a_ticket_is_one_commit_by_the_customer(desk):
    from gitdesk import Tracker

    before = commit_count(desk)
    ticket = Tracker(desk).customer(BOB, "Bob Customer").open(
        "Mail bounces", "Since today.", attachments=[("../../etc/passwd", b"log")])
    assert ticket["id"] == 4 and ticket["status"] == "new" and ticket["attachments"] == ["passwd"]
    assert commit_count(desk) == before + 1
    assert git(desk, "log", "-1", "--format=%an <%ae>|%s").strip() == \
        f"Bob Customer <{BOB}>|#4 new: Mail bounces"
    issue = Tracker(desk).issues.load(4)
    assert (issue.type, issue.visibility, issue.customer) == ("ticket", "private", BOB)
    assert (desk / "issues/4/files/passwd").read_bytes() == b"log"
    assert Tracker(desk).customer(BOB).attachment(4, "passwd") == b"log"
    assert status(desk) == ""


def test_a_reply_reopens_a_resolved_ticket_and_tells_staff(desk, cli):
    from gitdesk import Tracker

    cli("issue", "set", "1", "status=resolved", "resolution=fixed")
    queued = set((desk / ".gitdesk/outbox/queue").glob("*.json"))
    before = commit_count(desk)
    ticket = Tracker(desk).customer(BOB, "Bob").reply(1, "It is down again")
    assert ticket["status"] == "open" and ticket["resolution"] is None
    assert ticket["comments"][-1] == {**ticket["comments"][-1], "body": "It is down again",
                                      "author": "Bob", "from_customer": True}
    assert commit_count(desk) == before + 1
    assert git(desk, "log", "-1", "--format=%s").strip() == \
        "#1 comment by Bob (web); status: resolved -> open; resolution: fixed -> none"
    new = [json.loads(p.read_text()) for p in set((desk / ".gitdesk/outbox/queue").glob("*.json")) - queued]
    assert sorted(r for entry in new for r in entry["to"]) == ["alice@example.com", "cc-person@third.example"]


def test_replying_to_someone_elses_ticket_changes_nothing(desk):
    from gitdesk import NotFound, Tracker

    before = commit_count(desk)
    with pytest.raises(NotFound):
        Tracker(desk).customer(CAROL).reply(1, "let me in")
    assert commit_count(desk) == before
    assert status(desk) == ""
    assert "let me in" not in "".join(p.read_text() for p in (desk / "issues/1").glob("*.md"))


def test_a_file_on_an_internal_note_is_not_shown(desk, cli, tmp_path):
    from gitdesk import NotFound, Tracker

    secret = tmp_path / "dump.sql"
    secret.write_text("SECRET")
    cli("issue", "comment", "1", "--internal", "-m", "db dump", "-a", str(secret))
    with pytest.raises(NotFound):
        Tracker(desk).customer(BOB).attachment(1, "dump.sql")
