"""SLA clocks (kb/queue.md): response and resolve times counted from ``created``, the pause
while an issue waits on the customer (kept in its frontmatter, not read from git), business
hours, ``issue list --overdue``, and gitdesk.yml errors that name the key.

All times are fixed with GITDESK_NOW; the day is Monday 2026-03-02 unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import git
from gitdesk.config import parse_settings
from gitdesk.issues.hours import counted, shift
from gitdesk.issues.model import Comment, Issue
from gitdesk.issues.sla import clocks
from gitdesk.queueconfig import BusinessHours, format_duration, parse_duration

UTC = dt.timezone.utc
BOB = "Bob Staff <bob@example.com>"
SLA = """\
sla:
  critical: {response: 1h, resolve: 4h}
  high: {response: 4h, resolve: 1d}
  normal: {resolve: 3h}
  types:
    bug: {critical: {resolve: 2d}}
    feature: none
"""


def at(hhmm: str, day: str = "2026-03-02") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def configure(root, text: str) -> None:
    path = root / "gitdesk.yml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    git(root, "-c", "user.name=Owner", "-c", "user.email=owner@example.com",
        "commit", "-q", "-m", "settings: sla", "gitdesk.yml")


@pytest.fixture
def desk(cli, tracker_dir, monkeypatch):
    """The CLI on a tracker with the SLA above; ``desk.at("13:00")`` sets the clock."""
    configure(tracker_dir, SLA)

    def when(hhmm: str, day: str = "2026-03-02") -> None:
        monkeypatch.setenv("GITDESK_NOW", f"{day}T{hhmm}:00Z")

    cli.at = when
    return cli


def sla_line(cli, issue_id: str) -> str:
    lines = [line for line in cli("issue", "show", issue_id).output.splitlines() if line.startswith("sla: ")]
    return lines[0] if lines else ""


def frontmatter(root, issue_id: int) -> str:
    return (root / f"issues/{issue_id}/issue.md").read_text(encoding="utf-8").split("---")[1]


# -- durations ----------------------------------------------------------------------------------

def test_durations_read_and_print():
    assert [parse_duration(t) for t in ("30m", "4h", "2d", "1h 30m", "1w", "90s")] == \
        [1800, 14400, 172800, 5400, 604800, 90]
    for bad in ("4", "4 hours", "h", "0m", "", "-1h", 3600, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(s) for s in (45, 60, 7800, 7859, 86400 + 4 * 3600 + 300, 3 * 86400 + 59)] == \
        ["45s", "1m", "2h 10m", "2h 10m", "1d 4h", "3d"]


# -- the resolve clock and its pause --------------------------------------------------------------

def test_waiting_pauses_the_resolve_clock_and_the_file_keeps_the_pause(desk, tracker_dir):
    """Created 09:00 with a 3 h resolve target; waiting 10:00-12:00; at 13:00, 2 h are used."""
    desk.at("09:00")
    desk("issue", "new", "Slow site")
    desk.at("10:00")
    desk("issue", "set", "1", "status=waiting")
    assert "waiting_since: 2026-03-02T10:00:00Z" in frontmatter(tracker_dir, 1)
    desk.at("11:00")
    assert sla_line(desk, "1") == "sla: resolve paused, 2h left"
    desk.at("12:00")
    desk("issue", "set", "1", "status=open")
    text = frontmatter(tracker_dir, 1)
    assert "paused_seconds: 7200" in text and "waiting_since" not in text
    desk.at("13:00")
    assert sla_line(desk, "1") == "sla: resolve due in 1h"
    data = json.loads(desk("issue", "show", "1", "--json").output)
    assert data["paused_seconds"] == 7200 and data["waiting_since"] is None
    assert data["sla"] == {"due": "2026-03-02T14:00:00Z", "breached": False, "resolve": {
        "target_seconds": 10800, "elapsed_seconds": 7200, "left_seconds": 3600, "state": "running",
        "breached": False, "due": "2026-03-02T14:00:00Z", "text": "resolve due in 1h"}}
    desk.at("15:20")
    assert sla_line(desk, "1") == "sla: resolve overdue by 1h 20m"


def test_closing_stops_the_clock_and_a_reopened_issue_goes_on_where_it_stopped(desk, tracker_dir):
    desk.at("09:00")
    desk("issue", "new", "Printer")
    desk.at("10:30")
    desk("issue", "close", "1")
    desk.at("17:00")
    assert sla_line(desk, "1") == "sla: resolved in 1h 30m"
    desk("issue", "reopen", "1")  # closed 10:30-17:00: 6 h 30 m paused
    assert "paused_seconds: 23400" in frontmatter(tracker_dir, 1)
    desk.at("18:00")
    assert sla_line(desk, "1") == "sla: resolve due in 30m"
    desk.at("18:10")
    desk("issue", "set", "1", "status=waiting")
    desk.at("19:00")
    desk("issue", "close", "1")  # waiting 18:10-19:00 is paused too, then the clock stops
    assert "paused_seconds: 26400" in frontmatter(tracker_dir, 1)
    desk.at("23:00")
    assert sla_line(desk, "1") == "sla: resolved in 2h 40m"


def test_issue_edit_keeps_the_pause_unless_the_fields_are_edited_too(desk, tracker_dir):
    desk.at("09:00")
    desk("issue", "new", "Slow site")
    path = tracker_dir / "issues/1/issue.md"
    desk.at("10:00")
    desk("issue", "edit", "1", "-F", "-", input=path.read_text().replace("status: new", "status: waiting"))
    assert "waiting_since: 2026-03-02T10:00:00Z" in frontmatter(tracker_dir, 1)
    desk.at("12:00")
    desk("issue", "edit", "1", "-F", "-", input=path.read_text().replace("status: waiting", "status: open"))
    assert "paused_seconds: 7200" in frontmatter(tracker_dir, 1)
    assert "waiting_since" not in frontmatter(tracker_dir, 1)
    text = path.read_text().replace("status: open", "status: waiting").replace(
        "paused_seconds: 7200", "paused_seconds: 60")
    desk("issue", "edit", "1", "-F", "-", input=text)  # the editor's own values win
    assert "paused_seconds: 60" in frontmatter(tracker_dir, 1)
    assert "waiting_since" not in frontmatter(tracker_dir, 1)
    desk.at("13:00")
    # paused since `updated` (12:00): 3 h from created, less the 60 s written by hand
    assert sla_line(desk, "1") == "sla: resolve paused, 1m left"


def test_a_hand_edit_into_waiting_without_a_stamp_is_paused_since_updated():
    """No history is read: the file alone says when the pause began."""
    settings = parse_settings({"sla": {"normal": {"resolve": "3h"}}})
    issue = Issue(id=1, title="x", type="ticket", status="waiting", priority="normal",
                  visibility="private", created=at("09:00"), updated=at("11:00"))
    sla = clocks(issue, settings, at("13:00"), None)
    assert sla.describe() == "resolve paused, 1h left"
    # a waiting_since left behind on an open issue ended at `updated` (12:00)
    issue.status, issue.updated, issue.waiting_since = "open", at("12:00"), at("10:00")
    assert clocks(issue, settings, at("13:00"), None).describe() == "resolve due in 1h"
    # stamped by the commands: waiting since 10:00 with an earlier 30 m pause
    issue.status, issue.paused_seconds = "waiting", 1800
    assert clocks(issue, settings, at("13:00"), None).describe() == "resolve paused, 2h 30m left"


def test_bad_pause_fields_are_problems_of_the_file(cli, tracker_dir):
    cli("issue", "new", "x")
    path = tracker_dir / "issues/1/issue.md"
    path.write_text(path.read_text().replace("labels: []", "labels: []\npaused_seconds: -5\n"
                                             "waiting_since: soon"))
    out = cli("gitdesk", "check", ok=False).output
    assert "issues/1/issue.md:8: paused_seconds -5 is not a whole number of seconds" in out
    assert "issues/1/issue.md:9: waiting_since 'soon' is not a time" in out


# -- the response clock ---------------------------------------------------------------------------

def test_response_clock_stops_at_the_first_public_reply_by_someone_else(desk):
    desk.at("09:00")
    desk("issue", "new", "Site is down", "-p", "critical", "--customer", "carol@example.org")
    desk.at("09:10")
    desk("issue", "comment", "1", "-m", "Still down.", env={"GITDESK_USER": "Carol <carol@example.org>"})
    desk.at("09:20")
    desk("issue", "comment", "1", "--internal", "-m", "Looking.", env={"GITDESK_USER": BOB})
    desk.at("09:30")
    assert sla_line(desk, "1") == "sla: response due in 30m · resolve due in 3h 30m"
    desk.at("10:15")
    assert sla_line(desk, "1") == "sla: response overdue by 15m · resolve due in 2h 45m"
    desk("issue", "comment", "1", "-m", "We are on it.", env={"GITDESK_USER": BOB})
    desk.at("11:00")
    assert sla_line(desk, "1") == "sla: responded 15m late · resolve due in 2h"


def test_waiting_does_not_pause_an_unanswered_response_clock(desk):
    desk.at("09:00")
    desk("issue", "new", "Mail bounces", "-p", "critical")
    desk("issue", "set", "1", "status=waiting")
    desk.at("09:45")
    assert sla_line(desk, "1") == "sla: response due in 15m · resolve paused, 4h left"


def test_types_override_priorities_and_none_switches_the_sla_off(desk):
    desk.at("09:00")
    desk("issue", "new", "Crash", "-t", "bug", "-p", "critical")
    desk("issue", "new", "Dark mode", "-t", "feature", "-p", "critical")
    desk("issue", "new", "Later", "-p", "low")
    desk.at("10:00")
    assert sla_line(desk, "1") == "sla: response due now · resolve due in 1d 23h"
    assert sla_line(desk, "2") == "" and sla_line(desk, "3") == ""
    assert json.loads(desk("issue", "show", "2", "--json").output)["sla"] is None


# -- issue list --overdue ---------------------------------------------------------------------------

def test_list_overdue_shows_the_issues_that_missed_a_target(desk):
    desk.at("09:00")
    desk("issue", "new", "A: critical, unanswered", "-p", "critical")       # response due 10:00
    desk("issue", "new", "B: normal", "-p", "normal")                       # resolve due 12:00
    desk("issue", "new", "C: high", "-p", "high")                           # response due 13:00
    desk("issue", "new", "D: normal, waiting", "-p", "normal")
    desk("issue", "new", "E: no SLA", "-p", "low")
    desk.at("09:30")
    desk("issue", "set", "4", "status=waiting")
    desk("issue", "comment", "1", "-m", "On it.", env={"GITDESK_USER": BOB})  # in time
    desk.at("10:00")
    assert desk("issue", "list", "--overdue").stderr == "No issues match.\n"
    desk.at("12:30")
    ids = [i["id"] for i in json.loads(desk("issue", "list", "--overdue", "--json").output)]
    assert ids == [2]  # B's resolve clock; D is paused with 30m used
    desk.at("13:30")
    ids = [i["id"] for i in json.loads(desk("issue", "list", "--overdue", "--json").output)]
    assert ids == [3, 2, 1]  # A's resolve (4h) ran out at 13:00, C's response at 13:00
    desk("issue", "close", "2")
    out = desk("issue", "list", "--overdue").output
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["#3", "#1"]
    assert "#2" in desk("issue", "list", "--overdue", "--closed").output


# -- business hours ----------------------------------------------------------------------------------

HOURS = BusinessHours(frozenset(range(5)), dt.time(9), dt.time(17), "UTC")


def test_business_hours_count_only_working_time():
    friday = "2026-03-06"
    assert counted(HOURS, at("16:00", friday), at("10:00", "2026-03-09")) == 2 * 3600
    assert shift(HOURS, at("16:00", friday), 4 * 3600) == at("12:00", "2026-03-09")
    assert shift(HOURS, at("12:00", "2026-03-09"), -4 * 3600) == at("16:00", friday)
    assert shift(HOURS, at("20:00", friday), 1) == at("09:00", "2026-03-09") + dt.timedelta(seconds=1)
    # Monday 14:00 to Monday 12:00 five weeks on: 3 h, 24 whole working days (the whole weeks
    # are counted by arithmetic), 3 h
    assert counted(HOURS, at("14:00", "2026-03-02"), at("12:00", "2026-04-06")) == (3 + 24 * 8 + 3) * 3600
    start = at("15:27", "2026-03-03")
    for seconds in (1, 3600, 8 * 3600, 41 * 3600 + 17, 300 * 3600):
        assert counted(HOURS, start, shift(HOURS, start, seconds)) == seconds


def test_business_hours_follow_the_time_zone_across_daylight_saving():
    berlin = BusinessHours(frozenset(range(5)), dt.time(9), dt.time(17), "Europe/Berlin")
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC after 2026-03-29
    assert shift(berlin, at("06:00", "2026-03-27"), 3600) == at("09:00", "2026-03-27")
    assert shift(berlin, at("06:00", "2026-03-30"), 3600) == at("08:00", "2026-03-30")
    assert counted(berlin, at("00:00", "2026-03-27"), at("00:00", "2026-03-31")) == 16 * 3600


def test_sla_with_business_hours_in_the_commands(cli, tracker_dir, monkeypatch):
    configure(tracker_dir, 'sla:\n  normal: {resolve: 4h}\n'
                           '  hours: {days: mon-fri, start: "09:00", end: "17:00", tz: UTC}\n')
    monkeypatch.setenv("GITDESK_NOW", "2026-03-06T16:00:00Z")  # a Friday
    cli("issue", "new", "Backup failed")
    monkeypatch.setenv("GITDESK_NOW", "2026-03-07T12:00:00Z")  # Saturday: the clock stands
    assert sla_line(cli, "1") == "sla: resolve due in 3h"
    data = json.loads(cli("issue", "show", "1", "--json").output)
    assert data["sla"]["due"] == "2026-03-09T12:00:00Z"
    monkeypatch.setenv("GITDESK_NOW", "2026-03-09T13:30:00Z")
    assert sla_line(cli, "1") == "sla: resolve overdue by 1h 30m"


# -- gitdesk.yml errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    ("sla:\n  critical: {response: 1x}\n",
     "sla.critical.response: '1x' is not a duration (use a number and a unit: 30m, 4h, 2d, 1h 30m)"),
    ("sla:\n  critical: {response: 60}\n",
     "sla.critical.response: 60 is not a duration (use a number and a unit: 30m, 4h, 2d, 1h 30m)"),
    ("sla:\n  critical: {respond: 1h}\n", "sla.critical.respond: unknown target (expected response or resolve)"),
    ("sla:\n  urgent: {response: 1h}\n",
     "sla.urgent: not a priority of the schema (critical, high, normal, low), 'types' or 'hours'"),
    ("sla:\n  critical: 1h\n", "sla.critical: must be a mapping like {response: 1h, resolve: 4h}"),
    ("sla:\n  types: {question: none}\n",
     "sla.types.question: not a type of the schema (ticket, bug, feature, task)"),
    ("sla:\n  types: {bug: {urgent: {resolve: 1d}}}\n",
     "sla.types.bug.urgent: not a priority of the schema (critical, high, normal, low)"),
    ("sla:\n  hours: {days: mon-fry}\n",
     "sla.hours.days: 'mon-fry' is not a list of days like mon-fri or [mon, wed, fri]"),
    ("sla:\n  hours: {start: 9:00}\n", "sla.hours.start: 540 is not a time of day in quotes, like \"09:00\""),
    ('sla:\n  hours: {start: "17:00", end: "09:00"}\n',
     "sla.hours.end: must be later than hours.start (the same day)"),
    ("sla:\n  hours: {tz: Mars/Olympus}\n", "sla.hours.tz: 'Mars/Olympus' is not a time zone (e.g. UTC, Europe/Berlin)"),
    ("sla: [1h]\n", "sla must be a mapping"),
])
def test_bad_sla_settings_are_one_line_errors_naming_the_key(cli, tracker_dir, text, error):
    configure(tracker_dir, text)
    result = cli("issue", "list", ok=False)
    assert result.exit_code == 1
    assert result.stderr == f"Error: gitdesk.yml: {error}\n"
    assert result.stdout == ""


def test_reports_and_slas_share_one_definition_of_a_response():
    from gitdesk import reports
    from gitdesk.issues import sla

    assert reports.first_response is sla.first_response and reports.person_key is sla.person_key
    issue = Issue(id=1, title="x", type="ticket", status="open", priority="normal", visibility="private",
                  created=at("09:00"), updated=at("09:00"), customer="carol@example.org")
    issue.comments = [Comment("a", "Carol <CAROL@example.org>", at("09:05")),
                      Comment("b", BOB, at("09:20"), visibility="internal"),
                      Comment("c", BOB, at("09:40"))]
    assert sla.first_response(issue).id == "c"
