"""``gitdesk mail``: the email gateway's commands (ingest, serve, watch, send, status, quarantine)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import GitdeskError, LockTimeout
from .common import clean, get_tracker, json_option, print_json, table

EX_TEMPFAIL = 75


@click.group("mail")
def mail_group():
    """Receive and send email: tickets from mail, replies to customers."""


def _printer(as_json: bool, quiet: bool = False):
    results = []

    def report(label: str, outcome) -> None:
        results.append({"source": label, **outcome.to_json()})
        if not as_json and not quiet:
            click.echo(clean(f"{label}: {outcome}"))

    return results, report


@mail_group.command("ingest")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--mbox", "mbox", type=click.Path(exists=True, dir_okay=False), help="Every message of an mbox file.")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False),
              help="Every message in DIR/new (moved to DIR/cur when done).")
@click.option("--sender", help="The envelope sender (MAIL FROM); default: $SENDER when reading stdin.")
@click.option("--recipient", "recipients", multiple=True,
              help="The envelope recipient (repeatable); default: $ORIGINAL_RECIPIENT when reading stdin.")
@json_option
@click.pass_context
def ingest_cmd(ctx, file, mbox, maildir, sender, recipients, as_json):
    """Store mail as tickets and comments (or in the quarantine, with the reason).

    With no FILE (or -) one message is read from stdin, as an MTA pipe delivers it:
    the exit status is 0 when it was stored or quarantined, 75 (try again later) when the
    tracker was busy or could not be opened, so the MTA keeps the message.
    """
    from ..mail.gateway import Envelope, Gateway
    from ..mail.sources import ingest_maildir, ingest_mbox, safe_ingest

    if sum(bool(x) for x in (file, mbox, maildir)) > 1:
        raise click.UsageError("give one of FILE, --mbox and --maildir")
    single = not mbox and not maildir
    try:
        tracker = get_tracker(ctx)
        gateway = Gateway(tracker)
    except GitdeskError as err:
        if single:  # an MTA keeps the mail and tries again; it never bounces it
            click.echo(f"Error: {err}", err=True)
            ctx.exit(EX_TEMPFAIL)
        raise
    results, report = _printer(as_json)
    try:
        if mbox:
            ingest_mbox(gateway, Path(mbox), report)
        elif maildir:
            ingest_maildir(gateway, Path(maildir), report)
        else:
            piped = file in (None, "-")
            raw = sys.stdin.buffer.read() if piped else _read(file)
            if piped:
                sender = sender if sender is not None else os.environ.get("SENDER")
                env_rcpt = os.environ.get("ORIGINAL_RECIPIENT") or os.environ.get("RECIPIENT")
                recipients = recipients or ((env_rcpt,) if env_rcpt else ())
            report(file or "-", safe_ingest(gateway, raw, Envelope(sender, list(recipients))))
    except LockTimeout as err:
        click.echo(f"Error: {err}", err=True)
        ctx.exit(EX_TEMPFAIL)
    except OSError as err:  # not stored nor quarantined (disk full?): the MTA keeps the mail
        if not single or file not in (None, "-"):
            raise
        click.echo(f"Error: cannot store the message: {err}", err=True)
        ctx.exit(EX_TEMPFAIL)
    finally:
        gateway.close()
    if as_json:
        print_json(results if not single else results[0])
    elif not single:
        counts: dict[str, int] = {}
        for item in results:
            counts[item["action"]] = counts.get(item["action"], 0) + 1
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "no messages"
        click.echo(summary, err=True)


def _read(file: str) -> bytes:
    try:
        return Path(file).read_bytes()
    except OSError as err:
        raise GitdeskError(f"{file}: cannot read: {err.strerror}") from None


@mail_group.command("send")
@json_option
@click.pass_context
def send_cmd(ctx, as_json):
    """Deliver the outbox over SMTP (mail.smtp_host); failures are retried with backoff."""
    from ..mail.outbox import deliver

    report = deliver(get_tracker(ctx))
    if as_json:
        print_json(report.__dict__)
        return
    if report.busy:
        click.echo("another 'gitdesk mail send' is running; nothing done", err=True)
        return
    for error in report.errors:
        click.echo(clean(f"warning: {error}"), err=True)
    held = f", {report.held} waiting until gitdesk sync pushes their change" if report.held else ""
    held += f", {report.left} left to the mailer clone" if report.left else ""
    held += f", {report.untried} not tried (the mail server failed; they wait for the next run)" if report.untried else ""
    click.echo(f"{report.sent} sent, {report.deferred} deferred, {report.failed} failed, "
               f"{report.waiting} waiting for their retry time{held}")


@mail_group.command("status")
@json_option
@click.pass_context
def status_cmd(ctx, as_json):
    """The outbox (queued, retrying, failed with the reason), the quarantine and bounces."""
    from ..mail.gateway import read_bounces
    from ..mail.outbox import status
    from ..mail.quarantine import listing

    tracker = get_tracker(ctx)
    data = status(tracker)
    data["quarantined"] = len(listing(tracker.local_dir))
    data["bounces"] = read_bounces(tracker)
    if as_json:
        print_json(data)
        return
    counts = data["counts"]
    click.echo(f"outbox: {counts['queue']} queued, {counts['failed']} failed, {counts['sent']} sent "
               f"(kept 30 days); quarantine: {data['quarantined']} message(s)")
    if data["role"] == "silent":
        click.echo("this clone queues no mail (mail.send_from: mailer): the clone with "
                   "`git config gitdesk.mailer true` sends it after gitdesk sync (mail queued here "
                   "before the switch still goes from here)")
    elif data["role"] == "mailer":
        click.echo("this clone is the mailer: it sends the mail about every clone's changes it syncs")
    if data["held"]:
        click.echo(f"{data['held']} queued mail(s) wait until their change is on {data['shared']} "
                   "(gitdesk sync); a ticket's number may still change until then")
    for item in data["retrying"]:
        click.echo(clean(f"retrying {item['name']} to {', '.join(item['to'] or [])}: attempt "
                         f"{item['attempts']}, next {item['next_try']}: {item['error']}"))
    for item in data["failed"]:
        click.echo(clean(f"failed {item['name']} (#{item['issue']}) to {', '.join(item['to'] or [])}: "
                         f"{item['reason']}"))
    for address, info in sorted(data["bounces"].items()):
        click.echo(clean(f"bounced {address}: {info.get('count')} time(s), last {info.get('last')}: "
                         f"{info.get('status')} {info.get('diagnostic')}"))


@mail_group.command("quarantine")
@json_option
@click.pass_context
def quarantine_cmd(ctx, as_json):
    """List the messages that were kept instead of stored, with the reason."""
    from ..mail.quarantine import listing

    held = listing(get_tracker(ctx).local_dir)
    if as_json:
        print_json([h.to_json() for h in held])
        return
    if not held:
        click.echo("The quarantine is empty.", err=True)
        return
    table([[h.name[:12], h.received[:16].replace("T", " "), clean(h.sender or "-"),
            clean(f"{h.reason} · {h.subject}")] for h in held],
          ["NAME", "RECEIVED", "FROM", "REASON · SUBJECT"])


@mail_group.command("retry")
@click.argument("name")
@click.pass_context
def retry_cmd(ctx, name):
    """Feed a quarantined message (NAME from 'gitdesk mail quarantine') to the gateway again."""
    from ..mail.gateway import Gateway
    from ..mail.quarantine import listing, raw_of, release

    tracker = get_tracker(ctx)
    matches = [h.name for h in listing(tracker.local_dir) if h.name.startswith(name)]
    if len(matches) != 1:
        raise GitdeskError(f"{name!r} names {len(matches)} quarantined messages; give more of the name")
    raw = raw_of(tracker.local_dir, matches[0])
    release(tracker.local_dir, matches[0])
    gateway = Gateway(tracker)
    try:
        outcome = gateway.ingest(raw)
    finally:
        gateway.close()
    click.echo(clean(str(outcome)))


@mail_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
@click.option("--send-every", default=60, show_default=True, type=float,
              help="Deliver the outbox every N seconds (0: never).")
@click.pass_context
def serve_cmd(ctx, host, port, send_every):
    """An SMTP listener for the desk's addresses; Ctrl-C stops it."""
    import time

    from ..mail.server import Listener

    _, report = _printer(False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: put it behind your real mail server, never "
                   "open it to the internet (the manual's mail article says why)", err=True)
    listener = Listener(get_tracker(ctx), host, port, send_every, report)
    try:
        listener.start()
    except OSError as err:  # a port in use, an address this machine does not have
        raise GitdeskError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    click.echo(f"Listening on {host}:{listener.port} for {get_tracker(ctx).settings.mail.address}",
               err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("Stopping.", err=True)
    finally:
        listener.stop()


@mail_group.command("watch")
@click.option("--maildir", required=True, type=click.Path(exists=True, file_okay=False))
@click.pass_context
def watch_cmd(ctx, maildir):
    """Ingest each message as it lands in a Maildir; Ctrl-C stops."""
    from ..mail.watch import watch

    _, report = _printer(False)
    try:
        watch(get_tracker(ctx), Path(maildir), report)
    except KeyboardInterrupt:
        click.echo("Stopping.", err=True)


@mail_group.command("address")
@click.argument("issue_id")
@click.argument("recipient")
@click.option("--note", is_flag=True, help="The address for internal notes (staff only).")
@click.pass_context
def address_cmd(ctx, issue_id, recipient, note):
    """Print the signed reply address that RECIPIENT uses to write to ticket ISSUE_ID."""
    from ..issues.store import parse_id
    from ..mail.signing import NOTE, PUBLIC, Signer, load_secret

    tracker = get_tracker(ctx)
    issue = tracker.issues.load(parse_id(issue_id))
    signer = Signer(load_secret(tracker.local_dir), tracker.settings.mail.address)
    click.echo(signer.reply_address(issue.id, recipient, NOTE if note else PUBLIC))
