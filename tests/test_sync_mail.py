"""Mail in a clone that shares its branch (kb/sync.md, "Mail and ticket numbers"): the outbox
holds a message until the commit of its change is on the shared repository, so a customer
never gets a number that `gitdesk sync` later gives to another ticket; when sync renumbers
the ticket, the held messages say the new number, with reply addresses and Message-IDs
signed again, and a reply to them reaches the renumbered ticket.

Real git (a bare repository and clones), a real aiosmtpd server on 127.0.0.1, the real CLI.
"""

from __future__ import annotations

import json

import pytest

from conftest import Cli, git
from test_mail_out import CAROL, DAVE, EVE, configure, inbound, ingest, queue, send, signer, sink  # noqa: F401
from test_sync import clones, sync, titles  # noqa: F401

BOB = "bob@example.com"
HELD = "0 sent, 0 deferred, 0 failed, 0 waiting for their retry time, {} waiting until gitdesk sync " \
       "pushes their change"


def _desk(clones, sink, **mail) -> tuple[Cli, Cli]:  # noqa: F811
    """Clones a (the mail gateway) and b (a contractor), sharing mail settings."""
    a, b = clones("a"), clones("b")
    configure(a.root, sink.port, **mail)
    sync(a)
    sync(b)
    return a, b


def _replies_reach(cli: Cli, mail, who: str, number: int):
    """The mail's Reply-To is signed, by this clone's key, for ``who`` and ticket ``number``."""
    sign = signer(cli.root)
    token = sign.parse_reply_address(mail.msg["Reply-To"].addresses[0].addr_spec)
    assert token.issue == number and sign.verify_reply(token, who)
    return sign


def test_a_ticket_number_is_mailed_only_once_it_is_pushed_and_says_the_number_it_ended_with(
        clones, sink, tmp_path):  # noqa: F811
    a, b = _desk(clones, sink)
    b("issue", "new", "Made in b", "-m", "b's issue, pushed first.")
    sync(b)

    assert ingest(a, tmp_path, inbound())["issue"] == 1      # a has not seen b's #1 yet
    assert send(a) == HELD.format(3)                          # Carol's receipt, Alice and Bob
    assert sink.received == []
    status = a("gitdesk", "mail", "status").output
    assert "3 queued mail(s) wait until their change is on origin/main" in status

    lines = sync(a)
    assert "#1 is now #2" in lines
    assert "3 waiting mails about #1 now say #2" in lines
    assert lines[-1] == "pushed 1 commit to origin/main"
    assert send(a).startswith("3 sent, 0 deferred, 0 failed")

    receipt = sink.one(CAROL)
    assert receipt["Subject"] == "[#2] Your request was received"
    assert "Your request is ticket #2;" in receipt.body and "#1" not in receipt.body
    assert receipt["X-Gitdesk-Ticket"] == "2"
    sign = _replies_reach(a, receipt, CAROL, 2)
    assert sign.issue_of_message_id(receipt["Message-ID"].strip("<>"), CAROL) == 2
    assert f"<{sign.thread_id(2)}>" in receipt["References"]
    assert receipt["Message-ID"] in {f"<{e['message_id']}>" for e in queue(a.root, "sent")}

    staff = sink.one(BOB)                                     # the staff notice and its note address
    assert staff["Subject"].startswith("[#2] ") and "New ticket #2 from" in staff.body
    note = next(w for w in staff.body.split() if "+2.n." in w).rstrip(".")
    token = sign.parse_reply_address(note)
    assert token.issue == 2 and token.kind == "note" and sign.verify_reply(token, BOB)

    # Carol answers the mail she got: it reaches #2, which is hers, not b's #1.
    reply = inbound(subject="Re: [#2] Your request was received", body="Still down.",
                    mid="<m2@customer.example>", to=receipt.msg["Reply-To"].addresses[0].addr_spec,
                    headers=(f"In-Reply-To: {receipt['Message-ID']}",))
    outcome = ingest(a, tmp_path, reply)
    assert (outcome["action"], outcome["issue"]) == ("comment", 2)
    again = ingest(a, tmp_path, inbound())                   # her first mail, delivered twice
    assert (again["action"], again["issue"]) == ("duplicate", 2)
    shown = json.loads(a("issue", "show", "1", "--json").output)
    assert shown["title"] == "Made in b" and shown["comments"] == []


