"""The ``gitdesk`` command: set up, check, import, and publish a tracker."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import ask_in_terminal, clean, get_tracker, json_option, print_json, root_group, run_program
from .mail import mail_group
from .report import report_cmd


@root_group("gitdesk", "Set up, check, import into and publish a gitdesk tracker; run its mail gateway.")
def main(ctx: click.Context) -> None:
    pass


main.add_command(mail_group)
main.add_command(report_cmd)


@main.command("init")
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="The desk's name (default: from the folder name).")
@click.option("--site-url", default="https://support.example.com/", show_default=True)
def init_cmd(folder, name, site_url):
    """Make FOLDER a new tracker: files, git repository and a first commit."""
    from ..scaffold import init

    root = init(Path(folder), name=name, site_url=site_url)
    click.echo(f"Initialized gitdesk tracker in {root}")
    here = Path(folder).resolve() == Path.cwd().resolve()
    click.echo("Next: " + ("" if here else f"cd {folder} && ") + "issue new 'First issue'")


@main.command("check")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@json_option
@click.pass_context
def check_cmd(ctx, strict, as_json):
    """Check every file against the schema; prints path:line: problem."""
    from ..check import check

    findings = check(get_tracker(ctx))
    if as_json:
        print_json([{"path": f.path, "line": f.line, "message": f.message, "warning": f.warning}
                    for f in findings])
    else:
        for finding in findings:
            click.echo(str(finding))
    errors = [f for f in findings if strict or not f.warning]
    if not as_json:
        click.echo(f"{len(errors)} problem(s), {len(findings) - len(errors)} warning(s)"
                   if findings else "ok", err=True)
    ctx.exit(1 if errors else 0)


@main.group("import")
def import_group():
    """Bring in issues from another tracker."""


def _progress(what: str, as_json: bool):
    """A progress line on a terminal ('importing 25/1000'), nothing for scripts."""
    show = sys.stderr.isatty() and not as_json

    def progress(n: int, total: int) -> None:
        if show and (n == total or n % 25 == 0):
            click.echo(f"\r{what} {n}/{total}", err=True, nl=n == total)

    return progress


@import_group.command("github")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--repo", help="owner/name, when the export does not say.")
@json_option
@click.pass_context
def import_github_cmd(ctx, file, repo, as_json):
    """Import a GitHub issue export (gh issue list --json ..., or an archive.json)."""
    from ..importers.github import import_github

    tracker = get_tracker(ctx)
    result = import_github(tracker, Path(file), repo=repo, progress=_progress("importing", as_json))
    if as_json:
        print_json(result.to_json())
        return
    click.echo(f"{result.repo or file}: {result.created} new, {result.updated} updated, "
               f"{result.unchanged} unchanged, {result.comments} comments added, "
               f"{result.skipped_pulls} pull requests left out"
               + (f"; commit {result.commit[:8]}" if result.commit else "; nothing to commit"))


@import_group.command("mbox")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--status", help="The status imported tickets get (e.g. closed for old mail).")
@json_option
@click.pass_context
def import_mbox_cmd(ctx, file, status, as_json):
    """Turn an mbox inbox into tickets, one per thread, in one commit; nobody is mailed."""
    from ..mail.mbox_import import import_mbox
    from .common import clean

    tracker = get_tracker(ctx)
    if status and status not in tracker.settings.schema.statuses:
        raise click.BadParameter(f"{status!r} is not a status of gitdesk.yml", param_hint="--status")
    result = import_mbox(tracker, Path(file), status=status, progress=_progress("threads", as_json))
    if as_json:
        print_json(result.to_json())
        return
    for line in result.quarantined:
        click.echo(clean(f"quarantined {line}"), err=True)
    click.echo(f"{file}: {result.tickets} tickets, {result.comments} comments, "
               f"{result.duplicates} already here, {len(result.quarantined)} quarantined"
               + (f"; commit {result.commit[:8]}" if result.commit else "; nothing to commit"))


@main.command("sync")
@click.option("--no-push", is_flag=True, help="Bring the shared work here, but do not push.")
@click.pass_context
def sync_cmd(ctx, no_push):
    """Fetch the shared branch, replay this clone's unpushed work on it (renumbering issues
    that clash, merging edits of the same issue field by field), and push; try again if
    someone pushed meanwhile."""
    from ..sync import sync

    report = sync(get_tracker(ctx), push=not no_push, ask=ask_in_terminal())
    for line in report.lines():
        click.echo(clean(line))


@main.command("export")
@click.option("--customer", "email", required=True, help="The customer's email address.")
@click.option("--ticket", "ticket_id", help="Only this ticket (it must be theirs).")
@json_option
@click.pass_context
def export_cmd(ctx, email, ticket_id, as_json):
    """What one customer may see: their tickets and the public replies, never internal notes
    or anyone else's data (for a customer control panel)."""
    from .common import clean, table

    desk = get_tracker(ctx).customer(email)
    data = desk.ticket(ticket_id) if ticket_id else desk.export()
    if as_json:
        print_json(data)
        return
    tickets = [data] if ticket_id else data["tickets"]
    if not tickets:
        click.echo(f"No tickets for {desk.email}.", err=True)
        return
    table([[f"#{t['id']}", t["status"], t["updated"][:10], str(len(t["comments"])), clean(t["title"])]
           for t in tickets], ["ID", "STATUS", "UPDATED", "REPLIES", "TITLE"])


