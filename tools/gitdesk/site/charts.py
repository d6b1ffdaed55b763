"""Bar and line charts as inline SVG text, made at build time: no JavaScript, no dependency.

Why our own writer rather than a library: the charts we need are three shapes (grouped or
stacked bars, lines) on one axis, about 200 lines. matplotlib would add numpy and tens of
megabytes to every install for that, and writes fixed colours and fonts, so its charts stay
black-on-white in dark mode; pygal embeds a ``<script>`` for its tooltips, which the site
audit rightly refuses. Writing the SVG ourselves also keeps every label escaped in one place.

Light and dark: text, axes and grid lines are ``currentColor``, so they follow the page. The
series colours are CSS variables set by a ``<style>`` in the SVG. The default palette has a
relative luminance of about 0.2, which keeps 4.2:1 contrast on white and 3.8:1 on Material's
dark "slate" background (WCAG asks 3:1 of graphics): it stays readable whatever the page
does, also on another generator or with ``prefers-color-scheme``, which we cannot know the
page follows. Under Material's dark scheme (``data-md-color-scheme="slate"``, set on the body)
brighter colours take over. Each chart has a ``<title>`` and a ``<desc>`` (``role="img"``),
every bar and point a ``<title>`` tooltip; the page shows the same numbers as a table.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 300  # the default size; a phone's chart is narrower (``width``)
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 26, 30  # the plot's margins
_LEGEND_LINE = 20
_CHAR = 7.0  # the width of one character at font-size 12, near enough for laying out

# blue, orange, green, purple, gold, pink, teal, grey: each at relative luminance 0.2
PALETTE = ("#1e7ed3", "#cd580b", "#0b8d62", "#b05cb0", "#9b7608", "#d14982", "#1a8894", "#737d87")
DARK = ("#6cb4f0", "#ff9f5e", "#46d3a5", "#d79ad3", "#e9c450", "#f38bb5", "#5fd0dc", "#aeb8c2")
OTHER = len(PALETTE) - 1  # grey: the "other" series of a stacked chart uses the last colour

_VARS = ";".join(f"--gd-s{n}:{c}" for n, c in enumerate(PALETTE))
_VARS_DARK = ";".join(f"--gd-s{n}:{c}" for n, c in enumerate(DARK))
STYLE = (
    "<style>"
    f".gd-chart{{{_VARS}}}"
    f"[data-md-color-scheme=slate] .gd-chart{{{_VARS_DARK}}}"
    + "".join(f".gd-chart .gd-s{n}{{fill:var(--gd-s{n});stroke:var(--gd-s{n})}}"
              for n in range(len(PALETTE)))
    + ".gd-chart .gd-line{fill:none;stroke-width:2.5}"
    ".gd-chart .gd-grid{stroke:currentColor;stroke-opacity:.18}"
    ".gd-chart .gd-axis{stroke:currentColor;stroke-opacity:.6}"
    ".gd-chart text{fill:currentColor;font-size:12px}"
    "</style>"
)
_ID_RE = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: int | None = None  # an index into the palette; None: the series' own position


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def number(value: float) -> str:
    """12 -> '12', 2.5 -> '2.5', 0.333 -> '0.33': short, and exact for whole numbers."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_step(maximum: float, ticks: int = 5, whole: bool = False) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``ticks`` grid lines."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(1.0, step) if whole else step


