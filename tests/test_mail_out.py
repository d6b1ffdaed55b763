"""kb/mail.md "Mail out" and "Hooking it to your mail": who is mailed about what, the headers
of outgoing mail, the durable outbox (retries, failures, crashes, concurrency), and the three
ways mail comes in (the SMTP listener, a Maildir once, a watched Maildir).

Every test talks to a real aiosmtpd server on 127.0.0.1 (the ``sink``), through real git
trackers and the real CLI; time is fixed with GITDESK_NOW so retry times can be stepped over.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import email.utils
import json
import os
import re
import select
import signal
import smtplib
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from conftest import BIN, commit_count, git, run_bin, status
from gitdesk import Tracker
from gitdesk.mail import outbox
from gitdesk.mail.server import Listener
from gitdesk.mail.signing import NOTE, Signer, load_secret
from gitdesk.mail.watch import watch

T0 = dt.datetime(2026, 3, 2, 10, 0, 0, tzinfo=dt.timezone.utc)
DESK = "support@desk.example.com"
FROM = "Test Desk <support@desk.example.com>"
ALICE, BOB = "alice@example.com", "bob@example.com"            # staff; GITDESK_USER is Alice
CAROL, DAVE, EVE = "carol@customer.example", "dave@customer.example", "eve@other.example"
STAFF = "staff:\n  - {name: Alice Admin, email: alice@example.com, role: admin}\n" \
        "  - {name: Bob Builder, email: bob@example.com, role: staff}\n"
NOTHING_SENT = "0 sent, 0 deferred, 0 failed, 0 waiting for their retry time"


# -- the SMTP sink --------------------------------------------------------------------------

class _AnyPortController(Controller):
    """aiosmtpd's Controller, on a port the kernel picks (port=0)."""

    def _trigger_server(self):
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def msg(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def __getitem__(self, name: str) -> str | None:
        value = self.msg[name]
        return None if value is None else str(value).strip()  # folding may lead with a space

    @property
    def body(self) -> str:
        return self.msg.get_content().replace("\r\n", "\n")


@dataclass
class _Refusal:
    stage: str          # rcpt or data
    reply: str          # '451 4.7.1 try later'
    left: float         # how many more times
    rcpt: str | None    # only for this recipient


class Sink:
    """An SMTP server that records each accepted message (envelope and bytes) and can be
    told to refuse RCPT or DATA with a code for a number of times, to be slow, or to hold
    its answer to DATA (a client killed in mid-send)."""

    def __init__(self):
        self.received: list[Delivered] = []
        self.refusals: list[_Refusal] = []
        self.delay = 0.0
        self.hold = threading.Event()
        self.data_seen = threading.Event()
        self.controller: Controller | None = None
        self.port = 0

    def start(self, port: int = 0, **kwargs) -> Sink:
        self.controller = _AnyPortController(self, hostname="127.0.0.1", port=port, **kwargs)
        self.controller.start()
        self.port = self.controller.port
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def refuse(self, reply: str, times: float = 1, stage: str = "rcpt", rcpt: str | None = None) -> None:
        self.refusals.append(_Refusal(stage, reply, times, rcpt))

    def _refusal(self, stage: str, rcpt: str | None = None) -> str | None:
        for rule in self.refusals:
            if rule.stage == stage and rule.left > 0 and (rule.rcpt is None or rule.rcpt == rcpt):
                rule.left -= 1
                return rule.reply
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        refused = self._refusal("rcpt", address)
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        refused = self._refusal("data", envelope.rcpt_tos[0] if envelope.rcpt_tos else None)
        if refused:
            return refused
        self.received.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.original_content))
        self.data_seen.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        while self.hold.is_set():
            await asyncio.sleep(0.02)
        return "250 2.0.0 OK"

    # what arrived
    def to(self, address: str) -> list[Delivered]:
        return [d for d in self.received if d.rcpt_tos == [address]]

    def one(self, address: str) -> Delivered:
        found = self.to(address)
        assert len(found) == 1, [(d.rcpt_tos, d["Subject"]) for d in self.received]
        return found[0]

    def recipients(self) -> list[str]:
        return sorted(r for d in self.received for r in d.rcpt_tos)

    def take(self) -> list[Delivered]:
        got, self.received = self.received, []
        return got


@pytest.fixture
def sink():
    server = Sink().start()
    yield server
    server.hold.clear()
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the tracker ----------------------------------------------------------------------------

def owner_commit(root: Path, message: str) -> None:
    git(root, "-c", "user.name=Owner", "-c", "user.email=owner@example.com",
        "commit", "-q", "-a", "-m", message)


def configure(root: Path, port: int, staff: bool = True, **mail) -> None:
    """Point the tracker at ``port``, add staff and mail settings, and commit gitdesk.yml."""
    path = root / "gitdesk.yml"
    text = re.sub(r"smtp_port: \d+", f"smtp_port: {port}", path.read_text(encoding="utf-8"))
    extra = "".join(f"  {key}: {value}\n" for key, value in mail.items())
    text = text.replace("mail:\n", "mail:\n" + extra, 1)
    if staff:
        text = text.replace("staff: []\n", STAFF, 1)
    path.write_text(text, encoding="utf-8")
    owner_commit(root, "mail settings")


def at(monkeypatch, seconds: float = 0) -> str:
    """Fix the clock at T0 + seconds (for gitdesk, in this process and its children)."""
    value = (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setenv("GITDESK_NOW", value)
    return value


@pytest.fixture
def desk(tracker_dir, sink, monkeypatch) -> Path:
    configure(tracker_dir, sink.port)
    at(monkeypatch)
    return tracker_dir


def signer(root: Path) -> Signer:
    return Signer(load_secret(Tracker(root).local_dir), DESK)


def send(cli) -> str:
    return cli("gitdesk", "mail", "send").stdout.strip()


def queue(root: Path, folder: str = "queue") -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((root / ".gitdesk" / "outbox" / folder).glob("*.json"))]


def queued_files(root: Path, folder: str = "queue") -> list[Path]:
    return sorted((root / ".gitdesk" / "outbox" / folder).glob("*.json"))


def ticket(cli, *args: str, customer: str = CAROL, title: str = "Site is down") -> None:
    cli("issue", "new", title, "--customer", customer, *args, "-m", "The site says 502.")


def inbound(sender: str = f"Carol Customer <{CAROL}>", subject: str = "Site is down",
            body: str = "Our site has been down since 9:00.", mid: str = "<m1@customer.example>",
            to: str = DESK, headers: tuple[str, ...] = (),
            date: str = "Mon, 02 Mar 2026 09:00:00 +0000") -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}",
             f"Message-ID: {mid}", *headers, "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines).encode("utf-8")


def ingest(cli, tmp_path: Path, raw: bytes) -> dict:
    path = tmp_path / f"in-{time.monotonic_ns()}.eml"
    path.write_bytes(raw)
    return json.loads(cli("gitdesk", "mail", "ingest", str(path), "--json").stdout)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# == who is mailed about what ================================================================

