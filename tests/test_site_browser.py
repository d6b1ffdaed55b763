"""Hostile ticket text in a real browser: headless Chromium loads pages built by the real
``mkdocs build`` and no payload runs, while its text is still shown.

A tracker is filled with payloads in every field a reader sees: titles, labels, author
names, issue bodies, public comments, internal notes, KB articles. Each payload tries to
run script that leaves a trace: call ``alert``, set ``document.title`` to "PWNED", put a
``data-pwned`` attribute in the DOM or a "pwned" key in localStorage (the code spells the
marker in pieces, so the payload's text on the page never matches). The site is served on
127.0.0.1 by a small server that puts a probe script at the top of every page: the probe
replaces ``alert``/``confirm``/``prompt``, and after the page has run (and Material's search
has answered a ``?q=`` query) it reports the traces, every ``on*`` attribute and every
``javascript:``/``data:``/``vbscript:`` URL the browser's own parser produced, and the text
the reader sees. A control page with a real payload proves that the probe sees what it
should.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MKDOCS = Path(sys.executable).parent / "mkdocs"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (.ci/run installs it)")]

# What a payload does when it runs; each leaves a trace the probe looks for.
TITLE = "document.title='PW'+'NED'"
ALERT = "alert('x')"
ATTR = "document.documentElement.setAttribute('data-'+'pwned','1')"
STORE = "localStorage.setItem('pw'+'ned','1')"

PAYLOADS = [
    f"<script>{TITLE}</script>",
    f'<img src=x onerror="{ATTR}">',
    f"<svg><script>{ALERT}</script></svg>",
    f'<svg onload="{STORE}"><circle r="5"/></svg>',
    f"[a javascript link](javascript:{ALERT})",
    f'<a href="javascript:{ALERT}">raw javascript link</a>',
    f'<a href="&#106;avascript:{ALERT}">entity link</a>',
    f'<a href="java&#x09;script:{ALERT}">tab link</a>',
    f"Text with attr_list {{: onclick=\"{ALERT}\" }}",
    f"## Heading {{: onmouseover=\"{ALERT}\" }}",
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>',
    "![data image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+)",
    f'<iframe src="data:text/html,<script>parent.{ALERT}</script>"></iframe>',
    f'<iframe srcdoc="<script>parent.{ALERT}</script>"></iframe>',
    f'<details open ontoggle="{TITLE}"><summary>toggle</summary>x</details>',
    f'<input autofocus onfocus="{ALERT}">',
    f'<meta http-equiv="refresh" content="0;url=javascript:{ALERT}">',
    f'<noscript><p title="</noscript><img src=x onerror={STORE}>"></noscript>',
    f'<form><button formaction="javascript:{ALERT}">go</button></form>',
    f'<object data="javascript:{ALERT}"></object><embed src="javascript:{ALERT}">',
    '<base href="javascript:/x/">',
    f'[titled](https://example.com/ "t\\" onmouseover=\\"{ALERT}")',
    f"&lt;script&gt;{TITLE}&lt;/script&gt; shown as text",
    "<img src=x onerror=&#97;lert('x')>",
    '<a href="vbscript:msgbox(1)">vb link</a>',
    f'<div style="background:url(javascript:{ALERT})">styled</div>',
]
BODY = "\n\n".join(f"P{n:02d}a {payload} P{n:02d}b" for n, payload in enumerate(PAYLOADS))
# A mutation-XSS classic: html5 parsing moves the <img> out of a raw-text <style>. It runs no
# script here either, but the sanitizer's parser drops what follows the broken table in the
# same message, so it has a comment of its own.
MXSS = f'M00a <math><mtext><table><mglyph><style><img src=x onerror="{ATTR}"> M00b'
EVIL_TITLE = f'<img src=x onerror="{TITLE}"> & <script>{ALERT}</script> "q" \'s'
EVIL_LABEL = f'<svg onload="{ALERT}">'
EVIL_LABEL2 = f'x" autofocus onfocus="{ALERT}'
EVIL_AUTHOR = f"<img src=x onerror={ATTR}> Mallory"


def _yaml(meta: dict) -> str:
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in meta.items())


def _write(root: Path, rel: str, meta: dict, body: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{_yaml(meta)}---\n\n{body}\n", encoding="utf-8")


def _fill(root: Path) -> None:
    """#1 public, every field hostile; #2 public, refers to #1 and #3; #3 private."""
    common = {"status": "open", "priority": "high", "created": "2026-01-02T03:04:05Z",
              "updated": "2026-01-02T03:04:05Z"}
    _write(root, "issues/1/issue.md", {"title": EVIL_TITLE, "type": "bug", "visibility": "public",
                                       "labels": [EVIL_LABEL, EVIL_LABEL2], "author": EVIL_AUTHOR,
                                       "kb": ["evil"], **common}, BODY)
    _write(root, "issues/1/20260103T000000Z-mallory.md",
           {"author": EVIL_AUTHOR, "date": "2026-01-03T00:00:00Z", "visibility": "public"}, BODY)
    _write(root, "issues/1/20260103T120000Z-mallory.md",
           {"author": EVIL_AUTHOR, "date": "2026-01-03T12:00:00Z", "visibility": "public"}, MXSS)
    _write(root, "issues/1/20260104T000000Z-staff.md",
           {"author": "Staff <staff@example.com>", "date": "2026-01-04T00:00:00Z",
            "visibility": "internal"}, BODY)
    _write(root, "issues/2/issue.md", {"title": "Plain issue", "type": "feature",
                                       "visibility": "public", **common},
           "Like #1, unlike #3. " + BODY)
    _write(root, "issues/3/issue.md", {"title": EVIL_TITLE + " private", "type": "ticket",
                                       "visibility": "private", "customer": "c@example.com",
                                       **common}, BODY)
    _write(root, "kb/evil.md", {"title": EVIL_TITLE, "visibility": "public", "tags": [EVIL_LABEL],
                                "issues": [1, 2, 3]}, BODY)


