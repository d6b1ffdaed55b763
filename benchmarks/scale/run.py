"""Scale: gitdesk against Roundup 2.6.0 on the same help desk of 1,000 and 10,000 issues.

For each size it generates a help desk's tracker (private support tickets from customers by
mail, with staff replies and internal notes; public bugs and features; statuses, priorities,
labels, assignees), written straight as files with one git commit, and loads the same data
into a Roundup tracker (classic template, sqlite backend) with Roundup's Python API
(benchmarks/scale/roundup_load.py). After checking that both hold the same issues and
messages, it times, each command a fresh process, several rounds alternating which system
goes first: ``issue new``, ``issue list`` (all, filtered), ``issue show``, ``issue search``
and ``issue queue`` against ``roundup-admin create``, ``list``, ``filter`` and ``display``;
the first (cold) run of each read command; the floors (``python -c pass``, one ``git
commit`` in the generated tracker); at 1,000 issues also the mail gateway (pipe and mbox,
benchmarks/mail/run.py's way) and the site build (benchmarks/site/run.py's way). It prints
a Markdown table with the ratios and the goals and writes it to benchmarks/results/scale.md.

    .venv/bin/python benchmarks/scale/run.py                     # 1,000 and 10,000 issues, 5 rounds
    .venv/bin/python benchmarks/scale/run.py --large             # and 100,000
    .venv/bin/python benchmarks/scale/run.py --smoke --out /tmp/scale.md    # 50 issues, < 1 minute
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import email.utils
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


index_bench = _load("index_bench", HERE.parent / "index" / "run.py")   # brings search's and site's
search_bench, site_bench = index_bench.search_bench, index_bench.site_bench
mail_bench = _load("mail_bench", HERE.parent / "mail" / "run.py")

BIN = site_bench.BIN
RESULTS = HERE.parent / "results" / "scale.md"
LOADER = HERE / "roundup_load.py"
NOW = index_bench.NOW
QUERY = search_bench.QUERY
STAFF = [("Alice Admin", "alice@example.com", "admin"), ("Bob Support", "bob@example.com", "staff"),
         ("Dan Dev", "dan@example.com", "staff")]
USER = f"{STAFF[0][0]} <{STAFF[0][1]}>"
# gitdesk's statuses and priorities in Roundup's classic template.
STATUS = {"new": "unread", "open": "in-progress", "waiting": "need-eg", "resolved": "done-cbb",
          "closed": "resolved"}
PRIORITY = {"critical": "critical", "high": "urgent", "normal": "bug", "low": "wish"}
FILTER = ("open", "dns")          # the filtered list: one status and one label
# Roundup 2.6.0's `roundup-admin filter issue keyword=dns` fails (sqlite3.ProgrammingError: a
# Multilink value is bound as a list); the keyword's name (`keyword.name=dns`) works.
GOALS = {"new": 0.4, "new floors": 3.0, "list": 0.15, "list 100k s": 0.5, "list 100k MiB": 100,
         "show": 0.4, "search 100k s": 0.3, "pipe": mail_bench.GOAL_PIPE, "batch": mail_bench.GOAL_BATCH,
         "site": site_bench.GOAL}


# -- the data ---------------------------------------------------------------------------------
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(name)).strip("-") or "someone"


def _mail_text(rng: random.Random, name: str, pool: list[str], count: tuple[int, int]) -> str:
    """A customer's mail, as the mail benchmark writes them, sometimes with a log or a list."""
    parts = [rng.choice(["Hello,", "Hi,", "Dear support team,", "Good morning,"])]
    parts += mail_bench._paragraphs(rng, pool, rng.randint(*count), (2, 4))
    if rng.random() < 0.3:
        parts.append(site_bench.body(rng, "comment"))
    parts.append(rng.choice(["Best regards,", "Thanks,", "Kind regards,"]) + "\n" + name.split()[0])
    return "\n\n".join(parts)