def test_public_staff_reply_mails_the_customer_and_the_cc_list(desk, cli, sink):
    """`issue comment N -m` by staff: one mail to the customer and one to each cc, with the
    reply's text, from the desk's address; the acting staff member gets none."""
    ticket(cli, "--cc", DAVE)
    assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [CAROL, DAVE]  # 'opened ticket #1 for you'
    sink.take()

    cli("issue", "comment", "1", "-m", "We restarted the web server.")
    assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [CAROL, DAVE]
    for address in (CAROL, DAVE):
        got = sink.one(address)
        assert got.mail_from == DESK
        assert got["To"] == address
        assert got["Subject"] == "[#1] Site is down"
        assert "Alice Admin wrote:\n\nWe restarted the web server.\n" in got.body
        assert got["Auto-Submitted"] is None  # a person wrote it
    assert queue(desk) == []
    assert len(queue(desk, "sent")) == 4


def test_close_with_a_message_is_one_mail_per_person(desk, cli, sink):
    """`issue close -m`: the reply and the status change reach each person in one mail."""
    ticket(cli, "--cc", DAVE)
    send(cli)
    sink.take()
    cli("issue", "close", "1", "-m", "Fixed: the disk was full.")
    assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    for address in (CAROL, DAVE):
        body = sink.one(address).body
        assert "Fixed: the disk was full." in body
        assert "\nStatus: new -> closed\n" in body


def test_internal_note_never_mails_a_customer(desk, cli, sink, tmp_path):
    """`issue comment --internal`, and a staff member's mail to the note address: nothing
    is queued for anyone; the next public reply does not carry the note's text either."""
    ticket(cli, "--cc", DAVE)
    send(cli)
    sink.take()

    cli("issue", "comment", "1", "--internal", "-m", "SECRET: customer owes us money")
    assert queued_files(desk) == [] and queued_files(desk, "pending") == []
    assert send(cli) == NOTHING_SENT

    note_to = signer(desk).reply_address(1, BOB, NOTE)
    outcome = ingest(cli, tmp_path, inbound(f"Bob Builder <{BOB}>", "Re: [#1] Site is down",
                                            "SECRET2: reseller account", "<b1@example.com>",
                                            to=note_to))
    assert (outcome["action"], outcome["issue"]) == ("comment", 1)
    assert "internal note" in outcome["detail"]
    assert queued_files(desk) == []
    assert send(cli) == NOTHING_SENT
    assert sink.received == []

    cli("issue", "comment", "1", "-m", "All good now.")
    send(cli)
    assert sink.recipients() == [CAROL, DAVE]
    for got in sink.received:
        assert b"SECRET" not in got.data


def test_status_change_mails_the_customer_and_other_changes_do_not(desk, cli, sink):
    """A status change by staff mails the customer and cc (an automatic notice); a priority
    or label change mails nobody."""
    ticket(cli, "--cc", DAVE)
    send(cli)
    sink.take()

    cli("issue", "set", "1", "priority=high", "labels+=dns")
    assert queued_files(desk) == []

    cli("issue", "set", "1", "status=waiting")
    assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    for address in (CAROL, DAVE):
        got = sink.one(address)
        assert got["Subject"] == "[#1] Site is down"
        assert got["Auto-Submitted"] == "auto-generated"
        assert "Alice Admin changed ticket #1:\n\nStatus: new -> waiting\n" in got.body


def test_new_ticket_by_mail_tells_staff_and_acknowledges_the_sender(desk, cli, sink, tmp_path):
    """A customer's first mail: every staff member gets 'New ticket #1' (with a reply hint),
    and the customer gets one acknowledgement with the number."""
    outcome = ingest(cli, tmp_path, inbound())
    assert (outcome["action"], outcome["issue"]) == ("new", 1)
    assert send(cli) == "3 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [ALICE, BOB, CAROL]
    for address in (ALICE, BOB):
        got = sink.one(address)
        assert got["Subject"] == "[#1] Site is down"
        assert got["Auto-Submitted"] == "auto-generated"
        assert f"New ticket #1 from Carol Customer <{CAROL}>:\n\nOur site has been down" in got.body
        assert signer(desk).reply_address(1, address, NOTE) in got.body
    ack = sink.one(CAROL)
    assert ack["Subject"] == "[#1] Your request was received"
    assert "Your request is ticket #1" in ack.body


def test_a_ticket_opened_in_the_customer_panel_tells_staff(desk, sink):
    """A customer opening a ticket through the control panel (via web) is a new ticket from
    outside, as by mail: staff are told; the customer, who did it, is not mailed."""
    Tracker(desk).customer(CAROL, "Carol Customer").open("Invoice is wrong", "It says 100, not 10.")
    outbox.deliver(Tracker(desk))
    assert sink.recipients() == [ALICE, BOB]
    assert f"New ticket #1 from Carol Customer <{CAROL}>:\n\nIt says 100, not 10." in sink.one(BOB).body


def test_a_ticket_opened_and_assigned_at_once_tells_the_assignee(desk, cli, sink):
    """`issue new --assignee bob`: the customer hears of the ticket, Bob of his assignment."""
    ticket(cli, "--assignee", BOB)
    send(cli)
    assert sink.recipients() == [BOB, CAROL]
    assert sink.one(BOB)["Subject"] == "[#1] Site is down"
    assert "Alice Admin assigned ticket #1 to you." in sink.one(BOB).body


@pytest.mark.parametrize(("rule", "told"), [("all", [ALICE, BOB]), ("assignee", [BOB]), ("none", [])])
def test_customer_reply_tells_staff_per_notify_staff(tracker_dir, sink, cli, monkeypatch, tmp_path,
                                                    rule, told):
    """mail.notify_staff: a customer's reply to an assigned ticket goes to all staff, only
    the assignee, or nobody; never back to the customer, always to the cc list."""
    configure(tracker_dir, sink.port, notify_staff=rule)
    at(monkeypatch)
    ingest(cli, tmp_path, inbound())
    cli("issue", "set", "1", f"cc+={DAVE}")
    cli("issue", "assign", "1", BOB)
    send(cli)
    sink.take()

    at(monkeypatch, 600)
    outcome = ingest(cli, tmp_path, inbound(subject="Re: [#1] Site is down", mid="<m2@customer.example>",
                                            body="Still down, and now mail too.",
                                            date="Mon, 02 Mar 2026 10:05:00 +0000"))
    assert (outcome["action"], outcome["issue"]) == ("comment", 1)
    send(cli)
    assert sink.recipients() == sorted([*told, DAVE])
    for address in told:
        got = sink.one(address)
        assert f"Carol Customer <{CAROL}> wrote on #1:\n\nStill down, and now mail too." in got.body
        assert got["Auto-Submitted"] == "auto-generated"
    assert "Still down, and now mail too." in sink.one(DAVE).body


