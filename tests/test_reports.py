"""gitdesk.reports: every number of a small tracker with fixed times, worked out by hand.

The tracker (times UTC, 2026; the report is made "now" = 03-20 00:00):

  #1 bug [mail, dns]   opened 01-05 10:00 by Alice for carol; Alice (the author) comments
                       10:30, carol 11:00, Bob an internal note 12:00, Bob publicly 01-06
                       10:00 (first response: 24 h); closed 02-10 10:00 (36 days)
  #2 ticket [mail]     opened 01-20 00:00 for dave; Bob answers 02:00 (2 h); open
  #3 bug [billing]     opened 02-01 00:00; answered 02-03 00:00 (48 h); status resolved with
                       no ``closed`` field, updated 02-05 00:00 (closed after 4 days)
  #4 feature [mail]    opened 02-15 12:00; no answer; open
  #5 bug []            opened 03-01 00:00; answered 06:00 (6 h); closed 03-02 00:00 (1 day)
  #6 task [dns, mail]  opened 03-10 00:00; closed 03-11 and reopened 03-12: open, no answer
"""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from gitdesk.issues import actions
from gitdesk.reports import (
    Stats,
    build_report,
    first_response,
    load_issues,
    percentile,
    person_key,
)

UTC = dt.timezone.utc
ALICE = "Alice Admin <alice@example.com>"
BOB = "Bob Staff <bob@example.com>"
UNTIL = dt.datetime(2026, 3, 20, tzinfo=UTC)
H = 3600
DAY = 86400


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-{text}:00+00:00")


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=round(n * H))


def days(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=round(n * DAY))


@pytest.fixture
def desk(tracker, monkeypatch):
    def when(text: str, who: str = ALICE) -> None:
        monkeypatch.setenv("GITDESK_NOW", f"2026-{text}:00Z")
        monkeypatch.setenv("GITDESK_USER", who)

    def new(text: str, title: str, kind: str, labels: list[str], customer: str | None = None):
        when(text)
        return actions.new_issue(tracker, title, type=kind, labels=labels, customer=customer,
                                 visibility="public")

    def comment(text: str, who: str, number: int, internal: bool = False) -> None:
        when(text, who)
        actions.add_comment(tracker, number, f"comment at {text}", internal=internal)

    new("01-05T10:00", "One", "bug", ["mail", "dns"], customer="carol@example.org")
    comment("01-05T10:30", ALICE, 1)
    comment("01-05T11:00", "Carol <CAROL@example.org>", 1)
    comment("01-05T12:00", BOB, 1, internal=True)
    comment("01-06T10:00", BOB, 1)
    when("02-10T10:00")
    actions.close(tracker, 1)
    new("01-20T00:00", "Two", "ticket", ["mail"], customer="dave@example.net")
    comment("01-20T02:00", BOB, 2)
    new("02-01T00:00", "Three", "bug", ["billing"])
    comment("02-03T00:00", BOB, 3)
    path = tracker.root / "issues/3/issue.md"  # resolved by hand: no ``closed`` field
    text = path.read_text().replace("status: new", "status: resolved")
    path.write_text(text.replace("updated: 2026-02-01T00:00:00Z", "updated: 2026-02-05T00:00:00Z"))
    new("02-15T12:00", "Four", "feature", ["mail"])
    new("03-01T00:00", "Five", "bug", [])
    comment("03-01T06:00", BOB, 5)
    when("03-02T00:00")
    actions.close(tracker, 5)
    new("03-10T00:00", "Six", "task", ["dns", "mail"])
    when("03-11T00:00")
    actions.close(tracker, 6)
    when("03-12T00:00")
    actions.reopen(tracker, 6)
    monkeypatch.delenv("GITDESK_NOW")
    return tracker


def _report(tracker, **options):
    issues, warnings = load_issues(tracker, public=False)
    assert warnings == []
    return build_report(issues, tracker.settings.schema, **{"until": UNTIL, **options})


