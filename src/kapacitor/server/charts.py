"""Charts drawn on the server as SVG: no script, nothing from a CDN, allowed by
the page's CSP. This module computes the geometry; ``templates/_charts.html``
draws it. Bars are coloured by CSS classes (``static/overview.css``) that use
the stylesheet's variables, so the charts follow its colours (and dark mode),
and every bar has a ``<title>`` saying what it is (its tooltip, and what a
screen reader reads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

WIDTH = 10.0
"""Width of one day's slot in the chart's own units (the SVG stretches to its box)."""
HEIGHT = 100.0


@dataclass(frozen=True)
class Series:
    key: str  # the figure's name in a ``totals`` day row
    label: str  # what a reader calls it
    css: str  # the class that colours it
    one: str = ""  # what a reader calls one of it ("session"), when ``label`` is a plural

    def of(self, value: Any, fmt: Callable[[Any], str]) -> str:
        """``value`` written by ``fmt`` and named: "1 session", "3 sessions"."""
        return f"{fmt(value)} {self.one if self.one and value == 1 else self.label}".rstrip()


@dataclass(frozen=True)
class Segment:
    css: str
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    segments: list[Segment]
    title: str  # the day and each series' value


@dataclass(frozen=True)
class DayChart:
    title: str
    series: list[Series]
    columns: list[Column]
    width: float
    height: float
    scale: str  # what the top of the scale is ("max 12 a day")
    first: str  # the first and last day, under the chart
    last: str
    summary: str  # one sentence for screen readers


def day_chart(title: str, days: Sequence[dict[str, Any]], series: Sequence[Series], fmt: Callable[[Any], str],
              top: float | None = None) -> DayChart:
    """Columns, one per day of ``days`` (``totals``' ``by_day`` rows), each the
    ``series`` stacked bottom up, scaled to ``top`` (default: the largest day);
    ``fmt`` writes a value."""
    stacks = [[day.get(s.key) or 0 for s in series] for day in days]
    peak = max((sum(stack) for stack in stacks), default=0)
    scale = HEIGHT / (top or peak) if (top or peak) else 0.0
    columns = []
    for i, (day, stack) in enumerate(zip(days, stacks, strict=True)):
        segments, y = [], HEIGHT
        for s, value in zip(series, stack, strict=True):
            if value:
                height = value * scale
                y -= height
                segments.append(Segment(s.css, round(y, 3) + 0.0, round(height, 3)))
        parts = [s.of(day.get(s.key) or 0, fmt) for s in series]
        columns.append(Column(i * WIDTH + 1, WIDTH - 2, segments, f"{_day(day['day'])}: {', '.join(parts)}"))
    busiest = max(range(len(days)), key=lambda i: sum(stacks[i]), default=None)
    summary = f"{title} per day from {_day(days[0]['day'])} to {_day(days[-1]['day'])}" if days else title
    if busiest is not None and peak:
        summary += f"; the most on {_day(days[busiest]['day'])}: {fmt(peak)}"
    return DayChart(title, list(series), columns, len(days) * WIDTH, HEIGHT, f"0 to {fmt(top)}" if top else f"max {fmt(peak)} a day",
                    _day(days[0]["day"]) if days else "", _day(days[-1]["day"]) if days else "", summary)


def share(value: float | None, largest: float | None) -> float:
    """``value`` as a percentage of ``largest`` (a bar's length in a breakdown table)."""
    return round(100.0 * (value or 0) / largest, 2) if largest else 0.0


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%b %d").replace(" 0", " ")
