"""The site's reports page: SVG charts and tables of gitdesk.reports, public numbers from public
issues only, staff numbers from everything; charts that need no script and follow dark mode.

Time is fixed (GITDESK_NOW) so every number on the page is known in advance.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import run_bin
from gitdesk.issues import actions
from gitdesk.site.charts import DARK, PALETTE, Series, bar_chart, line_chart, nice_step, number
from gitdesk.site.pages import build_site

NOW = "2026-03-20T00:00:00Z"
SVG = ""  # inline SVG in HTML carries no namespace
QUIET = {"NO_MKDOCS_2_WARNING": "1"}


def _at(monkeypatch, when: str, who: str = "Alice Admin <alice@example.com>") -> None:
    monkeypatch.setenv("GITDESK_NOW", f"2026-{when}:00Z")
    monkeypatch.setenv("GITDESK_USER", who)


@pytest.fixture
def desk(tracker, monkeypatch):
    """Public: #1 bug [mail] 01-05, answered by Bob after 3 h, closed 02-10; #2 bug [dns]
    02-02, open; #3 feature [mail, dns] 03-03, closed 03-05. Reports are made at NOW."""
    _at(monkeypatch, "01-05T09:00")
    actions.new_issue(tracker, "One", type="bug", visibility="public", labels=["mail"],
                      customer="carol@example.org")
    _at(monkeypatch, "01-05T12:00", "Bob Staff <bob@example.com>")
    actions.add_comment(tracker, 1, "On it.")
    _at(monkeypatch, "02-10T09:00")
    actions.close(tracker, 1)
    _at(monkeypatch, "02-02T00:00")
    actions.new_issue(tracker, "Two", type="bug", visibility="public", labels=["dns"])
    _at(monkeypatch, "03-03T00:00")
    actions.new_issue(tracker, "Three", type="feature", visibility="public", labels=["mail", "dns"])
    _at(monkeypatch, "03-05T00:00")
    actions.close(tracker, 3)
    monkeypatch.setenv("GITDESK_NOW", NOW)
    return tracker


def _add_private_things(tracker, monkeypatch) -> None:
    """A private ticket in a month of its own, with a label and a type of its own, and an
    internal note on #2 that would be its first response if it counted."""
    _at(monkeypatch, "02-20T00:00")
    actions.new_issue(tracker, "Secret", type="ticket", visibility="private",
                      labels=["privlabel-4f2a"], customer="dora@example.com")
    _at(monkeypatch, "02-21T00:00", "Bob Staff <bob@example.com>")
    actions.add_comment(tracker, 4, "Answer to a secret.")
    actions.add_comment(tracker, 2, "Internal only.", internal=True)
    _at(monkeypatch, "02-22T00:00")
    actions.close(tracker, 4)
    monkeypatch.setenv("GITDESK_NOW", NOW)


def _page(tracker, staff: bool = False) -> str:
    pages = {p.src_uri: p for p in build_site(tracker, staff=staff).pages}
    return pages["reports/index.md"].html


def _charts(html: str, phone: bool = False) -> dict[str, ET.Element]:
    """Every chart on the page (or its drawing for phones), parsed as XML, by its id."""
    charts = {}
    for svg in re.findall(r"<svg\b.*?</svg>", html, re.S):
        root = ET.fromstring(svg)  # well-formed, or this fails
        name = root.find(f"{SVG}title").get("id").removesuffix("-title")
        if name.endswith("-phone") == phone:
            charts[name.removesuffix("-phone")] = root
    return charts


def _tips(chart: ET.Element) -> dict[str, float]:
    """'2026-01 · opened' -> the height of its bar (or the y of its dot)."""
    out = {}
    for shape in chart.iter():
        tip = shape.find(f"{SVG}title")
        if shape.tag in (f"{SVG}rect", f"{SVG}circle") and tip is not None:
            key, _, value = tip.text.rpartition(": ")
            height = float(shape.get("height") or shape.get("cy"))
            out[key] = (float(value.split()[0]), height)
    return out


