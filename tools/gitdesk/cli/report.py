"""``gitdesk report``: the desk's numbers per month or week, as tables, JSON or CSV."""

from __future__ import annotations

import csv
import sys

import click

from ..errors import InvalidValue
from .common import clean, get_tracker, json_option, print_json, table

TABLES = ("periods", "labels", "types", "people")


def _moment(value: str | None, name: str):
    from ..timeutil import parse_time

    if not value:
        return None
    try:
        return parse_time(value + "-01" if len(value) == 7 and value[4] == "-" else value)
    except ValueError:
        raise InvalidValue(f"{name}: {value!r} is not a date (2026-03, 2026-03-01 or 2026-03-01T10:00Z)") from None


def _span(stats) -> str:
    from ..queueconfig import format_duration

    if stats.median is None:
        return "-"
    return (f"{format_duration(int(stats.median.total_seconds()))} / "
            f"{format_duration(int(stats.p90.total_seconds()))}")


def _seconds(delta) -> str:
    return "" if delta is None else str(int(delta.total_seconds()))


def _rows(which: str, report, breaches, people) -> tuple[list[str], list[list]]:
    """One table as CSV columns and rows (numbers as numbers, seconds for times)."""
    if which == "labels" or which == "types":
        return (["period", which[:-1], "count"],
                [[p.label, name, n] for p in report.periods for name, n in getattr(p, which).items()])
    if which == "people":
        return (["who", "open", "closed", "replies", "first_responses"],
                [[w.who, w.open, w.closed, w.replies, w.first_responses] for w in people])
    by_label = {b.period: b for b in breaches}
    return (["period", "start", "end", "opened", "closed", "backlog", "response_count",
             "response_median_s", "response_p90_s", "close_count", "close_median_s", "close_p90_s",
             "sla_counted", "sla_response_breaches", "sla_resolve_breaches"],
            [[p.label, p.start.isoformat(), p.end.isoformat(), p.opened, p.closed, p.backlog,
              p.first_response.count, _seconds(p.first_response.median), _seconds(p.first_response.p90),
              p.close.count, _seconds(p.close.median), _seconds(p.close.p90),
              by_label[p.label].counted, by_label[p.label].response, by_label[p.label].resolve]
             for p in report.periods])


@click.command("report")
@click.option("--since", help="From this date (rounded down to its month or week).")
@click.option("--until", help="Up to this moment, not included (default: now).")
@click.option("--by", type=click.Choice(["month", "week"]), default="month", show_default=True)
@click.option("--public", is_flag=True, help="Count only what the public site shows.")
@click.option("--csv", "as_csv", is_flag=True, help="One table as CSV (see --table).")
@click.option("--table", "which", type=click.Choice(TABLES), default="periods", show_default=True,
              help="The table --csv prints.")
@json_option
@click.pass_context
def report_cmd(ctx, since, until, by, public, as_csv, which, as_json):
    """What goes wrong most, over time, and how fast the desk answers: opened, closed and
    open per period, the most common labels and types, response and close times (median /
    90th percentile), SLA breaches and work per person."""
    from ..reports import build_report, load_issues
    from ..workload import sla_breaches, work_by_person

    tracker = get_tracker(ctx)
    issues, warnings = load_issues(tracker, public=public)
    report = build_report(issues, tracker.settings.schema, by=by, since=_moment(since, "--since"),
                          until=_moment(until, "--until"))
    breaches = sla_breaches(issues, tracker.settings, report.periods, report.until)
    people = work_by_person(issues, tracker.settings, report.since, report.until)
    for warning in warnings:
        click.echo(clean(f"warning: {warning}"), err=True)
    if as_json:
        print_json({**report.to_json(), "sla_breaches": [b.to_json() for b in breaches],
                    "people": [w.to_json() for w in people]})
    elif as_csv:
        header, rows = _rows(which, report, breaches, people)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    else:
        _print(report, breaches, people)


def _print(report, breaches, people) -> None:
    if not report.periods:
        click.echo("No issues in that time.", err=True)
        return
    by_label = {b.period: b for b in breaches}
    click.echo(click.style(f"{report.periods[0].label} to {report.periods[-1].label}: {report.opened} opened, "
                           f"{report.closed} closed, {report.open} open now, {report.unanswered} "
                           f"not yet answered", bold=True))
    click.echo(f"first response (median / 90%): {_span(report.first_response)} · "
               f"close: {_span(report.close)}\n")
    table([[p.label, str(p.opened), str(p.closed), str(p.backlog), _span(p.first_response), _span(p.close),
             f"{by_label[p.label].response}/{by_label[p.label].resolve}" if by_label[p.label].counted else "-",
             clean(", ".join(f"{name} {n}" for name, n in list(p.labels.items())[:3]) or "-")]
            for p in report.periods],
          ["PERIOD", "OPENED", "CLOSED", "OPEN", "RESPONSE", "CLOSE", "SLA MISSED", "TOP LABELS"])
    if report.types:
        click.echo("\nmost common: " + clean(", ".join(f"{n} {name}" for name, n in report.types.items()))
                   + (" · " + clean(", ".join(f"{n} {name}" for name, n in list(report.labels.items())[:8]))
                      if report.labels else ""))
    if people:
        click.echo("")
        table([[clean(w.who), str(w.open), str(w.closed), str(w.replies), str(w.first_responses)]
               for w in people], ["WHO", "OPEN", "CLOSED", "REPLIES", "FIRST RESPONSES"])