PROBE = """<script>(function () {
  var page = location.pathname + location.search;
  function send(kind, detail) {
    var x = new XMLHttpRequest();
    x.open('POST', '/__report', false);
    x.send(JSON.stringify({page: page, kind: kind, detail: detail}));
  }
  ['alert', 'confirm', 'prompt', 'print'].forEach(function (name) {
    window[name] = function (m) { send('ran', name + '(' + m + ')'); };
  });
  var URLS = /^(href|src|action|formaction|data|xlink:href|poster|background|srcdoc|content)$/i;
  function inspect() {
    var found = [];
    if (/PWNED/.test(document.title)) found.push('document.title = ' + document.title);
    if (document.querySelector('[data-pwned]')) found.push('data-pwned attribute');
    try { if (localStorage.getItem('pwned')) found.push('localStorage pwned'); } catch (e) {}
    var all = document.getElementsByTagName('*');
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      for (var j = 0; j < el.attributes.length; j++) {
        var a = el.attributes[j];
        var v = a.value.replace(/[\\u0000-\\u0020]/g, '').toLowerCase();
        if (/^on/i.test(a.name)) found.push('handler <' + el.tagName + ' ' + a.name + '>');
        if (URLS.test(a.name) && /(^|url=)(javascript|vbscript|data):/.test(v))
          found.push('url <' + el.tagName + ' ' + a.name + '=' + a.value.slice(0, 50) + '>');
      }
    }
    var content = document.querySelector('.md-content') || document.body;
    // the reports page draws its own SVG charts and styles them (no ticket text in it);
    // no other page has any SVG or <style>, since ticket text never keeps one
    var charts = page.indexOf('/reports/') === 0;
    var banned = content.querySelectorAll('script, iframe, object, embed, form, input, button, '
                                          + 'base, meta, style, link, math, svg');
    for (var k = 0; k < banned.length; k++) {
      var el = banned[k];
      var tag = el.tagName.toLowerCase();
      if (charts && (tag === 'svg' || tag === 'style' || el.closest('svg'))) continue;
      found.push('element <' + el.tagName + '>');
    }
    if (document.querySelectorAll('base').length) found.push('element <BASE>');
    var results = document.querySelector('.md-search-result__list');
    send('state', {title: document.title, found: found, text: content.innerText,
                   results: results ? results.innerText : null,
                   hits: results ? results.children.length : 0});
  }
  window.addEventListener('load', function () { setTimeout(inspect, 3000); });
})();</script>"""