def test_the_tracker_is_what_the_story_says(desk):
    issues = {i.id: i for i in load_issues(desk, public=False)[0]}
    assert issues[1].closed == at("02-10T10:00") and issues[1].status == "closed"
    assert issues[3].closed is None and issues[3].status == "resolved"
    assert issues[6].closed is None and issues[6].status == "open"
    assert [c.date for c in issues[1].comments] == [
        at("01-05T10:30"), at("01-05T11:00"), at("01-05T12:00"), at("01-06T10:00")]


def test_counts_per_month(desk):
    report = _report(desk)
    assert [p.label for p in report.periods] == ["2026-01", "2026-02", "2026-03"]
    assert [(p.opened, p.closed, p.backlog) for p in report.periods] == [
        (2, 0, 2), (2, 2, 2), (2, 1, 3)]
    assert [p.start for p in report.periods] == [at("01-01T00:00"), at("02-01T00:00"),
                                                 at("03-01T00:00")]
    assert [p.end for p in report.periods] == [at("02-01T00:00"), at("03-01T00:00"), UNTIL]
    assert (report.since, report.until) == (at("01-01T00:00"), UNTIL)
    assert (report.opened, report.closed, report.open, report.unanswered) == (6, 3, 3, 2)
    assert report.skipped == 0


def test_most_common_labels_and_types_per_month(desk):
    report = _report(desk)
    assert [list(p.labels.items()) for p in report.periods] == [
        [("mail", 2), ("dns", 1)], [("billing", 1), ("mail", 1)], [("dns", 1), ("mail", 1)]]
    assert [list(p.types.items()) for p in report.periods] == [
        [("bug", 1), ("ticket", 1)], [("bug", 1), ("feature", 1)], [("bug", 1), ("task", 1)]]
    assert list(report.labels.items()) == [("mail", 4), ("dns", 2), ("billing", 1)]
    assert list(report.types.items()) == [("bug", 3), ("feature", 1), ("task", 1), ("ticket", 1)]


def test_first_response_and_close_times(desk):
    report = _report(desk)
    jan, feb, mar = report.periods
    # January: 24 h and 2 h -> median 13 h; p90 = 2 + 0.9 * 22 = 21.8 h
    assert jan.first_response == Stats(2, hours(13), hours(21.8))
    assert feb.first_response == Stats(1, hours(48), hours(48))
    assert mar.first_response == Stats(1, hours(6), hours(6))
    # all four: 2, 6, 24, 48 h -> median 15 h; p90 at rank 2.7: 24 + 0.7 * 24 = 40.8 h
    assert report.first_response == Stats(4, hours(15), hours(40.8))
    assert jan.close == Stats(0, None, None)
    # February: 36 and 4 days -> median 20; p90 = 4 + 0.9 * 32 = 32.8 days
    assert feb.close == Stats(2, days(20), days(32.8))
    assert mar.close == Stats(1, days(1), days(1))
    # all three: 1, 4, 36 days -> median 4; p90 at rank 1.8: 4 + 0.8 * 32 = 29.6 days
    assert report.close == Stats(3, days(4), days(29.6))
    assert report.close.to_json() == {"count": 3, "median_seconds": 4 * DAY,
                                      "p90_seconds": round(29.6 * DAY)}


def test_who_counts_as_a_first_response(desk):
    one = desk.issues.load(1, comments=True)
    # Alice wrote the issue and carol is its customer (in another case); Bob's note is internal
    assert first_response(one).date == at("01-06T10:00")
    assert first_response(one, one.comments[:3]) is None
    one.author = None  # with no author on record, Alice's reply is the first response
    assert first_response(one).date == at("01-05T10:30")
    assert person_key("Carol <CAROL@example.org>") == person_key("carol@example.org")
    assert person_key("Bob Staff") == "bob staff" != person_key(BOB)


def test_weeks(desk):
    report = _report(desk, by="week")
    labels = [p.label for p in report.periods]
    assert labels[0] == "2026-W02" and labels[-1] == "2026-W12" and len(labels) == 11
    assert report.periods[0].start == at("01-05T00:00")  # a Monday
    opened = {p.label: p.opened for p in report.periods if p.opened}
    assert opened == {"2026-W02": 1, "2026-W04": 1, "2026-W05": 1, "2026-W07": 1,
                      "2026-W09": 1, "2026-W11": 1}  # 02-01, 02-15 and 03-01 are Sundays
    closed = {p.label: p.closed for p in report.periods if p.closed}
    assert closed == {"2026-W06": 1, "2026-W07": 1, "2026-W10": 1}
    assert [p.backlog for p in report.periods] == [1, 1, 2, 3, 2, 2, 2, 3, 2, 3, 3]
    assert report.first_response == Stats(4, hours(15), hours(40.8))