@pytest.mark.parametrize("rewrite", ["amend", "rebase"])
def test_waiting_mail_follows_a_commit_git_rewrote_before_the_sync(clones, sink, tmp_path, rewrite):  # noqa: F811
    """The gateway's commit was amended, or replayed by a plain `git pull --rebase` (whose
    clash was settled by taking its own file), before sync renumbered the ticket: the held
    receipt still follows it, says the new number, and is sent once pushed."""
    a, b = _desk(clones, sink, notify_staff="none")
    b("issue", "new", "Made in b", "-m", "b's issue, pushed first.")
    sync(b)
    ingest(a, tmp_path, inbound())
    if rewrite == "amend":
        git(a.root, "commit", "-q", "--amend", "-m", "#1 new: Site is down (amended)")
    else:
        assert git_pull_rebase_taking_own(a) == 0
    lines = sync(a)
    assert "#1 is now #2" in lines and "1 waiting mail about #1 now says #2" in lines
    assert send(a).startswith("1 sent,")
    assert sink.one(CAROL)["Subject"] == "[#2] Your request was received"


def test_two_rewritten_commits_of_one_second_are_told_apart_by_their_subjects(clones, sink):  # noqa: F811
    """A ticket opened for Carol and a reply, by one person in one second, then replayed by
    a plain `git pull --rebase`: each held mail follows its own commit to #2."""
    a, b = _desk(clones, sink, notify_staff="none")
    b("issue", "new", "Made in b", "-m", "b's issue, pushed first.")
    sync(b)
    later = {"GITDESK_NOW": "2026-03-02T10:05:00Z"}
    a("issue", "new", "Site is down", "--customer", CAROL, "-m", "Reported by phone.", env=later)
    a("issue", "comment", "1", "-m", "We are on it.", env=later)
    assert git_pull_rebase_taking_own(a) == 0
    lines = sync(a)
    assert "#1 is now #2" in lines and "2 waiting mails about #1 now say #2" in lines
    assert a("gitdesk", "mail", "send", env=later).stdout.startswith("2 sent,")
    assert {m["Subject"] for m in sink.to(CAROL)} == {"[#2] Site is down"}


@pytest.mark.parametrize("share", ["sync", "git push"])
def test_an_amended_reply_is_mailed_once_shared_with_nothing_to_fetch(clones, sink, tmp_path, share):  # noqa: F811
    a, _ = _desk(clones, sink, notify_staff="none")
    ingest(a, tmp_path, inbound())
    sync(a)
    assert send(a).startswith("1 sent,")
    a("issue", "comment", "1", "-m", "We are on it, tanks.")
    path = next(p for p in (a.root / "issues/1").glob("*.md") if p.name != "issue.md")
    path.write_text(path.read_text().replace("tanks", "thanks"))
    git(a.root, "commit", "-q", "-a", "--amend", "--no-edit")
    assert send(a) == HELD.format(1)
    if share == "sync":
        assert sync(a) == ["pushed 1 commit to origin/main"]
    else:
        git(a.root, "push", "-q")
    assert send(a).startswith("1 sent,")
    assert "We are on it" in sink.to(CAROL)[-1].body


def test_mail_of_a_change_git_dropped_is_not_held_for_ever(clones, sink, tmp_path):  # noqa: F811
    """The commit of a held receipt was thrown away (git reset): the ticket no longer exists,
    so its receipt moves to failed/ with the reason instead of waiting for a push that can
    never come. Put back (cherry-picked), it would wait again."""
    a, _ = _desk(clones, sink, notify_staff="none")
    ingest(a, tmp_path, inbound())
    assert send(a) == HELD.format(1)
    git(a.root, "reset", "-q", "--hard", "HEAD~1")
    assert send(a) == "0 sent, 0 deferred, 1 failed, 0 waiting for their retry time"
    failed = queue(a.root, "failed")
    assert len(failed) == 1 and failed[0]["last_error"].startswith(
        "not sent: its change is no longer in this clone's history")
    assert sink.received == []