def make_data(n: int) -> tuple[list[dict], list[dict]]:
    """The site benchmark's issues (titles, bodies, dates, statuses, priorities, labels,
    comments), made into a help desk: about 60% private support tickets from a customer
    (who writes again, by mail), answered by staff, with internal notes; the rest public bugs
    and features. KB articles link public issues only."""
    issues, articles = site_bench.make_data(n)
    rng = random.Random(n * 31 + 5)
    customers = []
    for k in range(max(3, n // 3)):      # a customer opens three tickets on average
        first, last = rng.choice(mail_bench.FIRST), rng.choice(mail_bench.LAST)
        local = re.sub(r"[^a-z.]", "", _ascii(f"{first}.{last}").replace(" ", "."))
        customers.append((f"{first} {last}", f"{local}@{rng.choice(mail_bench.COMPANY)}{k + 1}.example"))
    staff = [f"{name} <{address}>" for name, address, _ in STAFF]
    for issue in issues:
        ticket = rng.random() < 0.6
        issue["visibility"] = "private" if ticket else "public"
        issue["customer"] = issue["assignee"] = issue["resolution"] = None
        if ticket:
            name, address = rng.choice(customers)
            issue.update(type="ticket", customer=address, author=f"{name} <{address}>",
                         body=_mail_text(rng, name, mail_bench.SENTENCE, (2, 4)))
        if issue["status"] != "new" and rng.random() < (0.7 if ticket else 0.4):
            issue["assignee"] = rng.choice(STAFF)[1]
        if issue["status"] in ("resolved", "closed"):
            issue["resolution"] = rng.choice(["fixed", "answered"] if ticket else ["fixed", "fixed", "wontfix"])
        for j, comment in enumerate(issue["comments"]):
            comment.update(visibility="public", via="cli", message_id=None)
            if ticket and j % 2 == 1:              # the customer writes back
                comment.update(author=issue["author"], via="email",
                               body=_mail_text(rng, name, mail_bench.FOLLOW + mail_bench.SENTENCE[:4], (1, 3)),
                               message_id=f"<{rng.randbytes(8).hex()}.{issue['id']}.{j}@mail.{address.split('@')[1]}>")
            elif ticket or comment["author"] in staff:
                comment["author"] = rng.choice(staff)
                if rng.random() < (0.25 if ticket else 0.15):
                    comment["visibility"] = "internal"
            elif comment["via"] == "email":
                comment["message_id"] = f"<{rng.randbytes(8).hex()}.{issue['id']}.{j}@customer.example>"
    public = [i["id"] for i in issues if i["visibility"] == "public"]
    for article in articles:
        article["issues"] = rng.sample(public, min(3, len(public)))
    return issues, articles


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)    # a JSON string is a YAML double-quoted one


def issue_file(issue: dict) -> str:
    lines = ["---", f"title: {_q(issue['title'])}", f"type: {issue['type']}", f"status: {issue['status']}",
             f"priority: {issue['priority']}", f"visibility: {issue['visibility']}",
             f"labels: {site_bench._yaml_list(issue['labels'])}"]
    lines += [f"{key}: {issue[key]}" for key in ("customer", "assignee") if issue[key]]
    lines += [f"author: {_q(issue['author'])}", f"created: {site_bench.stamp(issue['created'])}",
              f"updated: {site_bench.stamp(issue['updated'])}"]
    if issue["resolution"]:
        lines += [f"closed: {site_bench.stamp(issue['updated'])}", f"resolution: {issue['resolution']}"]
    return "\n".join([*lines, "---", "", issue["body"], ""])


def comment_file(comment: dict) -> str:
    lines = ["---", f"author: {_q(comment['author'])}", f"date: {site_bench.stamp(comment['date'])}",
             f"visibility: {comment['visibility']}", f"via: {comment['via']}"]
    if comment["message_id"]:
        lines.append(f"message_id: {_q(comment['message_id'])}")
    return "\n".join([*lines, "---", "", comment["body"], ""])


def write_desk(root: Path, issues: list[dict], articles: list[dict]) -> None:
    """The mail benchmark's tracker (``gitdesk init``, SMTP pointed nowhere) with staff, the
    issues and articles written as files, one commit, then ``git gc`` as a repository this
    big would have been packed."""
    mail_bench.make_gitdesk(root)
    config = root / "gitdesk.yml"
    if "staff: []\n" not in config.read_text():
        raise SystemExit(f"{config}: no 'staff: []' to fill in")
    config.write_text(config.read_text().replace("staff: []\n", "staff:\n" + "".join(
        f"  - {{name: {name}, email: {address}, role: {role}}}\n" for name, address, role in STAFF)))
    for issue in issues:
        folder = root / "issues" / str(issue["id"])
        folder.mkdir(parents=True)
        (folder / "issue.md").write_text(issue_file(issue))
        names: set[str] = set()
        for comment in issue["comments"]:
            name = f"{comment['date']:%Y%m%dT%H%M%SZ}-{_slug(comment['author'].split(' <')[0])}"
            name = next(f"{name}{s}" for s in ("", *(f"-{k}" for k in range(2, 99))) if f"{name}{s}" not in names)
            names.add(name)
            (folder / f"{name}.md").write_text(comment_file(comment))
    for article in articles:
        (root / "kb" / f"{article['slug']}.md").write_text(
            f"---\ntitle: {_q(article['title'])}\nvisibility: public\ntags: {site_bench._yaml_list(article['tags'])}\n"
            f"issues: {site_bench._yaml_list(article['issues'])}\n---\n\n{article['body']}\n")
    site_bench.run(["git", "add", "-A"], cwd=root)
    # Without gc.auto=0, this commit of thousands of files starts `git gc --auto` in the background.
    site_bench.run(["git", "-c", "gc.auto=0", "commit", "-q", "-m", f"benchmark data: {len(issues)} issues"], cwd=root)
    site_bench.run(["git", "gc", "-q"], cwd=root)


def roundup_data(issues: list[dict]) -> dict:
    """The same issues in Roundup's terms: users by address, keywords for labels, the mapped
    status and priority, the description as the first message."""
    users: dict[str, dict] = {}

    def user(who: str) -> str:
        name, address = email.utils.parseaddr(who)
        users.setdefault(address, {"username": address, "realname": name or address, "address": address})
        return address

    def when(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%d.%H:%M:%S")

    for name, address, _ in STAFF:
        user(f"{name} <{address}>")
    out = []
    for issue in issues:
        messages = [{"content": issue["body"], "author": user(issue["author"]), "date": when(issue["created"])}]
        messages += [{"content": c["body"], "author": user(c["author"]), "date": when(c["date"]),
                      "messageid": c["message_id"]} for c in issue["comments"]]
        out.append({"title": issue["title"], "status": STATUS[issue["status"]],
                    "priority": PRIORITY[issue["priority"]], "keywords": issue["labels"],
                    "assignedto": issue["assignee"], "messages": messages})
    return {"users": list(users.values()), "keywords": site_bench.LABELS, "issues": out}


# -- the two trackers -------------------------------------------------------------------------
def gitdesk_env() -> dict:
    return mail_bench.gitdesk_env({**site_bench.ENV, "GITDESK_NOW": NOW, "GITDESK_USER": USER})


def roundup_count(home: Path, rbin: Path) -> dict:
    return json.loads(mail_bench.run([str(rbin / "python"), str(LOADER), "count", str(home)], cwd=home))


def build(n: int, folder: Path, rbin: Path) -> dict:
    """Both trackers of N issues, checked to hold the same; their paths and the times taken."""
    issues, articles = make_data(n)
    desk, home = folder / "desk", folder / "roundup"
    t0 = time.perf_counter()
    write_desk(desk, issues, articles)
    written = time.perf_counter() - t0
    print(f"{n:,} issues: gitdesk tracker written in {written:.1f}s", file=sys.stderr)
    if n <= 1000:
        found = mail_bench.run([str(BIN / "gitdesk"), "-C", str(desk), "check", "--strict"], cwd=desk,
                               env=gitdesk_env())
        if found.strip():
            raise SystemExit(f"gitdesk check {desk}:\n{found}")
    home.mkdir()
    mail_bench.make_roundup(home, rbin)
    data, loaded_data = folder / "roundup-data.json", roundup_data(issues)
    data.write_text(json.dumps(loaded_data))
    t0 = time.perf_counter()
    mail_bench.run([str(rbin / "python"), str(LOADER), "load", str(home), str(data)], cwd=home)
    loaded = time.perf_counter() - t0
    print(f"{n:,} issues: loaded into Roundup in {loaded:.1f}s", file=sys.stderr)
    comments = sum(len(i["comments"]) for i in issues)
    on_disk = {"issues": sum(1 for p in (desk / "issues").iterdir() if (p / "issue.md").is_file()),
               "comments": sum(1 for p in (desk / "issues").glob("*/2*.md"))}
    r = roundup_count(home, rbin)
    if (on_disk["issues"], on_disk["comments"], r["issues"], r["messages"]) != (n, comments, n, n + comments):
        raise SystemExit(f"the trackers differ: gitdesk {on_disk}, Roundup {r}; expected {n} issues, "
                         f"{comments} comments (Roundup: {n + comments} messages, descriptions included)")
    show = next(i["id"] for i in issues[n // 2:] + issues if len(i["comments"]) >= 3)
    return {"n": n, "issues": issues, "articles": articles, "desk": desk, "home": home, "written": written,
            "loaded": loaded, "comments": comments, "users": len(loaded_data["users"]), "show": show,
            "tickets": sum(i["type"] == "ticket" for i in issues),
            "internal": sum(c["visibility"] == "internal" for i in issues for c in i["comments"])}


# -- the measurements -------------------------------------------------------------------------
_LAUNCHER = r"""
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    r = json.loads(line)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(r["cmd"], cwd=r["cwd"], env=r["env"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL if r["stdin"] is None else subprocess.PIPE)
        if r["stdin"] is not None:
            proc.stdin.write(bytes.fromhex(r["stdin"]))
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "mib": usage.ru_maxrss // 1024,
                          "code": os.waitstatus_to_exitcode(status),
                          "output": out.read()[-3000:].decode(errors="replace")}), flush=True)
"""


class Launcher:
    """Starts the timed commands, as the mail benchmark's ``timed`` does (wall, CPU of the
    process and the children it waited for, peak RSS from ``wait4``), but from a small process
    of its own that imports nothing more than ``python -c pass``: on Linux a child's peak RSS
    starts at its parent's, and this process holds the generated data (hundreds of MiB at
    100,000 issues), the mail benchmark's module alone some 10 MiB."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, cmd: list[str], cwd: Path, stdin: bytes | None = None,
                 env: dict | None = None) -> tuple[float, float, int]:
        """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one command."""
        self.proc.stdin.write(json.dumps({"cmd": [str(x) for x in cmd], "cwd": str(cwd),
                                          "env": mail_bench.child_env(env),
                                          "stdin": None if stdin is None else stdin.hex()}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"code": -1, "output": "the launcher stopped"}')
        if answer["code"] != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed ({answer['code']}):\n{answer['output']}")
        return answer["wall"], answer["cpu"], answer["mib"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


LAUNCH: Launcher | None = None


def commands(t: dict, rbin: Path) -> list[tuple[str, list[str], list[str] | None]]:
    """(key, gitdesk command, Roundup's or None) of the read commands."""
    def g(*args: str) -> list[str]:
        return [str(BIN / "issue"), "-C", str(t["desk"]), *args]

    def r(*args: str) -> list[str]:
        return [str(rbin / "roundup-admin"), "-i", str(t["home"]), *args]

    status, label = FILTER
    return [("list", g("list", "--all"), r("list", "issue")),
            ("filter", g("list", "--status", status, "-l", label),
             r("filter", "issue", f"status={STATUS[status]}", f"keyword.name={label}")),
            ("show", g("show", str(t["show"])), r("display", f"issue{t['show']}")),
            ("search", g("search", QUERY), None),
            ("queue", g("queue"), None)]


def new_commands(t: dict, rbin: Path, k: int) -> tuple[list[str], list[str]]:
    title = f"Webmail login loops back to the sign-in page ({k})"
    return ([str(BIN / "issue"), "-C", str(t["desk"]), "new", title, "-t", "ticket", "--customer",
             "jane.roe@bakery.example", "-m", "Since this morning webmail sends me back to the sign-in page."],
            [str(rbin / "roundup-admin"), "-i", str(t["home"]), "create", "issue", f"title={title}"])


def timed(cmd: list[str], system: str) -> tuple[float, float, int]:
    """Wall, CPU (user + system) and peak RSS of one command, run in its tracker (``-C`` / ``-i``)."""
    return LAUNCH(cmd, Path(cmd[2]), env=gitdesk_env() if system == "gitdesk" else dict(site_bench.ENV))


def same_answers(t: dict, rbin: Path) -> None:
    """``issue list --all`` and the filter find as many issues as Roundup's list and filter."""
    env = gitdesk_env()
    desk, home = t["desk"], t["home"]
    listed = json.loads(mail_bench.run([str(BIN / "issue"), "-C", str(desk), "list", "--all", "--json"],
                                       cwd=desk, env=env))
    status, label = FILTER
    filtered = json.loads(mail_bench.run([str(BIN / "issue"), "-C", str(desk), "list", "--status", status,
                                          "-l", label, "--json"], cwd=desk, env=env))
    admin = str(rbin / "roundup-admin")
    r_list = mail_bench.run([admin, "-i", str(home), "list", "issue"], cwd=home).strip().splitlines()
    r_filter = ast.literal_eval(mail_bench.run([admin, "-i", str(home), "filter", "issue",
                                                f"status={STATUS[status]}", f"keyword.name={label}"], cwd=home).strip())
    if (len(listed), len(filtered)) != (len(r_list), len(r_filter)) or not filtered:
        raise SystemExit(f"different answers: gitdesk lists {len(listed)} issues, {len(filtered)} filtered; "
                         f"Roundup {len(r_list)}, {len(r_filter)} filtered")
    t["filtered"] = len(filtered)


def measure(t: dict, rounds: int, rbin: Path) -> None:
    reads = commands(t, rbin)
    time.sleep(max(0.0, 2.5 - (time.time() - (t["desk"] / "issues").stat().st_mtime)))  # racy window
    cache = t["desk"] / ".gitdesk" / "cache"
    t["cold"] = {}
    for key, cmd, _ in reads:        # each first run builds what it needs of .gitdesk/cache
        shutil.rmtree(cache, ignore_errors=True)
        t["cold"][key] = timed(cmd, "gitdesk")
    print("  cold: " + ", ".join(f"{k} {v[0]:.2f}s" for k, v in t["cold"].items()), file=sys.stderr)
    same_answers(t, rbin)
    for _, cmd, other in reads:      # warm-up: byte code, the page cache, the index
        timed(cmd, "gitdesk")
        if other:
            timed(other, "roundup")
    runs: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for k in range(rounds):
        order = ["gitdesk", "roundup"] if k % 2 == 0 else ["roundup", "gitdesk"]
        pairs = [("new", *new_commands(t, rbin, k + 1))] + reads
        for key, mine, theirs in pairs:
            for system in order:
                cmd = mine if system == "gitdesk" else theirs
                if cmd:
                    runs.setdefault((key, system), []).append(timed(cmd, system))
        print(f"  round {k + 1}: " + ", ".join(f"{key} {runs[key, 'gitdesk'][-1][0]:.2f}s"
                                              + (f"/{runs[key, 'roundup'][-1][0]:.2f}s" if (key, "roundup") in runs
                                                 else "") for key, *_ in pairs), file=sys.stderr)
    t["runs"] = runs
    t["floors"] = mail_bench.floors(t["desk"].parent, t["desk"], max(5, 2 * rounds))
    t["python rss"] = LAUNCH([sys.executable, "-c", "pass"], t["desk"])[2]


def measure_mail(t: dict, rbin: Path, count: int, rounds: int) -> None:
    """benchmarks/mail/run.py's pipe and batch, on copies of both N-issue trackers: replies
    name the tickets the messages opened (numbered after the ones already there)."""
    messages = mail_bench.make_messages(count)
    templates = {"gitdesk": t["desk"], "roundup": t["home"]}
    offset = {"gitdesk": max(int(p.name) for p in (t["desk"] / "issues").iterdir() if p.name.isdigit()),
              "roundup": roundup_count(t["home"], rbin)["issues"]}
    raws = {system: [mail_bench.render({**m, "ticket": m["ticket"] + offset[system] * (m["kind"] == "reply")}, tag)
                     for m in messages] for system, tag in (("gitdesk", "[#{}]"), ("roundup", "[issue{}]"))}
    folder = t["desk"].parent / "mail"
    folder.mkdir()
    for system in raws:
        mail_bench.write_mbox(folder / f"{system}.mbox", raws[system])
    base = mail_bench.run(["git", "rev-parse", "HEAD"], cwd=t["desk"]).strip()
    before = {"gitdesk": mail_bench.count_gitdesk(t["desk"], base), "roundup": mail_bench.count_roundup(t["home"], rbin)}
    new, files = sum(m["kind"] == "new" for m in messages), sum(m["attachment"] is not None for m in messages)
    grow = {"gitdesk": {"tickets": new, "comments": count - new, "attachments": files, "originals": count,
                        "commits": count, "quarantined": 0},
            "roundup": {"issues": new, "messages": count, "files": files, "users": new}}

    def check(r, mode: str) -> None:
        after = {"gitdesk": mail_bench.count_gitdesk(r.desk["gitdesk", mode], base),
                 "roundup": mail_bench.count_roundup(r.desk["roundup", mode], rbin)}
        wrong = [f"{s} {k}: {after[s][k] - before[s][k]} more, expected {v}"
                 for s in grow for k, v in grow[s].items() if after[s][k] - before[s][k] != v]
        if wrong:
            raise SystemExit(f"mail {mode}: not every message was stored ({r.folder}):\n  " + "\n  ".join(wrong))

    warm = mail_bench.Round(folder / "warm-up", templates, rbin)
    for system in raws:
        LAUNCH(warm.pipe(system), warm.folder, raws[system][0], mail_bench.envelope(system, messages[0]))
    per: dict[str, dict[str, list[float]]] = {key: {"gitdesk": [], "roundup": []} for key in
                                              ("pipe wall", "pipe cpu", "batch wall", "batch cpu", "batch rss")}
    for k in range(rounds):
        order = ["gitdesk", "roundup"] if k % 2 == 0 else ["roundup", "gitdesk"]
        r = mail_bench.Round(folder / f"round-{k + 1}", templates, rbin)
        for system in order:
            per["pipe wall"][system].append(0.0)
            per["pipe cpu"][system].append(0.0)
        for i, msg in enumerate(messages):
            for system in order:
                wall, cpu, _ = LAUNCH(r.pipe(system), r.folder, raws[system][i], mail_bench.envelope(system, msg))
                per["pipe wall"][system][-1] += wall / count
                per["pipe cpu"][system][-1] += cpu / count
        check(r, "pipe")
        for system in order:
            wall, cpu, mib = LAUNCH(r.batch(system, folder / f"{system}.mbox"), r.folder,
                                    env=mail_bench.envelope(system))
            per["batch wall"][system].append(wall / count)
            per["batch cpu"][system].append(cpu / count)
            per["batch rss"][system].append(mib)
        check(r, "batch")
        shutil.rmtree(r.folder)
        print(f"  mail round {k + 1}: pipe {1000 * per['pipe wall']['gitdesk'][-1]:.0f} vs "
              f"{1000 * per['pipe wall']['roundup'][-1]:.0f} ms/message, batch "
              f"{1000 * per['batch wall']['gitdesk'][-1]:.1f} vs {1000 * per['batch wall']['roundup'][-1]:.1f}",
              file=sys.stderr)
    t["mail"] = {"per": per, "count": count, "new": new, "rounds": rounds}


def measure_site(t: dict, rounds: int) -> None:
    """benchmarks/site/run.py's comparison on this tracker: the public site against a plain
    ``mkdocs build`` of the same public issues, public comments and articles."""
    folder = t["desk"].parent
    public = [{**i, "comments": [c for c in i["comments"] if c["visibility"] == "public"]}
              for i in t["issues"] if i["visibility"] == "public"]
    plain = folder / "plain"
    plain.mkdir()
    site_bench.write_plain(plain, t["desk"], public, t["articles"])
    builds = {"gitdesk": ([str(BIN / "gitdesk"), "-C", str(t["desk"]), "site", "build", "-d",
                           str(folder / "out-gitdesk")], t["desk"], gitdesk_env()),
              "mkdocs": ([str(BIN / "mkdocs"), "build", "-q", "-d", str(folder / "out-mkdocs")], plain,
                         dict(site_bench.ENV))}
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in builds}
    for k in range(rounds):
        for name in (builds if k % 2 == 0 else reversed(builds)):
            cmd, cwd, env = builds[name]
            runs[name].append(LAUNCH(cmd, cwd, env=env))
        print(f"  site round {k + 1}: gitdesk {runs['gitdesk'][-1][0]:.1f}s, mkdocs {runs['mkdocs'][-1][0]:.1f}s",
              file=sys.stderr)
    pages = site_bench.check_same_pages(folder / "out-gitdesk", folder / "out-mkdocs", public)
    t["site"] = {"runs": runs, "public": len(public), "pages": pages, "rounds": rounds}


# -- the table --------------------------------------------------------------------------------
LABELS = {
    "new": ("`issue new TITLE -t ticket --customer ADDRESS -m TEXT`", "`roundup-admin create issue title=TITLE`"),
    "list": ("`issue list --all`", "`roundup-admin list issue`"),
    "filter": (f"`issue list --status {FILTER[0]} -l {FILTER[1]}`",
               f"`roundup-admin filter issue status={STATUS[FILTER[0]]} keyword.name={FILTER[1]}`"),
    "show": ("`issue show ID`", "`roundup-admin display issueID`"),
    "search": (f"`issue search {QUERY}`", "n/a (no full-text search on the command line)"),
    "queue": ("`issue queue`", "n/a (no work queue)"),
}


def _t(seconds: float, unit: bool = True, like: float | None = None) -> str:
    """Seconds as "1.23 s", "456 ms" or "7.8 ms"; ``like`` picks the unit of another value."""
    scale = seconds if like is None else like
    if scale >= 1:
        return f"{seconds:.2f}" + (" s" if unit else "")
    return (f"{1000 * seconds:.1f}" if scale < 0.1 else f"{1000 * seconds:.0f}") + (" ms" if unit else "")


def _span(values: list[float]) -> str:
    """The median and, over several values, the min–max in the median's unit."""
    middle = statistics.median(values)
    if len(values) == 1:
        return _t(middle)
    return f"{_t(middle)} ({_t(min(values), False, middle)}–{_t(max(values), False, middle)})"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _cells(samples: list[tuple[float, float, int]] | None) -> list[str]:
    if not samples:
        return ["", "", ""]
    return [_span([w for w, _, _ in samples]), _t(statistics.median(c for _, c, _ in samples)),
            f"{max(m for _, _, m in samples)} MiB"]


def _median(samples: list[tuple[float, float, int]]) -> float:
    return statistics.median(w for w, _, _ in samples)


def goals(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, met) for every goal; met is None when not measured."""
    by = {t["n"]: t for t in results}
    out: list[tuple[str, str, bool | None]] = []

    def ratio(n: int, key: str, goal: float, text: str) -> None:
        if n not in by:
            out.append((text, f"not measured (no {n:,}-issue run)", None))
            return
        value = _median(by[n]["runs"][key, "gitdesk"]) / _median(by[n]["runs"][key, "roundup"])
        out.append((text, f"{value:.2f}×", value <= goal))

    ratio(10_000, "new", GOALS["new"], f"`issue new` at 10,000 ≤ {GOALS['new']}× `roundup-admin create`")
    if 10_000 in by:
        f = by[10_000]["floors"]
        floor = statistics.median(f["python"]) + statistics.median(f["git"])
        value = _median(by[10_000]["runs"]["new", "gitdesk"]) / floor
        out.append((f"`issue new` at 10,000 ≤ {GOALS['new floors']}× (`python -c pass` + one `git commit`)",
                    f"{value:.2f}× ({_t(floor)})", value <= GOALS["new floors"]))
    else:
        out.append((f"`issue new` at 10,000 ≤ {GOALS['new floors']}× the floors", "not measured", None))
    ratio(10_000, "list", GOALS["list"], f"`issue list --all` at 10,000 ≤ {GOALS['list']}× `roundup-admin list issue`")
    if 100_000 in by:
        s = by[100_000]["runs"]["list", "gitdesk"]
        wall, mib = _median(s), max(m for _, _, m in s)
        out.append((f"`issue list --all` at 100,000 ≤ {GOALS['list 100k s']} s", _t(wall), wall <= GOALS["list 100k s"]))
        out.append((f"`issue list --all` at 100,000 ≤ {GOALS['list 100k MiB']} MB peak RSS", f"{mib} MiB",
                    mib * 1.048576 <= GOALS["list 100k MiB"]))
        wall = _median(by[100_000]["runs"]["search", "gitdesk"])
        out.append((f"`issue search` at 100,000 ≤ {GOALS['search 100k s']} s", _t(wall),
                    wall <= GOALS["search 100k s"]))
    else:
        for text in (f"`issue list --all` at 100,000 ≤ {GOALS['list 100k s']} s and ≤ {GOALS['list 100k MiB']} MB",
                     f"`issue search` at 100,000 ≤ {GOALS['search 100k s']} s"):
            out.append((text, "not measured (run with `--large`)", None))
    for t in results:
        ratio(t["n"], "show", GOALS["show"], f"`issue show` at {t['n']:,} ≤ {GOALS['show']}× `roundup-admin display`")
    for t in results:
        if "mail" in t:
            per = t["mail"]["per"]
            for mode, key in (("pipe", "pipe wall"), ("batch", "batch wall")):
                value = statistics.median(per[key]["gitdesk"]) / statistics.median(per[key]["roundup"])
                out.append((f"mail {mode} at {t['n']:,} ≤ {GOALS[mode]}× `roundup-mailgw` per message",
                            f"{value:.2f}×", value <= GOALS[mode]))
        if "site" in t:
            runs = t["site"]["runs"]
            value = _median(runs["gitdesk"]) / _median(runs["mkdocs"])
            out.append((f"`gitdesk site build` at {t['n']:,} ≤ {GOALS['site']}× plain `mkdocs build`",
                        f"{value:.2f}×", value <= GOALS["site"]))
    return out


def rows(t: dict) -> list[str]:
    n, runs = t["n"], t["runs"]
    lines = []
    for key in ("new", "list", "filter", "show", "search", "queue"):
        mine, theirs = LABELS[key]
        other = runs.get((key, "roundup"))
        ratio = goal = ""
        if other:
            value = _median(runs[key, "gitdesk"]) / _median(other)
            ratio = f"{value:.2f}×"
            limit = {"new": GOALS["new"] if n == 10_000 else None, "list": GOALS["list"] if n == 10_000 else None,
                     "show": GOALS["show"]}.get(key)
            goal = f"≤ {limit}× {_mark(value <= limit)}" if limit else ""
        if key == "new" and n == 10_000:
            floor = statistics.median(t["floors"]["python"]) + statistics.median(t["floors"]["git"])
            value = _median(runs["new", "gitdesk"]) / floor
            goal += f"; {value:.1f}× the floors, ≤ {GOALS['new floors']}× {_mark(value <= GOALS['new floors'])}"
        if n == 100_000 and key in ("list", "search"):
            s = runs[key, "gitdesk"]
            wall, mib = _median(s), max(m for _, _, m in s)
            limit = GOALS["list 100k s"] if key == "list" else GOALS["search 100k s"]
            goal = f"≤ {limit} s {_mark(wall <= limit)}"
            if key == "list":
                goal += f", ≤ {GOALS['list 100k MiB']} MB {_mark(mib * 1.048576 <= GOALS['list 100k MiB'])}"
        lines.append(f"| {n:,} | {mine} | {' | '.join(_cells(runs[key, 'gitdesk']))} | {theirs} | "
                     f"{' | '.join(_cells(other))} | {ratio} | {goal} |")
    for key in ("list", "filter", "show", "search", "queue"):
        lines.append(f"| {n:,} | {LABELS[key][0]}, first run (no `.gitdesk/cache`) | "
                     f"{' | '.join(_cells([t['cold'][key]]))} | | | | | | |")
    if "mail" in t:
        m = t["mail"]
        per = m["per"]
        for mode, mine, theirs in (("pipe", "`gitdesk mail ingest` (pipe), per message", "`roundup-mailgw HOME`"),
                                   ("batch", "`gitdesk mail ingest --mbox FILE`, per message",
                                    "`roundup-mailgw -c issue HOME mailbox FILE`")):
            cells = {}
            for system in ("gitdesk", "roundup"):
                rss = f"{max(per['batch rss'][system])} MiB" if mode == "batch" else ""
                cells[system] = (f"{_span(per[mode + ' wall'][system])} | "
                                 f"{_t(statistics.median(per[mode + ' cpu'][system]))} | {rss}")
            value = statistics.median(per[mode + " wall"]["gitdesk"]) / statistics.median(per[mode + " wall"]["roundup"])
            lines.append(f"| {n:,} | {mine} | {cells['gitdesk']} | {theirs} | {cells['roundup']} | {value:.2f}× | "
                         f"≤ {GOALS[mode]}× {_mark(value <= GOALS[mode])} |")
    if "site" in t:
        runs_site = t["site"]["runs"]
        value = _median(runs_site["gitdesk"]) / _median(runs_site["mkdocs"])
        lines.append(f"| {n:,} | `gitdesk site build` ({t['site']['public']:,} public issues) | "
                     f"{' | '.join(_cells(runs_site['gitdesk']))} | plain `mkdocs build` of the same pages (floor) | "
                     f"{' | '.join(_cells(runs_site['mkdocs']))} | {value:.2f}× | "
                     f"≤ {GOALS['site']}× {_mark(value <= GOALS['site'])} |")
    f = t["floors"]
    lines.append(f"| {n:,} | floor: `python -c pass` | {_span(f['python'])} | {_t(statistics.median(f['python_cpu']))} "
                 f"| {t['python rss']} MiB | | | | | | |")
    lines.append(f"| {n:,} | floor: `git commit` of one changed file in this tracker | {_span(f['git'])} | "
                 f"{_t(statistics.median(f['git_cpu']))} | | | | | | | |")
    return lines


def table(results: list[dict], rounds: int, version: str, load: tuple[float, float], command: str,
          took: float) -> str:
    git_version = mail_bench.run(["git", "--version"], cwd=HERE).split()[-1]
    machine = (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, git {git_version}, "
               f"{platform.system()} {platform.release()}")
    data = []
    for t in results:
        data.append(
            f"- **{t['n']:,} issues**: {t['tickets']:,} private support tickets (a customer's mail, staff "
            f"replies, the customer writing back), {t['n'] - t['tickets']:,} public bugs and features; "
            f"{t['comments']:,} comments, {t['internal']:,} of them internal notes; {len(t['articles'])} KB "
            f"articles; {t['users']:,} Roundup users. gitdesk files written with one commit (and `git gc`) in "
            f"{t['written']:.1f} s; loaded into Roundup in {t['loaded']:.1f} s. The filter finds "
            f"{t['filtered']:,} issues in both; `show` is of #{t['show']}.")
    mail_t = next((t for t in results if "mail" in t), None)
    mail = (f" Mail at {mail_t['n']:,} issues: {mail_t['mail']['count']} messages ({mail_t['mail']['new']} new "
            f"tickets, the rest replies), {mail_t['mail']['rounds']} round(s), on fresh copies of both trackers "
            "(benchmarks/mail/run.py's generator, pipe and batch; gitdesk's staff are notified through its "
            "outbox, Roundup's classic template notifies no one)." if mail_t else "")
    site_t = next((t for t in results if "site" in t), None)
    site = (f" Site at {site_t['n']:,} issues: {site_t['site']['rounds']} round(s), the public issues with their "
            "public comments and the KB articles (benchmarks/site/run.py's plain pages)." if site_t else "")
    status = ", ".join(f"{k} → {v}" for k, v in STATUS.items())
    priority = ", ".join(f"{k} → {v}" for k, v in PRIORITY.items())
    verdicts = [f"- {_mark(ok) if ok is not None else '–'} {text}: {value}" for text, value, ok in goals(results)]
    return "\n".join([
        "# Scale: gitdesk against Roundup on the same help desk", "",
        f"Measured {dt.date.today().isoformat()} on {machine}; gitdesk {version}; Roundup {mail_bench.ROUNDUP} "
        f"(classic template, sqlite backend, its default full-text indexer). Load average {load[0]:.1f} at the "
        f"start and {load[1]:.1f} at the end (the machine may be shared: CPU time is the steadier figure).", "",
        f"Made by: `{command}` (the whole run, data and Roundup's loading included: {took / 60:.1f} min)", "",
        f"Each command is a fresh process; median of {rounds} round(s) (min–max), alternating which system "
        "goes first; CPU is user + system time, with the processes it waited for (git); peak RSS is the "
        "largest max RSS of the process and of the git processes it waited for. gitdesk runs with `GITDESK_NOW` fixed and its "
        "`.gitdesk/cache` warm (one untimed run of each command before the rounds); the rows \"first run\" are "
        "single runs with no cache, as a fresh clone has. Each round's `issue new` and `create issue` add one "
        "issue to each tracker. Roundup's `display` prints the issue's properties, not its messages; "
        "`issue show` prints the whole thread.", "",
        "The same data in both: gitdesk's status → Roundup's: " + status + "; priority: " + priority + "; "
        "labels → keywords; the assignee → assignedto; every comment and internal note → a message (Roundup has "
        "no internal notes nor private issues) with its author and date; an issue's description → its first "
        "message. Users are created without passwords (a bulk load). Roundup sets its own creation times."
        + mail + site, "",
        *data, "",
        "| issues | gitdesk | wall | CPU | peak RSS | against | wall | CPU | peak RSS | ratio (wall) | goal |",
        "| ---: | :-- | ---: | ---: | ---: | :-- | ---: | ---: | ---: | ---: | :-- |",
        *(line for t in results for line in rows(t)), "",
        "## Goals", "", *verdicts, ""])


def snapshot(work: Path, rev: str | None) -> str:
    """The gitdesk to measure, copied once (mail benchmark's way): the working tree, or a git
    revision (index benchmark's export), so that edits made during the run change nothing."""
    if not rev:
        return mail_bench.snapshot_gitdesk(work)
    mail_bench.SNAPSHOT = index_bench.export(rev, work / "gitdesk-rev")
    where = mail_bench.run([sys.executable, "-c", "import gitdesk; print(gitdesk.__file__)"], cwd=work,
                           env=mail_bench.gitdesk_env()).strip()
    if not Path(where).is_relative_to(mail_bench.SNAPSHOT):
        raise SystemExit(f"gitdesk is imported from {where}, not from {mail_bench.SNAPSHOT}")
    sha = mail_bench.run(["git", "rev-parse", "--short", rev], cwd=index_bench.REPO).strip()
    return f"{importlib.metadata.version('gitdesk')} ({rev} = {sha})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated issue counts (default 1000,10000)")
    parser.add_argument("--large", action="store_true", help="add 100,000 issues to the sizes")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every command (default 5)")
    parser.add_argument("--messages", type=int, default=40, help="mail messages, at 1,000 issues (default 40)")
    parser.add_argument("--mail-rounds", type=int, default=2, help="rounds of the mail gateway (default 2)")
    parser.add_argument("--site-rounds", type=int, default=2, help="rounds of the site build (default 2)")
    parser.add_argument("--smoke", action="store_true", help="50 issues, 1 round, 6 messages: under a minute")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table is written")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--rev", help="measure the gitdesk of this git revision (default: the working tree)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds, args.messages, args.mail_rounds, args.site_rounds = "50", 1, 6, 1, 1
    sizes = sorted({int(x) for x in args.sizes.split(",")} | ({100_000} if args.large else set()))
    if args.rounds < 1 or args.messages < 2 or min(sizes) < 10:
        parser.error("need at least 1 round, 2 messages and 10 issues")
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"{args.keep} is not empty")
    global LAUNCH
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    LAUNCH = Launcher()
    rbin = mail_bench.roundup_bin()
    # the mail gateway and the site build once, on the smallest tracker up to 10,000 issues
    mail_at = 1000 if 1000 in sizes else min((n for n in sizes if n <= 10_000), default=0)
    results = []
    with site_bench.work_folder(args.keep.resolve() if args.keep else None, "gitdesk-bench-scale-") as work:
        version = snapshot(work, args.rev)
        for n in sizes:
            folder = work / f"n{n}"
            folder.mkdir()
            t = build(n, folder, rbin)
            measure(t, args.rounds, rbin)
            if n == mail_at:
                measure_mail(t, rbin, args.messages, args.mail_rounds)
                measure_site(t, args.site_rounds)
            results.append(t)
            print(f"{n:,} issues done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    LAUNCH.close()
    command = " ".join([".venv/bin/python", "benchmarks/scale/run.py", *(argv if argv is not None else sys.argv[1:])])
    took = time.perf_counter() - started
    site_bench.publish(table(results, args.rounds, version, (load_start, os.getloadavg()[0]), command, took),
                       args.out)
    print(f"({time.perf_counter() - started:.0f}s in all)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
