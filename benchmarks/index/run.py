"""List and queue time: ``issue list``, ``issue queue``, ``issue next`` and ``issue search`` on a
tracker of N issues, cold (no index cache) and warm, for the code of a git revision ("before")
and for the working tree ("after").

It reuses the search benchmark's tracker (benchmarks/search/run.py: N issues with exactly
three comments each, written as files with one git commit). Each measurement is a fresh
process, as a user runs it:

- cold: the command with no index (``.gitdesk/cache`` deleted first);
- warm: the same command again, nothing changed (every file is still stat'ed).

Before timing, the JSON answers of ``issue list --all``, ``issue list``, ``issue queue`` and
``issue next`` of both versions are compared: the table is of the same work.

    .venv/bin/python benchmarks/index/run.py                     # 10,000 issues, 5 rounds, before = HEAD
    .venv/bin/python benchmarks/index/run.py --sizes 1000 --rounds 3 --out /tmp/index.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
_spec = importlib.util.spec_from_file_location("search_bench", HERE.parent / "search" / "run.py")
search_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_bench)
site_bench = search_bench.site_bench

RESULTS = HERE.parent / "results" / "index.md"
NOW = "2026-06-01T12:00:00Z"  # a fixed "now": ages and SLA clocks are the same in both versions
COMMANDS = {
    "list": ["issue", "list"],
    "queue": ["issue", "queue"],
    "next": ["issue", "next"],
    "search": ["issue", "search", search_bench.QUERY],
}
SAME = [["issue", "list", "--all", "--json"], ["issue", "list", "--json"],
        ["issue", "queue", "--json"], ["issue", "next", "--json"], ["issue", "list", "--overdue"]]


def export(rev: str, into: Path) -> Path:
    """The ``tools`` folder of a git revision, to put first on PYTHONPATH."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "tools"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "tools"


def _env(path: Path | None) -> dict[str, str]:
    env = {**os.environ, **site_bench.ENV, "GITDESK_NOW": NOW}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    else:
        env.pop("PYTHONPATH", None)
    return env


def timed(args: list[str], root: Path, path: Path | None) -> float:
    start = time.perf_counter()
    subprocess.run([str(site_bench.BIN / args[0]), "-C", str(root), *args[1:]], cwd=root, check=True,
                   env=_env(path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def output(args: list[str], root: Path, path: Path | None) -> tuple[str, str]:
    done = subprocess.run([str(site_bench.BIN / args[0]), "-C", str(root), *args[1:]], cwd=root,
                          env=_env(path), capture_output=True, text=True)
    return done.stdout, done.stderr


def measure(n: int, rounds: int, work: Path, versions: dict[str, Path | None]) -> dict:
    root = work / f"n{n}" / "desk"
    root.parent.mkdir(parents=True)
    start = time.perf_counter()
    search_bench.make_tracker(root, n)
    print(f"{n} issues: written in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    time.sleep(2.5)  # files younger than 2 s are re-read on purpose (racy timestamps)
    cache = root / ".gitdesk" / "cache"
    same = []
    for args in SAME:
        answers = {name: output(args, root, path) for name, path in versions.items()}
        same.append((" ".join(args), len(set(answers.values())) == 1))
        if len(set(answers.values())) != 1:
            print(f"DIFFERENT: {' '.join(args)}", file=sys.stderr)
    runs: dict[tuple[str, str, str], list[float]] = {}
    for k in range(rounds):
        for name, path in versions.items():
            for cmd, args in COMMANDS.items():
                shutil.rmtree(cache, ignore_errors=True)
                runs.setdefault((name, cmd, "cold"), []).append(timed(args, root, path))
                runs.setdefault((name, cmd, "warm"), []).append(timed(args, root, path))
        print(f"round {k + 1} done", file=sys.stderr)
    return {"runs": runs, "same": same}


def table(results: dict[int, dict], rounds: int, versions: list[str], command: str) -> str:
    head = " | ".join(f"{v}: median (min–max)" for v in versions)
    lines = [f"| issues | command | cache | {head} |", "| ---: | :-- | :-- |" + " ---: |" * len(versions)]
    for n, result in results.items():
        runs = result["runs"]
        for cmd, args in COMMANDS.items():
            for state in ("cold", "warm"):
                cells = []
                for v in versions:
                    wall = runs[(v, cmd, state)]
                    cells.append(f"{statistics.median(wall):.2f} s ({min(wall):.2f}–{max(wall):.2f})")
                lines.append(f"| {n:,} | `{' '.join(args)}` | {state} | {' | '.join(cells)} |")
    checks = [f"- `{args}`: {'same output' if ok else 'DIFFERENT OUTPUT'}"
              for result in results.values() for args, ok in result["same"]]
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    return "\n".join([
        "# Listing and the queue from the index: cold and warm", "",
        f"Measured {dt.date.today().isoformat()} on {machine} (shared); wall time, median of "
        f"{rounds} round(s), each command a fresh process. Three comments per issue. Cold: "
        "`.gitdesk/cache` deleted just before (the command builds the index; before the change "
        "only `issue search` used it). Warm: the same command again, nothing changed (every file "
        "is still stat'ed). `GITDESK_NOW` fixed, so both versions answer the same.", "",
        f"Made by: `{command}`", "", *lines, "",
        "Answers compared between the versions before timing:", "", *checks, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="HEAD", help="git revision to compare with ('' for none)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args(argv)
    with site_bench.work_folder(args.keep, "gitdesk-bench-index-") as work:
        versions: dict[str, Path | None] = {}
        if args.before:
            versions[f"before ({args.before})"] = export(args.before, work / "before")
        versions["after (working tree)"] = None
        results = {int(n): measure(int(n), args.rounds, work, versions) for n in args.sizes.split(",")}
    command = " ".join([".venv/bin/python", "benchmarks/index/run.py", *(argv if argv is not None else sys.argv[1:])])
    site_bench.publish(table(results, args.rounds, list(versions), command), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