def test_nobody_is_mailed_about_their_own_action(desk, cli, sink, tmp_path, monkeypatch):
    """Assigning oneself, staff opening a ticket for themselves, a customer's own reply and a
    staff member's reply by mail: the actor is never among the recipients."""
    ticket(cli, customer=ALICE, title="Alice's own ticket")      # by Alice, for Alice
    assert queued_files(desk) == []

    ticket(cli, "--cc", DAVE)                                     # #2, Carol's
    cli("issue", "assign", "2", "me")                             # Alice takes it
    monkeypatch.setenv("GITDESK_USER", f"Bob Builder <{BOB}>")
    cli("issue", "assign", "2", "me")                             # Bob takes it over
    monkeypatch.setenv("GITDESK_USER", f"Alice Admin <{ALICE}>")
    cli("issue", "assign", "2", BOB)                              # no change: no mail
    send(cli)
    assert sink.recipients() == [CAROL, DAVE]                     # 'opened ticket #2 for you'
    sink.take()

    cli("issue", "assign", "2", ALICE.split("@")[0])              # Alice gives it to herself
    assert queued_files(desk) == []
    monkeypatch.setenv("GITDESK_USER", f"Bob Builder <{BOB}>")
    cli("issue", "assign", "2", BOB)                              # Bob gives it to Bob
    assert queued_files(desk) == []
    monkeypatch.setenv("GITDESK_USER", f"Alice Admin <{ALICE}>")
    cli("issue", "assign", "2", ALICE)                            # Alice takes it from Bob
    cli("issue", "assign", "2", BOB)                              # and hands it back
    send(cli)
    assert sink.recipients() == [BOB]
    assert "Alice Admin assigned ticket #2 to you." in sink.one(BOB).body
    sink.take()

    ingest(cli, tmp_path, inbound(subject="Re: [#2] Site is down", mid="<m2@customer.example>",
                                  body="Thanks!"))
    send(cli)
    assert CAROL not in sink.recipients()
    assert sink.recipients() == [ALICE, BOB, DAVE]
    sink.take()

    reply_to = signer(desk).reply_address(2, BOB)
    outcome = ingest(cli, tmp_path, inbound(f"Bob Builder <{BOB}>", "Re: [#2] Site is down",
                                            "Bob here: fixed.", "<b2@example.com>", to=reply_to))
    assert (outcome["action"], outcome["issue"]) == ("comment", 2)
    send(cli)
    assert sink.recipients() == [CAROL, DAVE]
    assert "Bob Builder wrote:\n\nBob here: fixed." in sink.one(CAROL).body


def test_first_mail_of_a_sender_is_acknowledged_once_a_day_without_their_text(
        desk, cli, sink, tmp_path, monkeypatch):
    """The acknowledgement: at most one per sender per day, from the null sender (so it
    cannot bounce back), marked auto-replied, naming the ticket, echoing none of the text."""
    spam = "BUY CHEAP PILLS at pills.example"
    ingest(cli, tmp_path, inbound(subject=spam, body=spam))
    send(cli)
    ack = sink.one(CAROL)
    assert ack.mail_from == "<>"
    assert ack["Subject"] == "[#1] Your request was received"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert "Your request is ticket #1; we will answer as soon as we can." in ack.body
    assert b"PILLS" not in ack.data and b"pills" not in ack.data
    sink.take()

    at(monkeypatch, 3600)                   # an hour later: a second new ticket, no ack
    assert ingest(cli, tmp_path, inbound(subject="Another thing", mid="<m2@customer.example>"))["issue"] == 2
    at(monkeypatch, 3700)                   # another sender is acknowledged
    assert ingest(cli, tmp_path, inbound(f"Eve <{EVE}>", "Hello", mid="<e1@other.example>"))["issue"] == 3
    send(cli)
    assert sink.recipients() == [ALICE, ALICE, BOB, BOB, EVE]
    assert sink.one(EVE)["Subject"] == "[#3] Your request was received"
    sink.take()

    at(monkeypatch, 23 * 3600)              # still within the day of the first ack
    ingest(cli, tmp_path, inbound(subject="Third", mid="<m3@customer.example>"))
    at(monkeypatch, 24 * 3600 + 60)         # a day after the first ack: acknowledged again
    ingest(cli, tmp_path, inbound(subject="Fourth", mid="<m4@customer.example>"))
    send(cli)
    acks = sink.to(CAROL)
    assert [d["Subject"] for d in acks] == ["[#5] Your request was received"]


# == headers ==================================================================================

def test_headers_thread_sign_and_mark_outgoing_mail(desk, cli, sink, tmp_path, monkeypatch):
    """Message-ID, In-Reply-To and References thread under the customer's own mail; [#N] in
    the subject; Reply-To is the recipient's own signed address; From is the configured
    sender; Auto-Submitted only on automatic mail; X-Gitdesk-Loop everywhere."""
    ingest(cli, tmp_path, inbound())
    cli("issue", "set", "1", f"cc+={DAVE}")
    send(cli)
    sink.take()
    sign = signer(desk)

    at(monkeypatch, 60)
    cli("issue", "comment", "1", "-m", "Looking into it.")
    send(cli)
    sent = {e["to"][0]: e for e in queue(desk, "sent") if e["kind"] == "reply"}
    for address in (CAROL, DAVE):
        got = sink.one(address)
        mid = got["Message-ID"]
        assert mid == f"<{sent[address]['message_id']}>"
        assert sign.issue_of_message_id(mid.strip("<>"), address) == 1
        assert sign.issue_of_message_id(mid.strip("<>"), EVE) is None
        assert got["In-Reply-To"] == "<m1@customer.example>"
        assert got["References"] == "<gd.1@desk.example.com> <m1@customer.example>"
        assert got["Subject"] == "[#1] Site is down"
        assert got["From"] == FROM
        assert email.utils.parseaddr(got["From"])[1].endswith("@desk.example.com")
        assert got["X-Gitdesk-Loop"] == DESK
        assert got["Auto-Submitted"] is None
        name, reply_to = email.utils.parseaddr(got["Reply-To"])
        token = sign.parse_reply_address(reply_to)
        assert token is not None and token.issue == 1
        assert sign.verify_reply(token, address)
        assert not sign.verify_reply(token, EVE)
    assert sink.one(CAROL)["Reply-To"] != sink.one(DAVE)["Reply-To"]
    assert sink.one(CAROL)["Message-ID"] != sink.one(DAVE)["Message-ID"]
    sink.take()

    at(monkeypatch, 120)                    # the customer answers; the next reply threads under it
    ingest(cli, tmp_path, inbound(subject="Re: [#1] Site is down", mid="<m2@customer.example>",
                                  body="Thanks.", date="Mon, 02 Mar 2026 10:01:00 +0000"))
    send(cli)
    sink.take()
    at(monkeypatch, 180)
    cli("issue", "comment", "1", "-m", "Fixed.")
    send(cli)
    got = sink.one(CAROL)
    assert got["In-Reply-To"] == "<m2@customer.example>"
    assert got["References"] == "<gd.1@desk.example.com> <m1@customer.example> <m2@customer.example>"


def test_message_id_is_the_same_when_a_message_is_sent_again(desk, cli, sink, monkeypatch):
    """The bytes are fixed when the change is made: a delivery after a 451, hours later, has
    the same Message-ID (and Date) as the first try would have had."""
    ticket(cli)
    [entry] = queue(desk)
    sink.refuse("451 4.7.1 Greylisted, try again later")
    assert send(cli) == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time"
    at(monkeypatch, 3 * 3600)
    assert send(cli) == "1 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    got = sink.one(CAROL)
    assert got["Message-ID"] == f"<{entry['message_id']}>"
    assert got.data == entry["message"].encode("utf-8")
    assert email.utils.parsedate_to_datetime(got["Date"]) == T0