def test_the_mailer_mails_what_a_plain_pull_rebase_brought_in_and_its_own_change_once(
        clones, sink, tmp_path):  # noqa: F811
    g, c = clones("g"), clones("c")
    configure(g.root, sink.port, send_from="mailer", notify_staff="none")
    git(g.root, "config", "gitdesk.mailer", "true")
    sync(g)
    ingest(g, tmp_path, inbound())
    sync(g)
    assert send(g).startswith("1 sent,")                      # Carol's receipt
    sync(c)
    bob = {"GITDESK_USER": f"Bob Builder <{BOB}>"}
    g("issue", "comment", "1", "-m", "From the mailer.")
    c("issue", "comment", "1", "-m", "From Bob.", env=bob)
    sync(c)
    git(g.root, "pull", "-q", "--rebase")
    assert sync(g) == ["queued 1 mail(s) about changes made in other clones", "pushed 1 commit to origin/main"]
    assert send(g).startswith("2 sent,")
    g("issue", "comment", "1", "-m", "From the mailer, again.")
    c("issue", "comment", "1", "-m", "From Bob, again.", env=bob)
    sync(c)
    git(g.root, "pull", "-q", "--rebase")
    git(g.root, "push", "-q")
    assert send(g).startswith("1 sent,")                      # its own, once pushed
    assert sync(g) == ["queued 1 mail(s) about changes made in other clones", "up to date with origin/main"]
    assert send(g).startswith("1 sent,")                      # Bob's; not its own again
    bodies = [m.body for m in sink.to(CAROL)][1:]
    assert sorted(t for t in ("From the mailer.", "From Bob.", "From the mailer, again.", "From Bob, again.")
                  for b in bodies if t in b and not (t == "From Bob." and "again" in b)) == \
        sorted(["From the mailer.", "From Bob.", "From the mailer, again.", "From Bob, again."])
    assert len(bodies) == 4


def git_pull_rebase_taking_own(cli: Cli, side: str = "--theirs") -> int:
    """A plain `git pull --rebase` whose clash is settled by taking this clone's files (in a
    rebase, --theirs is the commit being replayed) or the shared ones (--ours)."""
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-c", "core.editor=true", "-c", "core.commentChar=;", *args],
                              cwd=cli.root, capture_output=True, text=True)

    if run("pull", "-q", "--rebase").returncode == 0:
        return 1  # no clash: nothing to settle
    run("checkout", side, "--", "issues")
    run("add", "-A", "issues")
    done = run("rebase", "--continue")
    while done.returncode != 0 and (cli.root / ".git" / "rebase-merge").exists():
        done = run("rebase", "--skip")                        # a commit left with nothing to change
    return done.returncode


def test_mail_waits_for_a_plain_git_push_too_and_for_nothing_without_a_shared_branch(
        clones, sink, tmp_path, monkeypatch):  # noqa: F811
    a, _ = _desk(clones, sink, notify_staff="none")
    ingest(a, tmp_path, inbound())
    assert send(a) == HELD.format(1)
    monkeypatch.setenv("GITDESK_NOW", "2026-03-05T10:00:00Z")  # pushed three days later
    git(a.root, "push", "-q")                                 # updates origin/main here too
    sink.refuse("451 4.3.0 try again later")                  # retry_hours count from the release
    assert send(a).startswith("0 sent, 1 deferred, 0 failed")
    monkeypatch.setenv("GITDESK_NOW", "2026-03-05T10:05:00Z")
    assert send(a).startswith("1 sent,")
    assert sink.one(CAROL)["Subject"] == "[#1] Your request was received"

    git(a.root, "remote", "remove", "origin")                 # a desk of its own: no waiting
    ingest(a, tmp_path, inbound(sender=f"Dave <{DAVE}>", mid="<m3@customer.example>", subject="Other"))
    assert send(a).startswith("1 sent,")
    assert sink.one(DAVE)["Subject"] == "[#2] Your request was received"


def test_wait_for_push_false_sends_at_once(clones, sink, tmp_path):  # noqa: F811
    a, _ = _desk(clones, sink, wait_for_push="false", notify_staff="none")
    ingest(a, tmp_path, inbound())
    assert send(a).startswith("1 sent,")
    assert sink.one(CAROL)["Subject"] == "[#1] Your request was received"


