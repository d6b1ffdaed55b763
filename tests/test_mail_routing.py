"""The inbound mail gateway end to end: real trackers, real git, the real CLI and pipe.

What is proved here is what kb/mail.md promises: a message becomes a private ticket or a
comment authored by its sender and committed by the gateway; a second delivery changes
nothing; only a signed reply address, one of our signed Message-IDs or a subject tag from
someone who takes part reaches an existing ticket; no header changes a field; machines
never open or reopen tickets; bounces land on the ticket whose mail failed; the MTA pipe
exits 0 or 75; and two help desks do not mail each other forever. Then the security
review: staff mail is staff only when signed for that staff member, an ambiguous From is
quarantined, a signature stops counting when its holder leaves the ticket, customer mail
to a public issue stays internal, and no comment is dated before its ticket.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from conftest import Cli, commit_count, git, run_bin, status

DESK = "support@desk.example.com"
GATEWAY = f"Test Desk mail gateway <{DESK}>"
BOB = "bob@customer.example"
BOB_FULL = f"Bob Customer <{BOB}>"
CAROL = "carol@customer.example"
MALLORY = "mallory@evil.example"
ALICE = "alice@example.com"  # staff (see the desk fixture)

# The first mail of a customer: a new ticket.
FIRST = b"""\
Return-Path: <bob@customer.example>
From: Bob Customer <bob@customer.example>
To: Support <support@desk.example.com>
Subject: Site is down
Date: Tue, 05 Mar 2024 10:15:00 +0100
Message-ID: <first@customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello,

my site example.org is down since this morning.

Bob
"""

# An out-of-office answer to one of our mails (In-Reply-To is filled in by the test).
OUT_OF_OFFICE = b"""\
From: Bob Customer <bob@customer.example>
To: support@desk.example.com
Subject: Automatic reply: [#1] Site is down
Date: Wed, 06 Mar 2024 07:00:00 +0000
Message-ID: <ooo-1@customer.example>
In-Reply-To: <%(parent)s>
Auto-Submitted: auto-replied
X-Autoreply: yes

I am out of the office until Monday.
"""

# A delivery status report (RFC 3464) for one of our mails; the test fills in the headers
# of the returned message and the failed recipient.
BOUNCE = b"""\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>
To: support@desk.example.com
Subject: Undelivered Mail Returned to Sender
Date: Wed, 06 Mar 2024 09:00:00 +0000
Message-ID: <bounce-%(n)s@mx.customer.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="RETURNED"

--RETURNED
Content-Type: text/plain

This is the mail system at host mx.customer.example. Your message could not be delivered.

--RETURNED
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example

Final-Recipient: rfc822; %(recipient)s
Original-Recipient: rfc822; %(recipient)s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <%(recipient)s>: Recipient address rejected: no such user

--RETURNED
Content-Type: %(returned_type)s

%(returned)s
--RETURNED--
"""


def message(*, sender: str = BOB_FULL, to: str = DESK, subject: str = "Re: Site is down",
            mid: str = "reply-1@customer.example", date: str = "Wed, 06 Mar 2024 08:00:00 +0000",
            headers: str = "", body: str = "Any news?\n") -> bytes:
    """A small plain-text mail; ``headers`` are extra header lines, each ending in a newline."""
    return (f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: {date}\n"
            f"Message-ID: <{mid}>\n{headers}\n{body}").encode()


# -- helpers --------------------------------------------------------------------------------

def ingest(root: Path, raw: bytes, mail_from: str | None = None, to: list[str] | tuple = ()):
    """One message through the real Gateway, on a freshly opened tracker (fresh settings)."""
    from gitdesk import Tracker
    from gitdesk.mail.gateway import Envelope, Gateway

    gateway = Gateway(Tracker(root))
    try:
        return gateway.ingest(raw, Envelope(mail_from, list(to)))
    finally:
        gateway.close()


def open_first(root: Path) -> None:
    outcome = ingest(root, FIRST, BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 1), outcome


def issue(root: Path, issue_id: int = 1):
    from gitdesk import Tracker

    return Tracker(root).issues.load(issue_id, comments=True)


def issue_ids(root: Path) -> list[int]:
    from gitdesk import Tracker

    return Tracker(root).issues.ids()


def files(root: Path) -> list[str]:
    """Every file under issues/ (what the gateway may write)."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "issues").rglob("*")
                  if p.is_file() and p.name != ".gitkeep")


def outbox(root: Path) -> dict[str, dict]:
    """The queued outgoing mail, by file name."""
    folder = root / ".gitdesk" / "outbox" / "queue"
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def sent_to(root: Path, recipient: str, kind: str | None = None) -> list[dict]:
    return [e for e in outbox(root).values() if recipient in e["to"] and kind in (None, e["kind"])]


def quarantine(root: Path) -> dict[str, dict]:
    """What the quarantine holds: name -> record, with the kept bytes under 'raw'."""
    folder = root / ".gitdesk" / "quarantine"
    out = {}
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        out[meta.stem] = dict(json.loads(meta.read_text(encoding="utf-8")),
                              raw=(folder / f"{meta.stem}.eml").read_bytes())
    return out


def who(root: Path, rev: str = "HEAD") -> tuple[str, str]:
    """(author, committer) of a commit."""
    author, committer = git(root, "log", "-1", "--format=%an <%ae>%n%cn <%ce>", rev).strip().split("\n")
    return author, committer


def subject_of(root: Path, rev: str = "HEAD") -> str:
    return git(root, "log", "-1", "--format=%s", rev).strip()


def touched(root: Path, rev: str = "HEAD") -> list[str]:
    return sorted(git(root, "show", "--name-only", "--format=", rev).split())


def git_commit(root: Path, *args: str) -> None:
    git(root, "-c", "user.name=Hand Editor", "-c", "user.email=hand@example.com", "commit", "-q", *args)


def configure(root: Path, *, replace: tuple[tuple[str, str], ...] = (), mail: str = "",
              staff: tuple[tuple[str, str], ...] = ()) -> None:
    """Edit gitdesk.yml (extra mail: lines, staff, plain replacements) and commit it."""
    path = root / "gitdesk.yml"
    text = path.read_text(encoding="utf-8")
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    if mail:
        text = text.replace("  smtp_port: 25\n", "  smtp_port: 25\n" + mail, 1)
    if staff:
        text = text.replace("staff: []\n", "staff:\n" + "".join(
            f"  - {{name: {name}, email: {email}, role: staff}}\n" for name, email in staff), 1)
    path.write_text(text, encoding="utf-8")
    git_commit(root, "-m", "settings", "gitdesk.yml")


def signer(root: Path):
    from gitdesk import Tracker
    from gitdesk.mail.signing import Signer, load_secret

    tracker = Tracker(root)
    return Signer(load_secret(tracker.local_dir), tracker.settings.mail.address)


@pytest.fixture
def desk(tracker_dir) -> Path:
    """A tracker with one staff member, Alice."""
    configure(tracker_dir, staff=(("Alice Admin", ALICE),))
    return tracker_dir


@pytest.fixture
def ticket(desk) -> Path:
    """The desk with ticket #1, opened by Bob's first mail."""
    open_first(desk)
    return desk


# -- a new message ----------------------------------------------------------------------------