def _assert_clean_headers(delivered: list[Delivered], allowed: set[str]) -> None:
    assert delivered
    for got in delivered:
        assert len(got.rcpt_tos) == 1 and "attacker" not in got.rcpt_tos[0]
        msg = got.msg
        names = {name.lower() for name in msg.keys()}
        assert names <= allowed, names - allowed
        assert "bcc" not in names and "cc" not in names
        assert len(msg.get_all("To")) == 1
        for name, value in msg.items():
            assert "\r" not in str(value) and "\n" not in str(value), (name, value)
        raw_head = got.data.split(b"\r\n\r\n", 1)[0]
        for line in raw_head.split(b"\r\n"):   # every physical line is a header or its folding
            assert re.match(rb"^([A-Za-z-]+:( |$)|[ \t])", line), line


OUT_HEADERS = {"from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
               "x-gitdesk-loop", "x-gitdesk-ticket", "auto-submitted", "content-type",
               "content-transfer-encoding", "mime-version"}


def test_no_cr_or_lf_from_any_field_reaches_a_header(tracker_dir, sink, cli, tmp_path, monkeypatch):
    """A subject and a sender name that decode to CR LF + 'Bcc:', a hand-edited title with
    CR LF, a desk name and From with line breaks: every delivered message has exactly the
    usual header set, one line per header, one recipient."""
    path = tracker_dir / "gitdesk.yml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('name: "Test Desk"', 'name: "Test Desk\\r\\nBcc: evil@attacker.example"')
    text = text.replace('from: "Test Desk <support@desk.example.com>"',
                        'from: "Test Desk\\nBcc: evil@attacker.example <support@desk.example.com>"')
    path.write_text(text, encoding="utf-8")
    configure(tracker_dir, sink.port)
    at(monkeypatch)

    subject = "=?utf-8?q?Help=0D=0ABcc=3A_evil=40attacker=2Eexample?="
    name = "=?utf-8?q?Carol=0D=0ABcc=3A_evil=40attacker=2Eexample=0A?="
    outcome = ingest(cli, tmp_path, inbound(f"{name} <{CAROL}>", subject))
    assert outcome["action"] == "new"
    send(cli)
    assert sink.recipients() == [ALICE, BOB, CAROL]
    _assert_clean_headers(sink.take(), OUT_HEADERS)

    issue_md = tracker_dir / "issues" / "1" / "issue.md"
    text = issue_md.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^title: .*$", 'title: "Down\\r\\nBcc: evil@attacker.example\\r\\n\\r\\nbody"', text)
    issue_md.write_text(text, encoding="utf-8")
    owner_commit(tracker_dir, "hand edit: title")
    cli("issue", "set", "1", "status=waiting")
    text = issue_md.read_text(encoding="utf-8").replace(
        "customer:", 'cc: ["dave@customer.example\\nBcc: evil@attacker.example"]\ncustomer:', 1)
    issue_md.write_text(text, encoding="utf-8")
    owner_commit(tracker_dir, "hand edit: cc")
    cli("issue", "comment", "1", "-m", "Hello\r\nBcc: evil@attacker.example")
    send(cli)
    delivered = sink.take()
    assert [d.rcpt_tos for d in delivered] == [[CAROL], [CAROL]]   # the broken cc is nobody
    _assert_clean_headers(delivered, OUT_HEADERS)
    assert delivered[0]["Subject"] == "[#1] Down Bcc: evil@attacker.example body"
    for got in delivered:  # the desk's name is quoted: not a group, not a list of addresses
        [sender] = got.msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == ("Test Desk Bcc: evil@attacker.example", DESK)
        [reply_to] = got.msg["Reply-To"].addresses
        assert reply_to.display_name == "Test Desk Bcc: evil@attacker.example"


def test_a_staff_address_with_a_line_break_cannot_end_the_header(tracker_dir, sink, cli, tmp_path,
                                                                monkeypatch):
    """gitdesk.yml with a staff email ending in a newline (an easy YAML slip): Bob is still
    mailed at his address, and no blank line ends the header early (which would push
    Reply-To, Subject and the rest into the body)."""
    configure(tracker_dir, sink.port, staff=False)
    path = tracker_dir / "gitdesk.yml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "staff: []\n", 'staff:\n  - {name: Bob Builder, email: "bob@example.com\\n"}\n'), encoding="utf-8")
    owner_commit(tracker_dir, "staff")
    at(monkeypatch)
    ingest(cli, tmp_path, inbound())
    assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [BOB, CAROL]
    _assert_clean_headers(sink.received, OUT_HEADERS)
    assert sink.one(BOB)["Subject"] == "[#1] Site is down"
    assert sink.one(BOB)["To"] == BOB


# == the outbox ==================================================================================

def test_mail_is_delivered_in_the_order_of_the_changes(desk, cli, sink):
    """Five changes within one second (the clock is fixed): the customer receives their mail
    in the order they happened."""
    ticket(cli)
    for n in range(1, 5):
        cli("issue", "comment", "1", "-m", f"Update number {n}.")
    assert send(cli) == "5 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    bodies = [d.body for d in sink.to(CAROL)]
    assert "opened ticket #1 for you" in bodies[0]
    assert [re.search(r"Update number (\d)", b).group(1) for b in bodies[1:]] == ["1", "2", "3", "4"]


def test_a_broken_outbox_entry_goes_to_failed_and_the_rest_is_sent(desk, cli, sink):
    """An entry SMTP cannot carry (a recipient with a line break, as older versions could
    spool) or that is not JSON at all: moved to failed/ with the reason; the run goes on."""
    ticket(cli)
    [good] = queued_files(desk)
    entry = json.loads(good.read_text())
    entry["to"] = [f"{DAVE}\nRCPT TO:<evil@attacker.example>"]
    (good.parent / "00000000T000000Z-1-bad.json").write_text(json.dumps(entry))
    (good.parent / "00000000T000000Z-1-torn.json").write_text('{"message_id": "x", "to": [')
    result = cli("gitdesk", "mail", "send")
    assert result.stdout.strip() == "1 sent, 0 deferred, 2 failed, 0 waiting for their retry time"
    assert sink.recipients() == [CAROL]
    assert sorted(p.name for p in queued_files(desk, "failed")) == [
        "00000000T000000Z-1-bad.json", "00000000T000000Z-1-torn.json"]
    bad = json.loads((desk / ".gitdesk/outbox/failed/00000000T000000Z-1-bad.json").read_text())
    assert bad["last_error"].startswith("invalid outbox entry: ValueError: ")
    assert "cannot be an SMTP address" in bad["last_error"]
    assert "unreadable outbox entry" in result.stderr
    assert send(cli) == NOTHING_SENT


def test_smtp_down_loses_nothing_and_retries_later(tracker_dir, cli, monkeypatch):
    """Nothing listening on mail.smtp_port: the run stops at the first refused connection,
    every entry stays queued, the tried one with its next_try; once a server listens and the
    retry time has come, everything is delivered."""
    port = free_port()
    configure(tracker_dir, port)
    at(monkeypatch)
    ticket(cli, "--cc", DAVE)
    first, second = queued_files(tracker_dir)
    result = cli("gitdesk", "mail", "send")
    assert result.stdout.strip() == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time, " \
        "1 not tried (the mail server failed; they wait for the next run)"
    assert "ConnectionRefusedError" in result.stderr
    entries = queue(tracker_dir)
    assert [e["attempts"] for e in entries] == [1, 0]
    assert entries[0]["next_try"] == "2026-03-02T10:01:00Z"
    assert entries[0]["last_try"] == "2026-03-02T10:00:00Z"
    assert entries[0]["last_error"].startswith("ConnectionRefusedError: ")
    assert queued_files(tracker_dir) == [first, second]
    assert queued_files(tracker_dir, "failed") == []

    text = cli("gitdesk", "mail", "status").stdout
    assert text.splitlines()[0] == "outbox: 2 queued, 0 failed, 0 sent (kept 30 days); quarantine: 0 message(s)"
    assert text.splitlines()[1].startswith(f"retrying {first.name} to {entries[0]['to'][0]}: attempt 1, "
                                           "next 2026-03-02T10:01:00Z: ConnectionRefusedError")

    server = Sink().start(port)
    try:
        at(monkeypatch, 30)                 # the tried one waits; the untried one goes
        assert send(cli) == "1 sent, 0 deferred, 0 failed, 1 waiting for their retry time"
        at(monkeypatch, 60)
        assert send(cli) == "1 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
        assert server.recipients() == [CAROL, DAVE]
    finally:
        server.stop()
    assert queue(tracker_dir) == []


