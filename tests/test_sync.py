"""`gitdesk sync` between clones of one shared repository (kb/sync.md): real git, a bare
repository and clones in temporary folders.

What is proved: the first push and a plain catch-up; two clones that both made #1 offline
end with #1 and #2, the later one told "#1 is now #2", its folder, comments, references and
commit messages moved along, and nothing renumbered that was pushed before; comments on one
issue from both clones all survive, even two written in the same second; different fields
changed in two clones both survive; the same field follows sync.same_field (the later
sync's value by default, the shared one, or the user's choice on a terminal) and the commit
message names the value that lost; someone pushing between fetch and push makes sync try
again; uncommitted work is kept; what a plain `git pull` leaves (a stopped merge or rebase,
a merge commit joining two #1s) is pointed out by check and repaired by sync; and a seeded
random schedule of new, comment, set, close, take, sync and the odd plain `git pull`
across three clones (GITDESK_SYNC_CLONES, _STEPS and _SEEDS make it larger) ends with
every clone equal, every comment present once, no id used twice, every pushed id keeping
its issue, and `gitdesk check` clean.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, Cli, git

NOW = "2026-03-02T10:00:00Z"


def _clone(shared: Path, folder: Path) -> Cli:
    git(folder.parent, "clone", "-q", str(shared), str(folder))
    git(folder, "config", "user.name", folder.name)
    git(folder, "config", "user.email", f"{folder.name}@example.com")
    return Cli(folder)


@pytest.fixture
def clones(tmp_path, monkeypatch):
    """A shared bare repository holding a new tracker, and a function making clones of it."""
    from gitdesk.scaffold import init

    monkeypatch.setenv("GITDESK_NOW", NOW)
    shared = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(shared))
    first = init(tmp_path / "first", name="Shared Desk")
    git(first, "remote", "add", "origin", str(shared))
    git(first, "push", "-q", "-u", "origin", "main")
    return lambda name: _clone(shared, tmp_path / name)


def sync(cli: Cli, **env) -> list[str]:
    return cli("gitdesk", "sync", env=env or None).output.splitlines()


def titles(cli: Cli) -> dict[int, str]:
    return {i["id"]: i["title"] for i in json.loads(cli("issue", "list", "--all", "--json").output)}


def shown(cli: Cli, number: int) -> dict:
    return json.loads(cli("issue", "show", str(number), "--json").output)


def test_first_push_and_catching_up(clones):
    a, b = clones("a"), clones("b")
    a("issue", "new", "Printer on fire", "-m", "Smoke.")
    assert sync(a) == ["pushed 1 commit to origin/main"]
    assert sync(b) == ["fetched 1 commit from origin/main", "up to date with origin/main"]
    assert titles(b) == {1: "Printer on fire"}
    assert sync(b) == ["up to date with origin/main"]
    b("issue", "new", "Not yet shared", "-m", "x")
    assert b("gitdesk", "sync", "--no-push").output.splitlines() == ["1 commit not pushed (--no-push)"]


def test_an_issue_made_in_both_clones_offline_is_renumbered_in_the_later_one(clones):
    a, b = clones("a"), clones("b")
    a("issue", "new", "From a", "-m", "A's text.")
    b("issue", "new", "From b", "-m", "B's text, about #1.")
    b("issue", "comment", "1", "-m", "Still #1 here.")
    assert sync(a) == ["pushed 1 commit to origin/main"]
    assert sync(b) == ["fetched 1 commit from origin/main", "#1 is now #2", "pushed 2 commits to origin/main"]
    assert titles(b) == {1: "From a", 2: "From b"}
    mine = shown(b, 2)
    assert mine["body"] == "B's text, about #2." and [c["body"] for c in mine["comments"]] == ["Still #2 here."]
    assert shown(b, 1)["body"] == "A's text." and shown(b, 1)["comments"] == []
    assert git(b.root, "log", "--format=%s", "-2").splitlines() == ["#2 comment by Alice Admin", "#2 new: From b"]
    sync(a)
    assert titles(a) == titles(b)
    assert git(a.root, "rev-parse", "HEAD") == git(b.root, "rev-parse", "HEAD")
    assert git(b.root, "status", "--porcelain") == ""


def test_comments_from_both_clones_survive_even_in_the_same_second(clones):
    a = clones("a")
    a("issue", "new", "Shared issue", "-m", "x")
    sync(a)
    b = clones("b")
    same = {"GITDESK_USER": "Carol Agent <carol@example.com>"}
    a("issue", "comment", "1", "-m", "from a", env=same)
    b("issue", "comment", "1", "-m", "from b", env=same)  # same author, same second: same file name
    sync(a)
    sync(b)
    sync(a)
    for cli in (a, b):
        assert sorted(c["body"] for c in shown(cli, 1)["comments"]) == ["from a", "from b"]


def test_fields_merge_and_the_same_field_keeps_the_later_value_and_says_so(clones):
    a = clones("a")
    a("issue", "new", "Mail bounces", "-p", "normal", "-m", "x")
    sync(a)
    b = clones("b")
    a("issue", "set", "1", "priority=high", "labels+=mail,dns")
    b("issue", "set", "1", "priority=low", "status=open", "labels+=urgent")
    sync(a)
    lines = sync(b)
    assert "#1 priority: kept low (this clone, synced later); replaced high" in lines
    issue = shown(b, 1)
    assert (issue["priority"], issue["status"], issue["labels"]) == ("low", "open", ["mail", "dns", "urgent"])
    assert "#1 priority: kept low (synced later by alice@example.com); replaced high" \
        in git(b.root, "log", "-1", "--format=%B")
    told = sync(a)  # the other clones hear of it, with who decided
    assert "from origin/main: #1 priority: kept low (synced later by alice@example.com); replaced high" in told
    assert shown(a, 1)["priority"] == "low"


def test_someone_pushing_meanwhile_makes_sync_try_again(clones):
    a, b, c = clones("a"), clones("b"), clones("c")
    b("issue", "new", "From b", "-m", "x")
    c("issue", "new", "From c", "-m", "y")
    hook = b.root / ".git/hooks/pre-push"
    hook.write_text(f"#!/bin/sh\n[ -e {b.root}/.git/raced ] && exit 0\ntouch {b.root}/.git/raced\n"
                    f"cd {c.root} && git push -q origin HEAD:main >/dev/null 2>&1\nexit 0\n")
    hook.chmod(0o755)
    lines = sync(b)
    assert "origin/main moved while syncing: tried 2 times" in lines and "#1 is now #2" in lines
    sync(a)
    assert titles(a) == {1: "From c", 2: "From b"}


def test_uncommitted_work_is_kept(clones):
    a = clones("a")
    a("issue", "new", "First", "-m", "x")
    sync(a)
    b = clones("b")
    a("issue", "comment", "1", "-m", "news")
    sync(a)
    notes = b.root / "notes.txt"
    notes.write_text("my own notes\n")
    settings = b.root / "gitdesk.yml"
    settings.write_text(settings.read_text() + "# a local remark\n")
    sync(b)
    assert notes.read_text() == "my own notes\n" and settings.read_text().endswith("# a local remark\n")
    assert [c["body"] for c in shown(b, 1)["comments"]] == ["news"]


def test_without_a_shared_repository_sync_says_how_to_add_one(cli):
    result = cli("gitdesk", "sync", ok=False)
    assert result.exit_code == 1 and "git remote add origin" in result.output


SEEDS = [int(s) for s in os.environ.get("GITDESK_SYNC_SEEDS", "1,2,3,4,5").split(",")]
CLONES = int(os.environ.get("GITDESK_SYNC_CLONES", "3"))
STEPS = int(os.environ.get("GITDESK_SYNC_STEPS", "36"))  # a larger run: 5 clones, 200 steps


@pytest.mark.parametrize("seed", SEEDS)
def test_a_random_schedule_across_clones_loses_nothing(clones, seed):
    rng = random.Random(seed)
    people = {name: clones(name) for name in "abcdefghij"[:CLONES]}
    comments: list[str] = []
    pushed: dict[int, str] = {}   # id -> title, once it reached the shared repository
    made: list[str] = []
    events: list[str] = []  # renumberings and same-field merges the schedule caused
    takers: dict[str, set[str]] = {}  # issue title -> who took it somewhere
    for step in range(STEPS):
        name = rng.choice(sorted(people))
        cli = people[name]
        mine = titles(cli)
        roll = rng.random()
        if roll < 0.25 or not mine:
            made.append(f"issue {len(made) + 1} by {name}")
            cli("issue", "new", made[-1], "-m", f"made at step {step}")
        elif roll < 0.55:
            text = f"comment {step} by {name}"
            comments.append(text)
            cli("issue", "comment", str(rng.choice(sorted(mine))), "-m", text)
        elif roll < 0.65:
            cli("issue", "set", str(rng.choice(sorted(mine))), f"priority={rng.choice(['low', 'high'])}")
        elif roll < 0.72:
            number = rng.choice(sorted(mine))
            if cli("issue", "take", str(number), env={"GITDESK_USER": f"{name} <{name}@example.com>"},
                   ok=False).exit_code == 0:
                takers.setdefault(mine[number], set()).add(f"{name}@example.com")
        elif roll < 0.75:
            cli("issue", "close", str(rng.choice(sorted(mine))), ok=False)
        elif roll < 0.79:  # someone uses a plain git pull: merged, or stopped and aborted
            if _pull(cli, "--no-rebase").returncode != 0:
                git(cli.root, "merge", "--abort")
                events.append(f"{name}: git pull stopped")
        else:
            events += [line for line in sync(cli) if " is now #" in line or "kept" in line]
            pushed.update(titles(cli))
    for _ in range(2):
        for cli in people.values():
            events += [line for line in sync(cli) if " is now #" in line or "kept" in line]
    replay = f"seed {seed}: {len(made)} issues, {len(comments)} comments, {events}"  # to replay a failure
    print(f"seed {seed}: {len(made)} issues, {len(comments)} comments, "  # shown with pytest -s
          f"{sum(' is now #' in e for e in events)} renumbered, {sum('kept' in e for e in events)} "
          f"same-field or claim lines, {sum('git pull stopped' in e for e in events)} pulls stopped, "
          f"{sum(len(t) for t in takers.values())} takes")
    heads = {git(cli.root, "rev-parse", "HEAD") for cli in people.values()}
    assert len(heads) == 1, replay
    final = titles(people["a"])
    assert sorted(final.values()) == sorted(made), replay                   # no id twice, none lost
    assert all(final[number] == title for number, title in pushed.items()), replay  # pushed ids kept
    bodies = [c["body"] for number in final for c in shown(people["a"], number)["comments"]]
    assert sorted(bodies) == sorted(comments), replay                       # each comment once
    for number, title in final.items():  # one holder, and one who did take it
        holder = shown(people["a"], number)["assignee"]
        assert holder is None or holder in takers.get(title, set()), replay
    check = subprocess.run([str(BIN / "gitdesk"), "check", "--strict"], cwd=people["a"].root,
                           capture_output=True, text=True)
    assert (check.returncode, check.stdout + check.stderr) == (0, "ok\n")


def test_a_claim_made_first_on_the_shared_repository_holds(clones):
    a = clones("a")
    a("issue", "new", "Urgent one", "-p", "critical", "-m", "x")
    a("issue", "new", "Next one", "-p", "high", "-m", "y")
    sync(a)
    b = clones("b")
    ann, ben = {"GITDESK_USER": "Ann <ann@example.com>"}, {"GITDESK_USER": "Ben <ben@example.com>"}
    a("issue", "take", "--sync", env=ann)                    # takes #1, the head of the queue
    assert shown(a, 1)["assignee"] == "ann@example.com"
    b("issue", "take", env=ben)                               # offline: takes #1 too
    b("issue", "comment", "1", "-m", "on it", env=ben)
    lines = sync(b)
    assert "#1 is assigned to ann@example.com (on the shared repository first); this clone's assignment " \
           "(ben@example.com) was undone" in lines
    assert shown(b, 1)["assignee"] == "ann@example.com"
    assert [c["body"] for c in shown(b, 1)["comments"]] == ["on it"]  # the rest of the work stays
    assert "take: ben" not in git(b.root, "log", "--format=%s")        # no empty commit left behind
    assert json.loads(b("issue", "next", "--json", env=ben).output)["id"] == 2


def test_take_sync_says_at_once_when_the_claim_did_not_hold(clones):
    a = clones("a")
    a("issue", "new", "Only one", "-m", "x")
    sync(a)
    b = clones("b")
    a("issue", "take", "1", "--sync", env={"GITDESK_USER": "Ann <ann@example.com>"})
    lost = b("issue", "take", "1", "--sync", env={"GITDESK_USER": "Ben <ben@example.com>"}, ok=False)
    assert lost.exit_code == 1
    assert "Error: #1 is taken by ann@example.com (on the shared repository first); your take was undone; " \
           "nothing else is free" in lost.output
    assert shown(b, 1)["assignee"] == "ann@example.com"


def test_uncommitted_work_in_a_file_the_sync_must_change_stops_it_and_changes_nothing(clones):
    a = clones("a")
    b = clones("b")
    settings = a.root / "gitdesk.yml"
    settings.write_text(settings.read_text() + "# shared remark\n")
    git(a.root, "commit", "-qam", "settings")
    sync(a)
    b("issue", "new", "Local work", "-m", "x")
    mine = b.root / "gitdesk.yml"
    mine.write_text(mine.read_text() + "# my remark\n")
    head = git(b.root, "rev-parse", "HEAD")
    result = b("gitdesk", "sync", ok=False)
    assert result.exit_code == 1 and "uncommitted changes to gitdesk.yml would be overwritten" in result.output
    assert git(b.root, "rev-parse", "HEAD") == head and mine.read_text().endswith("# my remark\n")
    assert git(a.root, "ls-remote", "origin", "main").split()[0] == git(a.root, "rev-parse", "HEAD").strip()


def _pull(cli: Cli, *how: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@example.com", "pull", "-q",
                           *how], cwd=cli.root, capture_output=True, text=True)


def _rebase_settled(cli: Cli, side: str, path: str, pulled: bool = False) -> None:
    """A plain `git pull --rebase` that stops on a clash, settled by taking this clone's
    ``path`` (--theirs: in a rebase, the commit being replayed) or the shared one (--ours)."""
    if not pulled:
        assert _pull(cli, "--rebase").returncode != 0
    git(cli.root, "checkout", side, "--", path)
    git(cli.root, "add", "-A", path)
    done = subprocess.run(["git", "-c", "core.editor=true", "-c", "core.commentChar=;", "rebase", "--continue"],
                          cwd=cli.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _both_made_1(clones) -> tuple[Cli, Cli]:
    a, b = clones("a"), clones("b")
    b("issue", "new", "From b", "-m", "B's text.")
    sync(b)
    later = {"GITDESK_NOW": "2026-03-02T10:05:00Z"}
    a("issue", "new", "From a", "-m", "A's text, about #1.", env=later)
    a("issue", "comment", "1", "-m", "A's comment on #1.", env=later)
    return a, b


@pytest.mark.parametrize("how", ["--no-rebase", "--rebase"])
def test_a_plain_git_pull_that_stops_on_a_clash_is_pointed_out_by_check(clones, how):
    """Both clones made #1; a ran `git pull` instead of sync: git stops with a conflict in
    issues/1/issue.md. check says where and what to do, sync refuses until it is aborted,
    and then renumbers as usual."""
    a, _ = _both_made_1(clones)
    assert _pull(a, how).returncode != 0
    checked = a("gitdesk", "check", ok=False)
    assert checked.exit_code == 1
    doing = "merge" if how == "--no-rebase" else "rebase"
    assert f"issues/1/issue.md: unfinished git {doing}: a conflict git could not settle; abort it " \
           f"(git {doing} --abort), then run gitdesk sync" in checked.output
    refused = a("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1 and f"a git {doing} is in progress" in refused.output
    git(a.root, doing, "--abort")
    assert sync(a)[:2] == ["fetched 1 commit from origin/main", "#1 is now #2"]
    assert titles(a) == {1: "From b", 2: "From a"}
    assert [c["body"] for c in shown(a, 2)["comments"]] == ["A's comment on #2."]
    assert a("gitdesk", "check", "--strict").exit_code == 0


def test_a_clash_a_git_merge_joined_in_one_folder_is_repaired_by_sync(clones):
    """a ran `git pull`, resolved the conflict by keeping its own issue.md and committed: the
    folder issues/1 now holds a's ticket and b's history. check says so; sync leaves the merge
    commit out, replays a's own commits and gives a's issue #2; b's #1 is b's again."""
    a, b = _both_made_1(clones)
    b("issue", "comment", "1", "-m", "B's comment.")
    sync(b)
    assert _pull(a, "--no-rebase").returncode != 0
    git(a.root, "checkout", "--ours", "--", "issues")       # the comments clash too (same second)
    git(a.root, "add", "-A", "issues")
    git(a.root, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q", "--no-edit")
    assert titles(a) == {1: "From a"}                        # b's ticket is gone from view
    checked = a("gitdesk", "check", ok=False)
    assert "issues/1: #1 was created here and on origin/main, and a git merge joined the two in one " \
           "folder: run gitdesk sync" in checked.output and checked.exit_code == 1

    lines = sync(a)
    assert lines[:2] == ["left out 1 merge commit (a plain git pull): replayed the commits it joined "
                         "instead", "#1 is now #2"]
    assert titles(a) == {1: "From b", 2: "From a"}
    assert [c["body"] for c in shown(a, 1)["comments"]] == ["B's comment."]
    assert [c["body"] for c in shown(a, 2)["comments"]] == ["A's comment on #2."]
    assert "A's text, about #2." in shown(a, 2)["body"]
    assert a("gitdesk", "check", "--strict").exit_code == 0
    sync(b)
    assert titles(b) == titles(a)


def test_a_clash_a_finished_git_rebase_wrote_over_the_shared_issue_is_repaired_by_sync(clones):
    """a ran `git pull --rebase`, settled the conflict by taking its own issue.md and went
    on: its commit now changes b's pushed #1 into a's ticket. check says so; sync gives a's
    issue (and what a did to it, before and after the pull) #2 and leaves b's #1 as b made it."""
    a, b = _both_made_1(clones)
    b("issue", "comment", "1", "-m", "B's comment.", env={"GITDESK_NOW": "2026-03-02T10:30:00Z"})
    sync(b)
    _rebase_settled(a, "--theirs", "issues/1/issue.md")  # in a rebase, theirs is a's commit
    a("issue", "comment", "1", "-m", "A's second comment on #1.", env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    assert titles(a) == {1: "From a"}                        # b's ticket is gone from view
    checked = a("gitdesk", "check", ok=False)
    assert "issues/1: #1 was created here and on origin/main, and a git rebase joined the two in one " \
           "folder: run gitdesk sync" in checked.output and checked.exit_code == 1

    assert sync(a) == ["#1 is now #2", "pushed 3 commits to origin/main"]
    assert titles(a) == {1: "From b", 2: "From a"}
    assert [c["body"] for c in shown(a, 1)["comments"]] == ["B's comment."]
    assert [c["body"] for c in shown(a, 2)["comments"]] == ["A's comment on #2.", "A's second comment on #2."]
    assert shown(a, 1)["body"] == "B's text." and "A's text, about #2." in shown(a, 2)["body"]
    assert git(a.root, "show", "--format=", "--name-status", "origin/main~2").split() == [
        "A", "issues/2/issue.md"]
    assert a("gitdesk", "check", "--strict").exit_code == 0
    sync(b)
    assert titles(b) == titles(a)


def test_a_finished_git_rebase_that_kept_the_shared_issue_stops_sync_with_the_way_back(clones, tmp_path):
    """Settled by keeping the shared issue.md, the rebase left a's `#1 new:` commit with only
    its attachment: shared, it would sit on b's ticket. Sync says how to undo the pull; after
    that it renumbers as usual."""
    a, b = clones("a"), clones("b")
    b("issue", "new", "From b", "-m", "B's text.")
    sync(b)
    (tmp_path / "log.txt").write_text("a's log\n")
    a("issue", "new", "From a", "-m", "A's text.", "--attach", str(tmp_path / "log.txt"),
      env={"GITDESK_NOW": "2026-03-02T10:05:00Z"})
    _rebase_settled(a, "--ours", "issues/1/issue.md")  # in a rebase, ours is the shared side
    refused = a("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1 and "made #1 but no longer writes issues/1/issue.md: a git pull --rebase " \
        "kept the shared #1 in its place. Undo the pull (git reset --keep ORIG_HEAD" in refused.output
    git(a.root, "reset", "-q", "--keep", "ORIG_HEAD")
    assert sync(a)[:2] == ["fetched 1 commit from origin/main", "#1 is now #2"]
    assert titles(a) == {1: "From b", 2: "From a"}


def test_two_tickets_opened_in_one_second_are_told_apart_by_their_customers(clones):
    a, b = clones("a"), clones("b")
    b("issue", "new", "Dave's", "--customer", "dave@example.net", "-m", "x")
    sync(b)
    a("issue", "new", "Carol's", "--customer", "carol@example.net", "-m", "y")  # the same second
    _rebase_settled(a, "--theirs", "issues/1/issue.md")
    assert sync(a) == ["#1 is now #2", "1 waiting mail about #1 now says #2", "pushed 1 commit to origin/main"]
    assert titles(a) == {1: "Dave's", 2: "Carol's"}


def test_an_issue_amended_after_its_push_and_rebased_is_not_taken_for_a_new_one(clones, tmp_path):
    """Its `#1 new:` commit, amended after the push and replayed by `git pull --rebase`, now
    changes the pushed #1: the same issue (same creation time), so nothing is renumbered and
    check stays quiet, before and after a plain push. Nor does gitdesk writing `created:` in
    its own form (here after a hand-written one) make another issue of it."""
    a = clones("a")
    a("issue", "new", "Printer broken", "-m", "desc")
    path = a.root / "issues/1/issue.md"
    path.write_text(path.read_text().replace("created: 2026-03-02T10:00:00Z", "created: '2026-03-02 10:00:00+00:00'"))
    git(a.root, "commit", "-q", "-a", "--amend", "--no-edit")
    sync(a)
    a("issue", "set", "1", "priority=high")                    # gitdesk writes created: ...Z again
    assert "created: 2026-03-02T10:00:00Z" in path.read_text()
    assert sync(a) == ["pushed 1 commit to origin/main"]
    a("issue", "new", "Second", "-m", "x")
    git(a.root, "push", "-q")
    path = a.root / "issues/2/issue.md"
    path.write_text(path.read_text().replace("x\n", "x, amended\n"))
    git(a.root, "commit", "-q", "-a", "--amend", "--no-edit")
    _rebase_settled(a, "--theirs", "issues/2/issue.md")
    assert a("gitdesk", "check").output == "ok\n"
    assert sync(a) == ["pushed 1 commit to origin/main"]
    assert titles(a) == {1: "Printer broken", 2: "Second"} and "amended" in shown(a, 2)["body"]
    assert a("gitdesk", "check").output == "ok\n"


def test_check_warns_of_a_clash_the_next_sync_will_settle(clones):
    a, _ = _both_made_1(clones)
    git(a.root, "fetch", "-q")
    checked = a("gitdesk", "check", ok=False)
    assert "issues/1: warning: #1 was also created on origin/main: the next gitdesk sync gives this " \
           "clone's the next free number" in checked.output
    assert checked.exit_code == 0
    assert a("gitdesk", "check", "--strict", ok=False).exit_code == 1


def _same_field(clones, rule: str) -> tuple[Cli, Cli]:
    """#1 shared under ``sync.same_field: rule``; then a sets priority high and b sets it low
    (and the status open), and a syncs first."""
    a = clones("a")
    with open(a.root / "gitdesk.yml", "a", encoding="utf-8") as handle:
        handle.write(f"sync:\n  same_field: {rule}\n")
    git(a.root, "commit", "-q", "-am", f"sync.same_field: {rule}")
    a("issue", "new", "Mail bounces", "-p", "normal", "-m", "x")
    sync(a)
    b = clones("b")
    a("issue", "set", "1", "priority=high")
    b("issue", "set", "1", "priority=low", "status=open")
    sync(a)
    return a, b


def test_same_field_earlier_keeps_the_shared_value_and_names_the_dropped_one(clones):
    a, b = _same_field(clones, "earlier")
    lines = sync(b)
    assert "#1 priority: kept high (on origin/main first); dropped low" in lines
    assert (shown(b, 1)["priority"], shown(b, 1)["status"]) == ("high", "open")
    assert "dropped low" in git(b.root, "log", "-1", "--format=%B")
    assert not [line for line in sync(a) if line.startswith("from origin/main")]  # a's value held
    assert shown(a, 1)["status"] == "open"


def test_a_change_that_lost_every_field_leaves_no_commit(clones):
    """Under `earlier`, b's only change (priority low) loses: no commit claiming it is pushed,
    and sync says what was dropped."""
    a, b = _same_field(clones, "earlier")
    git(b.root, "reset", "-q", "--hard", "HEAD~1")            # b changes the priority only, later
    b("issue", "set", "1", "priority=low", env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    lines = sync(b)
    assert lines[1:] == ["#1 priority: kept high (on origin/main first); dropped low", "up to date with origin/main"]
    assert git(b.root, "rev-parse", "HEAD") == git(b.root, "rev-parse", "origin/main")


def test_the_shared_branchs_rule_holds_over_one_this_clone_has_not_heard_of(clones):
    """a makes the desk's rule `ask` and changes the priority; b, which still has `later`,
    changed it too: b's sync follows the shared rule (and, with no terminal, stops)."""
    a = clones("a")
    a("issue", "new", "Mail bounces", "-p", "normal", "-m", "x")
    sync(a)
    b = clones("b")
    with open(a.root / "gitdesk.yml", "a", encoding="utf-8") as handle:
        handle.write("sync:\n  same_field: ask\n")
    git(a.root, "commit", "-q", "-am", "sync.same_field: ask")
    a("issue", "set", "1", "priority=high")
    sync(a)
    b("issue", "set", "1", "priority=low")
    refused = b("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1 and "and sync.same_field is ask: run gitdesk sync in a terminal" in refused.output


def test_same_field_ask_without_a_terminal_stops_and_changes_nothing(clones):
    _, b = _same_field(clones, "ask")
    head = git(b.root, "rev-parse", "HEAD")
    refused = b("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1
    assert "Error: #1 priority: changed here (low) and on origin/main (high), and sync.same_field is ask: " \
           "run gitdesk sync in a terminal to choose" in refused.output
    assert git(b.root, "rev-parse", "HEAD") == head and shown(b, 1)["priority"] == "low"
    assert git(b.root, "status", "--porcelain") == ""


@pytest.mark.parametrize("answer, kept", [("shared", "high"), ("here", "low")])
def test_same_field_ask_asks_in_a_terminal(clones, answer, kept):
    import pty
    import select

    _, b = _same_field(clones, "ask")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(BIN / "gitdesk"), "-C", str(b.root), "sync"], stdin=follower,
                            stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        assert ready, f"no answer from gitdesk sync: {seen!r}"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the program ended
            break
        seen += chunk
        if seen.endswith(b"[here]: "):
            os.write(leader, answer.encode() + b"\n")
    assert proc.wait(timeout=30) == 0, seen
    os.close(leader)
    text = seen.decode().replace("\r\n", "\n")
    assert "#1 priority was changed here and on the shared repository:\n  here:   low\n  shared: high\n" in text
    dropped = "dropped low" if answer == "shared" else "replaced high"
    assert f"#1 priority: kept {kept} (chosen in this clone); {dropped}" in text
    assert shown(b, 1)["priority"] == kept and shown(b, 1)["status"] == "open"


def test_a_wrong_sync_rule_is_refused_with_its_name(clones):
    a = clones("a")
    with open(a.root / "gitdesk.yml", "a", encoding="utf-8") as handle:
        handle.write("sync:\n  same_field: sometimes\n")
    refused = a("gitdesk", "sync", ok=False)
    assert refused.exit_code != 0
    assert "gitdesk.yml: sync.same_field: 'sometimes' is not one of later, earlier, ask" in refused.output


def test_a_post_merge_comment_stays_with_the_issue_the_merge_kept(clones):
    """a resolved the clash by keeping the shared #1 (b's), then commented on #1 meaning b's
    ticket. Sync gives a's own ticket #2 and leaves that later comment on #1."""
    a, b = _both_made_1(clones)
    assert _pull(a, "--no-rebase").returncode != 0
    git(a.root, "checkout", "--theirs", "--", "issues")
    git(a.root, "add", "-A", "issues")
    git(a.root, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q", "--no-edit")
    a("issue", "comment", "1", "-m", "About b's ticket, after the merge.", env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    assert sync(a)[:2] == ["left out 1 merge commit (a plain git pull): replayed the commits it joined "
                           "instead", "#1 is now #2"]
    assert titles(a) == {1: "From b", 2: "From a"}
    assert [c["body"] for c in shown(a, 1)["comments"]] == ["About b's ticket, after the merge."]
    assert [c["body"] for c in shown(a, 2)["comments"]] == ["A's comment on #2."]


def test_no_change_during_an_unfinished_rebase_and_sync_only_on_the_shared_branch(clones):
    a, _ = _both_made_1(clones)
    assert _pull(a, "--rebase").returncode != 0                # stopped: HEAD is detached
    refused = a("issue", "new", "During the rebase", "-m", "x", ok=False)
    assert refused.exit_code == 75                            # try again later (an MTA retries)
    assert "a git rebase is in progress in this clone: finish it or abort it (git rebase --abort) " \
           "first; nothing was changed" in refused.output
    git(a.root, "rebase", "--abort")
    (a.root / ".git" / "REBASE_HEAD").write_text("0" * 40 + "\n")  # git leaves it after a finished one
    git(a.root, "switch", "-q", "-c", "work")
    refused = a("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1 and "this clone is on branch work, not the desk's shared branch " \
        "origin/main: switch to it (git switch main), or share this one (git branch -u origin/main)" \
        in refused.output
    git(a.root, "switch", "-q", "main")
    assert sync(a)[:2] == ["fetched 1 commit from origin/main", "#1 is now #2"]


@pytest.mark.parametrize("how", ["--no-rebase", "--rebase"])
def test_check_finds_two_issues_a_pushed_pull_joined_until_each_has_a_number_again(clones, how):
    """The pull that joined two #1s was pushed with plain git: nothing for sync to repair any
    more (both numbers are public), but check says so instead of `ok`, until the issue that
    was written over is back under a number of its own."""
    a, _ = _both_made_1(clones)
    assert _pull(a, how).returncode != 0
    if how == "--no-rebase":
        git(a.root, "checkout", "--ours", "--", "issues")   # a's issue.md over b's
        git(a.root, "add", "-A", "issues")
        git(a.root, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q", "--no-edit")
        joined, lost = git(a.root, "rev-parse", "HEAD").strip(), "HEAD^2"
        what = f"merge {joined[:10]} (a git pull whose conflict was resolved by hand)"
    else:
        _rebase_settled(a, "--theirs", "issues", pulled=True)
        joined, lost = git(a.root, "rev-parse", "HEAD^").strip(), "HEAD~2"
        what = f"commit {joined[:10]} (a git pull --rebase whose conflict was settled by taking one side)"
    git(a.root, "push", "-q")
    checked = a("gitdesk", "check", ok=False)
    assert checked.exit_code == 1
    assert f"issues/1: two issues #1 were joined by {what}: give the other one a number of its own " \
           "by hand (kb: sync)" in checked.output
    (a.root / "issues/2").mkdir()
    (a.root / "issues/2/issue.md").write_text(git(a.root, "show", f"{lost}:issues/1/issue.md"))
    git(a.root, "add", "issues/2")
    git(a.root, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q", "-m", "#2: b's again")
    assert titles(a) == {1: "From a", 2: "From b"}
    assert a("gitdesk", "check").output == "ok\n"
    a("issue", "set", "2", "title=From b, moved")              # known by its creation time, not its title
    assert a("gitdesk", "check").output == "ok\n"


def test_a_branch_with_no_upstream_is_not_pushed_as_a_new_shared_branch(clones, tmp_path):
    """The desk made as kb/sync.md says (`git remote add`, `git push -u`) has no origin/HEAD:
    on another branch, sync refuses rather than pushing that branch as a second desk whose
    numbers clash with the shared one's. A clone joined by `git remote add` (nothing fetched
    yet, no upstream) learns the shared branch from the remote."""
    first = Cli(tmp_path / "first")
    git(first.root, "switch", "-q", "-c", "dev")
    first("issue", "new", "On dev", "-m", "x")
    refused = first("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1 and "this clone is on branch dev, not the desk's shared branch origin/main" \
        in refused.output
    assert git(tmp_path / "shared.git", "branch", "--format=%(refname:short)").split() == ["main"]

    a = clones("a")
    a("issue", "new", "Shared", "-m", "x")
    sync(a)
    late = tmp_path / "late"
    git(tmp_path, "clone", "-q", "-b", "main", str(tmp_path / "first" / ".git"), str(late))  # the desk, not the shared repo
    git(late, "remote", "rename", "origin", "old")
    git(late, "remote", "add", "origin", str(tmp_path / "shared.git"))
    git(late, "switch", "-q", "-c", "work")
    assert Cli(late)("gitdesk", "sync", ok=False).output.startswith(
        "Error: this clone is on branch work, not the desk's shared branch origin/main")
    git(late, "switch", "-q", "main")
    git(late, "branch", "-q", "--unset-upstream")
    assert sync(Cli(late)) == ["fetched 1 commit from origin/main", "up to date with origin/main"]


@pytest.mark.parametrize("staged", [False, True])
def test_a_file_left_uncommitted_in_a_folder_about_to_be_renumbered_stops_sync(clones, staged):
    """Left behind by the move, it would become part of the shared #1 (another customer's
    ticket, perhaps a public issue's page); so would a file only staged (git add)."""
    a, b = _both_made_1(clones)
    (a.root / "issues/1/files").mkdir()
    (a.root / "issues/1/files/card.txt").write_text("card ends 4242\n")
    if staged:
        git(a.root, "add", "issues/1/files/card.txt")
    head = git(a.root, "rev-parse", "HEAD")
    refused = a("gitdesk", "sync", ok=False)
    assert (refused.exit_code, refused.output) == (1, (
        "Error: issues/1/files/card.txt is in no commit, and this clone's #1 is about to become #2 (#1 is "
        "another issue on origin/main): commit it, or move it out of the folder, then run gitdesk sync "
        "again; nothing was changed\n"))
    assert git(a.root, "rev-parse", "HEAD") == head and titles(a) == {1: "From a"}
    git(a.root, "add", "issues/1/files")
    git(a.root, "commit", "-q", "-m", "#1: the file")
    assert sync(a)[1] == "#1 is now #2"
    assert (a.root / "issues/2/files/card.txt").is_file() and not (a.root / "issues/1/files").exists()


def test_a_number_made_and_deleted_before_the_sync_is_not_given_to_a_renumbered_issue(clones):
    a, b = _both_made_1(clones)
    a("issue", "new", "Made and dropped", "-m", "x")
    git(a.root, "rm", "-q", "-r", "issues/2")
    git(a.root, "commit", "-q", "-m", "drop #2")
    assert sync(a)[1:] == ["#1 is now #3", "pushed 4 commits to origin/main"]
    assert titles(a) == {1: "From b", 3: "From a"}


def test_deleting_what_another_clone_changed_meanwhile_is_undone_and_said(clones):
    """a deletes #1 and a KB article by hand while b comments on #1, sets its priority and
    edits the article: b's work is kept, a's deletions are undone, and sync says so. A
    deletion of something nobody touched goes through."""
    a = clones("a")
    a("issue", "new", "Shared", "-m", "x")
    a("issue", "new", "Unloved", "-m", "y")
    a("kb", "new", "How to reset", "-m", "Press it.")
    sync(a)
    b = clones("b")
    b("issue", "comment", "1", "-m", "Important.")
    b("issue", "set", "1", "priority=high")
    edited = b.root.parent / "edited.md"
    edited.write_text((b.root / "kb/how-to-reset.md").read_text().replace("Press it.", "Press it twice."))
    b("kb", "edit", "how-to-reset", "-F", str(edited))
    sync(b)
    git(a.root, "rm", "-q", "-r", "issues/1", "issues/2", "kb/how-to-reset.md")
    git(a.root, "commit", "-q", "-m", "clean up")
    lines = sync(a)
    assert "#1: kept, as it changed on origin/main since; this clone's deletion was undone" in lines
    assert "kb/how-to-reset.md: kept, as it changed on origin/main since; this clone's deletion was undone" \
        in lines
    assert titles(a) == {1: "Shared"}
    assert shown(a, 1)["priority"] == "high" and [c["body"] for c in shown(a, 1)["comments"]] == ["Important."]
    assert "Press it twice." in (a.root / "kb/how-to-reset.md").read_text()
    assert "a@example.com's deletion was undone" in git(a.root, "log", "-1", "--format=%B")
    assert a("gitdesk", "check", "--strict").exit_code == 0


def test_an_issue_file_committed_with_conflict_markers_is_not_shared(clones, tmp_path):
    """Committed by hand with git's markers in its fields, it would reach every clone (and
    win over the shared side's changes as an unreadable whole): sync names it and stops."""
    a = clones("a")
    a("issue", "new", "Shared", "-p", "normal", "-m", "x")
    sync(a)
    path = a.root / "issues/1/issue.md"
    path.write_text(path.read_text().replace("priority: normal\n",
                                             "<<<<<<< HEAD\npriority: low\n=======\npriority: high\n>>>>>>> x\n"))
    git(a.root, "commit", "-q", "-am", "by hand")
    head, shared = git(a.root, "rev-parse", "HEAD"), git(tmp_path / "shared.git", "rev-parse", "main")
    refused = a("gitdesk", "sync", ok=False)
    line = [n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("<<<<<<<")][0]
    assert (refused.exit_code, refused.output) == (1, (
        f"Error: issues/1/issue.md, line {line}: git's conflict markers were committed; fix the file and "
        "commit it, then run gitdesk sync (nothing was shared or changed)\n"))
    assert git(a.root, "rev-parse", "HEAD") == head and git(tmp_path / "shared.git", "rev-parse", "main") == shared

    git(a.root, "reset", "-q", "--hard", "origin/main")        # what gitdesk does not read is not refused
    (a.root / "kb/snippets").mkdir()
    (a.root / "kb/snippets/footer.md").write_text("Plain Markdown, no frontmatter.\n")
    (a.root / "issues/1/files").mkdir()
    (a.root / "issues/1/files/notes.md").write_text("<<<<<<< a pasted conflict\n")
    git(a.root, "add", "kb/snippets", "issues/1/files")
    git(a.root, "commit", "-q", "-m", "other files")
    assert sync(a) == ["pushed 1 commit to origin/main"]


def test_a_shared_repository_that_is_gone_is_named_in_the_error(clones, tmp_path):
    a = clones("a")
    git(a.root, "remote", "set-url", "origin", str(tmp_path / "nowhere.git"))
    refused = a("gitdesk", "sync", ok=False)
    assert refused.exit_code != 0
    assert f"git fetch failed: fatal: '{tmp_path / 'nowhere.git'}' does not appear to be a git repository" \
        in refused.output


def test_check_and_sync_say_when_the_shared_repository_is_another_desk(clones, tmp_path):
    from gitdesk.scaffold import init

    a = clones("a")
    other = init(tmp_path / "other", name="Other Desk")
    git(a.root, "fetch", "-q", str(other), "main:refs/remotes/origin/main", "--force")
    a("issue", "new", "Mine", "-m", "x")
    checked = a("gitdesk", "check", ok=False)
    assert checked.exit_code == 1
    assert ".git: this clone and origin/main have no commit in common: gitdesk sync cannot join them" \
        in checked.output


def test_a_status_that_lost_takes_the_fields_it_set_along(clones):
    """Under `earlier`, a's `waiting` stays and b's close loses: b's `closed` time and
    resolution go with it, so the issue is not left waiting and closed at once."""
    a, b = _same_field(clones, "earlier")
    git(b.root, "reset", "-q", "--hard", "HEAD~1")
    a("issue", "set", "1", "status=waiting")
    sync(a)
    b("issue", "close", "1", "--resolution", "fixed", env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    lines = sync(b)
    assert "#1 status: kept waiting (on origin/main first); dropped closed" in lines
    text = (b.root / "issues" / "1" / "issue.md").read_text(encoding="utf-8")
    assert "status: waiting" in text and "closed:" not in text and "resolution:" not in text
    assert "waiting_since:" in text
    assert git(b.root, "rev-parse", "HEAD") == git(b.root, "rev-parse", "origin/main")  # nothing left of b's


def test_a_renumbered_issue_edited_again_here_is_not_taken_for_a_clash(clones):
    a, b = _same_field(clones, "earlier")
    git(b.root, "reset", "-q", "--hard", "HEAD~1")
    a("issue", "new", "A2", "-m", "x")
    sync(a)
    b("issue", "new", "Printer", "-m", "x")
    b("issue", "new", "Toner for #2", "-m", "related to #2")
    b("issue", "set", "3", "title=Toner for #2 (urgent)", env={"GITDESK_NOW": "2026-03-02T11:00:00Z"})
    lines = sync(b)
    assert lines[1] == "#2 is now #4"                        # b's #3 clashes with nothing
    assert not [line for line in lines if "kept" in line], lines  # the renumbering is no clash
    assert titles(b) == {1: "Mail bounces", 2: "A2", 3: "Toner for #4 (urgent)", 4: "Printer"}
    assert "related to #4" in shown(b, 3)["body"]


def test_gitdesk_yml_changed_in_two_clones_merges_line_by_line(clones):
    a, b = clones("a"), clones("b")
    for cli, old, new in ((a, "staff: []\n", "staff:\n  - {name: Dan, email: dan@example.com}\n"),
                          (b, "  smtp_port: 25\n", "  smtp_port: 25\n  retry_hours: 12\n")):
        path = cli.root / "gitdesk.yml"
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
        git(cli.root, "commit", "-q", "-am", "settings")
    sync(a)
    assert not [line for line in sync(b) if "kept" in line]
    text = (b.root / "gitdesk.yml").read_text(encoding="utf-8")
    assert "dan@example.com" in text and "retry_hours: 12" in text
    assert b("gitdesk", "check").exit_code == 0


def test_a_kb_article_made_in_two_clones_under_one_name_is_merged_not_replaced(clones):
    a, b = clones("a"), clones("b")
    a("kb", "new", "Reset password", "--tag", "accounts", "-m", "Use the portal.")
    b("kb", "new", "Reset password", "--tag", "login", "-m", "Ask support.")
    sync(a)
    lines = sync(b)
    assert "kb/reset-password.md text: kept this clone's text (this clone, synced later); replaced the " \
           "shared text (both are in the history)" in lines
    text = (b.root / "kb" / "reset-password.md").read_text(encoding="utf-8")
    assert "accounts" in text and "login" in text            # both tags: lists merge
    told = sync(a)
    assert any(line.startswith("from origin/main: kb/reset-password.md text: kept") for line in told), told


def test_a_customers_own_numbers_are_not_renumbered(clones, tmp_path):
    """Renumbering changes the desk's references, not a customer's words: 'invoice #1' in a
    mail stays as written, while staff's '#1' in this clone follows the issue."""
    from gitdesk import Tracker

    a, b = _both_made_1(clones)
    panel = Tracker(a.root).customer("dave@customer.example", "Dave")
    panel.open("Invoice #1 charged twice", "My invoice #1 was charged twice.")
    sync(a)
    assert titles(a) == {1: "From b", 2: "Invoice #1 charged twice", 3: "From a"}
    assert "My invoice #1 was charged twice." in shown(a, 2)["body"]
    assert "A's text, about #3." in shown(a, 3)["body"]


def test_an_issue_made_after_a_plain_git_pull_is_renumbered_too(clones):
    """a merged the shared branch with git pull, then made an issue (the next number after
    what it had); c had meanwhile pushed that number: a's moves."""
    a, b, c = clones("a"), clones("b"), clones("c")
    b("issue", "new", "From b", "-m", "x")
    sync(b)
    a("issue", "new", "Early in a", "-m", "x")
    assert _pull(a, "--no-rebase").returncode != 0            # both made #1: stopped
    git(a.root, "merge", "--abort")
    sync(a)                                                   # a's becomes #2
    sync(c)
    a("kb", "new", "Note", "-m", "x")
    b("kb", "new", "Other note", "-m", "y")
    sync(b)
    assert _pull(a, "--no-rebase").returncode == 0            # a clean merge commit
    a("issue", "new", "After the pull", "-m", "x")           # #3 here
    c("issue", "new", "From c", "-m", "x")                   # #3 there, pushed first
    sync(c)
    lines = sync(a)
    assert "#3 is now #4" in lines
    assert titles(a) == {1: "From b", 2: "Early in a", 3: "From c", 4: "After the pull"}


def test_a_commit_sync_cannot_replay_is_named_and_nothing_changes(clones):
    a, b = clones("a"), clones("b")
    os.symlink("gitdesk.yml", a.root / "L")
    git(a.root, "add", "L")
    git(a.root, "commit", "-q", "-m", "a link")
    sync(a)
    sync(b)
    (b.root / "L").unlink()
    os.symlink("kb", b.root / "L")
    git(b.root, "commit", "-q", "-am", "relink")
    a("issue", "new", "Meanwhile", "-m", "x")
    sync(a)
    head = git(b.root, "rev-parse", "HEAD")
    refused = b("gitdesk", "sync", ok=False)
    assert refused.exit_code == 1
    assert "cannot replay commit" in refused.output and "(relink: L)" in refused.output
    assert "nothing was changed" in refused.output
    assert git(b.root, "rev-parse", "HEAD") == head