def test_public_page_shows_every_chart_and_its_numbers(desk):
    html = _page(desk)
    charts = _charts(html)
    assert set(charts) == {"gd-chart-labels", "gd-chart-types", "gd-chart-flow",
                           "gd-chart-backlog", "gd-chart-first-response", "gd-chart-close"}
    flow = _tips(charts["gd-chart-flow"])
    assert {k: v for k, (v, _) in flow.items()} == {
        "2026-01 · opened": 1, "2026-02 · opened": 1, "2026-02 · closed": 1,
        "2026-03 · opened": 1, "2026-03 · closed": 1}
    heights = {v for _, v in flow.values()}
    assert len(heights) == 1  # equal counts, equal bars
    phone = _charts(html, phone=True)
    assert set(phone) == set(charts)  # each chart has its drawing for phones, same numbers
    assert {k: v for k, (v, _) in _tips(phone["gd-chart-flow"]).items()} == \
        {k: v for k, (v, _) in flow.items()}
    assert phone["gd-chart-flow"].get("viewBox").startswith("0 0 400 ")
    labels = {k: v for k, (v, _) in _tips(charts["gd-chart-labels"]).items()}
    assert labels == {"2026-01 · mail": 1, "2026-02 · dns": 1, "2026-03 · dns": 1,
                      "2026-03 · mail": 1}
    backlog = {k: v for k, (v, _) in _tips(charts["gd-chart-backlog"]).items()}
    assert backlog == {"2026-01 · open at the end of the month": 1,
                       "2026-02 · open at the end of the month": 1,
                       "2026-03 · open at the end of the month": 1}
    response = {k: v for k, (v, _) in _tips(charts["gd-chart-first-response"]).items()}
    assert response == {"2026-01 · median": 3, "2026-01 · 90th percentile": 3}
    close = {k: v for k, (v, _) in _tips(charts["gd-chart-close"]).items()}
    assert close == {"2026-02 · median": 36, "2026-02 · 90th percentile": 36,
                     "2026-03 · median": 2, "2026-03 · 90th percentile": 2}  # days
    summary = re.search(r'<div class="gd-report-summary"><table>.*?</table>', html).group(0)
    cells = dict(re.findall(r"<tr><td><strong>(.*?)</strong></td><td>(.*?)</td></tr>", summary))
    assert cells["Open now"] == "1" and cells["Open, not yet answered"] == "1"
    assert cells["Opened in 2026-01 to 2026-03"] == "3"
    assert cells["Time to first response: median / 90th percentile"] == "3 h / 3 h (1 issues)"
    assert cells["Time to close: median / 90th percentile"] == "19 days / 32.6 days (2 issues)"
    assert "Public issues only" in html and "Counted on 2026-03-20; months in UTC" in html
    table = re.search(r"<summary>Numbers: opened, closed and open per month</summary>"
                      r"<table>(.*?)</table>", html).group(1)
    assert re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>",
                      table) == [("2026-01", "1", "0", "1"), ("2026-02", "1", "1", "1"),
                                 ("2026-03", "1", "1", "1")]


def test_a_private_issue_changes_no_public_number_but_every_staff_one(desk, monkeypatch):
    public_before, staff_before = _page(desk), _page(desk, staff=True)
    _add_private_things(desk, monkeypatch)
    assert _page(desk) == public_before
    for field in ("privlabel-4f2a", "ticket"):
        assert field not in public_before
    staff = _page(desk, staff=True)
    assert staff != staff_before and "Every issue, private ones included" in staff
    labels = {k: v for k, (v, _) in _tips(_charts(staff)["gd-chart-labels"]).items()}
    assert labels["2026-02 · privlabel-4f2a"] == 1
    flow = {k: v for k, (v, _) in _tips(_charts(staff)["gd-chart-flow"]).items()}
    assert flow["2026-02 · opened"] == 2 and flow["2026-02 · closed"] == 2
    # the internal note on #2 is no response, not even on the staff site: #2 stays unanswered
    cells = dict(re.findall(r"<tr><td><strong>(.*?)</strong></td><td>(.*?)</td></tr>", staff))
    assert cells["Open, not yet answered"] == "1"
    assert cells["Time to first response: median / 90th percentile"] == "13.5 h / 21.9 h (2 issues)"