def test_temporary_refusal_is_retried_with_backoff_then_delivered(desk, cli, sink, monkeypatch):
    """451 twice: retried after 1 minute, then after 5 more; delivered on the third try with
    the attempts counted; before its time an entry only waits."""
    ticket(cli)
    sink.refuse("451 4.7.1 Try again later", times=2)
    assert send(cli) == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time"
    [entry] = queue(desk)
    assert (entry["attempts"], entry["next_try"]) == (1, "2026-03-02T10:01:00Z")
    assert entry["last_error"] == "451 4.7.1 Try again later"

    at(monkeypatch, 59)
    assert send(cli) == "0 sent, 0 deferred, 0 failed, 1 waiting for their retry time"
    at(monkeypatch, 60)
    assert send(cli) == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time"
    [entry] = queue(desk)
    assert (entry["attempts"], entry["next_try"]) == (2, "2026-03-02T10:06:00Z")
    at(monkeypatch, 359)
    assert send(cli) == "0 sent, 0 deferred, 0 failed, 1 waiting for their retry time"
    assert sink.received == []
    at(monkeypatch, 360)
    assert send(cli) == "1 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [CAROL]
    [done] = queue(desk, "sent")
    assert (done["attempts"], done["sent"]) == (3, "2026-03-02T10:06:00Z")


def test_a_temporary_refusal_does_not_hold_up_other_mail(desk, cli, sink):
    """A 451 for one recipient defers that message only; the rest of the run goes on."""
    ticket(cli, "--cc", DAVE)
    [first, _] = queue(desk)
    sink.refuse("451 4.2.1 Mailbox busy", rcpt=first["to"][0], times=99)
    assert send(cli) == "1 sent, 1 deferred, 0 failed, 0 waiting for their retry time"
    assert sink.recipients() == [address for address in (CAROL, DAVE) if address != first["to"][0]]
    [entry] = queue(desk)
    assert entry["to"] == first["to"] and entry["last_error"] == "451 4.2.1 Mailbox busy"


def test_temporary_failures_give_up_after_retry_hours(desk, cli, sink, monkeypatch):
    """mail.retry_hours (48) of temporary refusals: the entry moves to failed/ with the reason."""
    ticket(cli)
    sink.refuse("451 4.7.1 Try again later", times=99)
    send(cli)
    at(monkeypatch, 47 * 3600)
    assert send(cli) == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time"
    at(monkeypatch, 48 * 3600 + 1)
    assert send(cli) == "0 sent, 0 deferred, 1 failed, 0 waiting for their retry time"
    [failed] = queue(desk, "failed")
    assert failed["last_error"] == "gave up after 3 attempts: 451 4.7.1 Try again later"
    assert queue(desk) == []


def test_permanent_refusal_moves_to_failed_and_shows_in_status(desk, cli, sink):
    """550 for one recipient: that message goes to outbox/failed/ with the server's reason,
    shown by `gitdesk mail status` as text and JSON; the other recipient's mail is sent."""
    ticket(cli, "--cc", DAVE)
    sink.refuse("550 5.1.1 no such user", rcpt=DAVE, times=99)
    result = cli("gitdesk", "mail", "send")
    assert result.stdout.strip() == "1 sent, 0 deferred, 1 failed, 0 waiting for their retry time"
    assert "550 5.1.1 no such user" in result.stderr
    [path] = queued_files(desk, "failed")
    [entry] = queue(desk, "failed")
    assert entry["to"] == [DAVE] and entry["last_error"] == "550 5.1.1 no such user"
    assert queue(desk) == []

    text = cli("gitdesk", "mail", "status").stdout
    assert text.splitlines() == [
        "outbox: 0 queued, 1 failed, 1 sent (kept 30 days); quarantine: 0 message(s)",
        f"failed {path.name} (#1) to {DAVE}: 550 5.1.1 no such user"]
    data = json.loads(cli("gitdesk", "mail", "status", "--json").stdout)
    assert data["counts"] == {"pending": 0, "queue": 0, "sent": 1, "failed": 1}
    assert data["failed"] == [{"name": path.name, "to": [DAVE], "issue": 1,
                               "reason": "550 5.1.1 no such user", "attempts": 1}]
    assert data["retrying"] == []

    assert send(cli) == NOTHING_SENT       # a failed message is never tried again
    assert sink.recipients() == [CAROL]


def test_permanent_refusal_of_the_data(desk, cli, sink):
    """554 after DATA (a content filter) is permanent too, with the server's text."""
    ticket(cli)
    sink.refuse("554 5.7.1 Message rejected as spam", stage="data")
    assert send(cli) == "0 sent, 0 deferred, 1 failed, 0 waiting for their retry time"
    [entry] = queue(desk, "failed")
    assert entry["last_error"] == "554 5.7.1 Message rejected as spam"


def test_a_wrong_smtp_password_defers_mail_instead_of_failing_it(tracker_dir, cli, monkeypatch):
    """535 at login is the desk's own problem, not the message's: everything stays queued
    (and the run stops), so fixing the password delivers it all."""
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.password == b"right", handled=False)

    server = Sink().start(auth_require_tls=False, authenticator=authenticator)
    try:
        configure(tracker_dir, server.port, smtp_user="desk")
        at(monkeypatch)
        monkeypatch.setenv("GITDESK_SMTP_PASSWORD", "wrong")
        ticket(cli, "--cc", DAVE)
        result = cli("gitdesk", "mail", "send")
        assert result.stdout.strip() == "0 sent, 1 deferred, 0 failed, 0 waiting for their retry time, " \
            "1 not tried (the mail server failed; they wait for the next run)"
        assert "535" in result.stderr
        assert len(queue(tracker_dir)) == 2 and queue(tracker_dir, "failed") == []
        monkeypatch.setenv("GITDESK_SMTP_PASSWORD", "right")
        at(monkeypatch, 60)
        assert send(cli) == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
        assert server.recipients() == [CAROL, DAVE]
    finally:
        server.stop()


