"""A line chart of shares (0–100 %) over days, laid out on the server as SVG coordinates, in the
manner of the experiment results page's lift chart (``experiments/charts.py``): the template draws
the shapes, nothing is fetched from a network, no script is needed. Plain Python, no Django."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from personalization.svg_charts import Tick, colour, day_ticks

# Shares often coincide (two purposes at 100 %): each series has its own dash, so none hides another.
DASHES = ("", "8 4", "3 3", "12 4 3 4")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    color: str
    dash: str  # SVG stroke-dasharray
    line: str  # polyline points
    points: list[Point]
    last: str  # the latest share, as text


@dataclass
class ShareChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    series: list[Series] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


def _percent(value: float) -> str:
    return f"{value:.1%}"


def share_chart(
    days: Sequence[date],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    width: int = 760,
    height: int = 280,
) -> ShareChart:
    """``series``: (key, name, one share per day or None where there is nobody to count)."""
    chart = ShareChart(width=width, height=height, left=48, right=width - 16, top=16, bottom=height - 32)
    plot_width, plot_height = chart.right - chart.left, chart.bottom - chart.top

    def x_of(index: int) -> float:
        if len(days) <= 1:
            return chart.left + plot_width / 2
        return chart.left + index / (len(days) - 1) * plot_width

    def y_of(share: float) -> float:
        return chart.bottom - min(max(share, 0.0), 1.0) * plot_height

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        chart.y_ticks.append(Tick(y_of(tick), f"{tick:.0%}"))
    chart.x_ticks = day_ticks(days, lambda day: x_of(days.index(day)))
    for n, (key, name, shares) in enumerate(series):
        points = [
            Point(x_of(i), y_of(share), f"{name}: {_percent(share)} on {days[i]:%b %d}")
            for i, share in enumerate(shares)
            if share is not None
        ]
        known = [s for s in shares if s is not None]
        chart.series.append(
            Series(
                key=key,
                name=name,
                color=colour(n),
                dash=DASHES[n % len(DASHES)],
                line=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
                points=points,
                last=_percent(known[-1]) if known else "",
            )
        )
    return chart
