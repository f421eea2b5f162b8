"""The lift-over-time chart of the results page, laid out on the server as SVG coordinates.

Each treatment is one series: its relative lift on the primary metric at every stored look, with
the interval as a shaded band. The template draws the shapes; nothing is fetched from a network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from personalization.svg_charts import Tick, colour, nice_step, spread


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    color: str
    line: str  # polyline points
    band: str  # polygon points of the interval
    points: list[Point]
    last: str  # the latest lift, as text


@dataclass
class LiftChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    zero_y: float
    series: list[Series] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)

    @property
    def plot_width(self) -> int:
        return self.right - self.left

    @property
    def plot_height(self) -> int:
        return self.bottom - self.top


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _percent(value: float) -> str:
    return f"{value:+.0%}" if abs(value) >= 0.1 or value == 0 else f"{value:+.1%}"


def lift_chart(
    history: Sequence[dict[str, Any]],
    variants: Sequence[tuple[str, str]],
    width: int = 760,
    height: int = 300,
) -> LiftChart:
    """Lay out ``history`` (``[{"computed_at", "lift": {variant: {lift, low, high}}}]``) for the treatments."""
    chart = LiftChart(width=width, height=height, left=56, right=width - 16, top=16, bottom=height - 32, zero_y=0)
    times: list[datetime] = [h["computed_at"] for h in history]
    values: list[float] = [0.0]
    for h in history:
        for key, _ in variants:
            point = (h.get("lift") or {}).get(key) or {}
            for name in ("lift", "low", "high"):
                v = _finite(point.get(name))
                if v is not None:
                    values.append(v)
    lifts = [
        v
        for h in history
        for key, _ in variants
        if (v := _finite(((h.get("lift") or {}).get(key) or {}).get("lift"))) is not None
    ]
    low, high = min(values), max(values)
    # Early intervals can be enormous; keep the lifts readable and let the bands run off the edge.
    biggest = max((abs(v) for v in lifts), default=0.0)
    cap = max(0.25, 2.5 * biggest)
    low, high = max(low, -1.0, -cap), min(high, cap)
    if high - low < 0.02:
        low, high = low - 0.01, high + 0.01
    step = nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step

    def y_of(v: float) -> float:
        v = min(max(v, low), high)
        return chart.bottom - (v - low) / (high - low) * chart.plot_height

    start, end = (min(times), max(times)) if times else (None, None)

    def x_of(t: datetime) -> float:
        if start is None or end is None or end == start:
            return chart.left + chart.plot_width / 2
        return chart.left + (t - start).total_seconds() / (end - start).total_seconds() * chart.plot_width

    chart.zero_y = y_of(0.0)
    tick = low
    while tick <= high + step / 2:
        chart.y_ticks.append(Tick(y_of(tick), _percent(tick)))
        tick += step
    if times and start is not None and end is not None:
        span_days = (end - start).total_seconds() / 86400
        fmt = "%b %d %H:%M" if span_days < 2 else "%b %d"
        count = min(5, len(times))
        for i, anchor in spread(count):
            t = start + (end - start) * (i / (count - 1) if count > 1 else 0)
            chart.x_ticks.append(Tick(x_of(t), t.strftime(fmt), anchor))

    for index, (key, name) in enumerate(variants):
        points: list[Point] = []
        for h, t in zip(history, times, strict=True):
            point = (h.get("lift") or {}).get(key) or {}
            lift = _finite(point.get("lift"))
            if lift is None:
                continue
            lo = _finite(point.get("low"))
            hi = _finite(point.get("high"))
            points.append(
                Point(
                    x_of(t),
                    y_of(lift),
                    y_of(lo if lo is not None else low),
                    y_of(hi if hi is not None else high),
                    f"{name}: {_percent(lift)} at {t:%b %d %H:%M}",
                )
            )
        line = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in points)
        upper = [f"{p.x:.1f},{p.high:.1f}" for p in points]
        lower = [f"{p.x:.1f},{p.low:.1f}" for p in reversed(points)]
        last = ""
        if points:
            final = _finite(((history[-1].get("lift") or {}).get(key) or {}).get("lift"))
            last = _percent(final) if final is not None else ""
        chart.series.append(Series(key, name, colour(index), line, " ".join(upper + lower), points, last))
    return chart