@pytest.mark.parametrize("more", [(), ("status=open",)])
def test_mail_about_a_change_sync_left_out_is_not_sent_and_says_why(clones, sink, tmp_path, more):  # noqa: F811
    """Bob is assigned #1 in b; a assigned it to Alice and pushed first: b's assignment is
    undone by its sync (the claim on the shared repository holds), so Bob's "assigned to you"
    mail, waiting in b's outbox, is never sent; it stays in failed/ with the reason. (Also
    when the same commit changed something else, which survives.)"""
    a, b = _desk(clones, sink)
    a("issue", "new", "Disk full", "-m", "x")
    sync(a)
    sync(b)
    a("issue", "assign", "1", "me")
    sync(a)
    b("issue", "set", "1", f"assignee={BOB}", *more)
    assert send(b) == HELD.format(1)
    lines = sync(b)
    assert f"mail to {BOB} about #1 not sent: its change was undone" in lines
    assert send(b).startswith("0 sent,")
    failed = queue(b.root, "failed")
    assert [f["to"] for f in failed] == [[BOB]]
    assert "gitdesk sync undid the change it reports" in failed[0]["last_error"]
    assert sink.received == []


def test_one_mailer_clone_mails_what_was_done_in_the_other_clones(clones, sink, tmp_path):  # noqa: F811
    """mail.send_from: mailer. The gateway's clone (git config gitdesk.mailer true) sends all
    the desk's mail, signed with its own key; a contractor's clone sends none. What Bob does
    in his clone (a public reply, an internal note, closing) reaches the customer from the
    mailer after both synced, and her answer comes back to the ticket."""
    g, c = clones("g"), clones("c")
    configure(g.root, sink.port, send_from="mailer")
    git(g.root, "config", "gitdesk.mailer", "true")
    sync(g)
    sync(c)
    ingest(g, tmp_path, inbound())
    sync(g)
    assert send(g).startswith("3 sent,")                      # Carol's receipt, Alice and Bob
    sink.take()
    sync(c)

    bob = {"GITDESK_USER": f"Bob Builder <{BOB}>"}
    c("issue", "comment", "1", "-m", "Restarted nginx; the site is back.", env=bob)
    c("issue", "comment", "1", "--internal", "-m", "The disk was full again.", env=bob)
    c("issue", "new", "Imported by hand", "--customer", DAVE, "-m", "x", env=bob)
    assert not list((c.root / ".gitdesk" / "outbox" / "queue").glob("*.json"))   # c sends nothing
    assert "this clone queues no mail (mail.send_from: mailer)" in c("gitdesk", "mail", "status").output
    assert "this clone is the mailer" in g("gitdesk", "mail", "status").output
    sync(c)
    lines = sync(g)
    assert "queued 2 mail(s) about changes made in other clones" in lines, lines
    assert send(g).startswith("2 sent,")
    answer = sink.one(CAROL)
    assert answer["Subject"] == "[#1] Site is down"
    assert "Restarted nginx; the site is back." in answer.body and "disk was full" not in answer.body
    assert answer["From"] == "Shared Desk <support@desk.example.com>"
    _replies_reach(g, answer, CAROL, 1)
    assert sink.one(DAVE)["Subject"] == "[#2] Imported by hand"  # opened for Dave by Bob
    sink.take()

    reply = inbound(subject="Re: [#1] Site is down", body="Thanks, all good.", mid="<m5@customer.example>",
                    to=answer.msg["Reply-To"].addresses[0].addr_spec,
                    headers=(f"In-Reply-To: {answer['Message-ID']}",))
    assert (ingest(g, tmp_path, reply)["action"], 1) == ("comment", 1)

    c("issue", "close", "1", env=bob)
    archive = tmp_path / "old.mbox"                           # an import is never announced
    archive.write_bytes(b"From eve@other.example Mon Mar  2 08:00:00 2026\n"
                        + inbound(sender=f"Eve <{EVE}>", mid="<old1@other.example>").replace(b"\r\n", b"\n"))
    c("gitdesk", "import", "mbox", str(archive), env=bob)
    sync(c)
    assert "queued 1 mail(s) about changes made in other clones" in sync(g)
    send(g)
    closed = sink.one(CAROL)
    assert "Bob Builder changed ticket #1:\n\nStatus: new -> closed\n" in closed.body
    assert sink.to(EVE) == [] and titles(g)[3] == "Site is down"
    assert sync(g) == ["up to date with origin/main"]          # each change is mailed once
    assert send(g).startswith("0 sent,")


