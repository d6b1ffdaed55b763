"""The site's reports page: the numbers of ``gitdesk.reports`` as SVG charts and tables.

The caller decides what is counted: the public site passes public issues with their public
comments only, the staff site everything. Nothing here names an issue: a report shows
counts, labels, types and durations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from ..config import Schema
from ..issues.model import Issue
from ..reports import Report, Stats, build_report
from ..timeutil import now
from .charts import OTHER, Series, bar_chart, esc, line_chart, number
from .pages import Page

SRC = "reports/index.md"
MONTHS = 24  # charts show at most the last two years, one bar per month
PHONE_MONTHS, PHONE_WIDTH = 12, 400  # a phone gets its own narrower drawing of each chart
# Each chart is drawn twice, wide and for phones; the screen's width picks one (no script).
STYLE = ("<style>.gd-chart-phone{display:none}@media screen and (max-width:600px)"
         "{.gd-chart-wide{display:none}.gd-chart-phone{display:block}}</style>")
TOP = OTHER  # labels and types shown by name in the stacked charts; the rest are "other"


def reports_page(issues: Iterable[Issue], schema: Schema, staff: bool = False,
                 until: dt.datetime | None = None) -> Page:
    """The page ``reports/index.md``; ``issues`` carry the comments that may be counted."""
    moment = until or now()
    # ``until`` is exclusive: an issue written in this very second (live preview) counts too
    report = build_report(issues, schema, by="month", until=moment + dt.timedelta(seconds=1),
                          limit=MONTHS)
    scope = ("Every issue, private ones included (staff site)." if staff
             else "Public issues only, with their public comments.")
    # the day, not the minute: two builds of the same tracker on one day are the same pages
    as_of = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")
    parts = [STYLE, "<h1>Reports</h1>",
             f'<p class="gd-report-scope">{esc(scope)} Counted on {as_of}; months in UTC.</p>',
             _summary(report)]
    if report.periods:
        parts += _mix_section(report) + _flow_section(report) + _times_section(report)
    else:
        parts.append("<p>No issues yet.</p>")
    parts.append(_definitions())
    return Page(SRC, "Reports", "\n".join(parts))


# -- durations ---------------------------------------------------------------------------

def human(delta: dt.timedelta | None) -> str:
    """A duration as a person says it: '45 min', '5.5 h', '3.2 days'."""
    if delta is None:
        return "–"
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{number(round(seconds / 3600, 1))} h"
    return f"{number(round(seconds / 86400, 1))} days"


def _scale(samples: Sequence[Stats]) -> tuple[str, float]:
    """Hours, or days when the longest 90th percentile passes three days."""
    longest = max((s.p90.total_seconds() for s in samples if s.p90 is not None), default=0.0)
    return ("days", 86400.0) if longest > 72 * 3600 else ("hours", 3600.0)


def _in(delta: dt.timedelta | None, divisor: float) -> float | None:
    return None if delta is None else round(delta.total_seconds() / divisor, 2)


# -- sections -----------------------------------------------------------------------------

def _summary(report: Report) -> str:
    rows = [
        ("Open now", str(report.open)),
        ("Open, not yet answered", str(report.unanswered)),
        (f"Opened in {_window(report)}", str(report.opened)),
        (f"Closed in {_window(report)}", str(report.closed)),
        ("Time to first response: median / 90th percentile",
         f"{human(report.first_response.median)} / {human(report.first_response.p90)} "
         f"({report.first_response.count} issues)"),
        ("Time to close: median / 90th percentile",
         f"{human(report.close.median)} / {human(report.close.p90)} ({report.close.count} issues)"),
    ]
    body = "".join(f"<tr><td><strong>{esc(name)}</strong></td><td>{esc(value)}</td></tr>"
                   for name, value in rows)  # td, not th: Material borders th rows differently
    # a plain <table>: Material styles only tables without a class
    return f'<div class="gd-report-summary"><table><tbody>{body}</tbody></table></div>'


def _window(report: Report) -> str:
    if not report.periods:
        return "all time"
    first, last = report.periods[0].label, report.periods[-1].label
    return first if first == last else f"{first} to {last}"


def _top_series(report: Report, field: str) -> list[Series]:
    """The most common names over the window, one series each, and the rest as 'other'."""
    totals: dict[str, int] = getattr(report, field)
    names = list(totals)[:TOP]
    series = [Series(name, [getattr(p, field).get(name, 0) for p in report.periods])
              for name in names]
    rest = [sum(v for k, v in getattr(p, field).items() if k not in names) for p in report.periods]
    if any(rest):
        series.append(Series("other", rest, color=OTHER))
    return series


def _mix_section(report: Report) -> list[str]:
    months = [p.label for p in report.periods]
    out = ["<h2>Most common issues over time</h2>",
           "<p>What the issues opened each month were about: their labels (an issue counts once "
           "for each label it carries) and their types.</p>"]
    for field, noun in (("labels", "label"), ("types", "type")):
        series = _top_series(report, field)
        title = f"Issues opened per month, by {noun}"
        if not series:
            out.append(f"<p>No {noun}s on the issues of {esc(_window(report))}.</p>")
            continue
        summary = (f"Stacked bars, one per month from {months[0]} to {months[-1]}; most common "
                   f"{noun}s: " + ", ".join(f"{s.name} ({number(sum(s.values))})" for s in series))
        out.append(_figure(bar_chart, f"gd-chart-{field}", title, months, series, summary,
                           stacked=True))
        out.append(_table(f"Numbers: {title.lower()}", "Month", months, series))
    return out


def _flow_section(report: Report) -> list[str]:
    months = [p.label for p in report.periods]
    flow = [Series("opened", [p.opened for p in report.periods]),
            Series("closed", [p.closed for p in report.periods], color=2)]
    backlog = [Series("open at the end of the month", [p.backlog for p in report.periods])]
    flow_title, backlog_title = "Issues opened and closed per month", "Open issues at month end"
    return [
        "<h2>Opened, closed and open</h2>",
        _figure(bar_chart, "gd-chart-flow", flow_title, months, flow,
                f"Pairs of bars per month from {months[0]} to {months[-1]}: "
                f"{report.opened} opened, {report.closed} closed in all."),
        _figure(line_chart, "gd-chart-backlog", backlog_title, months, backlog,
                f"A line from {months[0]} ({report.periods[0].backlog} open) to {months[-1]} "
                f"({report.periods[-1].backlog} open, to date).", whole=True),
        _table("Numbers: opened, closed and open per month", "Month", months, flow + backlog),
    ]


def _times_section(report: Report) -> list[str]:
    months = [p.label for p in report.periods]
    out = ["<h2>Response and close times</h2>"]
    for key, title, what in (
            ("first_response", "Time to first response", "first responses made"),
            ("close", "Time to close", "issues closed")):
        per_month = [getattr(p, key) for p in report.periods]
        unit, divisor = _scale(per_month)
        series = [Series("median", [_in(s.median, divisor) for s in per_month]),
                  Series("90th percentile", [_in(s.p90, divisor) for s in per_month], color=1)]
        chart_title = f"{title} per month ({unit})"
        total = sum(s.count for s in per_month)
        if total:
            out.append(_figure(
                line_chart, f"gd-chart-{key.replace('_', '-')}", chart_title, months, series,
                f"Median and 90th percentile in {unit} of the {what} each month; "
                f"{total} in all.", unit=unit))
        else:
            out.append(f"<p>{esc(title)}: no {esc(what)} in {esc(_window(report))}.</p>")
        counts = Series(f"{what}", [s.count for s in per_month])
        out.append(_table(f"Numbers: {title.lower()} per month ({unit})", "Month", months,
                          [counts, *series]))
    return out


def _figure(draw, chart_id: str, title: str, months: Sequence[str], series: Sequence[Series],
            summary: str, **options) -> str:
    """A chart under its heading, drawn wide and, for phones, narrow with the latest months:
    one wide drawing shrunk to a phone's width would have unreadably small text."""
    wide = draw(chart_id, title, months, series, summary, **options)
    recent = [Series(s.name, list(s.values)[-PHONE_MONTHS:], s.color) for s in series]
    shown = months[-PHONE_MONTHS:]
    phone = draw(f"{chart_id}-phone", title, shown, recent,
                 f"{summary} This drawing shows {shown[0]} to {shown[-1]}.",
                 width=PHONE_WIDTH, **options)
    return (f"<h3>{esc(title)}</h3><div class=\"gd-chart-wide\">{wide}</div>"
            f"<div class=\"gd-chart-phone\">{phone}</div>")


