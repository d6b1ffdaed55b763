"""The work-queue commands ``issue queue``, ``issue next`` and ``issue take``, and SLA text for list and show."""

from __future__ import annotations

import click

from ..issues import actions
from ..issues.actions import resolve_user
from ..issues.query import IssueQuery
from ..issues.queue import QueueItem, load_queue, next_free, select, sla_now
from ..queueconfig import format_duration
from ..timeutil import now
from .common import ask_in_terminal, clean, color_status, get_tracker, json_option, print_json, table


def _which_options(func):
    """The filters that ``issue next`` and ``issue take`` share with ``issue queue``."""
    func = click.option("-p", "--priority", "priorities", multiple=True, help="Only this priority (repeatable).")(func)
    func = click.option("-l", "--label", "labels", multiple=True, help="Only items with this label (all must match).")(func)
    func = click.option("-t", "--type", "types", multiple=True, help="Only this type (repeatable).")(func)
    return func


def _query(tracker, types=(), labels=(), priorities=(), assignee=None, unassigned=False) -> IssueQuery:
    labels = [x.strip() for lab in labels for x in lab.split(",") if x.strip()]
    return IssueQuery(types=types, labels=labels, priorities=priorities,
                      assignee=resolve_user(tracker, assignee) if assignee else None, unassigned=unassigned)


def _person(tracker, who: str | None) -> str:
    if not who:
        return "-"
    member = tracker.settings.find_staff(who)
    return (member.name if member else who).split("@")[0]


def _age(item: QueueItem, moment) -> str:
    return format_duration(max(0, (moment - item.issue.created).total_seconds()))


@click.command("queue")
@_which_options
@click.option("--assignee", help="Only items taken by this person ('me', 'none').")
@click.option("--mine", is_flag=True, help="Only items I have taken (--assignee me).")
@click.option("--unassigned", is_flag=True, help="Only items nobody has taken (--assignee none).")
@click.option("-n", "--limit", type=int, default=0, help="Show at most N items.")
@json_option
@click.pass_context
def queue_cmd(ctx, types, labels, priorities, assignee, mine, unassigned, limit, as_json):
    """The open work, in the order it should be done (waiting and closed issues left out)."""
    tracker = get_tracker(ctx)
    moment = now()
    items, errors = load_queue(tracker, moment)
    for err in errors:
        click.echo(f"warning: skipped {err}", err=True)
    if mine:
        assignee = "me"
    query = _query(tracker, types, labels, priorities, assignee,
                   unassigned or assignee in ("none", "-"))
    chosen = select(items, tracker.settings, query)[:limit or None]
    if as_json:
        print_json([q.to_json(tracker.settings) for q in chosen])
        return
    if not chosen:
        click.echo("The queue is empty." if not items else "No items in the queue match.", err=True)
        return
    schema = tracker.settings.schema
    table([[str(q.rank), f"#{q.issue.id}", clean(q.issue.priority),
            color_status(q.issue.status, schema.is_closed(q.issue.status)), clean(_person(tracker, q.taken_by)),
            _sla_cell(q), _age(q, moment), clean(q.issue.title)] for q in chosen],
          ["RANK", "ID", "PRIORITY", "STATUS", "TAKEN BY", "SLA", "AGE", "TITLE"])


def _sla_cell(item: QueueItem) -> str:
    if item.sla is None:
        return "-"
    text = item.sla.headline()
    return click.style(text, fg="red") if item.sla.breached else text


@click.command("next")
@_which_options
@json_option
@click.pass_context
def next_cmd(ctx, types, labels, priorities, as_json):
    """Show the first item of the queue that nobody has taken."""
    tracker = get_tracker(ctx)
    items, _ = load_queue(tracker)
    item = next_free(items, tracker.settings, _query(tracker, types, labels, priorities))
    if as_json:
        print_json(item.to_json(tracker.settings) if item else None)
        return
    if item is None:
        click.echo("Nothing to take: every item in the queue is taken (see issue queue).", err=True)
        return
    issue = item.issue
    click.echo(click.style(clean(f"#{issue.id} {issue.title}"), bold=True))
    sla = f" · {item.sla.describe()}" if item.sla else ""
    click.echo(clean(f"rank {item.rank} · {issue.priority} · {issue.status} · {issue.type}{sla}"))
    click.echo(f"Take it with: issue take {issue.id}")


@click.command("take")
@click.argument("issue_id", required=False)
@_which_options
@click.option("--force", is_flag=True, help="Take it even if someone else holds it.")
@click.option("--sync", "and_sync", is_flag=True,
              help="Then run gitdesk sync, to know at once whether the claim held across clones.")
@json_option
@click.pass_context
def take_cmd(ctx, issue_id, types, labels, priorities, force, and_sync, as_json):
    """Assign an issue (default: the next free item of the queue) to me and start work on it."""
    tracker = get_tracker(ctx)
    query = _query(tracker, types, labels, priorities) if (types or labels or priorities) else None
    if issue_id is not None and query is not None:
        raise click.UsageError("give an ID or filters, not both")
    issue, diffs = actions.take(tracker, issue_id, force=force, query=query)
    if and_sync:
        issue = _synced_claim(ctx, tracker, issue)
    if as_json:
        items, _ = load_queue(tracker)
        item = next((q for q in items if q.issue.id == issue.id), None)
        data = item.to_json(tracker.settings) if item else {
            **issue.to_json(tracker.settings.schema), "rank": None,
            "sla": sla_json(tracker, issue), "taken_by": issue.assignee}
        print_json(data)
    elif diffs:
        for diff in diffs:
            click.echo(f"#{issue.id} {diff}")
    else:
        click.echo(f"#{issue.id} is already yours")


def _synced_claim(ctx, tracker, issue):
    """Sync, then the issue as the shared repository has it; exit 1 if someone else's claim held."""
    from ..sync import sync

    mine = issue.assignee
    report = sync(tracker, ask=ask_in_terminal())
    for line in report.lines():
        click.echo(clean(line), err=True)
    number = report.renumbered.get(issue.id, issue.id)
    now = tracker.issues.load(number)
    if now.assignee != mine:
        following = next_free(load_queue(tracker)[0], tracker.settings)
        offer = f"; issue next offers #{following.issue.id}" if following else "; nothing else is free"
        click.echo(clean(f"Error: #{number} is taken by {now.assignee} (on the shared repository first); "
                         f"your take was undone{offer}"), err=True)
        ctx.exit(1)
    return now


COMMANDS = (queue_cmd, next_cmd, take_cmd)


# -- SLA text for issue show and issue list ------------------------------------------------------

def sla_json(tracker, issue) -> dict | None:
    sla = sla_now(tracker, issue)
    return sla.to_json() if sla else None


def echo_sla(tracker, issue) -> None:
    """The line 'sla: response due in 2h 10m · resolve due in 5h' of ``issue show``."""
    sla = sla_now(tracker, issue)
    if sla is not None:
        click.echo(click.style(f"sla: {sla.describe()}", fg="red" if sla.breached else None))


def overdue(tracker, issues, query: IssueQuery, responded=None):
    """The issues matching ``query`` that have missed an SLA target (``issue list --overdue``);
    ``responded``: their first response dates, as ``load_issues`` gives them."""
    schema, moment = tracker.settings.schema, now()
    return [i for i in issues if query.matches(i, schema)
            and (sla := sla_now(tracker, i, moment, responded)) is not None and sla.breached]
