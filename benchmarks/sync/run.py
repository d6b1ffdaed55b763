"""Sync: `gitdesk sync` against plain git (`git pull --rebase` then `git push`) on the same
help desk of 1,000 and 10,000 issues, shared through a bare repository by two clones.

For each size it writes the scale benchmark's tracker (benchmarks/scale/run.py), makes two
bare copies of it (one for gitdesk, one for plain git) and two clones of each. A round:
clone a adds a comment to an issue and shares it (not timed); clone b adds a comment to
another issue, then the timed step brings a's work in and pushes b's: `gitdesk sync` (one
commit fetched, one replayed, one pushed) against `git pull --rebase -q` + `git push -q`
(two processes, their times summed). Also timed: the same when there is nothing to fetch
(push only), when there is nothing at all, and a clash (both clones made a new issue;
gitdesk renumbers b's, for which plain git has no answer: it stops with a conflict). Median
of the rounds, each command a fresh process. Prints a Markdown table and writes it to
benchmarks/results/sync.md.

    .venv/bin/python benchmarks/sync/run.py                 # 1,000 and 10,000 issues, 5 rounds
    .venv/bin/python benchmarks/sync/run.py --sizes 200 --rounds 1 --out /tmp/sync.md   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("scale_bench", HERE.parent / "scale" / "run.py")
scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale)

BIN = scale.BIN
RESULTS = HERE.parent / "results" / "sync.md"


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    """Run a command (it must succeed); its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} in {cwd} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took


def clone(shared: Path, folder: Path, who: str) -> Path:
    sh(["git", "clone", "-q", str(shared), str(folder)], cwd=shared.parent)
    sh(["git", "config", "user.name", who], cwd=folder)
    sh(["git", "config", "user.email", f"{who}@example.com"], cwd=folder)
    sh(["git", "config", "gc.auto", "0"], cwd=folder)
    return folder


def env_for(who: str) -> dict:
    return {**scale.gitdesk_env(), "GITDESK_USER": f"{who} <{who}@example.com>"}


def comment_file(root: Path, number: int, k: int, who: str) -> None:
    """What `issue comment` writes, written by hand for the plain-git clones."""
    path = root / "issues" / str(number) / f"20260302T10{k // 60 % 60:02d}{k % 60:02d}Z-{who}.md"
    path.write_text(f"---\nauthor: {who} <{who}@example.com>\ndate: 2026-03-02T10:00:00Z\n"
                    f"visibility: public\nvia: cli\n---\n\nRound {k} from {who}.\n")


def git_commit(root: Path, message: str) -> None:
    sh(["git", "add", "-A", "issues"], cwd=root)
    sh(["git", "commit", "-q", "-m", message], cwd=root)


def measure(n: int, rounds: int, work: Path) -> dict:
    issues, articles = scale.make_data(n)
    desk = work / "desk"
    scale.write_desk(desk, issues, articles)
    pairs = {}
    for system in ("gitdesk", "git"):
        shared = work / f"{system}.git"
        sh(["git", "clone", "-q", "--bare", str(desk), str(shared)], cwd=work)
        pairs[system] = (clone(shared, work / f"{system}-a", "ann"), clone(shared, work / f"{system}-b", "ben"))
    (ga, gb), (pa, pb) = pairs["gitdesk"], pairs["git"]
    gd = [str(BIN / "gitdesk"), "sync"]
    pull, push = ["git", "pull", "--rebase", "-q"], ["git", "push", "-q"]
    times: dict[str, list[float]] = {k: [] for k in ("both", "both git", "push", "push git", "none", "none git",
                                                     "clash")}
    for k in range(rounds):
        one, two = 1 + (2 * k) % n, 1 + (2 * k + 1) % n
        # one commit each way
        sh([str(BIN / "issue"), "comment", str(one), "-m", f"Round {k} from ann."], ga, env_for("ann"))
        sh(gd, ga, env_for("ann"))
        sh([str(BIN / "issue"), "comment", str(two), "-m", f"Round {k} from ben."], gb, env_for("ben"))
        times["both"].append(sh(gd, gb, env_for("ben")))
        comment_file(pa, one, k, "ann")
        git_commit(pa, f"#{one} comment by ann")
        sh(pull, pa)
        sh(push, pa)
        comment_file(pb, two, k, "ben")
        git_commit(pb, f"#{two} comment by ben")
        times["both git"].append(sh(pull, pb) + sh(push, pb))
        # push only: a's turn to catch up first, then b has one commit and nothing to fetch
        sh(gd, ga, env_for("ann"))
        sh(pull, pa)
        sh([str(BIN / "issue"), "comment", str(one), "-m", f"Round {k} again from ben."], gb, env_for("ben"))
        times["push"].append(sh(gd, gb, env_for("ben")))
        comment_file(pb, one, k + 1000, "ben")
        git_commit(pb, f"#{one} comment by ben")
        times["push git"].append(sh(pull, pb) + sh(push, pb))
        # nothing to do
        times["none"].append(sh(gd, gb, env_for("ben")))
        times["none git"].append(sh(pull, pb) + sh(push, pb))
        # a clash: both make a new issue; b's is renumbered
        sh([str(BIN / "issue"), "new", f"Round {k} by ann", "-m", "x"], ga, env_for("ann"))
        sh(gd, ga, env_for("ann"))
        sh([str(BIN / "issue"), "new", f"Round {k} by ben", "-m", "x"], gb, env_for("ben"))
        times["clash"].append(sh(gd, gb, env_for("ben")))
        sh(gd, ga, env_for("ann"))
    heads = {subprocess.run(["git", "rev-parse", "HEAD"], cwd=c, capture_output=True, text=True).stdout
             for c in (ga, gb)}
    if len(heads) != 1:
        raise SystemExit("the gitdesk clones differ after the last sync")
    return {"n": n, "files": sum(1 for _ in (desk / "issues").glob("*/*.md")), "times": times}


def table(results: list[dict], rounds: int) -> str:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}–{max(values) * 1000:.0f})"

    head = ("| issues (files) | case | `gitdesk sync` | plain git | ratio |\n"
            "| ---: | :-- | ---: | ---: | ---: |\n")
    lines = []
    for r in results:
        t = r["times"]
        for case, key, what in (("one commit fetched, one replayed and pushed", "both",
                                 "`git pull --rebase` + `git push`"),
                                ("nothing to fetch, one commit pushed", "push", "`git pull --rebase` + `git push`"),
                                ("nothing to do", "none", "`git pull --rebase` + `git push`")):
            ratio = statistics.median(t[key]) / statistics.median(t[f"{key} git"])
            lines.append(f"| {r['n']:,} ({r['files']:,}) | {case} | {cell(t[key])} | {cell(t[key + ' git'])} "
                         f"{what} | {ratio:.2f}× |")
        lines.append(f"| {r['n']:,} ({r['files']:,}) | a clash: both made a new issue, this clone's is "
                     f"renumbered | {cell(t['clash'])} | stops with a conflict | |")
    when = time.strftime("%Y-%m-%d", time.gmtime())
    load = os.getloadavg()[0]
    return (f"# gitdesk sync against plain git\n\n{when}, {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load {load:.1f}; {rounds} rounds, median (min–max); each command a fresh process.\n"
            f"Written by `benchmarks/sync/run.py`; the module's text says what is timed.\n\n" + head
            + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"gitdesk-sync-{n}-"))
        try:
            results.append(measure(n, args.rounds, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{n:,} issues done", file=sys.stderr)
    text = table(results, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
