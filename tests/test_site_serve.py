"""``gitdesk site serve``: the live preview rebuilds when an issue, comment or KB file changes,
and the staff preview never writes into the tracker (its build lives in a temporary folder).

Each test starts the real command as a process on a free port of 127.0.0.1, reads pages over
HTTP, changes the tracker, and polls the page until the change shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, run_bin, status

QUIET = {"NO_MKDOCS_2_WARNING": "1"}
FRESH = 5.0  # seconds a change may take to show (the goal is about one)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", errors="replace")


class Preview:
    """A running ``gitdesk site serve``; its temporary build folder goes under ``tmp``."""

    def __init__(self, root: Path, tmp: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.tmp = tmp
        tmp.mkdir(exist_ok=True)
        self.log = tmp.parent / f"serve-{self.port}.log"
        env = {**os.environ, **QUIET, "TMPDIR": str(tmp)}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "gitdesk"), "site", "serve", "-a", f"127.0.0.1:{self.port}", *args],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(self.url)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the preview did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def page(self, path: str) -> tuple[int, str]:
        return _get(self.url + path)

    def wait_for(self, path: str, text: str) -> float:
        """Seconds until ``text`` shows on the page (fails after FRESH seconds)."""
        start = time.monotonic()
        while time.monotonic() - start < FRESH:
            if text in self.page(path)[1]:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on /{path} after {FRESH}s:\n{self.output()}")

    def stop(self, sig=signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def desk(cli, tracker_dir):
    cli("issue", "new", "Public bug", "-t", "bug", "--public", "-m", "Public body")
    cli("issue", "comment", "1", "-m", "First public comment")
    cli("issue", "new", "Private ticket SECRETMARK", "--private", "-m", "Private body")
    cli("issue", "comment", "1", "--internal", "-m", "Internal NOTEMARK")
    cli("kb", "new", "Reset a password", "--internal", "--slug", "reset", "-m", "Old KB text")
    return tracker_dir


def test_preview_shows_a_new_comment_a_hand_edit_and_a_kb_change(cli, desk, tmp_path):
    preview = Preview(desk, tmp_path / "tmp")
    try:
        code, page = preview.page("issues/1/")
        assert code == 200 and "First public comment" in page and "Public body" in page
        assert "NOTEMARK" not in page
        assert preview.page("issues/2/")[0] == 404  # the public preview has no private issue

        cli("issue", "comment", "1", "-m", "Brand new COMMENTMARK")
        seconds = preview.wait_for("issues/1/", "Brand new COMMENTMARK")
        assert seconds < FRESH

        issue_file = desk / "issues" / "1" / "issue.md"
        issue_file.write_text(issue_file.read_text().replace("Public body", "Hand-edited EDITMARK"))
        preview.wait_for("issues/1/", "Hand-edited EDITMARK")
        assert "Public body" not in preview.page("issues/1/")[1]

        assert preview.page("kb/reset/")[0] == 404  # internal: not in the public preview
        article = desk / "kb" / "reset.md"
        article.write_text(article.read_text().replace("visibility: internal", "visibility: public")
                           .replace("Old KB text", "New KB KBMARK"))
        preview.wait_for("kb/reset/", "New KB KBMARK")
    finally:
        stopped = preview.stop()
    assert stopped == 0, preview.output()
    assert "Traceback" not in preview.output()
    assert list(preview.tmp.iterdir()) == []  # MkDocs removed its build folder
    assert not (desk / "site").exists() and not (desk / "site-staff").exists()


def test_staff_preview_shows_everything_and_writes_nothing_into_the_tracker(desk, tmp_path):
    assert run_bin("gitdesk", "site", "build", cwd=desk, env=QUIET).returncode == 0
    before_site = sorted(p.relative_to(desk).as_posix() for p in (desk / "site").rglob("*"))
    before_status = status(desk)
    preview = Preview(desk, tmp_path / "tmp", "--staff")
    try:
        code, page = preview.page("issues/2/")
        assert code == 200 and "SECRETMARK" in page
        assert "NOTEMARK" in preview.page("issues/1/")[1]
        # the staff build is in MkDocs' temporary folder, under TMPDIR, and nowhere else
        (build,) = preview.tmp.iterdir()
        assert build.name.startswith("mkdocs_")
        assert "SECRETMARK" in (build / "issues" / "2" / "index.html").read_text()
    finally:
        stopped = preview.stop(signal.SIGTERM)
    assert stopped == 0, preview.output()  # SIGTERM stops it cleanly too
    assert list(preview.tmp.iterdir()) == []
    assert sorted(p.relative_to(desk).as_posix() for p in (desk / "site").rglob("*")) == before_site
    assert not (desk / "site" / "issues" / "2").exists()
    assert not (desk / "site-staff").exists()
    assert status(desk) == before_status


def test_staff_preview_refuses_to_listen_beyond_this_machine(desk):
    result = run_bin("gitdesk", "site", "serve", "--staff", "-a", f"0.0.0.0:{_free_port()}",
                     cwd=desk, env=QUIET)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: the staff preview listens on this machine only (127.0.0.1, ::1 or localhost), "
        "not on 0.0.0.0"]


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "127.0.0.1:"])
def test_a_bad_address_is_one_line(desk, address):
    result = run_bin("gitdesk", "site", "serve", "-a", address, cwd=desk, env=QUIET)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: {address!r}: not an address; give HOST:PORT, "
                                     "e.g. 127.0.0.1:8000")


def test_a_port_in_use_is_one_line_and_leaves_no_build_behind(desk, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bin("gitdesk", "site", "serve", "-a", f"127.0.0.1:{port}", cwd=desk,
                         env={**QUIET, "TMPDIR": str(tmp)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: cannot serve on 127.0.0.1:{port}: Address already in use")
    assert list(tmp.iterdir()) == []


def test_the_hook_watches_every_source_of_the_generated_pages(desk, tmp_path):
    """Plain ``mkdocs serve`` rebuilds on tracker changes too: the tracker's own hook shim
    (loaded by MkDocs from mkdocs.yml) adds the same paths to MkDocs' real server."""
    from mkdocs.config import load_config
    from mkdocs.livereload import LiveReloadServer

    from gitdesk.site.serve import watched_paths

    config = load_config(str(desk / "mkdocs.yml"), site_dir=str(tmp_path / "out"))
    server = LiveReloadServer(builder=lambda: None, host="127.0.0.1", port=_free_port(),
                              root=str(tmp_path))  # not bound until serve()
    try:
        assert config.plugins.on_serve(server, config=config, builder=server.builder) is server
        expected = [str(desk / "issues"), str(desk / "kb"), str(desk / "gitdesk.yml")]
        assert watched_paths(desk) == expected
        assert set(expected) <= set(server._watched_paths)
    finally:
        server.server_close()