def test_reports_page_escapes_labels_and_hides_addresses(tracker, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", "2026-03-01T00:00:00Z")
    evil = ['<script>document.title="pwned"</script>', '"><img src=x onerror=alert(1)>',
            "jack@example.com"]
    actions.new_issue(tracker, "Evil", type="bug", visibility="public", labels=evil)
    html = _page(tracker)

    class Tags(HTMLParser):
        seen: list = []

        def handle_starttag(self, tag, attrs):
            self.seen.append((tag, [name for name, _ in attrs]))

    parser = Tags()
    parser.feed(html)
    assert not [t for t, _ in parser.seen if t in ("script", "img")]
    assert not [a for _, names in parser.seen for a in names if a.startswith("on")]
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in html
    assert "jack@example.com" not in html and "[address hidden]" in html
    assert "jack@example.com" in _page(tracker, staff=True)
    _charts(html)  # still well-formed XML


def test_empty_tracker_has_a_reports_page_without_charts(tracker, monkeypatch):
    monkeypatch.setenv("GITDESK_NOW", NOW)
    html = _page(tracker)
    assert "No issues yet." in html and "<svg" not in html
    assert re.search(r"<td><strong>Open now</strong></td><td>0</td>", html)


# -- the chart writer ---------------------------------------------------------------------

def test_nice_steps_and_numbers():
    assert [nice_step(m) for m in (0, 3, 7, 10, 48, 130)] == [1, 1, 2, 2, 10, 50]
    assert nice_step(3, whole=False) == pytest.approx(1) and nice_step(0.3) == pytest.approx(0.1)
    assert nice_step(0.3, whole=True) == 1
    assert [number(v) for v in (12, 2.5, 1 / 3, 40.0)] == ["12", "2.5", "0.33", "40"]


def test_stacked_bars_add_up_and_a_missing_value_breaks_a_line():
    svg = bar_chart("t-one", "T", ["a", "b"], [Series("x", [1, 3]), Series("y", [1, 0])],
                    stacked=True)
    rects = [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    heights = {r.find(f"{SVG}title").text: float(r.get("height")) for r in rects}
    assert set(heights) == {"a · x: 1", "a · y: 1", "b · x: 3"}  # no bar for a zero
    assert heights["a · y: 1"] == pytest.approx(heights["a · x: 1"], abs=0.2)  # 0.1 px SVG
    assert heights["b · x: 3"] == pytest.approx(3 * heights["a · x: 1"], abs=0.2)
    tops = {r.find(f"{SVG}title").text: float(r.get("y")) for r in rects}
    assert tops["a · y: 1"] == pytest.approx(tops["a · x: 1"] - heights["a · x: 1"], abs=0.2)
    line = ET.fromstring(line_chart("t-two", "T", ["a", "b", "c", "d"],
                                    [Series("m", [1, 2, None, 4])]))
    assert len(line.findall(f"{SVG}polyline")) == 1  # a-b joined; d stands alone
    assert len(line.findall(f"{SVG}circle")) == 3
    assert line.get("role") == "img" and line.get("aria-labelledby") == "t-two-title t-two-desc"
    with pytest.raises(ValueError):
        bar_chart('x" onload="alert(1)', "T", ["a"], [Series("x", [1])])


def test_palettes_keep_3_to_1_contrast_on_light_and_dark_backgrounds():
    """WCAG 2.1 (1.4.11) asks 3:1 for graphics. The default palette must hold on white and
    on Material's slate (hsl(232, 15%, 14%)) alike; the slate palette on slate."""
    def luminance(color: str) -> float:
        def channel(c: float) -> float:
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (channel(int(color[i:i + 2], 16) / 255) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    def contrast(a: str, b: str) -> float:
        low, high = sorted((luminance(a), luminance(b)))
        return (high + 0.05) / (low + 0.05)

    assert min(contrast(c, "#ffffff") for c in PALETTE) >= 4
    assert min(contrast(c, "#1e2129") for c in PALETTE) >= 3.5
    assert min(contrast(c, "#1e2129") for c in DARK) >= 7
    assert len(set(PALETTE)) == len(PALETTE) == len(DARK)


# -- the built site, in a browser -------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = r"""<script>
const shown = [...document.querySelectorAll('.gd-chart')]
  .filter(c => c.getBoundingClientRect().width > 0);
const first = shown[0];
const within = r => r.left >= 0 && r.right <= innerWidth;
const months = [...first.querySelectorAll('text')].filter(t => /^\d{4}-\d\d$/.test(t.textContent));
const out = {
  body: getComputedStyle(document.body).color,
  shown: shown.map(c => c.querySelector('title').id),
  series: [0, 1, 2].map(n => getComputedStyle(
    shown.map(c => c.querySelector('.gd-s' + n)).find(x => x)).fill),
  text: getComputedStyle(first.querySelector('text')).fill,
  width: first.getBoundingClientRect().width,
  screen: innerWidth,
  months: months.map(t => [t.textContent, within(t.getBoundingClientRect())]),
};
document.body.setAttribute('data-probe', JSON.stringify(out));
</script>"""


def _rgb(color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(color[i:i + 2], 16) for i in (1, 3, 5)))


def _probe(page: Path, scheme: str, width: int) -> dict:
    """What Chromium computes for the charts, with Material's body scheme set to ``scheme``."""
    html = page.read_text()
    assert 'data-md-color-scheme="default"' in html
    html = html.replace('data-md-color-scheme="default"', f'data-md-color-scheme="{scheme}"')
    probe = page.with_name(f"probe-{scheme}-{width}.html")
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--window-size={width},900", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=60)
    found = re.search(r"data-probe=\"(.*?)\"", run.stdout)
    assert found, run.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM, reason="needs chromium (Debian's chromium package)")
def test_built_reports_page_is_in_the_nav_and_follows_light_and_dark(desk, monkeypatch):
    _add_private_things(desk, monkeypatch)
    config = desk.root / "mkdocs.yml"  # Material's light/dark palettes, as an owner would set
    config.write_text(config.read_text().replace(
        "  name: material\n", "  name: material\n  palette:\n    scheme: default\n", 1))
    env = {**QUIET, "GITDESK_NOW": NOW}
    for args in ((), ("--staff",)):
        result = run_bin("gitdesk", "site", "build", *args, cwd=desk.root, env=env)
        assert result.returncode == 0, result.stderr
    public = desk.root / "site" / "reports" / "index.html"
    staff = desk.root / "site-staff" / "reports" / "index.html"
    home = (desk.root / "site" / "index.html").read_text()
    assert re.search(r'href="reports/"[^>]*>\s*Reports\s*<', home)
    assert "privlabel-4f2a" not in public.read_text() and "privlabel-4f2a" in staff.read_text()
    assert "<script" not in re.search(r"<article.*?</article>", public.read_text(), re.S).group(0)
    light, dark = _probe(public, "default", 1280), _probe(public, "slate", 1280)
    assert light["series"] == [_rgb(c) for c in PALETTE[:3]]
    assert dark["series"] == [_rgb(c) for c in DARK[:3]]
    assert light["text"] == light["body"] and dark["text"] == dark["body"]  # currentColor
    assert light["body"] != dark["body"]
    assert [t.removesuffix("-title") for t in light["shown"]] == [
        "gd-chart-labels", "gd-chart-types", "gd-chart-flow", "gd-chart-backlog",
        "gd-chart-first-response", "gd-chart-close"]
    phone = _probe(public, "default", 390)
    # a phone shows the narrow drawings, whole and with every month label on screen
    assert [t.removesuffix("-title") for t in phone["shown"]] == [
        f"{name}-phone" for name in [t.removesuffix("-title") for t in light["shown"]]]
    assert phone["screen"] <= 600 < light["screen"]
    assert phone["screen"] - 60 < phone["width"] <= phone["screen"] and light["width"] > 600
    assert phone["months"] == [["2026-01", True], ["2026-02", True], ["2026-03", True]]