def test_crash_after_the_server_accepted_costs_one_duplicate_with_the_same_message_id(
        desk, cli, sink, monkeypatch):
    """The entry is marked before SMTP sees it; a crash after the server's 250 but before the
    entry reaches sent/ means it is sent once more on the next run, same Message-ID, and
    never a third time."""
    ticket(cli)
    real_write = outbox._write

    def crash_on_sent(path, entry):
        if path.parent.name == "sent":
            raise KeyboardInterrupt("power cut")
        real_write(path, entry)

    monkeypatch.setattr(outbox, "_write", crash_on_sent)
    with pytest.raises(KeyboardInterrupt):
        outbox.deliver(Tracker(desk))
    monkeypatch.setattr(outbox, "_write", real_write)
    [entry] = queue(desk)
    assert entry["attempts"] == 1 and entry["last_try"] == "2026-03-02T10:00:00Z"

    assert send(cli) == "1 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert send(cli) == NOTHING_SENT
    first, second = sink.to(CAROL)
    assert first["Message-ID"] == second["Message-ID"] == f"<{entry['message_id']}>"
    assert first.data == second.data


def test_killed_in_mid_send_gives_at_most_one_duplicate(desk, cli, sink):
    """`gitdesk mail send` killed (SIGKILL) while the server holds its answer to DATA: the next
    run sends that message again with the same Message-ID; nothing is lost or tripled."""
    ticket(cli, "--cc", DAVE)
    sink.hold.set()
    proc = subprocess.Popen([str(BIN / "gitdesk"), "mail", "send"], cwd=desk,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert sink.data_seen.wait(10)
        entries = queue(desk)
        assert [e["attempts"] for e in entries] == [1, 0]   # marked before SMTP saw it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    sink.hold.clear()
    first_mid = sink.received[0]["Message-ID"]

    done = run_bin("gitdesk", "mail", "send", cwd=desk)
    assert done.stdout.strip() == "2 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert run_bin("gitdesk", "mail", "send", cwd=desk).stdout.strip() == NOTHING_SENT
    mids = [d["Message-ID"] for d in sink.received]
    assert len(mids) == 3 and mids.count(first_mid) == 2 and len(set(mids)) == 2
    assert sorted(e["to"][0] for e in queue(desk, "sent")) == [CAROL, DAVE]


def test_a_failed_change_leaves_no_outbox_entry(desk, cli, monkeypatch):
    """An action that raises (here: git cannot commit) spools nothing: no commit, no mail,
    not even after the next `mail send` recovers the outbox."""
    from gitdesk.core.repo import Repo
    from gitdesk.errors import GitError
    from gitdesk.issues import actions

    ticket(cli, "--cc", DAVE)
    before_commits, before_queue = commit_count(desk), queued_files(desk)

    def broken(self, *args, **kwargs):
        raise GitError("git commit-tree: disk full")

    real_commit = Repo.commit
    monkeypatch.setattr(Repo, "commit", broken)
    for args in (("comment", "1", "-m", "This reply never happened."), ("set", "1", "status=waiting"),
                 ("close", "1", "-m", "Nor this.")):
        result = cli("issue", *args, ok=False)
        assert result.exit_code == 1 and "disk full" in result.output, args
    monkeypatch.setattr(Repo, "commit", real_commit)

    with pytest.raises(RuntimeError):
        with Tracker(desk).change("#1 comment") as change:
            issue = change.tracker.issues.load(1)
            actions.append_comment(change, issue, "Nor did this one.")
            raise RuntimeError("the action failed half way")

    assert commit_count(desk) == before_commits
    assert queued_files(desk) == before_queue
    assert queued_files(desk, "pending") == []
    assert status(desk) == ""
    assert [e["kind"] for e in queue(desk)] == ["new", "new"]


def test_a_crash_between_prepare_and_commit_is_sorted_out_by_recovery(desk, cli, sink):
    """pending/ entries left by a crash: the one whose change git holds is queued and sent,
    the one whose change never committed is dropped."""
    ticket(cli)
    root = desk / ".gitdesk" / "outbox"
    [held] = queued_files(desk)
    os.replace(held, root / "pending" / held.name)          # crashed after its commit
    orphan = json.loads((root / "pending" / held.name).read_text())
    orphan["requires"] = {"issues/1/20260302T100000Z-alice-admin.md": "0" * 40}
    orphan["message_id"] = "orphan@desk.example.com"
    (root / "pending" / "20260302T100000Z-1-00000000.json").write_text(json.dumps(orphan))
    assert send(cli) == "1 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    assert list((root / "pending").iterdir()) == []
    assert [d["To"] for d in sink.received] == [CAROL]


def test_two_senders_at_once_never_send_a_message_twice(desk, cli, sink):
    """`gitdesk mail send` while another one is in mid-send (its server holds the answer):
    the second finds the outbox busy and sends nothing; then two started at the same moment
    against a slow server: every message is delivered exactly once."""
    for n in range(3):
        ticket(cli, "--cc", DAVE, title=f"Ticket {n}")
    assert len(queued_files(desk)) == 6
    sink.hold.set()
    first = subprocess.Popen([str(BIN / "gitdesk"), "mail", "send"], cwd=desk, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sink.data_seen.wait(10)
    second = run_bin("gitdesk", "mail", "send", cwd=desk)
    assert (second.returncode, second.stdout) == (0, "")
    assert second.stderr.strip() == "another 'gitdesk mail send' is running; nothing done"
    assert json.loads(run_bin("gitdesk", "mail", "send", "--json", cwd=desk).stdout)["busy"] is True
    sink.hold.clear()
    out, _ = first.communicate(timeout=30)
    assert out.strip() == "6 sent, 0 deferred, 0 failed, 0 waiting for their retry time"

    for n in range(3, 6):
        ticket(cli, "--cc", DAVE, title=f"Ticket {n}")
    sink.delay = 0.1
    procs = [subprocess.Popen([str(BIN / "gitdesk"), "mail", "send"], cwd=desk, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        proc.communicate(timeout=30)
    run_bin("gitdesk", "mail", "send", cwd=desk)  # whatever a busy run left
    mids = [d["Message-ID"] for d in sink.received]
    assert len(mids) == 12 == len(set(mids)), "a message was sent twice"
    assert queue(desk) == [] and len(queue(desk, "sent")) == 12


# == mail in ==================================================================================

@pytest.fixture
def listener(tracker_dir, sink, monkeypatch):
    configure(tracker_dir, sink.port, aliases="[help@desk.example.com]")
    monkeypatch.setenv("GITDESK_LOCK_TIMEOUT", "0.3")
    signer(tracker_dir)  # the key exists before the worker thread starts (see signing.load_secret)
    server = Listener(Tracker(tracker_dir), port=0, send_every=0.2)
    server.start()
    yield server
    server.stop()


def test_listener_accepts_only_the_desks_addresses(listener, tracker_dir):
    """RCPT TO: the address, its signed +ticket.token forms (public and note) and the
    aliases, in any case, get 250; any other address, even on our domain, gets 550."""
    sign = signer(tracker_dir)
    ours = [DESK, "SUPPORT@Desk.Example.Com", "help@desk.example.com",
            sign.reply_address(1, CAROL), sign.reply_address(42, BOB, NOTE)]
    theirs = ["other@desk.example.com", "support@example.com", "support@desk.example.com.evil",
              CAROL, "support+junk@desk.example.com", "help+1.abcdefghijklmnop@desk.example.com",
              "supportx@desk.example.com"]
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CAROL)
        for address in ours:
            assert smtp.rcpt(address)[0] == 250, address
        for address in theirs:
            code, text = smtp.rcpt(address)
            assert (code, text) == (550, b"5.1.1 No such mailbox here"), address
        smtp.rset()
    assert listener.errors == []


def test_listener_stores_durably_before_250_and_makes_a_ticket(listener, tracker_dir, sink):
    """While the tracker is busy the accepted message waits, complete, in .gitdesk/incoming/
    (with its envelope), and the busy tracker is no error; once free, the message becomes
    ticket #1 and the acknowledgement goes out through the outbox on the listener's own
    schedule."""
    raw = inbound(date=email.utils.format_datetime(dt.datetime.now(dt.timezone.utc)))
    incoming = tracker_dir / ".gitdesk" / "incoming"
    tracker = Tracker(tracker_dir)
    with tracker.locked():
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
            refused = smtp.sendmail(CAROL, [DESK], raw)
        assert refused == {}
        [eml] = list(incoming.glob("*.eml"))
        assert eml.read_bytes() == raw
        assert eml.with_suffix(".env").read_text() == f"{CAROL}\n{DESK}\n"
        time.sleep(0.8)  # the worker finds the tracker busy (lock timeout 0.3 s), quietly
        assert eml.exists() and not (tracker_dir / "issues" / "1").exists()

    wait_for(lambda: (tracker_dir / "issues" / "1" / "issue.md").exists(), what="ticket #1")
    wait_for(lambda: not list(incoming.glob("*.eml")), what="the spool to drain")
    assert "title: Site is down" in (tracker_dir / "issues" / "1" / "issue.md").read_text()
    assert git(tracker_dir, "log", "-1", "--format=%an <%ae>|%s").strip() == \
        f"Carol Customer <{CAROL}>|#1 new: Site is down"
    wait_for(lambda: sink.to(CAROL), what="the acknowledgement")
    assert sink.one(CAROL)["Subject"] == "[#1] Your request was received"
    assert listener.errors == []


def test_listener_answer_means_stored_or_ingested(listener, tracker_dir):
    """Right after 250 the message is either in .gitdesk/incoming/ or already a ticket."""
    raw = inbound(date=email.utils.format_datetime(dt.datetime.now(dt.timezone.utc)))
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
        smtp.sendmail(CAROL, [DESK], raw)
        spooled = [p.read_bytes() for p in (tracker_dir / ".gitdesk" / "incoming").glob("*.eml")]
        assert spooled == [raw] or (tracker_dir / "issues" / "1" / "issue.md").exists()
    wait_for(lambda: (tracker_dir / "issues" / "1" / "issue.md").exists(), what="ticket #1")


def test_mail_serve_command_on_a_port_the_kernel_picks(desk, sink):
    """`gitdesk mail serve --port 0` as its own process: it says where it listens, turns an
    accepted message into a ticket, delivers the outbox itself, and stops on Ctrl-C."""
    proc = subprocess.Popen([str(BIN / "gitdesk"), "mail", "serve", "--port", "0", "--send-every", "0.2"],
                            cwd=desk, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "GITDESK_NOW": ""})
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 15)
        assert ready, "no 'Listening on' line"
        line = proc.stderr.readline()
        match = re.fullmatch(r"Listening on 127\.0\.0\.1:(\d+) for support@desk\.example\.com\n", line)
        assert match and int(match.group(1)) != 0, line
        raw = inbound(date=email.utils.format_datetime(dt.datetime.now(dt.timezone.utc)))
        with smtplib.SMTP("127.0.0.1", int(match.group(1)), timeout=10) as smtp:
            assert smtp.sendmail(CAROL, [DESK], raw) == {}
        wait_for(lambda: (desk / "issues" / "1" / "issue.md").exists(), what="ticket #1")
        wait_for(lambda: sink.to(CAROL), what="the acknowledgement")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert re.fullmatch(rf"\S+\.eml: #1 new: from {CAROL}\n", out), out
    assert err == "Stopping.\n"
    assert sink.one(CAROL)["Subject"] == "[#1] Your request was received"


def _maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def _deliver_to_maildir(folder: Path, name: str, raw: bytes) -> None:
    (folder / "tmp" / name).write_bytes(raw)
    os.replace(folder / "tmp" / name, folder / "new" / name)


def test_maildir_ingest_moves_to_cur_and_skips_on_a_second_run(desk, cli, tmp_path):
    """`gitdesk mail ingest --maildir`: each message in new/ is stored and moved to cur/ with
    the seen flag; a second run finds nothing to do and makes no commit."""
    box = _maildir(tmp_path / "Maildir")
    _deliver_to_maildir(box, "1000.a.host", inbound())
    _deliver_to_maildir(box, "1001.b.host", inbound(f"Eve <{EVE}>", "Printer on fire",
                                                    mid="<e1@other.example>"))
    commits = commit_count(desk)
    result = cli("gitdesk", "mail", "ingest", "--maildir", str(box))
    assert result.stdout.splitlines() == [f"1000.a.host: #1 new: from {CAROL}",
                                          f"1001.b.host: #2 new: from {EVE}"]
    assert result.stderr.strip() == "2 new"
    assert sorted(os.listdir(box / "new")) == []
    assert sorted(os.listdir(box / "cur")) == ["1000.a.host:2,S", "1001.b.host:2,S"]
    assert commit_count(desk) == commits + 2

    again = cli("gitdesk", "mail", "ingest", "--maildir", str(box))
    assert again.stdout == "" and again.stderr.strip() == "no messages"
    assert commit_count(desk) == commits + 2
    assert sorted(os.listdir(box / "cur")) == ["1000.a.host:2,S", "1001.b.host:2,S"]


def test_maildir_watch_picks_up_a_new_message_within_seconds(desk, tmp_path):
    """`gitdesk mail watch`: what is in new/ at the start is taken at once; a message moved
    into new/ later becomes a ticket within seconds, long before the next poll (watchdog
    reports it); setting the stop event ends the watch at once, not at the next poll."""
    box = _maildir(tmp_path / "Maildir")
    _deliver_to_maildir(box, "1999.b.host", inbound(f"Eve <{EVE}>", "Printer on fire",
                                                    mid="<e1@other.example>"))
    seen: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(Tracker(desk), box, lambda n, o: seen.append(f"{n}: {o}")),
                              kwargs={"stop": stop, "poll": 60.0}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: (box / "cur" / "1999.b.host:2,S").exists(), timeout=5, what="the first message")
        _deliver_to_maildir(box, "2000.c.host", inbound())
        wait_for(lambda: (box / "cur" / "2000.c.host:2,S").exists(), timeout=5, what="the new message")
        assert seen == [f"1999.b.host: #1 new: from {EVE}", f"2000.c.host: #2 new: from {CAROL}"]
        assert (desk / "issues" / "2" / "issue.md").exists()
        assert os.listdir(box / "new") == []
        time.sleep(0.5)  # the watch is idle again, waiting for its next poll
    finally:
        stop.set()
        thread.join(timeout=3)
    assert not thread.is_alive()