def test_first_mail_opens_a_private_ticket_authored_by_the_sender(desk):
    """Type ticket, private, Bob as customer; authored by Bob, committed by the gateway;
    the Date and Message-ID kept; the original stored byte for byte under mail/."""
    before = commit_count(desk)
    outcome = ingest(desk, FIRST, BOB, [DESK])
    assert (outcome.action, outcome.issue, outcome.message_id) == ("new", 1, "first@customer.example")
    new = issue(desk)
    assert (new.title, new.type, new.visibility, new.status, new.priority) == \
        ("Site is down", "ticket", "private", "new", "normal")
    assert (new.customer, new.assignee, new.labels, new.cc) == (BOB, None, [], [])
    assert new.author == BOB_FULL
    assert new.created == dt.datetime(2024, 3, 5, 9, 15, tzinfo=dt.timezone.utc)
    assert new.extra["message_id"] == "first@customer.example"
    assert "my site example.org is down since this morning." in new.body
    assert new.comments == []
    assert (desk / "issues/1/mail/issue.eml").read_bytes() == FIRST
    assert commit_count(desk) == before + 1
    assert who(desk) == (BOB_FULL, GATEWAY)
    assert subject_of(desk) == "#1 new: Site is down"
    assert touched(desk) == ["issues/1/issue.md", "issues/1/mail/issue.eml"]
    assert status(desk) == ""
    # the sender is told the number (with a reply address signed for them), staff are told
    ack, = sent_to(desk, BOB, "ack")
    assert signer(desk).reply_address(1, BOB) in ack["message"]
    assert sent_to(desk, ALICE, "new")


def test_a_reply_keeps_its_date_and_message_id(ticket):
    """A comment file with the mail's author, Date, Message-ID and In-Reply-To; the quoted
    part cut off; the original kept next to it as issues/1/mail/<comment>.eml."""
    address = signer(ticket).reply_address(1, BOB)
    raw = message(to=address, headers="In-Reply-To: <first@customer.example>\n",
                  body="Now it works again, thanks!\n\nOn Tue, 5 Mar 2024, Support wrote:\n"
                       "> we restarted the server\n")
    before = commit_count(ticket)
    outcome = ingest(ticket, raw, BOB, [address])
    assert (outcome.action, outcome.issue) == ("comment", 1)
    comment, = issue(ticket).comments
    assert (comment.author, comment.visibility, comment.via) == (BOB_FULL, "public", "email")
    assert comment.date == dt.datetime(2024, 3, 6, 8, 0, tzinfo=dt.timezone.utc)
    assert (comment.message_id, comment.in_reply_to) == ("reply-1@customer.example", "first@customer.example")
    assert comment.body == "Now it works again, thanks!"
    assert (ticket / f"issues/1/mail/{comment.id}.eml").read_bytes() == raw
    assert commit_count(ticket) == before + 1
    assert who(ticket) == (BOB_FULL, GATEWAY)
    assert touched(ticket) == [f"issues/1/{comment.id}.md", f"issues/1/mail/{comment.id}.eml"]
    assert git(ticket, "log", "-1", "--format=%b").strip() == "Routed by reply address."
    assert status(ticket) == ""


# -- duplicates -------------------------------------------------------------------------------

def test_a_second_delivery_changes_nothing_even_without_the_cache(ticket):
    """The same message again: 'duplicate', no commit, no file; also after .gitdesk/cache
    is deleted (the index is rebuilt from the files) and after a commit by hand."""
    address = signer(ticket).reply_address(1, BOB)
    reply = message(to=address)
    assert ingest(ticket, reply, BOB, [address]).action == "comment"
    count, tree, queued = commit_count(ticket), files(ticket), set(outbox(ticket))

    def again():
        for raw, to in ((FIRST, [DESK]), (reply, [address])):
            outcome = ingest(ticket, raw, BOB, to)
            assert (outcome.action, outcome.issue) == ("duplicate", 1), outcome
        assert commit_count(ticket) == count
        assert files(ticket) == tree
        assert set(outbox(ticket)) == queued  # nobody is mailed twice either
        assert status(ticket) == ""

    again()
    shutil.rmtree(ticket / ".gitdesk" / "cache")
    again()
    (ticket / ".gitdesk" / "cache" / "mail-ids.sqlite").write_bytes(b"not a database" * 100)
    again()
    Cli(ticket)("issue", "comment", "1", "-m", "A note by hand", "--internal")  # HEAD moves
    count, tree = commit_count(ticket), files(ticket)
    again()
    # the same message with CRLF line ends or through the CLI is still the same message
    assert ingest(ticket, reply.replace(b"\n", b"\r\n"), BOB, [address]).action == "duplicate"
    out = Cli(ticket)("gitdesk", "mail", "ingest", "--json", "-", input=FIRST.decode())
    assert json.loads(out.output)["action"] == "duplicate"
    assert commit_count(ticket) == count


def test_a_message_whose_file_was_removed_is_stored_again(ticket):
    """The index is never trusted over the files: after the ticket is deleted by hand (and
    committed), the same message opens a ticket again instead of being swallowed."""
    assert ingest(ticket, FIRST, BOB, [DESK]).action == "duplicate"
    git(ticket, "rm", "-rq", "issues/1")
    git_commit(ticket, "-m", "remove #1")
    outcome = ingest(ticket, FIRST, BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 1)
    assert issue(ticket).extra["message_id"] == "first@customer.example"


# -- routing: (a) the signed reply address -----------------------------------------------------

def test_signed_reply_address_reaches_the_ticket_only_from_its_recipient(ticket):
    """The address from `gitdesk mail address` is the Signer's; from Bob it adds a comment
    (also when only a header names it); the same token From someone else, or moved to
    another ticket, opens a new ticket with an internal note saying why."""
    cli = Cli(ticket)
    address = cli("gitdesk", "mail", "address", "1", BOB).output.strip()
    assert address == signer(ticket).reply_address(1, BOB)
    assert address.startswith("support+1.") and address.endswith("@desk.example.com")
    assert cli("gitdesk", "mail", "address", "#1", BOB.upper()).output.strip() == address

    # Bob: by the envelope, and by the To header alone (a pipe without $ORIGINAL_RECIPIENT)
    assert ingest(ticket, message(to=DESK, mid="r1@c"), BOB, [address]).action == "comment"
    assert ingest(ticket, message(to=address, mid="r2@c"), None, []).action == "comment"
    assert ingest(ticket, message(to=DESK, mid="r3@c", headers=f"Delivered-To: {address}\n"),
                  BOB, []).action == "comment"
    assert ingest(ticket, message(sender="BOB <Bob@Customer.Example>", to=address, mid="r4@c"),
                  None, []).issue == 1
    assert len(issue(ticket).comments) == 4

    # Mallory forges a reply with Bob's address: a ticket of her own, and a note why
    before = files(ticket)
    forged = message(sender=f"Mallory <{MALLORY}>", to=address, mid="forged@evil.example",
                     subject="[#1] Re: Site is down", headers=f"Reply-To: {BOB}\n")
    outcome = ingest(ticket, forged, MALLORY, [address])
    assert (outcome.action, outcome.issue) == ("new", 2)
    assert len(issue(ticket, 1).comments) == 4
    assert [f for f in files(ticket) if f.startswith("issues/1/")] == \
        [f for f in before if f.startswith("issues/1/")]
    second = issue(ticket, 2)
    assert (second.customer, second.visibility) == (MALLORY, "private")
    note, = second.comments
    assert note.visibility == "internal"
    assert "reply address of #1" in note.body and "not issued to this sender" in note.body
    assert "takes no part in #1" in note.body
    assert who(ticket)[0] == f"Mallory <{MALLORY}>"

    # Carol's ticket #3; Bob's token for #1 moved onto #3 does not verify
    assert ingest(ticket, message(sender=CAROL, to=DESK, subject="Billing", mid="carol@c"),
                  CAROL, [DESK]).issue == 3
    moved = address.replace("support+1.", "support+3.")
    outcome = ingest(ticket, message(to=moved, mid="moved@c", subject="Billing too"), BOB, [moved])
    assert (outcome.action, outcome.issue) == ("new", 4)
    assert issue(ticket, 3).comments == []
    assert "reply address of #3" in issue(ticket, 4).comments[0].body
    # a token of the right shape but made with another key does not verify either
    from gitdesk.mail.signing import Signer

    fake = Signer(b"another key", DESK).reply_address(1, BOB)
    outcome = ingest(ticket, message(to=fake, mid="fake@c", subject="Hello"), BOB, [fake])
    assert (outcome.action, outcome.issue) == ("new", 5)


