"""Site build time: ``gitdesk site build`` against a plain ``mkdocs build`` of the same pages.

For each size it generates a tracker of N public issues (a few comments each, realistic
text, some KB articles), written straight as files with one git commit, and beside it the
same pages as ordinary Markdown files (one per issue with its comments, the index and label
pages as tables, the KB articles) with the same theme and the same not-in-nav setup, but no
hook. Both are built several times, alternating, each in a fresh process; the script prints
a Markdown table of medians, min-max, the ratio and each build's peak memory (max RSS), and
writes it to benchmarks/results/site.md.

    .venv/bin/python benchmarks/site/run.py                 # 1,000 and 5,000 issues, 3 rounds
    .venv/bin/python benchmarks/site/run.py --sizes 200 --rounds 1 --out /tmp/site.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
RESULTS = HERE.parent / "results" / "site.md"
GOAL = 1.25
ENV = {"NO_MKDOCS_2_WARNING": "1", "GITDESK_USER": "Bench Mark <bench@example.com>",
       "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

WORDS = """server mail backup restore disk quota dns record domain certificate renewal nginx
apache php mysql postgres database timeout error login password reset account invoice
payment upgrade migration cron job ssh key firewall port cache redis queue worker deploy
staging production log rotate memory cpu load slow page request response header redirect
ssl tls expired warning panel control user customer website upload file permission folder
""".split()
LABELS = ["mail", "dns", "backup", "billing", "ssl", "performance", "database", "login",
          "migration", "panel", "security", "network"]
AUTHORS = ["Alice Admin <alice@example.com>", "Bob Support <bob@example.com>",
           "Carol Customer <carol@customer.example>", "Dan Dev <dan@example.com>"]


def sentence(rng: random.Random, low: int = 6, high: int = 16) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def body(rng: random.Random, size: str) -> str:
    """Markdown like a real ticket: paragraphs, sometimes a list, a log excerpt or a link."""
    parts = [paragraph(rng, rng.randint(2, 5) if size == "issue" else rng.randint(1, 3))]
    if rng.random() < 0.4:
        parts.append("\n".join(f"- {sentence(rng, 3, 8)}" for _ in range(rng.randint(2, 5))))
    if rng.random() < 0.3:
        lines = [f"2025-01-{rng.randint(1, 28):02d} {rng.choice(WORDS)}: {sentence(rng, 4, 9)}"
                 for _ in range(rng.randint(3, 8))]
        parts.append("```\n" + "\n".join(lines) + "\n```")
    if rng.random() < 0.2:
        parts.append(f"See [the {rng.choice(WORDS)} guide](https://docs.example.org/"
                     f"{rng.choice(WORDS)}) and **{rng.choice(WORDS)}** settings.")
    if size == "issue" and rng.random() < 0.5:
        parts.append(paragraph(rng, rng.randint(1, 3)))
    return "\n\n".join(parts)


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_data(n: int, seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed * 100_003 + n)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    issues = []
    for issue_id in range(1, n + 1):
        created = start + dt.timedelta(minutes=rng.randint(0, 2 * 365 * 24 * 60))
        comments, moment = [], created
        for _ in range(rng.randint(2, 4)):
            moment += dt.timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            comments.append({"author": rng.choice(AUTHORS), "date": moment,
                             "via": rng.choice(["cli", "email"]), "body": body(rng, "comment")})
        issues.append({
            "id": issue_id, "title": sentence(rng, 4, 9)[:-1],
            "type": rng.choice(["bug", "bug", "feature"]),
            "status": rng.choice(["new", "open", "waiting", "resolved", "closed", "closed"]),
            "priority": rng.choice(["critical", "high", "normal", "normal", "low"]),
            "labels": sorted(rng.sample(LABELS, rng.randint(0, 3))),
            "author": rng.choice(AUTHORS), "created": created, "updated": moment,
            "body": body(rng, "issue"), "comments": comments})
    articles = [{"slug": f"article-{k}", "title": sentence(rng, 3, 6)[:-1],
                 "tags": rng.sample(LABELS, 2), "issues": rng.sample(range(1, n + 1), min(3, n)),
                 "body": "\n\n".join(paragraph(rng, 4) for _ in range(4))}
                for k in range(1, max(2, n // 50) + 1)]
    return issues, articles


def _yaml_list(items) -> str:
    return "[" + ", ".join(f'"{x}"' if isinstance(x, str) else str(x) for x in items) + "]"


def write_tracker(root: Path, issues: list[dict], articles: list[dict]) -> None:
    """A gitdesk tracker (``gitdesk init``), its files written directly, and one commit."""
    run([str(BIN / "gitdesk"), "init", str(root), "--name", "Bench Desk"], cwd=root.parent)
    for issue in issues:
        folder = root / "issues" / str(issue["id"])
        folder.mkdir(parents=True)
        (folder / "issue.md").write_text(
            f'---\ntitle: "{issue["title"]}"\ntype: {issue["type"]}\nstatus: {issue["status"]}\n'
            f'priority: {issue["priority"]}\nvisibility: public\nlabels: {_yaml_list(issue["labels"])}\n'
            f'author: "{issue["author"]}"\ncreated: {stamp(issue["created"])}\n'
            f'updated: {stamp(issue["updated"])}\n---\n\n{issue["body"]}\n')
        for comment in issue["comments"]:
            who = comment["author"].split()[0].lower()
            name = f'{comment["date"].strftime("%Y%m%dT%H%M%SZ")}-{who}.md'
            (folder / name).write_text(
                f'---\nauthor: "{comment["author"]}"\ndate: {stamp(comment["date"])}\n'
                f'visibility: public\nvia: {comment["via"]}\n---\n\n{comment["body"]}\n')
    for article in articles:
        (root / "kb" / f'{article["slug"]}.md').write_text(
            f'---\ntitle: "{article["title"]}"\nvisibility: public\ntags: {_yaml_list(article["tags"])}\n'
            f'issues: {_yaml_list(article["issues"])}\n---\n\n{article["body"]}\n')
    run(["git", "add", "-A"], cwd=root)
    run(["git", "commit", "-q", "-m", f"benchmark data: {len(issues)} issues"], cwd=root)


def write_plain(root: Path, tracker: Path, issues: list[dict], articles: list[dict]) -> None:
    """The same pages as ordinary Markdown files, built by MkDocs with no hook."""
    docs = root / "docs"
    shutil.copytree(tracker / "docs", docs)
    config = (tracker / "mkdocs.yml").read_text()
    config = config.replace("hooks:\n  - hooks/gitdesk_hooks.py\n", "")
    if "gitdesk_hooks" in config:
        raise SystemExit(f"{tracker / 'mkdocs.yml'}: cannot take the hook out of it")
    (root / "mkdocs.yml").write_text(config)
    closed = {"resolved", "closed"}
    for issue in issues:
        head = [f'# #{issue["id"]} {issue["title"]}', "",
                f'**status:** {issue["status"]} · **priority:** {issue["priority"]} · '
                f'**type:** {issue["type"]}' + "".join(f" · `{x}`" for x in issue["labels"]), "",
                f'Opened {stamp(issue["created"])} · updated {stamp(issue["updated"])}', "",
                issue["body"], "", f'## Comments ({len(issue["comments"])})', ""]
        for comment in issue["comments"]:
            head += [f'**{comment["author"].split(" <")[0]}** · {stamp(comment["date"])}', "",
                     comment["body"], ""]
        head.append(f'[All issues]({"closed" if issue["status"] in closed else "index"}.md)')
        page = docs / "issues" / f'{issue["id"]}.md'
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("\n".join(head) + "\n")

    def table(title: str, rows: list[dict], to_issue: str) -> str:
        lines = [f"# {title}", "", f"{len(rows)} issue(s).", "",
                 "| # | Title | Status | Priority | Type | Labels | Updated |",
                 "| - | - | - | - | - | - | - |"]
        for i in sorted(rows, key=lambda i: -i["id"]):
            link = f'{to_issue}{i["id"]}.md'
            lines.append(f'| [#{i["id"]}]({link}) | [{i["title"]}]({link}) | {i["status"]} | '
                         f'{i["priority"]} | {i["type"]} | {", ".join(i["labels"])} | '
                         f'{stamp(i["updated"])[:10]} |')
        return "\n".join(lines) + "\n"

    (docs / "issues" / "index.md").write_text(
        table("Open issues", [i for i in issues if i["status"] not in closed], ""))
    (docs / "issues" / "closed.md").write_text(
        table("Closed issues", [i for i in issues if i["status"] in closed], ""))
    (docs / "issues" / "label").mkdir()
    for label in LABELS:
        (docs / "issues" / "label" / f"{label}.md").write_text(
            table(f"Label: {label}", [i for i in issues if label in i["labels"]], "../"))
    (docs / "kb").mkdir()
    for article in articles:
        related = "".join(f"- [#{n}](../issues/{n}.md)\n" for n in article["issues"])
        (docs / "kb" / f'{article["slug"]}.md').write_text(
            f'# {article["title"]}\n\n{article["body"]}\n\n## Related issues\n\n{related}')
    (docs / "kb" / "index.md").write_text("# Knowledge base\n\n" + "".join(
        f'- [{a["title"]}]({a["slug"]}.md)\n' for a in articles))
    (docs / "reports").mkdir()
    (docs / "reports" / "index.md").write_text("# Reports\n\nNot part of the plain build.\n")


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, **ENV})


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one process and the
    children it waited for. CPU time is the steadier figure on a shared machine."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **ENV},
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{err.read().decode(errors='replace')}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def check_same_pages(gitdesk_site: Path, plain_site: Path, issues: list[dict]) -> int:
    """Both builds made a page for every issue: the comparison is of the same work."""
    for site in (gitdesk_site, plain_site):
        missing = [i["id"] for i in issues if not (site / "issues" / str(i["id"]) / "index.html").is_file()]
        if missing:
            raise SystemExit(f"{site}: no page for issues {missing[:5]}...")
    return sum(1 for _ in gitdesk_site.rglob("*.html"))


def measure(n: int, rounds: int, work: Path) -> dict:
    folder = work / f"n{n}"
    folder.mkdir(parents=True)
    issues, articles = make_data(n)
    tracker, plain = folder / "desk", folder / "plain"
    t0 = time.perf_counter()
    write_tracker(tracker, issues, articles)
    plain.mkdir()
    write_plain(plain, tracker, issues, articles)
    print(f"{n} issues: data written in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    commands = {
        "gitdesk": ([str(BIN / "gitdesk"), "site", "build", "-d", str(folder / "out-gitdesk")], tracker),
        "mkdocs": ([str(BIN / "mkdocs"), "build", "-q", "-d", str(folder / "out-mkdocs")], plain),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    memory: dict[str, list[int]] = {name: [] for name in commands}
    for k in range(rounds):
        order = list(commands) if k % 2 == 0 else list(reversed(commands))
        for name in order:
            seconds, cpu_seconds, mib = timed(*commands[name])
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
            memory[name].append(mib)
            print(f"  round {k + 1}: {name} {seconds:.2f}s wall, {cpu_seconds:.2f}s CPU, {mib} MiB",
                  file=sys.stderr)
    pages = check_same_pages(folder / "out-gitdesk", folder / "out-mkdocs", issues)
    comments = sum(len(i["comments"]) for i in issues)
    return {"n": n, "comments": comments, "articles": len(articles), "pages": pages,
            "times": times, "cpu": cpu, "memory": memory}


def table(results: list[dict], rounds: int) -> str:
    def span(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"

    def ratio(r: dict, key: str) -> str:
        value = statistics.median(r[key]["gitdesk"]) / statistics.median(r[key]["mkdocs"])
        return f'{value:.2f}× {"✓" if value <= GOAL else "✗"}'

    lines = ["| public issues | comments | pages | measure | `gitdesk site build` | plain `mkdocs build` "
             "| ratio |", "| ---: | ---: | ---: | :-- | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f'| {r["n"]:,} | {r["comments"]:,} | {r["pages"]:,} | wall '
                     f'| {span(r["times"]["gitdesk"])} | {span(r["times"]["mkdocs"])} | {ratio(r, "times")} |')
        lines.append(f'| | | | CPU (user+sys) | {span(r["cpu"]["gitdesk"])} | {span(r["cpu"]["mkdocs"])} '
                     f'| {ratio(r, "cpu")} |')
        lines.append(f'| | | | peak RSS | {max(r["memory"]["gitdesk"])} MiB | {max(r["memory"]["mkdocs"])} MiB '
                     f'| {max(r["memory"]["gitdesk"]) / max(r["memory"]["mkdocs"]):.2f}× |')
    import mkdocs

    machine = (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, MkDocs {mkdocs.__version__}, "
               f"{platform.system()} {platform.release()}")
    return "\n".join([
        "# Site build: gitdesk against plain MkDocs", "",
        f"Measured {dt.date.today().isoformat()} on {machine}; median of {rounds} round(s) "
        "(min–max), each build a fresh process; goal: ratio ≤ "
        f"{GOAL}×. Made by `make bench-site` (benchmarks/site/run.py).", "", *lines, ""])


@contextlib.contextmanager
def work_folder(keep: Path | None, prefix: str):
    """Where a benchmark generates its trackers: ``keep`` (left in place), or a temporary
    folder removed afterwards. The other benchmarks use it too."""
    work = keep or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def publish(text: str, out: Path) -> None:
    """Write a result table to ``out`` (benchmarks/results/...) and print it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated issue counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table is written")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args(argv)
    with work_folder(args.keep, "gitdesk-bench-") as work:
        results = [measure(int(n), args.rounds, work) for n in args.sizes.split(",")]
    publish(table(results, args.rounds), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