def test_mail_of_a_commit_git_rewrote_goes_out_once_its_file_is_shared(clones, sink, tmp_path):  # noqa: F811
    """A reply, then a plain `git pull --rebase` and `git push`: the entry's commit no longer
    exists anywhere, but the reply's file is on the shared branch, so the mail goes out."""
    a, b = _desk(clones, sink, notify_staff="none")
    ingest(a, tmp_path, inbound())
    sync(a)
    assert send(a).startswith("1 sent,")                      # Carol's receipt
    b("issue", "new", "Elsewhere", "-m", "x")
    sync(b)
    a("issue", "comment", "1", "-m", "We are on it.")
    git(a.root, "-c", "user.name=a", "-c", "user.email=a@example.com", "pull", "-q", "--rebase")
    git(a.root, "push", "-q")
    assert send(a).startswith("1 sent,")
    assert "We are on it." in sink.to(CAROL)[-1].body


def test_switching_to_one_mailer_neither_loses_nor_doubles_mail(clones, sink, tmp_path):  # noqa: F811
    """a switches the desk to send_from: mailer; m is the mailer. Who mails a change is
    decided by the gitdesk.yml it was made on (its parent on the shared branch): a's reply
    pushed before the switch was mailed by a, and m does not mail it again; b's reply, made
    before b heard of the switch but landing after it, is left by b to m; later replies in
    b are not even queued there; m's own reply goes from its outbox. Each once, even after
    a reset --hard brings the same commits to the mailer again."""
    a, b = _desk(clones, sink, notify_staff="none")
    m = clones("m")
    git(m.root, "config", "gitdesk.mailer", "true")
    ingest(a, tmp_path, inbound())
    a("issue", "comment", "1", "-m", "Before the switch.")
    sync(a)
    assert send(a).startswith("2 sent,")                      # the receipt and the reply
    sync(b)
    b("issue", "comment", "1", "-m", "Fixed it.")               # queued in b, the old way
    text = (a.root / "gitdesk.yml").read_text(encoding="utf-8").replace("mail:\n", "mail:\n  send_from: mailer\n", 1)
    (a.root / "gitdesk.yml").write_text(text, encoding="utf-8")
    git(a.root, "commit", "-q", "-am", "one mailer")
    sync(a)
    sync(b)                                                   # b's reply lands after the switch
    assert send(b) == "0 sent, 0 deferred, 0 failed, 0 waiting for their retry time, 1 left to the mailer clone"
    b("issue", "comment", "1", "-m", "And it stays fixed.")   # b is silent now
    assert not list((b.root / ".gitdesk" / "outbox" / "queue").glob("*.json"))
    sync(b)
    assert "queued 2 mail(s) about changes made in other clones" in sync(m)
    m("issue", "comment", "1", "-m", "From the mailer itself.")
    sync(m)
    assert send(m).startswith("3 sent,")
    replies = [d.body for d in sink.to(CAROL)][1:]
    assert [next(t for t in ("Before the switch.", "Fixed it.", "And it stays fixed.", "From the mailer itself.")
                 if t in body) for body in replies] == \
        ["Before the switch.", "Fixed it.", "And it stays fixed.", "From the mailer itself."]
    git(m.root, "reset", "-q", "--hard", "HEAD~4")
    assert not [line for line in sync(m) if line.startswith("queued")]
    assert send(m).startswith("0 sent,")
    assert len(sink.to(CAROL)) == 5


