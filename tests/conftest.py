"""Shared fixtures: real trackers in temporary folders, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BIN = Path(sys.executable).parent
USER = "Alice Admin <alice@example.com>"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test sees the developer's git config or tracker; time is real unless a test fixes it."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GITDESK_USER", USER)
    monkeypatch.delenv("GITDESK_DIR", raising=False)
    monkeypatch.delenv("GITDESK_NOW", raising=False)
    monkeypatch.delenv("GITDESK_SITE_STAFF", raising=False)
    monkeypatch.setenv("EDITOR", "false")


@pytest.fixture
def tracker_dir(tmp_path) -> Path:
    from gitdesk.scaffold import init

    return init(tmp_path / "desk", name="Test Desk")


@pytest.fixture
def tracker(tracker_dir):
    from gitdesk import Tracker

    return Tracker(tracker_dir)


class Cli:
    """Runs the real click commands in-process, in a tracker folder."""

    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()

    def __call__(self, command: str, *args: str, input: str | None = None, env=None, ok=True):
        from gitdesk.cli import gitdesk, issue, kb

        group = {"issue": issue.main, "kb": kb.main, "gitdesk": gitdesk.main}[command]
        result = self.runner.invoke(group, ["-C", str(self.root), *args], input=input, env=env,
                                    catch_exceptions=False)
        if ok is True and result.exit_code != 0:
            raise AssertionError(f"{command} {' '.join(args)} -> {result.exit_code}\n"
                                 f"{result.output}{getattr(result, 'stderr', '')}")
        return result


@pytest.fixture
def cli(tracker_dir) -> Cli:
    return Cli(tracker_dir)


def run_bin(name: str, *args: str, cwd: Path, input: str | None = None, env=None):
    """Run an installed console script as a separate process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(BIN / name), *args], cwd=cwd, input=input, env=full_env,
                          capture_output=True, text=True)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def commit_count(root: Path) -> int:
    return int(git(root, "rev-list", "--count", "HEAD").strip())


def status(root: Path) -> str:
    return git(root, "status", "--porcelain=v1", "--untracked-files=all")
