"""`gitdesk report`: every number of a small tracker with fixed times, worked out by hand.

SLA: high = 1 h to respond, 1 day to resolve; normal has none. Staff: Alice, Bob.
Each ticket is opened by its customer (as mail would), so staff replies are responses.

  #1 high   opened 01-10 09:00 by carol; Bob answers 09:30 (30 m, met); assigned to Bob,
            closed by Bob 12:00 (3 h, met)
  #2 high   opened 01-20 10:00 by dave; assigned to Alice; Alice answers 12:00 (2 h: missed);
            still open at the report's end: resolve missed
  #3 high   opened 02-05 08:00 by erin; set waiting 08:10 (resolve paused after 10 m);
            never answered: response missed (waiting does not pause it)
  #4 normal opened 02-10 10:00 by frank; Alice answers 02-11 10:00 (24 h); Bob adds an
            internal note (never counted); no SLA

The report runs until 03-01 00:00, by month, from 01-01.
"""

from __future__ import annotations

import json

import pytest

from conftest import git

ALICE = "Alice Admin <alice@example.com>"
BOB = "Bob Staff <bob@example.com>"
UNTIL = ["--since", "2026-01", "--until", "2026-03-01"]


@pytest.fixture
def desk(tracker_dir, cli, monkeypatch):
    settings = tracker_dir / "gitdesk.yml"
    text = settings.read_text().replace("staff: []", "staff:\n  - {name: Alice Admin, email: alice@example.com}\n"
                                        "  - {name: Bob Staff, email: bob@example.com}")
    settings.write_text(text + "\nsla:\n  high: {response: 1h, resolve: 1d}\n")
    git(tracker_dir, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-qam", "sla")

    def do(when: str, who: str, *args: str) -> None:
        monkeypatch.setenv("GITDESK_NOW", f"2026-{when}:00Z")
        monkeypatch.setenv("GITDESK_USER", who)
        cli(*args)

    do("01-10T09:00", "Carol <carol@c.example>", "issue", "new", "Mail down", "-p", "high", "-t", "ticket",
       "--customer", "carol@c.example")
    do("01-10T09:30", BOB, "issue", "comment", "1", "-m", "Looking")
    do("01-10T09:31", ALICE, "issue", "assign", "1", "bob@example.com")
    do("01-10T12:00", BOB, "issue", "close", "1", "--resolution", "fixed")
    do("01-20T10:00", "Dave <dave@d.example>", "issue", "new", "Slow site", "-p", "high", "-t", "ticket",
       "--customer", "dave@d.example", "-l", "web")
    do("01-20T10:05", ALICE, "issue", "assign", "2", "me")
    do("01-20T12:00", ALICE, "issue", "comment", "2", "-m", "On it")
    do("02-05T08:00", "Erin <erin@e.example>", "issue", "new", "DNS", "-p", "high", "-t", "ticket",
       "--customer", "erin@e.example", "-l", "dns", "-l", "web")
    do("02-05T08:10", BOB, "issue", "set", "3", "status=waiting")
    do("02-10T10:00", "Frank <frank@f.example>", "issue", "new", "Typo", "-t", "bug")
    do("02-11T10:00", ALICE, "issue", "comment", "4", "-m", "Fixed")
    do("02-11T11:00", BOB, "issue", "comment", "4", "--internal", "-m", "note")
    monkeypatch.setenv("GITDESK_NOW", "2026-03-05T00:00:00Z")
    return tracker_dir


def test_periods_breaches_and_people_by_hand(desk, cli):
    data = json.loads(cli("gitdesk", "report", *UNTIL, "--json").output)
    jan, feb = data["periods"]
    assert (jan["period"], jan["opened"], jan["closed"], jan["backlog"]) == ("2026-01", 2, 1, 1)
    assert (feb["period"], feb["opened"], feb["closed"], feb["backlog"]) == ("2026-02", 2, 0, 3)
    # responses in January: 30 min and 2 h -> median 75 min, p90 30 + 0.9 * 90 = 111 min
    assert jan["first_response"] == {"count": 2, "median_seconds": 4500, "p90_seconds": 6660}
    assert feb["first_response"] == {"count": 1, "median_seconds": 86400, "p90_seconds": 86400}
    assert jan["close"] == {"count": 1, "median_seconds": 10800, "p90_seconds": 10800}
    assert data["sla_breaches"] == [
        {"period": "2026-01", "counted": 2, "response": 1, "resolve": 1},
        {"period": "2026-02", "counted": 1, "response": 1, "resolve": 0},
    ]
    assert data["people"] == [
        {"who": "alice@example.com", "open": 1, "closed": 0, "replies": 2, "first_responses": 2},
        {"who": "bob@example.com", "open": 0, "closed": 1, "replies": 1, "first_responses": 1},
    ]
    assert feb["labels"] == {"dns": 1, "web": 1} and jan["labels"] == {"web": 1}
    assert data["types"] == {"ticket": 3, "bug": 1}


def test_csv_tables(desk, cli):
    periods = cli("gitdesk", "report", *UNTIL, "--csv").output.splitlines()
    assert periods[0].startswith("period,start,end,opened,closed,backlog,response_count,")
    assert periods[1] == ("2026-01,2026-01-01T00:00:00+00:00,2026-02-01T00:00:00+00:00,2,1,1,"
                          "2,4500,6660,1,10800,10800,2,1,1")
    assert periods[2] == ("2026-02,2026-02-01T00:00:00+00:00,2026-03-01T00:00:00+00:00,2,0,3,"
                          "1,86400,86400,0,,,1,1,0")
    labels = cli("gitdesk", "report", *UNTIL, "--csv", "--table", "labels").output.splitlines()
    assert labels == ["period,label,count", "2026-01,web,1", "2026-02,dns,1", "2026-02,web,1"]
    people = cli("gitdesk", "report", *UNTIL, "--csv", "--table", "people").output.splitlines()
    assert people == ["who,open,closed,replies,first_responses", "alice@example.com,1,0,2,2",
                      "bob@example.com,0,1,1,1"]


def test_the_table_for_people(desk, cli):
    out = cli("gitdesk", "report", *UNTIL).output
    assert out.splitlines()[0] == "2026-01 to 2026-02: 4 opened, 1 closed, 3 open now, 1 not yet answered"
    row = next(line for line in out.splitlines()[1:] if line.startswith("2026-01 "))
    assert row.split()[:4] == ["2026-01", "2", "1", "1"] and "1/1" in row
    assert "1h 15m / 1h 51m" in row


def test_public_counts_only_what_the_site_shows(desk, cli):
    data = json.loads(cli("gitdesk", "report", *UNTIL, "--public", "--json").output)
    assert (data["opened"], data["types"]) == (1, {"bug": 1})
    assert data["people"][0] == {"who": "alice@example.com", "open": 0, "closed": 0, "replies": 1,
                                 "first_responses": 1}


def test_a_bad_date_is_one_line(desk, cli):
    result = cli("gitdesk", "report", "--since", "last tuesday", ok=False)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --since: 'last tuesday' is not a date "
                                     "(2026-03, 2026-03-01 or 2026-03-01T10:00Z)")