def test_a_new_mailer_goes_on_where_the_last_one_stopped(clones, sink, tmp_path):  # noqa: F811
    """The mailer's mark is on the shared repository too (refs/gitdesk/mailed): a fresh clone
    that takes over (its first sync fetches nothing) mails what was pushed after the old
    mailer's last sync, and a clone far behind that takes over next does not mail again
    what the others mailed. A plain git pull in the mailer is mailed about at its next sync."""
    g, c = clones("g"), clones("c")
    configure(g.root, sink.port, send_from="mailer", notify_staff="none")
    git(g.root, "config", "gitdesk.mailer", "true")
    sync(g)
    behind = clones("behind")                                 # stays at this commit until it mails
    ingest(g, tmp_path, inbound())
    sync(g)
    assert git(g.root, "ls-remote", "origin", "refs/gitdesk/mailed").split()[0] == \
        git(g.root, "rev-parse", "HEAD").strip()
    sync(c)
    bob = {"GITDESK_USER": f"Bob Builder <{BOB}>"}
    c("issue", "comment", "1", "-m", "First reply.", env=bob)
    sync(c)
    assert "queued 1 mail(s) about changes made in other clones" in sync(g)
    c("issue", "comment", "1", "-m", "Second reply.", env=bob)
    assert send(g).startswith("2 sent,")                      # the receipt and the first reply
    sync(c)                                                   # g never syncs again
    git(g.root, "config", "--unset", "gitdesk.mailer")

    fresh = clones("fresh")
    git(fresh.root, "config", "gitdesk.mailer", "true")
    assert sync(fresh) == ["queued 1 mail(s) about changes made in other clones", "up to date with origin/main"]
    assert send(fresh).startswith("1 sent,")
    assert "Second reply." in sink.to(CAROL)[-1].body
    c("issue", "comment", "1", "-m", "Third reply.", env=bob)
    sync(c)
    git(fresh.root, "pull", "-q")                             # a plain pull: mailed at the next sync
    assert sync(fresh) == ["queued 1 mail(s) about changes made in other clones", "up to date with origin/main"]
    assert sync(fresh) == ["up to date with origin/main"]
    assert send(fresh).startswith("1 sent,")
    fresh("issue", "comment", "1", "-m", "From the mailer, pushed by hand.")
    git(fresh.root, "push", "-q")
    assert send(fresh).startswith("1 sent,")
    assert sync(fresh) == ["up to date with origin/main"]    # its own change: mailed once
    assert send(fresh).startswith("0 sent,")
    git(fresh.root, "config", "--unset", "gitdesk.mailer")

    git(behind.root, "config", "gitdesk.mailer", "true")
    assert not [line for line in sync(behind) if line.startswith("queued")]
    assert send(behind).startswith("0 sent,")
    bodies = [m.body for m in sink.to(CAROL)]
    assert [t for t in ("First reply.", "Second reply.", "Third reply.") for b in bodies if t in b] == \
        ["First reply.", "Second reply.", "Third reply."]


def test_the_mailer_tells_staff_of_a_ticket_opened_in_the_control_panel_of_another_clone(
        clones, sink, tmp_path):  # noqa: F811
    from gitdesk import Tracker

    g, c = clones("g"), clones("c")
    configure(g.root, sink.port, send_from="mailer")
    git(g.root, "config", "gitdesk.mailer", "true")
    sync(g)
    sync(c)
    Tracker(c.root).customer(DAVE, "Dave").open("Cannot log in", "Since this morning.")
    sync(c)
    assert "queued 2 mail(s) about changes made in other clones" in sync(g)
    send(g)
    assert sink.recipients() == ["alice@example.com", BOB]
    assert "Since this morning." in sink.one(BOB).body


@pytest.mark.parametrize("more", [(), ("priority=high",)])  # with a change that survives, too
def test_a_status_change_that_lost_is_not_mailed(clones, sink, tmp_path, more):  # noqa: F811
    a, b = _desk(clones, sink, notify_staff="none")
    with open(a.root / "gitdesk.yml", "a", encoding="utf-8") as handle:
        handle.write("sync:\n  same_field: earlier\n")
    git(a.root, "commit", "-q", "-am", "earlier")
    a("issue", "new", "Site down", "--customer", CAROL, "-m", "x")
    sync(a)
    send(a)
    sink.take()
    sync(b)
    a("issue", "set", "1", "status=waiting")
    sync(a)
    b("issue", "set", "1", "status=closed", *more, env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    lines = sync(b)
    assert "#1 status: kept waiting (on origin/main first); dropped closed" in lines
    assert f"mail to {CAROL} about #1 not sent: its change was undone" in lines
    assert send(b).startswith("0 sent,")
    assert sink.to(CAROL) == []
