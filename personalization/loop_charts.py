"""Daily charts of the model page, laid out on the server as SVG coordinates, as the experiment
results page does: the template draws lines, interval bands, a reference line and markers; no
chart library is fetched from anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from personalization.svg_charts import Tick, colour, day_ticks, nice_step


@dataclass(frozen=True)
class Value:
    day: date
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    line: str
    band: str  # polygon of the interval, "" when the series has none
    points: list[Point]
    last: str


@dataclass
class DailyChart:
    key: str
    title: str
    width: int = 560
    height: int = 220
    left: int = 52
    top: int = 12
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    reference: tuple[float, str] | None = None  # (y, label)
    markers: list[tuple[float, str]] = field(default_factory=list)  # (x, label)
    marker_note: str = "orange: a version activated"  # the legend's line for the markers
    empty_note: str = "No figures yet."  # what the page says while there is nothing to draw

    @property
    def right(self) -> int:
        return self.width - 12

    @property
    def bottom(self) -> int:
        return self.height - 28

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)


def _format(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def daily_chart(
    key: str,
    title: str,
    series: Sequence[tuple[str, Sequence[Value]]],
    *,
    percent: bool = False,
    reference: tuple[float, str] | None = None,
    markers: Sequence[tuple[date, str]] = (),
    marker_note: str = "",
    empty_note: str = "",
) -> DailyChart:
    chart = DailyChart(key, title)
    if marker_note:
        chart.marker_note = marker_note
    if empty_note:
        chart.empty_note = empty_note
    days = sorted({v.day for _, values in series for v in values} | {d for d, _ in markers if series})
    values = [x for _, vs in series for v in vs for x in (v.value, v.low, v.high) if x is not None]
    if reference is not None:
        values.append(reference[0])
    if not days or not values:
        return chart
    low, high = min(0.0, min(values)), max(values)
    if high - low < 1e-9:
        high = low + (1.0 if not percent else 0.01)
    step = nice_step(high - low, ticks=4)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)

    def x_of(day: date) -> float:
        if first == last:
            return (chart.left + chart.right) / 2
        return chart.left + (day - first).days / span * (chart.right - chart.left)

    def y_of(value: float) -> float:
        return chart.bottom - (min(max(value, low), high) - low) / (high - low) * (chart.bottom - chart.top)

    tick = low
    while tick <= high + step / 2:
        chart.y_ticks.append(Tick(y_of(tick), _format(tick, percent)))
        tick += step
    chart.x_ticks = day_ticks(days, x_of)
    if reference is not None:
        chart.reference = (y_of(reference[0]), reference[1])
    chart.markers = [(x_of(day), label) for day, label in markers if first <= day <= last]
    for index, (name, vs) in enumerate(series):
        ordered = sorted(vs, key=lambda v: v.day)
        points = [
            Point(
                x_of(v.day),
                y_of(v.value),
                y_of(v.low if v.low is not None else v.value),
                y_of(v.high if v.high is not None else v.value),
                f"{name} {v.day:%b %d}: {_format(v.value, percent)}"
                + (
                    f" ({_format(v.low, percent)}–{_format(v.high, percent)})"
                    if v.low is not None and v.high is not None
                    else ""
                ),
            )
            for v in ordered
        ]
        has_band = any(v.low is not None for v in ordered)
        band = ""
        if has_band and points:
            band = " ".join(
                [f"{p.x:.1f},{p.high:.1f}" for p in points] + [f"{p.x:.1f},{p.low:.1f}" for p in reversed(points)]
            )
        chart.lines.append(
            Line(
                name,
                colour(index),
                " ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
                band,
                points,
                _format(ordered[-1].value, percent) if ordered else "",
            )
        )
    return chart