@main.group("site")
def site_group():
    """Build the published site."""


@site_group.command("build")
@click.option("--staff", is_flag=True, help="The staff site: everything, into site-staff/.")
@click.option("-d", "--site-dir", type=click.Path(file_okay=False), help="Output folder.")
@click.pass_context
def site_build_cmd(ctx, staff, site_dir):
    """Build the public site (or the staff site) with MkDocs."""
    from ..site.build import build

    out = build(get_tracker(ctx), staff=staff, out_dir=Path(site_dir) if site_dir else None)
    click.echo(f"Built {'staff' if staff else 'public'} site: {out / 'index.html'}")


@site_group.command("serve")
@click.option("--staff", is_flag=True, help="Preview the staff site (this machine only).")
@click.option("-a", "--dev-addr", "address", default="127.0.0.1:8000", show_default=True,
              metavar="HOST:PORT", help="Where to listen.")
@click.pass_context
def site_serve_cmd(ctx, staff, address):
    """Live preview that rebuilds when an issue, comment or KB file changes (Ctrl-C stops)."""
    from ..site.serve import serve

    serve(get_tracker(ctx), staff=staff, address=address)


@site_group.command("stage")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--staff", is_flag=True, help="The staff site's pages (never into the public folder).")
@click.option("--directory-urls/--no-directory-urls", default=True, show_default=True,
              help="Link pages as page/ (MkDocs' default) or page.html.")
@click.pass_context
def site_stage_cmd(ctx, folder, staff, directory_urls):
    """Write the site's pages, attachments and docs/ into FOLDER for another generator."""
    from ..site.stage import stage

    staged = stage(get_tracker(ctx), Path(folder), staff=staff, directory_urls=directory_urls)
    for warning in staged.warnings:
        click.echo(f"warning: {warning}", err=True)
    if staged.skipped:
        click.echo(f"left out of docs/: {', '.join(staged.skipped)}", err=True)
    click.echo(f"Staged {'staff' if staff else 'public'} site: {staged.pages} pages, "
               f"{staged.attachments} attachments, {staged.hand_written} hand-written files "
               f"in {staged.folder}")


@site_group.command("audit")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--staff", is_flag=True,
              help="A staff site: check only for scripts (it holds private data by design).")
@click.pass_context
def site_audit_cmd(ctx, folder, staff):
    """Check a built site: no private text, e-mail address or foreign script in any file.

    Prints one line per problem (FILE: what (text found)) and exits 1, or prints ok.
    """
    from ..site.audit import audit_site
    from .common import clean

    findings = audit_site(Path(folder), get_tracker(ctx), content=not staff)
    for finding in findings:
        click.echo(clean(finding))
    click.echo(f"{len(findings)} problem(s)" if findings else "ok", err=bool(findings))
    ctx.exit(1 if findings else 0)


def program() -> None:
    """The ``gitdesk`` command (the console script)."""
    run_program(main)