def test_limit_keeps_the_latest_periods_and_counts_the_backlog_before_them(desk):
    report = _report(desk, limit=2)
    assert [p.label for p in report.periods] == ["2026-02", "2026-03"]
    assert [p.backlog for p in report.periods] == [2, 3]
    assert (report.opened, report.closed) == (4, 3)
    # January's responses (24 h, 2 h) fall before the window: 48 h and 6 h remain
    assert report.first_response == Stats(2, hours(27), hours(43.8))
    assert list(report.labels.items()) == [("mail", 2), ("billing", 1), ("dns", 1)]


def test_since_rounds_down_to_its_month(desk):
    report = _report(desk, since=at("02-14T08:00"))
    assert [p.label for p in report.periods] == ["2026-02", "2026-03"]
    assert report.opened == 4
    naive = _report(desk, since=dt.datetime(2026, 2, 14), until=dt.datetime(2026, 3, 20))
    assert naive == report  # naive times are UTC


def test_an_earlier_until_sees_the_past_as_it_was(desk):
    until = at("02-10T10:00")  # #1 closes at this very moment: not yet closed
    report = _report(desk, until=until)
    assert [p.label for p in report.periods] == ["2026-01", "2026-02"]
    assert report.periods[-1].end == until
    assert [(p.opened, p.closed, p.backlog) for p in report.periods] == [(2, 0, 2), (1, 1, 2)]
    assert report.close == Stats(1, days(4), days(4))
    assert report.unanswered == 0
    assert report.types == {"bug": 2, "ticket": 1}


def test_no_issues_no_periods(tracker):
    report = build_report([], tracker.settings.schema, until=UNTIL)
    assert report.periods == () and report.open == 0 and report.since is None
    assert report.first_response == Stats(0, None, None)
    with pytest.raises(ValueError, match="month, week"):
        build_report([], tracker.settings.schema, by="year")


def test_an_issue_without_a_valid_created_time_is_skipped(desk):
    path = desk.root / "issues/2/issue.md"
    path.write_text(path.read_text().replace("created: 2026-01-20T00:00:00Z\n", ""))
    report = _report(desk)
    assert report.skipped == 1
    assert [p.label for p in report.periods][0] == "2026-01"  # not 1970
    assert [(p.opened, p.closed, p.backlog) for p in report.periods] == [
        (1, 0, 1), (2, 2, 1), (2, 1, 2)]


def test_public_report_counts_public_issues_and_comments_only(desk, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", "2026-03-15T00:00:00Z")
    actions.new_issue(desk, "Private", type="ticket", labels=["secret"], visibility="private")
    actions.set_fields(desk, 4, [("visibility", "=", "private")])
    issues, _ = load_issues(desk, public=True)
    assert sorted(i.id for i in issues) == [1, 2, 3, 5, 6]
    assert all(c.is_public for i in issues for c in i.comments)
    assert len(next(i for i in issues if i.id == 1).comments) == 3  # the note is left out
    report = build_report(issues, desk.settings.schema, until=UNTIL)
    assert "secret" not in report.labels and report.types.get("feature") is None
    assert [p.opened for p in report.periods] == [2, 1, 2]
    everything, _ = load_issues(desk, public=False)
    assert build_report(everything, desk.settings.schema, until=UNTIL).labels["secret"] == 1


def test_percentile_is_linear_between_closest_ranks():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.9) == 7
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7)
    values = [5, 1, 9, 30, 2, 2, 14]
    # the same as Python's own "inclusive" quantiles, which is this method
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert percentile(values, 0.9) == pytest.approx(deciles[8])
    assert percentile(values, 0.5) == statistics.median(values) == 5