CONTROL = f"""<!doctype html><html><head><title>control</title></head><body>
<div class="md-content"><img src=x onerror="{ATTR};{TITLE};{ALERT}">
<a href="javascript:{ALERT}">js</a><div onclick="x()">div</div></div></body></html>"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path, pages: list[str]):
        self.folder, self.pages, self.reports = folder, pages, []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def __init__(self, request, client_address, server: _Server):
        super().__init__(request, client_address, server, directory=str(server.folder))

    def log_message(self, *args):
        pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.reports.append(json.loads(data))
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/__harness.html":
            frames = "".join(f'<iframe src="{p}" width="1200" height="900"></iframe>'
                             for p in self.server.pages)
            return self._html(f"<!doctype html><html><head></head><body>{frames}</body></html>")
        if path == "/__control.html":
            return self._html(CONTROL.replace("<head>", "<head>" + PROBE, 1))
        file = Path(self.translate_path(path))
        if file.is_dir():
            file = file / "index.html"
        if file.suffix == ".html" and file.is_file():
            return self._html(file.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1))
        return super().do_GET()

    def _html(self, text: str):
        data = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _load_in_chromium(site: Path, pages: list[str]) -> dict[str, dict]:
    """Load every page (in frames of one harness page); what the probe reported, by page."""
    server = _Server(site, [*pages, "/__control.html"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    profile = tempfile.mkdtemp(prefix="gitdesk-chromium-")
    try:
        url = f"http://127.0.0.1:{server.server_port}/__harness.html"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        "--virtual-time-budget=20000", "--dump-dom", url],
                       capture_output=True, timeout=120, check=False)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)
    by_page: dict[str, dict] = {p: {"ran": [], "state": None} for p in [*pages, "/__control.html"]}
    for report in server.reports:
        entry = by_page.setdefault(report["page"], {"ran": [], "state": None})
        if report["kind"] == "ran":
            entry["ran"].append(report["detail"])
        else:
            entry["state"] = report["detail"]
    return by_page


def _build(root: Path, out: Path, staff: bool) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "GITDESK_SITE_STAFF": "1" if staff else "0"}
    run = subprocess.run([str(MKDOCS), "build", "-q", "-d", str(out)], cwd=root,
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("staff", [False, True], ids=["public", "staff"])
def test_no_payload_runs_in_a_browser_and_its_text_is_shown(tracker_dir, tmp_path, staff):
    _fill(tracker_dir)
    out = tmp_path / ("site-staff" if staff else "site")
    _build(tracker_dir, out, staff)
    pages = ["/", "/?q=p00a", "/?q=mallory", "/issues/", "/issues/closed/", "/issues/type/bug/",
             "/issues/label/svg-onload-alert-x/", "/issues/1/", "/issues/2/", "/kb/", "/kb/evil/",
             "/reports/", "/404.html"]
    if staff:
        pages.append("/issues/3/")
    for page in pages:
        path = out / page.split("?")[0].lstrip("/")
        assert path.is_file() or (path / "index.html").is_file(), f"{page} was not built"
    seen = _load_in_chromium(out, pages)
    for _ in range(2):
        # Material builds its search index in a web worker, on the real clock, which the
        # headless run's virtual clock does not wait for: on a loaded machine, load again
        slow = [p for p in pages if "?q=" in p and not (seen[p]["state"] or {}).get("hits")]
        if not slow:
            break
        seen.update({p: r for p, r in _load_in_chromium(out, slow).items() if p in slow})

    control = seen["/__control.html"]
    assert control["ran"] == ["alert(x)"], control  # the probe sees a payload that runs
    assert "document.title = PWNED" in control["state"]["found"]
    assert "data-pwned attribute" in control["state"]["found"]
    assert any(f.startswith("handler <DIV onclick") for f in control["state"]["found"])
    assert any(f.startswith("url <A href=javascript:") for f in control["state"]["found"])

    for page in pages:
        report = seen[page]
        assert report["state"] is not None, f"{page}: the probe never reported (page not loaded?)"
        assert report["ran"] == [], f"{page}: payload ran: {report['ran']}"
        assert report["state"]["found"] == [], f"{page}: {report['state']['found']}"

    # the text is still there, shown as text
    issue = seen["/issues/1/"]["state"]["text"]
    assert EVIL_TITLE in issue and EVIL_LABEL in issue and EVIL_LABEL2 in issue
    assert "Mallory" in issue and "<img src=x onerror=" in issue  # the author's name, as text
    for n in range(len(PAYLOADS)):
        assert f"P{n:02d}a" in issue and f"P{n:02d}b" in issue, f"payload {n}: text lost"
    assert f"P00a <script>{TITLE}</script> P00b" in issue  # tags that would hide text show
    assert f"<script>{TITLE}</script> shown as text" in issue
    assert "M00a <math>" in issue
    assert "Text with attr_list {: onclick=" in issue
    assert ("internal note" in issue.lower()) is staff  # (the theme shows it in capitals)
    assert "#1 ‹img src=x onerror=”" in seen["/issues/1/"]["state"]["title"]  # <title>: look-alikes
    kb = seen["/kb/evil/"]["state"]["text"]
    assert EVIL_TITLE in kb and "P00a" in kb and f"P{len(PAYLOADS) - 1:02d}b" in kb
    plain = seen["/issues/2/"]["state"]["text"]
    assert "Like #1, unlike #3 (private)." in plain or staff
    listing = seen["/issues/"]["state"]["text"]
    assert EVIL_TITLE in listing and "Plain issue" in listing
    # Material's search answered, showing snippets of the hostile text
    assert seen["/?q=p00a"]["state"]["hits"] >= 3, seen["/?q=p00a"]["state"]
    assert seen["/?q=mallory"]["state"]["hits"] >= 1, seen["/?q=mallory"]["state"]
