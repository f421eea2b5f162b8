"""What the console's server-drawn SVG charts share: the palette, axis ticks, a "nice" tick step, the
placement of date labels along the bottom, and the small sparkline of the home page.

The experiment results chart (``experiments/charts.py``), the consent shares chart
(``profiles/share_chart.py``) and the model page's daily charts (``personalization/loop_charts.py``)
lay out their own series with these; templates draw the shapes, nothing is fetched from a network.
Plain Python, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

PALETTE = ("#2d5bd7", "#d35400", "#16a085", "#8e44ad", "#b7791f", "#5b6475")


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the first and last labels stay inside the plot


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` steps over ``span``."""
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def spread(length: int, most: int = 5) -> list[tuple[int, str]]:
    """Up to ``most`` indices spread over ``length`` positions with the text-anchor of each label."""
    count = min(most, length)
    found = []
    for i in range(count):
        index = round(i * (length - 1) / (count - 1)) if count > 1 else 0
        anchor = "middle" if count == 1 or 0 < i < count - 1 else "start" if i == 0 else "end"
        found.append((index, anchor))
    return found


def day_ticks(days: Sequence[date], x_of: Callable[[date], float], most: int = 5) -> list[Tick]:
    return [Tick(x_of(days[index]), days[index].strftime("%b %d"), anchor) for index, anchor in spread(len(days), most)]


@dataclass(frozen=True)
class Sparkline:
    """A small line with no axes: ``line`` is the polyline, ``area`` the polygon under it."""

    width: int
    height: int
    line: str
    area: str
    last_x: float
    last_y: float
    title: str

    @property
    def empty(self) -> bool:
        return not self.line


def sparkline(values: Sequence[float | None], title: str = "", width: int = 120, height: int = 28) -> Sparkline:
    """``values`` one a day, oldest first; None where nothing was counted (drawn as 0)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return Sparkline(width, height, "", "", 0.0, 0.0, title)
    high = max(max(known), 0.0)
    low = min(min(known), 0.0)
    span = high - low or 1.0
    pad = 2

    def x_of(i: int) -> float:
        return width / 2 if len(values) <= 1 else pad + i / (len(values) - 1) * (width - 2 * pad)

    def y_of(v: float | None) -> float:
        v = 0.0 if v is None or not math.isfinite(v) else v
        return height - pad - (v - low) / span * (height - 2 * pad)

    points = [(x_of(i), y_of(v)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    base = y_of(0.0)
    area = f"{points[0][0]:.1f},{base:.1f} {line} {points[-1][0]:.1f},{base:.1f}"
    return Sparkline(width, height, line, area, points[-1][0], points[-1][1], title)