def _table(caption: str, first: str, rows: Sequence[str], columns: Sequence[Series]) -> str:
    head = f"<th>{esc(first)}</th>" + "".join(f"<th>{esc(c.name)}</th>" for c in columns)
    body = []
    for n, row in enumerate(rows):
        cells = "".join(f"<td>{_cell(c.values[n] if n < len(c.values) else None)}</td>"
                        for c in columns)
        body.append(f"<tr><td>{esc(row)}</td>{cells}</tr>")
    return (f'<details class="gd-numbers"><summary>{esc(caption)}</summary>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"</details>")


def _cell(value: float | None) -> str:
    return "–" if value is None else esc(number(value))


def _definitions() -> str:
    items = [
        "An issue is opened when it is created and closed when its status becomes a closed "
        "one; a reopened issue counts as open.",
        "Open at the end of a month: created before the month ended and not closed by then.",
        "First response: the first public comment by someone other than the customer and the "
        "person who opened the issue; internal notes do not count. It is counted in the month it "
        "was made, and a close time in the month the issue was closed.",
        "Median and 90th percentile: linear interpolation between the nearest ranks (numpy's "
        "default method). Half the issues took no longer than the median, nine in ten no longer "
        "than the 90th percentile.",
    ]
    return "<h2>How these are counted</h2><ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