class _Frame:
    """The plot area: scales, grid, axes, category labels and legend of one chart."""

    def __init__(self, chart_id: str, title: str, summary: str, categories: Sequence[str],
                 series: Sequence[Series], top: float, unit: str, whole: bool, width: int):
        if not _ID_RE.fullmatch(chart_id):
            raise ValueError(f"chart id {chart_id!r}: use a-z, 0-9 and -")
        self.id, self.title, self.summary, self.unit = chart_id, title, summary, unit
        self.categories, self.series = list(categories), list(series)
        self.width = width
        self.step = nice_step(top, whole=whole)
        self.top = max(self.step, math.ceil(top / self.step - 1e-9) * self.step)
        self.legend = self._legend_rows()
        self.height = HEIGHT + _LEGEND_LINE * (len(self.legend) - 1)
        self.x0, self.x1 = _LEFT, width - _RIGHT
        self.y0 = self.height - _BOTTOM - _LEGEND_LINE * len(self.legend)  # the baseline
        self.y1 = _TOP
        self.band = (self.x1 - self.x0) / max(1, len(self.categories))

    def y(self, value: float) -> float:
        return self.y0 - (self.y0 - self.y1) * (value / self.top)

    def x(self, index: int) -> float:
        """The middle of a category's band."""
        return self.x0 + self.band * (index + 0.5)

    def color(self, n: int) -> int:
        chosen = self.series[n].color
        return (n if chosen is None else chosen) % len(PALETTE)

    def _legend_rows(self) -> list[list[tuple[int, str]]]:
        rows: list[list[tuple[int, str]]] = [[]]
        used = 0.0
        for n, item in enumerate(self.series):
            room = 22 + _CHAR * len(item.name) + 14
            if rows[-1] and used + room > self.width - _LEFT:
                rows.append([])
                used = 0.0
            rows[-1].append((n, item.name))
            used += room
        return rows

    def open(self) -> list[str]:
        labelled = f"{self.id}-title {self.id}-desc"
        return [
            # inline in HTML, so no xmlns: the page names no other host, not even w3.org
            f'<svg class="gd-chart" role="img" '
            f'aria-labelledby="{labelled}" viewBox="0 0 {self.width} {self.height}" '
            f'width="100%" preserveAspectRatio="xMidYMid meet">',
            f'<title id="{self.id}-title">{esc(self.title)}</title>',
            f'<desc id="{self.id}-desc">{esc(self.summary)}</desc>',
            STYLE,
        ]

    def axes(self) -> list[str]:
        out = []
        ticks = int(round(self.top / self.step))
        for n in range(ticks + 1):
            value = n * self.step
            y = self.y(value)
            out.append(f'<line class="gd-grid" x1="{self.x0}" x2="{self.x1}" '
                       f'y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f"{number(value)}</text>")
        if self.unit:
            out.append(f'<text x="{self.x0 - 6}" y="{self.y1 - 12}" text-anchor="end">'
                       f"{esc(self.unit)}</text>")
        out.append(f'<line class="gd-axis" x1="{self.x0}" x2="{self.x1}" '
                   f'y1="{self.y0}" y2="{self.y0}"/>')
        longest = max([4, *(len(name) for name in self.categories)])
        fits = max(1, int((self.x1 - self.x0) // (_CHAR * longest + 10)))
        every = max(1, math.ceil(len(self.categories) / fits))
        for n, name in enumerate(self.categories):
            if n % every == 0 or n == len(self.categories) - 1 and n % every > every // 2:
                out.append(f'<text x="{self.x(n):.1f}" y="{self.y0 + 18}" '
                           f'text-anchor="middle">{esc(name)}</text>')
        return out

    def legend_marks(self) -> list[str]:
        out = []
        for row, items in enumerate(self.legend):
            y = self.height - _BOTTOM / 2 - _LEGEND_LINE * (len(self.legend) - 1 - row)
            x = float(self.x0)
            for n, name in items:
                out.append(f'<rect class="gd-s{self.color(n)}" x="{x:.1f}" y="{y - 9:.1f}" '
                           f'width="14" height="10" rx="2"/>')
                out.append(f'<text x="{x + 20:.1f}" y="{y:.1f}">{esc(name)}</text>')
                x += 22 + _CHAR * len(name) + 14
        return out


def _value(values: Sequence[float | None], n: int) -> float:
    return (values[n] or 0.0) if n < len(values) else 0.0


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
              summary: str = "", stacked: bool = False, unit: str = "", whole: bool = True,
              width: int = WIDTH) -> str:
    """Bars per category: side by side, or stacked (each category's total is the bar's height)."""
    if stacked:
        top = max((sum(_value(s.values, n) for s in series) for n in range(len(categories))),
                  default=0.0)
    else:
        top = max((_value(s.values, n) for s in series for n in range(len(categories))), default=0.0)
    frame = _Frame(chart_id, title, summary, categories, series, top, unit, whole, width)
    out = frame.open() + frame.axes()
    bar = frame.band * 0.8
    for n, name in enumerate(frame.categories):
        left = frame.x(n) - bar / 2
        base = 0.0
        for k, item in enumerate(series):
            value = _value(item.values, n)
            if stacked:
                y_top, y_bottom, x, w = frame.y(base + value), frame.y(base), left, bar
                base += value
            else:
                w = bar / max(1, len(series))
                y_top, y_bottom, x = frame.y(value), frame.y(0), left + k * w
            if value <= 0:
                continue
            out.append(f'<rect class="gd-s{frame.color(k)}" x="{x:.1f}" y="{y_top:.1f}" '
                       f'width="{max(w - 1, 1):.1f}" height="{y_bottom - y_top:.1f}">'
                       f"<title>{esc(name)} · {esc(item.name)}: {number(value)}"
                       f"{' ' + esc(unit) if unit else ''}</title></rect>")
    return "\n".join(out + frame.legend_marks() + ["</svg>"])


def line_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
               summary: str = "", unit: str = "", whole: bool = False, width: int = WIDTH) -> str:
    """A line per series with a dot per value; a missing value (None) breaks the line."""
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    frame = _Frame(chart_id, title, summary, categories, series, top, unit, whole, width)
    out = frame.open() + frame.axes()
    for k, item in enumerate(series):
        css = f"gd-s{frame.color(k)}"
        runs: list[list[tuple[float, float]]] = [[]]
        for n in range(len(frame.categories)):
            value = item.values[n] if n < len(item.values) else None
            if value is None:
                runs.append([])
                continue
            runs[-1].append((frame.x(n), frame.y(value)))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                out.append(f'<polyline class="{css} gd-line" points="{points}"/>')
        for n, name in enumerate(frame.categories):
            value = item.values[n] if n < len(item.values) else None
            if value is None:
                continue
            out.append(f'<circle class="{css}" cx="{frame.x(n):.1f}" cy="{frame.y(value):.1f}" '
                       f'r="3.5"><title>{esc(name)} · {esc(item.name)}: {number(value)}'
                       f"{' ' + esc(unit) if unit else ''}</title></circle>")
    return "\n".join(out + frame.legend_marks() + ["</svg>"])
