"""The scale benchmark (benchmarks/scale/run.py) runs end to end: both trackers made and
loaded, every command timed, a table with a number in every row it promises."""

import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

# (row label, compared against Roundup or the plain build: a second time and a ratio)
ROWS = [("`issue new ", True), ("`issue list --all` |", True), ("`issue list --status open -l dns` |", True),
        ("`issue show ID` |", True), ("`issue search nginx timeout` |", False), ("`issue queue` |", False),
        ("`issue list --all`, first run", False), ("`issue search nginx timeout`, first run", False),
        ("`gitdesk mail ingest` (pipe)", True), ("`gitdesk mail ingest --mbox FILE`", True),
        ("`gitdesk site build`", True), ("floor: `python -c pass`", False), ("floor: `git commit`", False)]
TIME = re.compile(r"\d+(\.\d+)? m?s( \([\d.]+–[\d.]+\))?")


def _roundup_or_skip(monkeypatch) -> None:
    """Roundup 2.6.0 as the benchmarks install it (once, into benchmarks/work/); skip without it."""
    spec = importlib.util.spec_from_file_location("mail_bench", REPO / "benchmarks" / "mail" / "run.py")
    mail_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mail_bench)
    monkeypatch.setenv("PIP_RETRIES", "0")      # no network: fail at once, not after minutes
    monkeypatch.setenv("PIP_TIMEOUT", "10")
    try:
        mail_bench.roundup_bin()
    except SystemExit as stop:
        pytest.skip(f"Roundup {mail_bench.ROUNDUP} cannot be installed: {str(stop).splitlines()[0]}")


def test_scale_benchmark_smoke_run_fills_every_row(tmp_path, monkeypatch):
    _roundup_or_skip(monkeypatch)
    out = tmp_path / "scale.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scale" / "run.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 50 |")]
    for label, compared in ROWS:
        found = [row for row in rows if label in row]
        assert len(found) == 1, f"{label}: {len(found)} rows"
        cells = [cell.strip() for cell in found[0].split("|")[1:-1]]
        assert len(cells) == 11, found[0]
        assert TIME.fullmatch(cells[2]) and TIME.fullmatch(cells[3]), found[0]     # gitdesk: wall, CPU
        if compared:
            assert TIME.fullmatch(cells[6]) and re.fullmatch(r"\d+\.\d\d×", cells[9]), found[0]
    assert "## Goals" in out.read_text()


def test_sync_benchmark_smoke_run_fills_every_row(tmp_path):
    """benchmarks/sync/run.py on 60 issues, one round: the four cases with both times and a
    ratio where plain git can do the same, and the two gitdesk clones equal at the end."""
    out = tmp_path / "sync.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sync" / "run.py"), "--sizes", "60",
                           "--rounds", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 60 ")]
    assert len(rows) == 4, rows
    for row in rows[:3]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert TIME.match(cells[2]) and TIME.match(cells[3]) and re.fullmatch(r"\d+\.\d\d×", cells[4]), row
    assert "stops with a conflict" in rows[3] and TIME.match(rows[3].split("|")[3].strip())