def test_a_port_in_use_is_one_line_not_an_internal_error(tracker_dir):
    """`gitdesk mail serve` on a taken port says so in one line, exit 1."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = run_bin("gitdesk", "mail", "serve", "--port", str(port), cwd=tracker_dir)
    finally:
        taken.close()
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in result.stderr and "internal error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# == RFC 2047 header injection (CVE-2024-6923) ================================================

def _word(text: str) -> str:
    """``text`` as one RFC 2047 encoded word, the form the email package decodes into a header."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


INJECTED_HEADERS = _word("Hi\r\nBcc: victim@x.example\r\nX-Injected: yes")
INJECTED_BODY = _word("Hi\r\nX-Injected: yes\r\n\r\n<h1>Your account is closed</h1>")
MID_WORD = "<=?utf-8?b?DQpYLUluamVjdGVkLVZpYS1NaWQ6IHllcw0K?=@evil.example>"


def _exact_headers(delivered: list[Delivered], automatic: bool = True) -> None:
    """Each message has exactly the headers compose sets, once each, one line each, a
    text/plain body; nothing injected in the header or the body."""
    want = sorted(OUT_HEADERS - (set() if automatic else {"auto-submitted"}))
    assert delivered
    for got in delivered:
        assert len(got.rcpt_tos) == 1 and "victim" not in got.rcpt_tos[0]
        names = sorted(name.lower() for name in got.msg.keys())
        assert names == want, got.data[:2000]
        head, body = got.data.split(b"\r\n\r\n", 1)
        for line in head.split(b"\r\n"):   # every physical line is a header or its folding
            assert re.match(rb"^([A-Za-z-]+:( |$)|[ \t])", line), line
        assert not re.search(rb"(?im)^(x-injected|bcc)", got.data)
        assert got.msg.get_content_type() == "text/plain" and not got.msg.is_multipart()
        assert "Your account is closed" not in got.body and b"<h1>" not in body
        for name, value in got.msg.items():
            assert "\r" not in str(value) and "\n" not in str(value), (name, value)


