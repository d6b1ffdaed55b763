"""Search time: ``issue search`` on a tracker of N issues, cold (first search builds the index) and warm.

It reuses the site benchmark's generator (benchmarks/site/run.py): N issues with exactly
three comments each (one in five of them an internal note), KB articles, written straight
as files with one git commit. Each measurement is a fresh process, as a user runs it:

- cold: ``issue search`` with no index (``.gitdesk/cache`` deleted first);
- warm: ``issue search`` again, nothing changed (every file is still stat'ed);
- one edit: ``issue search`` after one comment was changed by hand;
- ``kb search`` warm, ``issue suggest`` warm, and ``issue list --all`` for comparison.

    .venv/bin/python benchmarks/search/run.py                  # 10,000 issues, 5 rounds
    .venv/bin/python benchmarks/search/run.py --sizes 1000 --rounds 3 --out /tmp/search.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("site_bench", HERE.parent / "site" / "run.py")
site_bench = importlib.util.module_from_spec(_spec)  # the site benchmark's generator
_spec.loader.exec_module(site_bench)

RESULTS = HERE.parent / "results" / "search.md"
QUERY = "nginx timeout"


def make_tracker(root: Path, n: int) -> None:
    issues, articles = site_bench.make_data(n)
    for issue in issues:  # exactly three comments each
        comments = issue["comments"]
        while len(comments) < 3:
            comments.append({**comments[-1], "date": comments[-1]["date"] + dt.timedelta(minutes=7)})
        del comments[3:]
        issue["updated"] = comments[-1]["date"]
    site_bench.write_tracker(root, issues, articles)
    for issue in issues[::5]:  # one comment in five an internal note
        folder = root / "issues" / str(issue["id"])
        note = sorted(p for p in folder.glob("*.md") if p.name != "issue.md")[0]
        note.write_text(note.read_text().replace("visibility: public", "visibility: internal"))
    site_bench.run(["git", "commit", "-qam", "internal notes"], cwd=root)


def timed(args: list[str], root: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, with the worker processes of a first build)."""
    wall, cpu, _ = site_bench.timed([str(site_bench.BIN / args[0]), "-C", str(root), *args[1:]], root)
    return wall, cpu


def measure(n: int, rounds: int, work: Path) -> dict[str, list[float]]:
    root = work / f"n{n}" / "desk"
    root.parent.mkdir(parents=True)
    start = time.perf_counter()
    make_tracker(root, n)
    print(f"{n} issues: written in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    time.sleep(2.5)  # files younger than 2 s are re-read on purpose (racy timestamps)
    cache = root / ".gitdesk" / "cache"
    comment = sorted((root / "issues" / "7").glob("2*.md"))[0]
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                  ("cold", "warm", "one edit", "kb search", "suggest", "list")}
    for k in range(rounds):
        shutil.rmtree(cache, ignore_errors=True)
        runs["cold"].append(timed(["issue", "search", QUERY], root))
        runs["warm"].append(timed(["issue", "search", QUERY], root))
        comment.write_text(comment.read_text() + f"\nedited by hand {k}\n")
        past = time.time() - 10
        os.utime(comment, (past, past))  # older than the racy window: one re-read, not two
        runs["one edit"].append(timed(["issue", "search", f"edited {k}"], root))
        runs["kb search"].append(timed(["kb", "search", QUERY], root))
        runs["suggest"].append(timed(["issue", "suggest", "7"], root))
        runs["list"].append(timed(["issue", "list", "--all"], root))
        print(f"  round {k + 1}: " + ", ".join(f"{name} {v[-1][0]:.2f}s ({v[-1][1]:.2f}s CPU)"
                                              for name, v in runs.items()), file=sys.stderr)
    runs["size"] = [(sum(p.stat().st_size for p in cache.iterdir()) / 2**20, 0.0)]
    return runs


def table(results: dict[int, dict[str, list[tuple[float, float]]]], rounds: int) -> str:
    lines = ["| issues | measure | wall: median | min–max | CPU: median |", "| ---: | :-- | ---: | ---: | ---: |"]
    labels = {"cold": "`issue search` cold (no index)", "warm": "`issue search` warm",
              "one edit": "`issue search` after a hand edit", "kb search": "`kb search` warm",
              "suggest": "`issue suggest` warm", "list": "`issue list --all` (for comparison)"}
    for n, runs in results.items():
        for key, label in labels.items():
            wall = [w for w, _ in runs[key]]
            cpu = statistics.median(c for _, c in runs[key])
            lines.append(f"| {n:,} | {label} | {statistics.median(wall):.2f} s | "
                         f"{min(wall):.2f}–{max(wall):.2f} | {cpu:.2f} s |")
        lines.append(f"| {n:,} | index size | {runs['size'][0][0]:.1f} MiB | | |")
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    return "\n".join([
        "# Search: cold and warm", "",
        f"Measured {dt.date.today().isoformat()} on {machine}; median of {rounds} round(s), each "
        "command a fresh process; CPU is user + system time, the steadier figure on a shared "
        "machine. Three comments per issue. "
        "Made by benchmarks/search/run.py.", "", *lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args(argv)
    with site_bench.work_folder(args.keep, "gitdesk-bench-search-") as work:
        results = {int(n): measure(int(n), args.rounds, work) for n in args.sizes.split(",")}
    site_bench.publish(table(results, args.rounds), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
