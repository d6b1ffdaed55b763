"""The ``issue`` command: create, list, show and change issues."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..issues import actions
from ..issues.actions import resolve_user
from ..issues.query import SORT_FIELDS, IssueQuery
from ..issues.queue import load_issues
from ..timeutil import iso, parse_time
from . import queue as queue_cli
from . import search as search_cli
from .common import (
    clean,
    color_status,
    filter_options,
    get_tracker,
    json_option,
    print_json,
    read_text,
    root_group,
    run_program,
    table,
)

NEW_TEMPLATE = "\n<!-- Describe the issue above this line; this hint is removed. -->\n"


@root_group("issue", "Create, list, show and change issues and tickets.")
def main(ctx: click.Context) -> None:
    pass


def _body_options(func):
    func = click.option("-e", "--edit", "edit", is_flag=True, help="Write the text in $EDITOR.")(func)
    func = click.option("-F", "--file", "file", metavar="FILE", help="Read the text from FILE (- for stdin).")(func)
    func = click.option("-m", "--message", "message", multiple=True, metavar="TEXT",
                        help="The text (several -m make paragraphs).")(func)
    return func


def _attach_option(func):
    return click.option("-a", "--attach", "attach", multiple=True, type=click.Path(dir_okay=False),
                        help="Attach a file (repeatable).")(func)


@main.command("new")
@click.argument("title")
@click.option("-t", "--type", "issue_type", help="ticket, bug, feature, task (see gitdesk.yml).")
@click.option("-p", "--priority", help="critical, high, normal, low (see gitdesk.yml).")
@click.option("-l", "--label", "labels", multiple=True, help="A label (repeatable).")
@click.option("--public/--private", "public", default=None, help="Who may see it (default: per type).")
@click.option("--customer", help="The customer's email address.")
@click.option("--cc", multiple=True, help="Another address to keep informed (repeatable).")
@click.option("--assignee", help="A staff member (name, email, or 'me').")
@click.option("--due", help="Due date, e.g. 2026-12-31.")
@click.option("-f", "--field", "field_values", multiple=True, metavar="NAME=VALUE",
              help="A custom field from gitdesk.yml (repeatable).")
@_body_options
@_attach_option
@json_option
@click.pass_context
def new_cmd(ctx, title, issue_type, priority, labels, public, customer, cc, assignee, due,
            field_values, message, file, edit, attach, as_json):
    """Open a new issue titled TITLE; prints its id and path."""
    tracker = get_tracker(ctx)
    body = (read_text(message, file, edit, NEW_TEMPLATE) or "").replace(NEW_TEMPLATE.strip(), "")
    visibility = None if public is None else ("public" if public else "private")
    issue = actions.new_issue(tracker, title, type=issue_type, priority=priority, labels=labels,
                              visibility=visibility, customer=customer, cc=cc, assignee=assignee,
                              body=body, due=due, fields=actions.parse_fields(tracker, field_values),
                              attachments=[Path(a) for a in attach])
    if as_json:
        print_json(issue.to_json(tracker.settings.schema, with_comments=True))
    else:
        click.echo(f"#{issue.id} {issue.path} ({issue.type}, {issue.visibility})")


@main.command("list")
@filter_options
@click.option("--visibility", type=click.Choice(["public", "private"]), help="Only public or private.")
@click.option("--open", "state", flag_value="open", default=True, help="Open issues (the default).")
@click.option("--closed", "state", flag_value="closed", help="Closed issues.")
@click.option("--all", "state", flag_value="all", help="Open and closed issues.")
@click.option("--sort", type=click.Choice(SORT_FIELDS), default="id", show_default=True)
@click.option("--asc", "ascending", is_flag=True, help="Oldest / smallest first.")
@click.option("-n", "--limit", type=int, default=0, help="Show at most N issues.")
@click.option("--overdue", is_flag=True, help="Only issues that missed an SLA target.")
@json_option
@click.pass_context
def list_cmd(ctx, statuses, types, labels, assignee, priorities, customer, visibility, state,
             sort, ascending, limit, overdue, as_json):
    """List issues (open ones unless --closed or --all), newest first."""
    tracker = get_tracker(ctx)
    schema = tracker.settings.schema
    labels = [x.strip() for lab in labels for x in lab.split(",") if x.strip()]
    query = IssueQuery(state=state, statuses=statuses, types=types, labels=labels,
                       priorities=priorities, customer=customer, visibility=visibility,
                       assignee=resolve_user(tracker, assignee) if assignee else None,
                       unassigned=assignee in ("none", "-"))
    first = limit if sort == "id" and not overdue else 0  # then only the first matches are decoded
    issues, errors, responded = load_issues(tracker, query, first, ascending)  # from the index, never stale
    for err in errors:
        click.echo(f"warning: skipped {err}", err=True)
    if overdue:
        issues = queue_cli.overdue(tracker, issues, query, responded)
    chosen = query.select(issues, schema, sort=sort, ascending=ascending, limit=limit)
    if as_json:
        print_json([i.to_json(schema) for i in chosen])
        return
    if not chosen:
        click.echo("No issues match.", err=True)
        return
    rows = []
    statuses: dict[str, str] = {}  # each distinct value styled once: 100,000 rows print fast
    people: dict[str | None, str] = {}
    for i in chosen:
        if i.status not in statuses:
            statuses[i.status] = color_status(i.status, schema.is_closed(i.status))
        if i.assignee not in people:
            people[i.assignee] = clean(_short_person(tracker, i.assignee))
        labels_text = f"  [{', '.join(i.labels)}]" if i.labels else ""
        rows.append([f"#{i.id}", statuses[i.status], clean(i.priority), clean(i.type), people[i.assignee],
                     (iso(i.activity) or "")[:10], clean(i.title + labels_text)])
    table(rows, ["ID", "STATUS", "PRIORITY", "TYPE", "ASSIGNEE", "UPDATED", "TITLE"])


def _short_person(tracker, who: str | None) -> str:
    if not who:
        return "-"
    member = tracker.settings.find_staff(who)
    return (member.name if member else who).split("@")[0]


@main.command("show")
@click.argument("issue_id")
@json_option
@click.pass_context
def show_cmd(ctx, issue_id, as_json):
    """Show an issue with its comments."""
    tracker = get_tracker(ctx)
    issue = tracker.issues.load(issue_id, comments=True)
    schema = tracker.settings.schema
    if as_json:
        print_json({**issue.to_json(schema, with_comments=True), "sla": queue_cli.sla_json(tracker, issue)})
        return
    click.echo(click.style(clean(f"#{issue.id} {issue.title}"), bold=True))
    labels = f" · labels: {', '.join(issue.labels)}" if issue.labels else ""
    click.echo(f"{color_status(clean(issue.status), schema.is_closed(issue.status))} · "
               + clean(f"{issue.priority} · {issue.type} · {issue.visibility}{labels}"))
    facts = [("author", issue.author), ("customer", issue.customer), ("cc", ", ".join(issue.cc)),
             ("assignee", issue.assignee), ("resolution", issue.resolution), ("due", iso(issue.due)),
             ("kb", ", ".join(issue.kb)), ("source", issue.source)]
    facts += [(k, str(v)) for k, v in {**issue.fields, **issue.extra}.items()]
    click.echo(f"created {iso(issue.created)} · updated {iso(issue.activity)}")
    queue_cli.echo_sla(tracker, issue)
    for name, value in facts:
        if value:
            click.echo(clean(f"{name}: {value}"))
    if issue.attachments:
        click.echo(clean(f"attachments: {', '.join(issue.attachments)}"))
    for problem in issue.problems:
        click.echo(click.style(clean(f"warning: {issue.path}: {problem.message}"), fg="red"), err=True)
    if issue.body:
        click.echo("\n" + clean(issue.body))
    for c in issue.comments:
        kind = click.style("internal note", fg="red") if not c.is_public else "comment"
        click.echo(f"\n--- {kind} · " + clean(f"{c.author} · {iso(c.date)} · via {c.via}"))
        if c.body:
            click.echo(clean(c.body))
        if c.attachments:
            click.echo(clean(f"attachments: {', '.join(c.attachments)}"))


def _report(issue, diffs) -> None:
    if diffs:
        for diff in diffs:
            click.echo(f"#{issue.id} {diff}")
    else:
        click.echo(f"#{issue.id}: nothing to change")


@main.command("set")
@click.argument("issue_id")
@click.argument("assignments", nargs=-1, required=True)
@click.pass_context
def set_cmd(ctx, issue_id, assignments):
    """Change fields: FIELD=VALUE, and for lists FIELD+=VALUE or FIELD-=VALUE.

    Example: issue set 42 status=open priority=high labels+=dns
    """
    tracker = get_tracker(ctx)
    parsed = [actions.parse_assignment(a) for a in assignments]
    _report(*actions.set_fields(tracker, issue_id, parsed))


@main.command("comment")
@click.argument("issue_id")
@_body_options
@click.option("--internal", is_flag=True, help="An internal note: never published or mailed.")
@_attach_option
@json_option
@click.pass_context
def comment_cmd(ctx, issue_id, message, file, edit, internal, attach, as_json):
    """Add a comment (public) or an internal note to an issue."""
    tracker = get_tracker(ctx)
    text = read_text(message, file, edit or (not message and not file and sys.stdin.isatty()))
    if text is None:
        raise click.UsageError("give the text with -m TEXT, -F FILE or -e")
    comment = actions.add_comment(tracker, issue_id, text, internal=internal,
                                  attachments=[Path(a) for a in attach])
    if as_json:
        print_json(comment.to_json())
    else:
        kind = "internal note" if internal else "comment"
        click.echo(f"{kind} {tracker.issues.comment_path(actions.parse_id(issue_id), comment.id)}")


@main.command("close")
@click.argument("issue_id")
@click.option("-r", "--resolution", help="fixed, answered, duplicate, wontfix, invalid (see gitdesk.yml).")
@click.option("-m", "--message", help="A public comment to add.")
@click.pass_context
def close_cmd(ctx, issue_id, resolution, message):
    """Close an issue."""
    _report(*actions.close(get_tracker(ctx), issue_id, resolution, message))


@main.command("reopen")
@click.argument("issue_id")
@click.option("-m", "--message", help="A public comment to add.")
@click.pass_context
def reopen_cmd(ctx, issue_id, message):
    """Reopen a closed issue."""
    _report(*actions.reopen(get_tracker(ctx), issue_id, message))


@main.command("assign")
@click.argument("issue_id")
@click.argument("user")
@click.pass_context
def assign_cmd(ctx, issue_id, user):
    """Assign an issue to USER (a staff name or email, 'me', or 'none')."""
    _report(*actions.assign(get_tracker(ctx), issue_id, user))


@main.command("edit")
@click.argument("issue_id")
@click.option("-F", "--file", "file", metavar="FILE", help="Take the new file text from FILE instead of $EDITOR.")
@click.pass_context
def edit_cmd(ctx, issue_id, file):
    """Edit an issue's file in $EDITOR; the result is checked before it is committed."""
    from .editing import edit_document

    tracker = get_tracker(ctx)
    issue_id = actions.parse_id(issue_id)
    path = tracker.root / tracker.issues.issue_path(issue_id)
    if not path.is_file():  # NotFound before an editor opens; a broken file may be repaired here
        tracker.issues.load(issue_id)

    def apply(text: str, base: str | None):
        issue, changed = actions.replace_text(tracker, issue_id, text, base=base)
        return f"#{issue_id} edited: {', '.join(changed)}" if changed else f"#{issue_id}: no changes"

    edit_document(tracker, path, f"issue-{issue_id}", apply, file)


@main.command("log")
@click.argument("issue_id")
@click.option("-n", "--limit", type=int, default=0, help="At most N entries.")
@json_option
@click.pass_context
def log_cmd(ctx, issue_id, limit, as_json):
    """The history of an issue from git: who changed what, and when."""
    tracker = get_tracker(ctx)
    issue_id = actions.parse_id(issue_id)
    tracker.issues.load(issue_id)
    entries = tracker.issues.history(issue_id, limit or None)
    if as_json:
        print_json([{"commit": e.commit, "author": e.author, "email": e.email,
                     "date": iso(parse_time(e.date)),
                     "message": e.subject} for e in entries])
        return
    table([[e.commit[:8], e.date[:16].replace("T", " "), clean(e.author), clean(e.subject)]
           for e in entries],
          ["COMMIT", "DATE", "AUTHOR", "CHANGE"])


for _command in queue_cli.COMMANDS:  # issue queue, issue next, issue take
    main.add_command(_command)

for _command in search_cli.ISSUE_COMMANDS:  # issue search, link, suggest, reply
    main.add_command(_command)


def program() -> None:
    """The ``issue`` command (the console script)."""
    run_program(main)