def test_an_encoded_word_in_a_message_id_is_never_echoed_into_a_header(desk, cli, sink, tmp_path,
                                                                      monkeypatch):
    """A customer Message-ID holding an encoded CR LF + 'X-Injected-Via-Mid: yes': the
    acknowledgement, the staff notices and later replies are sent with exactly the usual
    headers; the id is dropped from In-Reply-To/References (the thread id stays)."""
    outcome = ingest(cli, tmp_path, inbound(mid=MID_WORD))
    assert outcome["action"] == "new"
    assert send(cli) == "3 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    delivered = sink.take()
    assert sorted(d.rcpt_tos[0] for d in delivered) == [ALICE, BOB, CAROL]
    _exact_headers(delivered)
    for got in delivered:
        assert got["In-Reply-To"] == got["References"] == "<gd.1@desk.example.com>"
    at(monkeypatch, 60)                  # a reply whose Message-ID is hostile too
    ingest(cli, tmp_path, inbound(subject="Re: [#1] Site is down", mid=MID_WORD.replace("@", "2@"),
                                  body="More.", date="Mon, 02 Mar 2026 10:01:00 +0000"))
    cli("issue", "comment", "1", "-m", "Fixed.")
    send(cli)
    delivered = sink.take()
    assert CAROL in [d.rcpt_tos[0] for d in delivered]
    _exact_headers([d for d in delivered if d.rcpt_tos == [CAROL]], automatic=False)
    assert sink.received == [] and b"X-Injected" not in b"".join(d.data for d in delivered)


@pytest.mark.parametrize("payload", [INJECTED_HEADERS, INJECTED_BODY], ids=["headers", "body"])
@pytest.mark.parametrize("how", ["issue-new", "subject", "panel"])
def test_an_encoded_word_in_a_ticket_title_stays_text(desk, cli, sink, tmp_path, payload, how):
    """A title that is an encoded word hiding CR LF + Bcc/X-Injected (or a blank line and a
    new body), from `issue new`, a double-encoded Subject or the customer panel: every
    notice has exactly the usual headers, and the title is in the Subject as plain text."""
    if how == "issue-new":
        ticket(cli, title=payload)
    elif how == "subject":
        assert ingest(cli, tmp_path, inbound(subject=_word(payload)))["action"] == "new"
    else:
        Tracker(desk).customer(CAROL, "Carol Customer").open(payload, "It says 100, not 10.")
    assert Tracker(desk).issues.load(1).title == payload
    assert re.fullmatch(r"[123] sent, 0 deferred, 0 failed, 0 waiting for their retry time", send(cli))
    delivered = sink.take()
    _exact_headers(delivered)
    for got in delivered:
        if got["Subject"] != "[#1] Your request was received":
            assert got["Subject"] == "[#1] " + payload.replace("=?", "=\u200b?")


def test_a_desk_name_holding_an_encoded_word_neither_injects_nor_breaks_mail(tracker_dir, sink, cli,
                                                                            tmp_path, monkeypatch):
    """gitdesk.yml `name:` and `mail.from` that are encoded words hiding CR LF + headers:
    mail still goes out (no 'cannot contain CR or LF'), with exactly the usual headers and
    the name as plain text."""
    path = tracker_dir / "gitdesk.yml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('name: "Test Desk"', f'name: "{INJECTED_HEADERS}"')
    text = text.replace('from: "Test Desk <support@desk.example.com>"',
                        f'from: "{INJECTED_BODY} <support@desk.example.com>"')
    path.write_text(text, encoding="utf-8")
    configure(tracker_dir, sink.port)
    at(monkeypatch)
    assert ingest(cli, tmp_path, inbound())["action"] == "new"
    assert send(cli) == "3 sent, 0 deferred, 0 failed, 0 waiting for their retry time"
    delivered = sink.take()
    _exact_headers(delivered)
    for got in delivered:
        [sender] = got.msg["From"].addresses
        # (the email package may fold the long word: compare without the spaces it adds)
        assert (sender.display_name.replace(" ", ""), sender.addr_spec) == \
            (INJECTED_BODY.replace("=?", "=\u200b?"), DESK)
        [reply_to] = got.msg["Reply-To"].addresses
        assert reply_to.display_name.replace(" ", "") == INJECTED_HEADERS.replace("=?", "=\u200b?")


def test_a_message_whose_headers_change_when_written_is_never_sent(desk, cli, sink, tmp_path,
                                                                  monkeypatch):
    """The last line of defence: were a value to reach a header uncleaned (simulated by
    turning the cleaning off), compose re-parses its own bytes and refuses the message; the
    change is made, that notice is skipped with a logged reason, nothing injected is sent."""
    from gitdesk.mail import compose

    monkeypatch.setattr(compose, "header_text", lambda text: str(text))
    monkeypatch.setattr(compose, "safe_message_id", lambda value: value and str(value).strip("<>"))
    path = tmp_path / "in.eml"
    path.write_bytes(inbound(subject=_word(INJECTED_HEADERS), mid=MID_WORD))
    result = cli("gitdesk", "mail", "ingest", str(path), "--json")
    assert json.loads(result.stdout)["action"] == "new"
    assert "warning: mail not sent (#1 new -> alice@example.com): " in result.stderr
    assert "warning: mail not sent (#1 ack -> carol@customer.example): header In-Reply-To" in result.stderr
    assert (desk / "issues" / "1" / "issue.md").exists()
    result = cli("issue", "new", INJECTED_BODY, "--customer", CAROL, "-m", "The site says 502.")
    assert "warning: mail not sent (#2 " in result.stderr
    assert (desk / "issues" / "2" / "issue.md").exists()
    outbox.deliver(Tracker(desk))
    assert b"X-Injected" not in b"".join(d.data for d in sink.received)
    with pytest.raises(compose.UnsafeMessage):
        msg = email.message.EmailMessage(policy=email.policy.SMTP)
        msg["Subject"] = INJECTED_HEADERS
        compose.checked(msg)
