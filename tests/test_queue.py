"""The work queue (kb/queue.md): its order, what is left out of it, and ``issue queue``,
``issue next`` and ``issue take``, including many people taking at once from one clone.

The clock stands at Monday 2026-03-02 12:00 UTC unless a test moves it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import commit_count, git, run_bin, status
from gitdesk.timeutil import parse_time

NOW = "2026-03-02T12:00:00Z"
ALICE = "Alice Admin <alice@example.com>"
BOB = "Bob Builder <bob.builder@example.com>"
SETTINGS = """\
staff:
  - {name: Alice Admin, email: alice@example.com, role: admin}
  - {name: Bob Builder, email: bob.builder@example.com}
sla:
  high: {response: 4h, resolve: 1d}
  normal: {resolve: 8h}
  types:
    bug: {normal: {resolve: 12h}}
    feature: none
"""
# id: (title, type, priority, created at, status) -- the desk of most tests
ISSUES = {
    1: ("Normal ticket", "ticket", "normal", "08:00", None),       # resolve due 16:00
    2: ("High ticket", "ticket", "high", "10:00", None),           # response due 14:00
    3: ("Normal bug", "bug", "normal", "07:00", None),             # resolve due 19:00
    4: ("Normal feature", "feature", "normal", "06:00", None),     # no SLA
    5: ("Low, younger", "ticket", "low", "05:00", None),
    6: ("Low, older", "ticket", "low", "04:00", None),
    7: ("Critical, waiting", "ticket", "critical", "09:00", "waiting"),
    8: ("Critical, closed", "ticket", "critical", "09:00", "closed"),
}
DEFAULT_ORDER = [2, 1, 3, 4, 6, 5]


def configure(root, text: str, replace: str = "staff: []\n") -> None:
    path = root / "gitdesk.yml"
    path.write_text(path.read_text(encoding="utf-8").replace(replace, text), encoding="utf-8")
    git(root, "-c", "user.name=Owner", "-c", "user.email=owner@example.com",
        "commit", "-q", "-m", "settings", "gitdesk.yml")


@pytest.fixture
def desk(cli, tracker_dir, monkeypatch):
    """The issues above, opened in one commit (through the same actions as ``issue new``)."""
    from gitdesk import Tracker
    from gitdesk.issues import actions

    configure(tracker_dir, SETTINGS)
    tracker = Tracker(tracker_dir, mail=False)
    with tracker.change() as change:
        for title, kind, prio, hhmm, status in ISSUES.values():
            draft = actions.draft_issue(tracker, title, type=kind, priority=prio, labels=[kind],
                                        status=status, created=parse_time(f"2026-03-02T{hhmm}:00Z"),
                                        body=f"What {title} is about.")
            actions.open_issue(change, draft)
        change.message = "the desk"
    monkeypatch.setenv("GITDESK_NOW", NOW)
    return cli


def queue_ids(cli, *args: str) -> list[int]:
    return [item["id"] for item in json.loads(cli("issue", "queue", "--json", *args).output)]


def subject(root) -> str:
    return git(root, "log", "-1", "--format=%s").strip()


# -- the order -------------------------------------------------------------------------------------

def test_order_is_priority_then_sla_due_time_then_age(desk):
    """High first; among the normal ones the earliest SLA due time, then those without an
    SLA; the two low ones by age. Waiting and closed issues are not in the queue."""
    assert queue_ids(desk) == DEFAULT_ORDER
    assert desk("issue", "queue").output == (
        "RANK  ID  PRIORITY  STATUS  TAKEN BY  SLA                 AGE  TITLE\n"
        "1     #2  high      new     -         response due in 2h  2h   High ticket\n"
        "2     #1  normal    new     -         resolve due in 4h   4h   Normal ticket\n"
        "3     #3  normal    new     -         resolve due in 7h   5h   Normal bug\n"
        "4     #4  normal    new     -         -                   6h   Normal feature\n"
        "5     #6  low       new     -         -                   8h   Low, older\n"
        "6     #5  low       new     -         -                   7h   Low, younger\n")


@pytest.mark.parametrize("order, expected", [
    ("[age]", [6, 5, 4, 3, 1, 2]),
    ("[sla, priority]", [2, 1, 3, 4, 5, 6]),       # no SLA comes last; ties by id
    ("[priority, age]", [2, 4, 3, 1, 6, 5]),
])
def test_order_is_configurable(desk, tracker_dir, order, expected):
    configure(tracker_dir, f"queue:\n  order: {order}\nstaff:", replace="staff:")
    assert queue_ids(desk) == expected


def test_an_overdue_item_moves_up_within_its_priority(desk, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T17:00:00Z")
    desk("issue", "set", "3", "priority=high")  # bug, high: response due 11:00, long overdue
    assert queue_ids(desk)[:2] == [3, 2]
    item = json.loads(desk("issue", "queue", "--json", "-n", "1").output)[0]
    assert item["sla"]["response"]["text"] == "response overdue by 6h"
    assert item["sla"]["due"] == "2026-03-02T11:00:00Z" and item["sla"]["breached"] is True


def test_waiting_items_leave_the_queue_and_come_back_at_their_place(desk):
    desk("issue", "set", "2", "status=waiting")
    assert queue_ids(desk) == [1, 3, 4, 6, 5]
    desk("issue", "set", "2", "status=open")
    assert queue_ids(desk) == DEFAULT_ORDER
    desk("issue", "close", "1")
    assert 1 not in queue_ids(desk)


def test_waiting_statuses_are_configurable(desk, tracker_dir):
    configure(tracker_dir, "queue:\n  waiting_statuses: [new]\n  working_status: waiting\nstaff:",
              replace="staff:")
    assert queue_ids(desk) == [7]
    desk("issue", "take")
    assert git(tracker_dir, "log", "-1", "--format=%s").strip() == "#7 take: alice@example.com"


def test_a_customer_reply_by_mail_puts_a_waiting_ticket_back(cli, tracker_dir, monkeypatch):
    """mail.reopen moves waiting -> open; the queue follows the status, and the pause is kept."""
    from gitdesk import Tracker
    from gitdesk.mail.gateway import Envelope, Gateway

    def mail(subject: str, mid: str, date: str) -> None:
        raw = (f"From: Bob Customer <bob@customer.example>\nTo: support@desk.example.com\n"
               f"Subject: {subject}\nDate: {date}\nMessage-ID: <{mid}>\n\nHello\n").encode()
        gateway = Gateway(Tracker(tracker_dir))
        try:
            gateway.ingest(raw, Envelope("bob@customer.example", ["support@desk.example.com"]))
        finally:
            gateway.close()

    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T09:00:00Z")
    mail("Site is down", "first@c", "Mon, 02 Mar 2026 09:00:00 +0000")
    assert queue_ids(cli) == [1]
    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T10:00:00Z")
    cli("issue", "set", "1", "status=waiting")
    assert queue_ids(cli) == []
    monkeypatch.setenv("GITDESK_NOW", "2026-03-02T12:00:00Z")
    mail("Re: [#1] Site is down", "second@c", "Mon, 02 Mar 2026 12:00:00 +0000")
    assert queue_ids(cli) == [1]
    assert "paused_seconds: 7200" in (tracker_dir / "issues/1/issue.md").read_text()


# -- next and take ----------------------------------------------------------------------------------

def test_next_shows_the_first_free_item_and_take_takes_it_in_one_commit(desk, tracker_dir):
    assert desk("issue", "next").output == (
        "#2 High ticket\nrank 1 · high · new · ticket · response due in 2h · resolve due in 22h\n"
        "Take it with: issue take 2\n")
    before = commit_count(tracker_dir)
    assert desk("issue", "take").output == "#2 status: new -> open\n#2 assignee: none -> alice@example.com\n"
    assert commit_count(tracker_dir) == before + 1
    assert subject(tracker_dir) == "#2 take: alice@example.com (status: new -> open)"
    assert git(tracker_dir, "show", "--name-only", "--format=", "HEAD").split() == ["issues/2/issue.md"]
    changed = [line for line in git(tracker_dir, "show", "--format=", "-U0", "HEAD").splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-status: new", "+status: open", "+assignee: alice@example.com",
                       "-updated: 2026-03-02T10:00:00Z", "+updated: 2026-03-02T12:00:00Z"]
    assert "What High ticket is about." in (tracker_dir / "issues/2/issue.md").read_text()
    assert git(tracker_dir, "log", "-1", "--format=%an <%ae>").strip() == ALICE
    assert status(tracker_dir) == ""
    assert desk("issue", "next").output.startswith("#1 Normal ticket\nrank 2 · ")
    assert queue_ids(desk) == DEFAULT_ORDER  # taking does not change the order


def test_taking_what_someone_else_holds_is_refused_unless_forced(desk, tracker_dir):
    desk("issue", "take", "2")
    before = commit_count(tracker_dir)
    result = desk("issue", "take", "#2", env={"GITDESK_USER": BOB}, ok=False)
    assert (result.exit_code, result.stderr) == (
        1, "Error: #2 is taken by Alice Admin <alice@example.com>; use --force to take it over\n")
    assert commit_count(tracker_dir) == before
    out = desk("issue", "take", "2", "--force", env={"GITDESK_USER": BOB}).output
    assert out == "#2 assignee: alice@example.com -> bob.builder@example.com\n"
    assert subject(tracker_dir) == "#2 take: bob.builder@example.com from alice@example.com"
    assert desk("issue", "take", "2", env={"GITDESK_USER": "Bob Builder"}).output == "#2 is already yours\n"
    result = desk("issue", "take", env={"GITDESK_USER": "Zed <zed@example.com>"}, ok=False)
    assert result.stderr == "Error: zed@example.com is not on the staff list in gitdesk.yml: only staff take work\n"
    assert commit_count(tracker_dir) == before + 1


def test_take_refuses_closed_issues_and_keeps_a_waiting_status(desk, tracker_dir):
    result = desk("issue", "take", "8", ok=False)
    assert result.stderr == "Error: #8 is closed (status: closed); reopen it first\n"
    desk("issue", "take", "7")
    assert subject(tracker_dir) == "#7 take: alice@example.com"
    assert "status: waiting" in (tracker_dir / "issues/7/issue.md").read_text()


def test_take_with_filters_and_when_nothing_is_free(desk, tracker_dir):
    desk("issue", "take", "-t", "bug")
    assert subject(tracker_dir) == "#3 take: alice@example.com (status: new -> open)"
    assert desk("issue", "next", "-p", "low").output.startswith("#6 Low, older\n")
    for _ in range(5):
        desk("issue", "take")
    result = desk("issue", "take", ok=False)
    assert result.stderr == "Error: nothing to take: every item in the queue is taken (see issue queue)\n"
    assert desk("issue", "next").stderr == "Nothing to take: every item in the queue is taken (see issue queue).\n"
    assert desk("issue", "next", "--json").output == "null\n"
    result = desk("issue", "take", "2", "-t", "bug", ok=False)
    assert result.exit_code == 2 and "give an ID or filters, not both" in result.stderr


def test_queue_filters(desk):
    desk("issue", "take", "1")
    desk("issue", "take", "3", env={"GITDESK_USER": BOB})
    assert queue_ids(desk, "--mine") == [1]
    assert queue_ids(desk, "--assignee", "bob.builder") == [3]
    assert queue_ids(desk, "--unassigned") == [2, 4, 6, 5]
    assert queue_ids(desk, "--assignee", "none", "-p", "low") == [6, 5]
    assert queue_ids(desk, "-t", "ticket", "-l", "TICKET") == [2, 1, 6, 5]
    assert desk("issue", "queue", "-t", "task").stderr == "No items in the queue match.\n"
    table = desk("issue", "queue", "--mine").output
    assert table.splitlines()[1].split()[:5] == ["2", "#1", "normal", "open", "Alice"]


def test_json_is_the_issue_list_shape_plus_queue_fields(desk):
    desk("issue", "take", "1")
    listed = {i["id"]: i for i in json.loads(desk("issue", "list", "--json").output)}
    queue = json.loads(desk("issue", "queue", "--json").output)
    for item in queue:
        assert {k: v for k, v in item.items() if k not in ("rank", "sla", "taken_by")} == listed[item["id"]]
    assert [(q["rank"], q["taken_by"]) for q in queue[:2]] == [(1, None), (2, "alice@example.com")]
    assert queue[0]["sla"] == {
        "due": "2026-03-02T14:00:00Z", "breached": False,
        "response": {"target_seconds": 14400, "elapsed_seconds": 7200, "left_seconds": 7200,
                     "state": "running", "breached": False, "due": "2026-03-02T14:00:00Z",
                     "text": "response due in 2h"},
        "resolve": {"target_seconds": 86400, "elapsed_seconds": 7200, "left_seconds": 79200,
                    "state": "running", "breached": False, "due": "2026-03-03T10:00:00Z",
                    "text": "resolve due in 22h"}}
    assert queue[3]["sla"] is None  # the feature
    nxt = json.loads(desk("issue", "next", "--json").output)
    assert (nxt["id"], nxt["rank"], nxt["taken_by"]) == (2, 1, None)
    taken = json.loads(desk("issue", "take", "--json").output)
    assert (taken["id"], taken["rank"], taken["taken_by"], taken["status"]) == (2, 1, "alice@example.com", "open")


# -- many people at once -----------------------------------------------------------------------------

def test_ten_people_taking_at_once_from_one_clone_never_get_the_same_item(cli, tracker_dir):
    for n in range(1, 6):
        cli("issue", "new", f"Item {n}")
    before = commit_count(tracker_dir)

    def take(n: int):
        return run_bin("issue", "take", cwd=tracker_dir,
                       env={"GITDESK_USER": f"User {n} <u{n}@example.com>", "GITDESK_NOW": NOW})

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(take, range(10)))
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 5 and len(lost) == 5
    assert {r.stderr for r in lost} == {
        "Error: nothing to take: every item in the queue is taken (see issue queue)\n"}
    assert commit_count(tracker_dir) == before + 5
    subjects = git(tracker_dir, "log", f"-{5}", "--format=%s").splitlines()
    taken = sorted(int(s.split()[0][1:]) for s in subjects)
    assert taken == [1, 2, 3, 4, 5]
    takers = {s.split()[2] for s in subjects}
    assert len(takers) == 5
    winners = {line.split(" -> ")[1] for r in won for line in r.stdout.splitlines() if "assignee" in line}
    assert winners == takers
    assert status(tracker_dir) == ""


# -- gitdesk.yml errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    ("queue:\n  order: [priority, speed]\n", "queue.order: 'speed' is not one of priority, sla, due, age, updated, id"),
    ("queue:\n  order: [age, age]\n", "queue.order: names a key twice"),
    ("queue:\n  order: age\n", "queue.order: must be a list of: priority, sla, due, age, updated, id"),
    ("queue:\n  working_status: closed\n",
     "queue.working_status: 'closed' is not one of new, open (an open status that does not wait on the customer)"),
    ("queue:\n  waiting_statuses: [pending]\n",
     "queue.waiting_statuses: 'pending' is not an open status of the schema (new, open, waiting)"),
    ("queue:\n  wait: [waiting]\n",
     "queue.wait: unknown setting (expected one of: order, working_status, waiting_statuses)"),
    ("queue: yes\n", "queue must be a mapping"),
])
def test_bad_queue_settings_are_one_line_errors_naming_the_key(cli, tracker_dir, text, error):
    configure(tracker_dir, text + "staff: []\n")
    for command in (("issue", "queue"), ("issue", "take")):
        result = cli(*command, ok=False)
        assert (result.exit_code, result.stderr, result.stdout) == (1, f"Error: gitdesk.yml: {error}\n", "")