def test_note_address_makes_an_internal_note_only_for_staff(ticket):
    """`gitdesk mail address 1 alice --note`: Alice's mail becomes an internal note; a
    public reply address makes her mail a public comment."""
    cli = Cli(ticket)
    note = cli("gitdesk", "mail", "address", "1", ALICE, "--note").output.strip()
    outcome = ingest(ticket, message(sender=f"Alice Admin <{ALICE}>", to=note, mid="n1@example.com",
                                     body="Customer is on the old plan.\n"), ALICE, [note])
    assert (outcome.action, outcome.issue) == ("comment", 1)
    comment, = issue(ticket).comments
    assert (comment.visibility, comment.author) == ("internal", f"Alice Admin <{ALICE}>")
    assert not sent_to(ticket, BOB, "reply")  # an internal note mails no customer
    public = cli("gitdesk", "mail", "address", "1", ALICE).output.strip()
    ingest(ticket, message(sender=ALICE, to=public, mid="n2@example.com", body="Fixed.\n"), ALICE, [public])
    assert [c.visibility for c in issue(ticket).comments] == ["internal", "public"]
    assert sent_to(ticket, BOB, "reply")


# -- routing: (b) our own Message-IDs -----------------------------------------------------------

def test_in_reply_to_one_of_our_message_ids_continues_the_ticket(ticket):
    """Bob answers our acknowledgement from his mail client to the plain address: its
    In-Reply-To (or References) is one of our signed ids, so it is a comment on #1. The
    same ids in Mallory's mail do not make her part of #1."""
    ack, = sent_to(ticket, BOB, "ack")
    our_id = ack["message_id"]
    assert our_id == signer(ticket).message_id(1, "ack", BOB)
    assert f"Message-ID: <{our_id}>" in ack["message"]
    outcome = ingest(ticket, message(subject="Re: Your request was received", mid="b1@c",
                                     headers=f"In-Reply-To: <{our_id}>\n"), BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("comment", 1)
    assert git(ticket, "log", "-1", "--format=%b").strip() == "Routed by message id."
    refs = f"References: <unrelated@x> <{our_id}>\n"
    assert ingest(ticket, message(subject="Hello", mid="b2@c", headers=refs), BOB, [DESK]).issue == 1
    assert len(issue(ticket).comments) == 2

    # Mallory quotes Bob's ids (ours and his own first mail): a new ticket, not #1
    headers = f"In-Reply-To: <{our_id}>\nReferences: <first@customer.example> <{our_id}>\n"
    outcome = ingest(ticket, message(sender=MALLORY, mid="m1@evil.example", subject="Re: hi",
                                     headers=headers), MALLORY, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 2)
    assert len(issue(ticket).comments) == 2
    note, = issue(ticket, 2).comments
    assert note.visibility == "internal"
    assert "it answers our mail about #1, which was not sent to this sender" in note.body
    assert "it answers a message of #1, but the sender takes no part in #1" in note.body
    # a made-up id in our format is no key either
    forged_id = our_id.replace("gd.1.", "gd.2.")
    outcome = ingest(ticket, message(mid="b3@c", subject="Hi", headers=f"In-Reply-To: <{forged_id}>\n"),
                     BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 3)


def test_reply_in_the_thread_of_a_participant_continues_the_ticket(ticket):
    """In-Reply-To naming Bob's own first mail (no tag, no token): a comment on #1 when Bob
    sends it; a new ticket when a stranger does."""
    headers = "In-Reply-To: <first@customer.example>\n"
    assert ingest(ticket, message(subject="More", mid="t1@c", headers=headers), BOB, [DESK]).issue == 1
    assert git(ticket, "log", "-1", "--format=%b").strip() == "Routed by thread."
    outcome = ingest(ticket, message(sender=MALLORY, subject="More", mid="t2@c", headers=headers),
                     MALLORY, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 2)
    assert len(issue(ticket).comments) == 1
    note, = issue(ticket, 2).comments
    assert "it answers a message of #1, but the sender takes no part in #1" in note.body


# -- routing: (c) subject tags, (d) new tickets ------------------------------------------------

def test_subject_tag_counts_only_from_people_who_take_part(ticket):
    """[#1] from the customer, a cc and staff continues #1; from a stranger it opens a new
    ticket with an internal note saying why; a tag of a ticket that does not exist, or no
    tag at all, opens a new ticket."""
    Cli(ticket)("issue", "set", "1", f"cc+={CAROL}")
    for n, sender in enumerate((BOB_FULL, CAROL, f"Alice Admin <{ALICE}>")):
        outcome = ingest(ticket, message(sender=sender, subject="Re: [#1] Site is down", mid=f"tag{n}@c",
                                         date=f"Wed, 06 Mar 2024 08:0{n}:00 +0000"), None, [DESK])
        assert (outcome.action, outcome.issue) == ("comment", 1), sender
        assert git(ticket, "log", "-1", "--format=%b").strip().startswith("Routed by subject tag.")
    authors = [c.author for c in issue(ticket).comments]
    assert authors == [BOB_FULL, CAROL, f"Alice Admin <{ALICE}>"]
    # staff mail by a subject tag alone proves nothing: an internal note (see the forged case)
    assert [c.visibility for c in issue(ticket).comments] == ["public", "public", "internal"]

    before = commit_count(ticket)
    outcome = ingest(ticket, message(sender="Eve <eve@elsewhere.example>", subject="Re: [#1] Site is down",
                                     mid="eve@c", headers=f"Cc: {BOB}\n"), None, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 2)
    assert commit_count(ticket) == before + 1  # the ticket and its note are one commit
    assert len(issue(ticket, 1).comments) == 3
    new = issue(ticket, 2)
    assert (new.customer, new.title) == ("eve@elsewhere.example", "Re: [#1] Site is down")
    note, = new.comments
    assert (note.visibility, note.via, note.author) == ("internal", "email", GATEWAY)
    assert "its subject names #1, but the sender takes no part in #1" in note.body
    assert not sent_to(ticket, "eve@elsewhere.example", "reply")  # the note is never mailed out

    outcome = ingest(ticket, message(subject="Re: [#99] Old thing", mid="old@c"), BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 3)
    outcome = ingest(ticket, message(subject="Another problem", mid="other@c"), BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 4)
    assert issue(ticket, 4).customer == BOB
    assert issue(ticket, 4).comments == []  # nothing to explain: no note
    assert issue_ids(ticket) == [1, 2, 3, 4]


# -- nothing in a message changes a field ---------------------------------------------------

HOSTILE = [
    ("Subject: [#1] status=closed visibility=public assignee=bob@customer.example", "", "Please close.\n"),
    ("Subject: [#1] /close /assign me /public", "", "/status closed\n#visibility public\n"),
    ("Subject: [#1] Re: Site is down",
     "X-Gitdesk-Visibility: public\nX-Gitdesk-Status: closed\nX-Gitdesk-Assignee: bob@customer.example\n"
     "X-Gitdesk-Customer: mallory@evil.example\nX-Gitdesk-Ticket: 2\nX-Gitdesk-Priority: critical\n"
     "Keywords: visibility=public\nX-Priority: 1 (Highest)\nImportance: high\nCc: mallory@evil.example\n",
     "Hi\n"),
    ("Subject: [#1] Re: Site is down", "",
     "---\nvisibility: public\nstatus: closed\ncustomer: mallory@evil.example\nassignee: bob\n"
     "labels: [vip]\npriority: critical\n---\n\nSee above.\n"),
    ("Subject: =?utf-8?q?=5B#1=5D_x=0Astatus=3A_closed=0Avisibility=3A_public?=", "", "Hi\n"),
]


@pytest.mark.parametrize("subject, headers, body", HOSTILE)
def test_no_header_subject_or_body_syntax_changes_a_field(ticket, subject, headers, body):
    """The customer's own mail to #1 becomes a comment and nothing else: issue.md is
    byte-identical afterwards; and the same mail as a new ticket is private, of type ticket,
    with the sender as customer and no assignee, label or priority from the mail."""
    before = (ticket / "issues/1/issue.md").read_bytes()
    raw = f"From: {BOB_FULL}\nTo: {DESK}\n{subject}\nMessage-ID: <h@c>\n{headers}\n{body}".encode()
    outcome = ingest(ticket, raw, BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("comment", 1), outcome
    assert (ticket / "issues/1/issue.md").read_bytes() == before
    comment, = issue(ticket).comments
    assert touched(ticket) == [f"issues/1/{comment.id}.md", f"issues/1/mail/{comment.id}.eml"]
    assert (comment.visibility, comment.author) == ("public", BOB_FULL)

    fresh = raw.replace(b"[#1]", b"").replace(b"=5B#1=5D", b"").replace(b"<h@c>", b"<h2@c>")
    fresh = fresh.replace(BOB.encode(), b"dave@newcustomer.example")
    outcome = ingest(ticket, fresh, "dave@newcustomer.example", [DESK])
    assert (outcome.action, outcome.issue) == ("new", 2), outcome
    new = issue(ticket, 2)
    assert (new.type, new.visibility, new.status, new.priority) == ("ticket", "private", "new", "normal")
    assert (new.customer, new.assignee, new.labels, new.cc) == ("dave@newcustomer.example", None, [], [])
    assert "\n" not in new.title
    assert set(new.extra) == {"message_id"}


# -- reopening -------------------------------------------------------------------------------

@pytest.mark.parametrize("setup, before", [
    (("set", "1", "status=waiting"), "waiting"),
    (("set", "1", "status=resolved", "resolution=fixed"), "resolved"),
    (("close", "1", "-r", "fixed"), "closed"),
])
def test_customer_reply_reopens_waiting_resolved_and_closed_tickets(ticket, setup, before):
    """mail.reopen (default: waiting, resolved and closed -> open); the resolution of a
    closed ticket is cleared, in the same commit as the comment."""
    Cli(ticket)("issue", *setup)
    assert issue(ticket).status == before
    address = signer(ticket).reply_address(1, BOB)
    count = commit_count(ticket)
    assert ingest(ticket, message(to=address), BOB, [address]).action == "comment"
    after = issue(ticket)
    assert (after.status, after.resolution) == ("open", None)
    assert len(after.comments) == 1
    assert commit_count(ticket) == count + 1
    assert subject_of(ticket).startswith("#1 comment by Bob Customer (email); ")
    assert f"status: {before} -> open" in subject_of(ticket)
    assert who(ticket) == (BOB_FULL, GATEWAY)


def test_reopen_follows_the_setting_and_staff_mail_does_not_reopen(ticket):
    """With mail.reopen {closed: waiting} a reply moves closed to waiting and leaves
    resolved alone; a staff member's mail never reopens."""
    configure(ticket, mail="  reopen: {closed: waiting}\n")
    cli = Cli(ticket)
    cli("issue", "close", "1")
    ingest(ticket, message(subject="[#1] again", mid="x1@c"), BOB, [DESK])
    assert issue(ticket).status == "waiting"
    cli("issue", "set", "1", "status=resolved")
    ingest(ticket, message(subject="[#1] again", mid="x2@c"), BOB, [DESK])
    assert issue(ticket).status == "resolved"
    cli("issue", "close", "1")
    outcome = ingest(ticket, message(sender=ALICE, subject="[#1] done", mid="x3@c"), ALICE, [DESK])
    assert outcome.action == "comment"
    assert issue(ticket).status == "closed"


def test_out_of_office_reply_is_an_internal_note_and_reopens_nothing(ticket):
    """Auto-Submitted: auto-replied on our acknowledgement's thread: an internal note on #1,
    the closed ticket stays closed, and nobody is mailed about it."""
    Cli(ticket)("issue", "close", "1", "-r", "answered")
    ack, = sent_to(ticket, BOB, "ack")
    raw = OUT_OF_OFFICE % {b"parent": ack["message_id"].encode()}
    queued, count = set(outbox(ticket)), commit_count(ticket)
    outcome = ingest(ticket, raw, BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("note", 1)
    after = issue(ticket)
    assert (after.status, after.resolution) == ("closed", "answered")
    note, = after.comments
    assert (note.visibility, note.via, note.author, note.message_id) == \
        ("internal", "email", BOB_FULL, "ooo-1@customer.example")
    assert note.body.startswith("Automatic mail (Auto-Submitted: auto-replied)")
    assert "out of the office until Monday" in note.body
    assert (ticket / f"issues/1/mail/{note.id}.eml").read_bytes() == raw
    assert commit_count(ticket) == count + 1
    assert who(ticket) == (BOB_FULL, GATEWAY)
    assert set(outbox(ticket)) == queued
    assert ingest(ticket, raw, BOB, [DESK]).action == "duplicate"


# -- automatic mail ----------------------------------------------------------------------------

AUTOMATIC = [
    ("Auto-Submitted: auto-generated\n", None, "Auto-Submitted: auto-generated"),
    ("Auto-Submitted: auto-replied; owner-email=bob@customer.example\n", None, "Auto-Submitted: auto-replied"),
    ("Precedence: bulk\n", None, "Precedence: bulk"),
    ("Precedence: junk\n", None, "Precedence: junk"),
    ("Precedence: list\n", None, "Precedence: list"),
    ("List-Id: <news.customer.example>\n", None, "mailing list mail (list-id"),
    ("List-Unsubscribe: <mailto:leave@customer.example>\n", None, "mailing list mail (list-unsubscribe"),
    ("X-Autoreply: yes\n", None, "x-autoreply: yes"),
    ("X-Autorespond: Out of office\n", None, "x-autorespond"),
    ("Return-Path: <>\n", None, "empty return path"),
    ("", "", "empty return path"),
    ("", "MAILER-DAEMON@mx.customer.example", "sent by a mail system (envelope sender"),
    ("Content-Type: multipart/report; report-type=disposition-notification; boundary=X\n",
     None, "automatic report (disposition-notification)"),
]


@pytest.mark.parametrize("headers, mail_from, reason", AUTOMATIC)
def test_automatic_mail_never_opens_a_ticket_and_is_quarantined_with_the_reason(
        desk, headers, mail_from, reason):
    """No commit, no file, no mail out; the message kept byte for byte with the reason, and
    listed by `gitdesk mail quarantine --json`."""
    body = "Thanks for your message.\n"
    if "multipart/report" in headers:
        body = ("--X\nContent-Type: text/plain\n\nYour message was read.\n--X\n"
                "Content-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; bob\n"
                "Disposition: automatic-action/MDN-sent-automatically; displayed\n--X--\n")
    raw = message(subject="Re: hello", mid="auto@customer.example", headers=headers, body=body)
    count = commit_count(desk)
    outcome = ingest(desk, raw, mail_from, [DESK])
    assert outcome.action == "quarantined", outcome
    assert (commit_count(desk), files(desk), outbox(desk), status(desk)) == (count, [], {}, "")
    held, = quarantine(desk).values()
    assert held["raw"] == raw
    assert reason.lower() in held["reason"].lower()
    assert held["reason"].startswith("automatic mail, no ticket opened")
    assert (held["sender"], held["subject"]) == (BOB_FULL, "Re: hello")
    listed = json.loads(Cli(desk)("gitdesk", "mail", "quarantine", "--json").output)
    assert [h["name"] for h in listed] == list(quarantine(desk))


def test_automatic_mail_to_a_ticket_does_not_reopen_it(ticket):
    """Any automatic mail that is routed to a ticket (by tag or token) is an internal note;
    the closed ticket stays closed and the customer is not mailed."""
    Cli(ticket)("issue", "close", "1")
    address = signer(ticket).reply_address(1, BOB)
    queued = set(outbox(ticket))
    for n, header in enumerate(("Precedence: bulk\n", "X-Autoreply: yes\n", "Auto-Submitted: auto-generated\n")):
        outcome = ingest(ticket, message(to=address, mid=f"a{n}@c", headers=header), BOB, [address])
        assert (outcome.action, outcome.issue) == ("note", 1)
    after = issue(ticket)
    assert after.status == "closed"
    assert [c.visibility for c in after.comments] == ["internal"] * 3
    assert set(outbox(ticket)) == queued


def test_a_person_writing_auto_submitted_no_is_a_person(desk):
    """Auto-Submitted: no, and a mail system's name only in the display name, are people."""
    raw = message(sender="Postmaster Bob <bob@customer.example>", subject="Hi", headers="Auto-Submitted: no\n")
    assert ingest(desk, raw, BOB, [DESK]).action == "new"
    held = ingest(desk, message(sender="MAILER-DAEMON@mx.customer.example", mid="d@c", subject="x"), None, [DESK])
    assert held.action == "quarantined" and "mail system" in held.detail


def test_our_own_loop_header_changes_nothing(ticket):
    """A mail carrying our X-Gitdesk-Loop (our own notification coming back), even with
    Bob's valid reply address: no commit, quarantined with the reason. Another desk's
    loop header alone is not ours."""
    address = signer(ticket).reply_address(1, BOB)
    count, tree = commit_count(ticket), files(ticket)
    raw = message(to=address, mid="loop@c", headers=f"X-Gitdesk-Loop: {DESK}\n")
    outcome = ingest(ticket, raw, BOB, [address])
    assert outcome.action == "quarantined"
    assert (commit_count(ticket), files(ticket)) == (count, tree)
    held, = quarantine(ticket).values()
    assert "our own mail came back" in held["reason"] and held["raw"] == raw
    raw = message(to=address, mid="loop2@c", headers="X-Gitdesk-Loop: support@other.example\n")
    assert ingest(ticket, raw, BOB, [address]).action == "comment"


def test_mail_from_our_own_address_is_quarantined(ticket):
    """Mail From the desk's own address, or one of its +reply forms (forged, or a misrouted
    copy), is never a ticket or a comment, and nobody is mailed about it."""
    queued = set(outbox(ticket))
    plus = signer(ticket).reply_address(1, BOB)
    for n, sender in enumerate((f"Support <{DESK}>", DESK.upper(), plus)):
        raw = message(sender=sender, subject="[#1] hi", mid=f"own{n}@c")
        outcome = ingest(ticket, raw, None, [DESK])
        assert outcome.action == "quarantined", (sender, outcome)
        assert "our own address" in outcome.detail
    assert (issue_ids(ticket), issue(ticket).comments, set(outbox(ticket))) == ([1], [], queued)


# -- bounces -----------------------------------------------------------------------------------

def returned_part(entry: dict, full: bool) -> tuple[bytes, bytes]:
    """The returned message (whole, or its headers) of an outbox entry, for a bounce."""
    original = entry["message"].encode("utf-8").replace(b"\r\n", b"\n")
    if full:
        return b"message/rfc822", original
    return b"text/rfc822-headers", original.split(b"\n\n", 1)[0] + b"\n"


def make_bounce(entry: dict, recipient: str, n: int = 1, full: bool = False) -> bytes:
    kind, returned = returned_part(entry, full)
    return BOUNCE % {b"n": str(n).encode(), b"recipient": recipient.encode(),
                     b"returned_type": kind, b"returned": returned}


@pytest.mark.parametrize("full", [False, True], ids=["headers", "whole-message"])
def test_a_bounce_of_our_reply_is_recorded_against_the_address_and_noted(ticket, full):
    """Staff answer Bob; Bob's server refuses it. The report becomes an internal note on #1
    (committed by the gateway), `gitdesk mail status --json` counts the bounce against Bob,
    nothing is reopened or mailed, and a second delivery of the report changes nothing."""
    cli = Cli(ticket)
    cli("issue", "comment", "1", "-m", "We restarted the server.")
    reply, = sent_to(ticket, BOB, "reply")
    assert reply["envelope_from"] == DESK
    raw = make_bounce(reply, BOB, full=full)
    queued, count = set(outbox(ticket)), commit_count(ticket)
    outcome = ingest(ticket, raw, "", [DESK])
    assert (outcome.action, outcome.issue) == ("bounce", 1), outcome
    assert commit_count(ticket) == count + 1
    assert who(ticket) == (GATEWAY, GATEWAY)
    assert subject_of(ticket) == "#1 delivery failed"
    after = issue(ticket)
    assert after.status == "new"
    note = after.comments[-1]
    assert (note.visibility, note.via, note.message_id) == ("internal", "email", "bounce-1@mx.customer.example")
    assert note.body.startswith("Mail could not be delivered:")
    assert f"- {BOB}: 5.1.1" in note.body and "no such user" in note.body
    assert (ticket / f"issues/1/mail/{note.id}.eml").read_bytes() == raw
    assert set(outbox(ticket)) == queued
    assert quarantine(ticket) == {}

    def bounces() -> dict:
        return json.loads(cli("gitdesk", "mail", "status", "--json").output)["bounces"]

    first = bounces()
    assert list(first) == [BOB]
    assert (first[BOB]["count"], first[BOB]["status"]) == (1, "5.1.1")
    assert "no such user" in first[BOB]["diagnostic"]
    assert BOB in cli("gitdesk", "mail", "status").output

    # the same report delivered again: no commit, no note, and not counted twice
    assert ingest(ticket, raw, "", [DESK]).action == "duplicate"
    assert commit_count(ticket) == count + 1
    assert bounces()[BOB]["count"] == 1
    shutil.rmtree(ticket / ".gitdesk" / "cache")
    assert ingest(ticket, raw, "", [DESK]).action == "duplicate"
    assert bounces()[BOB]["count"] == 1


def test_a_bounce_we_cannot_place_is_quarantined(ticket):
    """A report about mail we never sent, or naming another recipient than the one our
    message was signed for, is kept in the quarantine: no note, no bounce recorded."""
    Cli(ticket)("issue", "comment", "1", "-m", "We restarted the server.")
    reply, = sent_to(ticket, BOB, "reply")
    count = commit_count(ticket)
    wrong_recipient = make_bounce(reply, CAROL, n=2)
    foreign = dict(reply, message=reply["message"].replace(reply["message_id"], "someone@else.example"))
    never_sent = make_bounce(foreign, BOB, n=3)
    from gitdesk.mail.inbound import parse_message

    for raw in (wrong_recipient, never_sent):
        assert parse_message(raw).failures  # a report the gateway can read, just not place
        outcome = ingest(ticket, raw, "", [DESK])
        assert outcome.action == "quarantined", outcome
        assert "delivery report for mail we cannot place" in outcome.detail
    assert commit_count(ticket) == count
    assert len(quarantine(ticket)) == 2
    assert json.loads(Cli(ticket)("gitdesk", "mail", "status", "--json").output)["bounces"] == {}


# -- the MTA pipe --------------------------------------------------------------------------------

def pipe(root: Path, raw: bytes, *args: str, env: dict | None = None):
    return run_bin("gitdesk", "-C", str(root), "mail", "ingest", *args, cwd=root,
                   input=raw.decode("utf-8"), env=env)


def test_pipe_exits_0_when_stored_or_quarantined(desk):
    """`gitdesk mail ingest -` as Postfix runs it: 0 for a stored message, 0 for a
    quarantined one; $SENDER and $ORIGINAL_RECIPIENT are the envelope."""
    result = pipe(desk, FIRST, "-", env={"SENDER": BOB})
    assert result.returncode == 0, result.stderr
    assert "#1 new" in result.stdout
    assert issue(desk).customer == BOB
    address = signer(desk).reply_address(1, BOB)
    result = pipe(desk, message(to=DESK), env={"SENDER": BOB, "ORIGINAL_RECIPIENT": address})
    assert result.returncode == 0, result.stderr
    assert "#1 comment" in result.stdout and "reply address" in result.stdout
    # an empty envelope sender ($SENDER is empty for a bounce) is a mail system
    result = pipe(desk, message(mid="null@c", subject="hi"), "-", "--json", env={"SENDER": ""})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "quarantined"
    result = pipe(desk, b"not a mail at all\n", "-")
    assert result.returncode == 0, result.stderr
    assert len(quarantine(desk)) == 2
    assert issue_ids(desk) == [1] and status(desk) == ""


def test_pipe_exits_75_when_the_tracker_cannot_be_opened_or_is_busy(desk, tmp_path):
    """75 (EX_TEMPFAIL) so the MTA keeps the mail: -C at a folder that is no tracker, a
    broken gitdesk.yml, and a tracker whose lock another command holds. Nothing is stored."""
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    result = run_bin("gitdesk", "-C", str(nowhere), "mail", "ingest", "-", cwd=nowhere,
                     input=FIRST.decode())
    assert result.returncode == 75, (result.stdout, result.stderr)
    assert "Error:" in result.stderr

    (desk / ".gitdesk").mkdir(exist_ok=True)
    lock = os.open(desk / ".gitdesk" / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = pipe(desk, FIRST, "-", env={"GITDESK_LOCK_TIMEOUT": "0.3", "SENDER": BOB})
    finally:
        os.close(lock)
    assert result.returncode == 75, (result.stdout, result.stderr)
    assert "busy" in result.stderr
    assert (issue_ids(desk), quarantine(desk)) == ([], {})

    (desk / "gitdesk.yml").write_text("name: [unclosed\n", encoding="utf-8")
    result = pipe(desk, FIRST, "-")
    assert result.returncode == 75, (result.stdout, result.stderr)
    git(desk, "checkout", "--", "gitdesk.yml")
    result = pipe(desk, FIRST, "-", env={"SENDER": BOB})
    assert result.returncode == 0 and issue_ids(desk) == [1]


# -- two desks do not ping-pong ----------------------------------------------------------------

def make_desk(root: Path, address: str, name: str) -> Path:
    from gitdesk.scaffold import init

    init(root, name=name)
    configure(root, replace=(("support@desk.example.com", address),),
              staff=((f"{name} Staff", f"staff@{address.split('@')[1]}"),))
    return root


def owner(desks: dict[str, Path], recipient: str) -> Path | None:
    """The desk a recipient address (plain or +token) belongs to."""
    local, _, domain = recipient.lower().partition("@")
    return desks.get(f"{local.split('+')[0]}@{domain}")


def deliver_once(desks: dict[str, Path], done: set[str]) -> int:
    """Deliver every queued mail addressed to another desk into it; returns how many."""
    waiting = {f"{root}/{name}": entry for root in desks.values()
               for name, entry in outbox(root).items() if f"{root}/{name}" not in done}
    moved = 0
    for key, entry in waiting.items():  # what was queued before this round, in one go
        done.add(key)
        for recipient in entry["to"]:
            target = owner(desks, recipient)
            if target is not None:
                ingest(target, entry["message"].encode("utf-8"), entry["envelope_from"], [recipient])
                moved += 1
    return moved


def exchange(desks: dict[str, Path], done: set[str], rounds: int = 8) -> int:
    """Deliver back and forth until no mail is left; returns how many rounds carried mail."""
    for n in range(rounds):
        if not deliver_once(desks, done):
            return n
    raise AssertionError(f"mail still going back and forth after {rounds} rounds")


def test_two_gitdesk_desks_do_not_answer_each_other_forever(tmp_path):
    """Desk B's address writes to desk A (a forged or forwarded mail). A acknowledges to B;
    B's gateway sees automatic mail and does not answer; then A's staff reply to the ticket
    and B answers once; the mail dies out each time, with a bounded number of tickets."""
    a = make_desk(tmp_path / "a", "support@a.example", "Desk A")
    b = make_desk(tmp_path / "b", "support@b.example", "Desk B")
    desks = {"support@a.example": a, "support@b.example": b}
    done: set[str] = set()
    start = message(sender="Desk B <support@b.example>", to="support@a.example", subject="Hello",
                    mid="start@b.example")
    assert ingest(a, start, "support@b.example", ["support@a.example"]).action == "new"
    assert exchange(desks, done) == 1  # A's acknowledgement to B, then quiet
    assert (issue_ids(a), issue_ids(b)) == ([1], [])
    held = quarantine(b)
    assert len(held) == 1 and "Auto-Submitted" in next(iter(held.values()))["reason"]

    # a person answers on A: B opens a ticket for it and acknowledges (automatic mail),
    # which A files as an internal note on its ticket without answering
    Cli(a)("issue", "comment", "1", "-m", "Who is this?")
    assert exchange(desks, done) == 2  # A's reply to B, B's acknowledgement to A, then quiet
    assert (issue_ids(a), issue_ids(b)) == ([1], [1])
    assert [c.visibility for c in issue(a).comments] == ["public", "internal"]
    assert issue(a).comments[1].body.startswith("Automatic mail (Auto-Submitted: auto-replied)")
    assert issue(b).customer == "support@a.example"
    commits = commit_count(a), commit_count(b)
    assert exchange(desks, done) == 0  # nothing left in flight
    assert (commit_count(a), commit_count(b)) == commits


def test_a_relay_that_strips_auto_submitted_still_ends_the_exchange(tmp_path):
    """The worst case: a relay drops Auto-Submitted and X-Gitdesk-Loop from everything and
    puts its own address in the empty envelope sender of acknowledgements. Then B opens a
    ticket for A's acknowledgement and acknowledges it; A files that on its own ticket (its
    In-Reply-To is A's signed id) and answers nobody: one ticket each, then quiet."""
    a = make_desk(tmp_path / "a", "support@a.example", "Desk A")
    b = make_desk(tmp_path / "b", "support@b.example", "Desk B")
    for root in (a, b):
        (root / ".gitdesk" / "outbox" / "queue").mkdir(parents=True, exist_ok=True)
    desks = {"support@a.example": a, "support@b.example": b}

    def strip_all() -> None:
        for root in (a, b):
            for path in (root / ".gitdesk" / "outbox" / "queue").glob("*.json"):
                entry = json.loads(path.read_text(encoding="utf-8"))
                lines = entry["message"].split("\r\n")
                entry["message"] = "\r\n".join(line for line in lines if not line.lower().startswith(
                    ("auto-submitted:", "x-gitdesk-loop:")))
                entry["envelope_from"] = entry["envelope_from"] or "srs@relay.example"
                path.write_text(json.dumps(entry), encoding="utf-8")

    done: set[str] = set()
    start = message(sender="support@b.example", to="support@a.example", subject="Hello", mid="s@b.example")
    ingest(a, start, "support@b.example", ["support@a.example"])
    for _ in range(6):
        strip_all()
        if deliver_once(desks, done) == 0:
            break
    else:
        raise AssertionError("the desks kept mailing each other")
    assert (issue_ids(a), issue_ids(b)) == ([1], [1])
    comment, = issue(a).comments  # B's acknowledgement, filed on A's ticket
    assert comment.author.endswith("<support@b.example>")
    assert git(a, "log", "-1", "--format=%b").strip() == "Routed by message id."
    assert issue(b).comments == []


# -- the same over real SMTP ---------------------------------------------------------------

class Sink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it is given."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_loop_over_smtp_with_mail_send_and_mail_ingest(tmp_path):
    """A's acknowledgement leaves through `gitdesk mail send` to a real SMTP server and is
    fed to B with `gitdesk mail ingest --sender --recipient`; B's answers go back the same
    way. The traffic stops after a round or two."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        a = make_desk(tmp_path / "a", "support@a.example", "Desk A")
        b = make_desk(tmp_path / "b", "support@b.example", "Desk B")
        for root in (a, b):
            configure(root, replace=(("smtp_port: 25", f"smtp_port: {port}"),))
        clis = {"support@a.example": Cli(a), "support@b.example": Cli(b)}
        start = tmp_path / "start.eml"
        start.write_bytes(message(sender="support@b.example", to="support@a.example", mid="s@b"))
        clis["support@a.example"]("gitdesk", "mail", "ingest", str(start), "--sender", "support@b.example")
        rounds = 0
        while True:
            for cli in clis.values():
                out = cli("gitdesk", "mail", "send").output
                assert "0 failed" in out, out
            batch, sink.received[:] = list(sink.received), []
            delivered = 0
            for mail_from, rcpts, data in batch:
                for rcpt in rcpts:
                    target = owner(clis, rcpt)  # type: ignore[arg-type]
                    if target is None:
                        continue  # staff mail stays outside
                    spool = tmp_path / f"in-{rounds}-{delivered}.eml"
                    spool.write_bytes(data)
                    target("gitdesk", "mail", "ingest", str(spool), "--sender", mail_from,
                           "--recipient", rcpt)
                    delivered += 1
            if not delivered:
                break
            rounds += 1
            assert rounds < 4, "the desks kept mailing each other"
    finally:
        controller.stop()
    assert rounds == 1
    assert (issue_ids(a), issue_ids(b)) == ([1], [])
    assert len(quarantine(b)) == 1


def test_the_signing_key_is_made_once_when_many_ask_at_once(tmp_path):
    """Threads that all need the key first get one and the same non-empty key."""
    import threading

    from gitdesk.mail.signing import load_secret

    for n in range(30):
        folder = tmp_path / str(n)
        folder.mkdir()
        keys: list[bytes] = []
        barrier = threading.Barrier(4)

        def ask(folder=folder, keys=keys, barrier=barrier):
            barrier.wait()
            keys.append(load_secret(folder))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(keys) == 4 and len(set(keys)) == 1 and len(keys[0]) == 64
        assert sorted(p.name for p in folder.iterdir()) == ["mail-secret"]
        assert (folder / "mail-secret").stat().st_mode & 0o777 == 0o600


# -- the security review: who a message may speak for ------------------------------------------

def test_forged_staff_mail_by_subject_tag_is_an_internal_note_never_mailed_out(ticket):
    """Anyone can write `From: alice@...` (staff addresses are easy to guess). By a subject
    tag or a thread alone it proves nothing: an internal note saying why, mailed to no
    customer and not in the customer's export. Through Alice's own signed Message-ID or
    reply address it is her public reply, mailed to Bob."""
    queued = set(outbox(ticket))
    forged = message(sender=f"Alice Admin <{ALICE}>", subject="[#1] x", mid="forged-staff@evil.example",
                     body="Please send your password to evil\n")
    outcome = ingest(ticket, forged, MALLORY, [DESK])
    assert (outcome.action, outcome.issue) == ("comment", 1), outcome
    thread = message(sender=ALICE, subject="Re: Site is down", mid="forged-thread@evil.example",
                     date="Wed, 06 Mar 2024 09:00:00 +0000", headers="In-Reply-To: <first@customer.example>\n", body="Send it to me.\n")
    assert ingest(ticket, thread, MALLORY, [DESK]).issue == 1
    notes = issue(ticket).comments
    assert [c.visibility for c in notes] == ["internal", "internal"]
    assert "Please send your password to evil" in notes[0].body
    assert notes[0].body.startswith("(Kept as an internal note: mail From the staff address")
    assert "signed reply address (routed by subject tag)" in notes[0].body
    assert "(routed by thread)" in notes[1].body
    assert "Kept as an internal note" in git(ticket, "log", "-1", "--format=%b")
    assert set(outbox(ticket)) == queued  # neither Bob nor anyone else is mailed
    export = Cli(ticket)("gitdesk", "export", "--customer", BOB, "--json").output
    assert "password" not in export and "Send it to me" not in export

    notice, = sent_to(ticket, ALICE, "new")  # what staff were sent: signed for Alice
    assert signer(ticket).issue_of_message_id(notice["message_id"], ALICE) == 1
    real = message(sender=f"Alice Admin <{ALICE}>", subject="Re: [#1] Site is down", mid="alice-1@example.com",
                   date="Wed, 06 Mar 2024 10:00:00 +0000", headers=f"In-Reply-To: <{notice['message_id']}>\n", body="We restarted it.\n")
    outcome = ingest(ticket, real, ALICE, [DESK])
    assert outcome.issue == 1 and "message id" in outcome.detail
    reply = issue(ticket).comments[-1]
    assert (reply.visibility, reply.author, reply.body) == ("public", f"Alice Admin <{ALICE}>", "We restarted it.")
    assert sent_to(ticket, BOB, "reply")
    # and through her signed reply address
    public = signer(ticket).reply_address(1, ALICE)
    assert ingest(ticket, message(sender=ALICE, to=public, mid="alice-2@example.com",
                                  date="Wed, 06 Mar 2024 11:00:00 +0000"), ALICE,
                  [public]).action == "comment"
    assert issue(ticket).comments[-1].visibility == "public"


AMBIGUOUS_FROM = [
    ("bob@customer.example <eve@evil.example>", "an address in the name"),
    ("bob@customer.example, eve@evil.example", "more than one address"),
    ('"x" <bob@customer.example>@evil.example', "text after the <address>"),
    ('"bob@customer.example" <eve@evil.example>', "is another address than <eve@evil.example>"),
    ("=?utf-8?q?bob=40customer.example?= <eve@evil.example>", "is another address than"),
    ("eve@evil.example (bob@customer.example)", "is another address than"),
    ("Bob <bob@customer.example> <eve@evil.example>", "more than one <address>"),
    ("Bob <bob@customer.example>\nFrom: eve@evil.example", "more than one From header"),
]


@pytest.mark.parametrize("sender, reason", AMBIGUOUS_FROM)
def test_an_ambiguous_from_is_quarantined_with_the_reason(ticket, sender, reason):
    """A From with more than one address, junk around the <address>, or a display name that
    is another address gives no sender: quarantined, never credited to Bob (not even with
    his reply address and tag), and nothing is written or mailed."""
    address = signer(ticket).reply_address(1, BOB)
    count, tree, queued = commit_count(ticket), files(ticket), set(outbox(ticket))
    raw = message(sender=sender, to=address, subject="[#1] Re: Site is down", mid="amb@evil.example")
    outcome = ingest(ticket, raw, None, [address])
    assert outcome.action == "quarantined", outcome
    assert "ambiguous From: " in outcome.detail and reason in outcome.detail
    assert (commit_count(ticket), files(ticket), set(outbox(ticket))) == (count, tree, queued)
    held, = quarantine(ticket).values()
    assert held["raw"] == raw and held["reason"].startswith("ambiguous From: ")


@pytest.mark.parametrize("sender, name", [
    ("Bob Customer <bob@customer.example>", "Bob Customer"),
    ('"Customer, Bob" <bob@customer.example> (work)', "Customer, Bob"),
    ("bob@customer.example (Bob Customer)", "Bob Customer"),
    ('"bob@customer.example" <BOB@Customer.Example>', "bob@customer.example"),
    ("<bob@customer.example>", ""),
])
def test_a_plain_from_is_read_as_its_addr_spec(sender, name):
    """The sender is the addr-spec a DMARC check sees; the name is only shown."""
    from gitdesk.mail.inbound import parse_message

    msg = parse_message(message(sender=sender))
    assert msg.sender is not None and msg.sender_problem == ""
    assert (msg.sender.email.lower(), msg.sender.name) == (BOB, name)


def test_a_removed_cc_and_a_former_customer_can_no_longer_post(ticket):
    """Signatures never expire, so the sender must still take part: Carol's reply address
    after she left the cc list, and Bob's answer to our mail after the ticket moved to Dave,
    open new tickets with a note why; #1 is not reopened and Dave gets none of Bob's text."""
    cli = Cli(ticket)
    cli("issue", "set", "1", f"cc+={CAROL}")
    carols = signer(ticket).reply_address(1, CAROL)
    assert ingest(ticket, message(sender=CAROL, to=carols, mid="c1@c"), CAROL, [carols]).issue == 1
    cli("issue", "set", "1", "cc=")
    outcome = ingest(ticket, message(sender=CAROL, to=carols, mid="c2@c", subject="Still me"),
                     CAROL, [carols])
    assert (outcome.action, outcome.issue) == ("new", 2)
    assert "reply address of #1 issued to this sender, who no longer takes part in #1" in \
        issue(ticket, 2).comments[0].body
    assert len(issue(ticket).comments) == 1

    ack, = sent_to(ticket, BOB, "ack")
    cli("issue", "close", "1")
    cli("issue", "set", "1", "customer=dave@newco.example")
    queued = set(outbox(ticket))
    outcome = ingest(ticket, message(mid="b-old@c", subject="Re: Your request",
                                     headers=f"In-Reply-To: <{ack['message_id']}>\n",
                                     body="My secret plans\n"), BOB, [DESK])
    assert (outcome.action, outcome.issue) == ("new", 3)
    assert issue(ticket).status == "closed" and len(issue(ticket).comments) == 1
    note = issue(ticket, 3).comments[0].body
    assert "answers our mail about #1 sent to this sender, who no longer takes part in #1" in note
    assert not [e for name, e in outbox(ticket).items()
                if name not in queued and "dave@newco.example" in e["to"]]
    # Bob's old reply address too
    bobs = signer(ticket).reply_address(1, BOB)
    assert ingest(ticket, message(to=bobs, mid="b-old2@c", subject="Hi"), BOB, [bobs]).issue == 4


def test_customer_mail_to_a_public_issue_is_an_internal_note_by_default(ticket):
    """mail.public_issue_replies (default internal): Bob's mail to a public issue is kept
    as an internal note saying why (staff are told, nobody outside); Alice's signed reply
    stays public; with `public` the customer's mail is a public comment again."""
    cli = Cli(ticket)
    cli("issue", "set", "1", "visibility=public", f"cc+={CAROL}")
    queued = set(outbox(ticket))
    address = signer(ticket).reply_address(1, BOB)
    assert ingest(ticket, message(to=address, mid="p1@c", body="My server is db1.\n"), BOB,
                  [address]).action == "comment"
    note, = issue(ticket).comments
    assert (note.visibility, note.author) == ("internal", BOB_FULL)
    assert note.body.startswith("(Kept as an internal note: #1 is a public issue and "
                                "mail.public_issue_replies is internal")
    assert note.body.endswith("My server is db1.")
    new = {name: e for name, e in outbox(ticket).items() if name not in queued}
    assert new and all(e["to"] == [ALICE] for e in new.values())  # staff only, not Carol
    alices = signer(ticket).reply_address(1, ALICE)
    ingest(ticket, message(sender=ALICE, to=alices, mid="p2@c", body="Fixed.\n",
                           date="Wed, 06 Mar 2024 09:00:00 +0000"), ALICE, [alices])
    assert issue(ticket).comments[-1].visibility == "public"

    configure(ticket, mail="  public_issue_replies: public\n")
    ingest(ticket, message(to=address, mid="p3@c", body="Thanks!\n",
                           date="Wed, 06 Mar 2024 10:00:00 +0000"), BOB, [address])
    last = issue(ticket).comments[-1]
    assert (last.visibility, last.body) == ("public", "Thanks!")
    configure(ticket, replace=(("public_issue_replies: public", "public_issue_replies: sometimes"),))
    from gitdesk import Tracker

    with pytest.raises(Exception, match="mail.public_issue_replies: 'sometimes' is not one of internal, public"):
        Tracker(ticket).settings.mail  # noqa: B018 - reading the settings is the test


def test_a_comment_is_never_dated_before_its_ticket(ticket):
    """A backdated Date header is kept in the original, but the comment's date is clamped
    to the ticket's creation (and an absurd one is the time of arrival)."""
    created = issue(ticket).created
    address = signer(ticket).reply_address(1, BOB)
    raw = message(to=address, mid="old@c", date="Mon, 01 Jan 2001 00:00:00 +0000")
    ingest(ticket, raw, BOB, [address])
    comment, = issue(ticket).comments
    assert comment.date == created
    assert b"Date: Mon, 01 Jan 2001 00:00:00 +0000" in (ticket / f"issues/1/mail/{comment.id}.eml").read_bytes()
    ingest(ticket, message(to=address, mid="older@c", date="Mon, 01 Jan 1990 00:00:00 +0000"), BOB, [address])
    assert issue(ticket).comments[-1].date > created
