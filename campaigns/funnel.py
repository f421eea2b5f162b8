"""A campaign's funnel against its holdout, and the funnel over time as an SVG chart laid out here.

The comparison is by intention to treat: everyone the campaign selected and did not hold out (also
those suppressed for consent or caps) against everyone held out, each from the moment their
message was (or would have been) sent, over the same conversion window. The difference of
conversion rates gets a 95% normal-approximation interval; revenue per person is shown beside it.
Free of Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

Z95 = 1.959964
STAGES = ("sent", "opened", "clicked", "converted")
COLORS = {"sent": "#5b6475", "opened": "#2d5bd7", "clicked": "#8e44ad", "converted": "#16a085"}


@dataclass(frozen=True)
class Group:
    people: int
    converted: int
    revenue: float

    @property
    def rate(self) -> float:
        return self.converted / self.people if self.people else 0.0

    @property
    def revenue_per_person(self) -> float:
        return self.revenue / self.people if self.people else 0.0


@dataclass(frozen=True)
class Effect:
    """The campaign's conversion rate minus the holdout's, with its 95% interval (in points)."""

    difference: float
    low: float
    high: float
    relative: float | None  # the difference over the holdout's rate; None when the holdout never converted

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "The campaign raised conversion."
        if self.high < 0:
            return "The campaign lowered conversion."
        return "No difference can be told apart from chance yet."


def effect(treated: Group, holdout: Group) -> Effect | None:
    """None without people on both sides."""
    if not treated.people or not holdout.people:
        return None
    p1, p2 = treated.rate, holdout.rate
    spread = Z95 * math.sqrt(p1 * (1 - p1) / treated.people + p2 * (1 - p2) / holdout.people)
    difference = p1 - p2
    return Effect(difference, difference - spread, difference + spread, difference / p2 if p2 else None)


# --- the chart ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    stage: str
    color: str
    points: str  # polyline points
    total: int
    end_x: float = 0.0
    end_y: float = 0.0


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "middle"


@dataclass
class FunnelChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(line.total for line in self.lines)


def _step(top: int) -> int:
    raw = max(top / 4, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


def funnel_chart(
    daily: Mapping[str, Mapping[date, int]], start: date, end: date, width: int = 760, height: int = 260
) -> FunnelChart:
    """Cumulative people per stage and day from ``start`` to ``end`` (``daily[stage][day]`` = new that
    day); a chart of one day starts the day before, so each line rises from zero."""
    if end <= start:
        start = end - timedelta(days=1)
    chart = FunnelChart(width, height, left=48, right=width - 16, top=12, bottom=height - 28)
    days = max((end - start).days, 0) + 1
    cumulative: dict[str, list[int]] = {}
    for stage in STAGES:
        running, values = 0, []
        for offset in range(days):
            running += int(daily.get(stage, {}).get(start + timedelta(days=offset), 0))
            values.append(running)
        cumulative[stage] = values
    top = max([1, *(v[-1] for v in cumulative.values())])
    step = _step(top)
    ceiling = math.ceil(top / step) * step
    plot_w, plot_h = chart.right - chart.left, chart.bottom - chart.top

    def x_of(offset: int) -> float:
        return chart.left + (offset / (days - 1) * plot_w if days > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return chart.bottom - value / ceiling * plot_h

    for value in range(0, ceiling + 1, step):
        chart.y_ticks.append(Tick(y_of(value), f"{value:,}"))
    labels = min(days, 6)
    for i in range(labels):
        offset = round(i * (days - 1) / (labels - 1)) if labels > 1 else 0
        anchor = "middle" if labels == 1 or 0 < i < labels - 1 else ("start" if i == 0 else "end")
        chart.x_ticks.append(Tick(x_of(offset), (start + timedelta(days=offset)).strftime("%b %d"), anchor))
    for stage in STAGES:
        values = cumulative[stage]
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
        last = len(values) - 1
        chart.lines.append(Line(stage, COLORS[stage], points, values[-1], x_of(last), y_of(values[-1])))
    return chart


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


BASIS = {"sent": "prepared", "opened": "sent", "clicked": "opened", "converted": "prepared"}


def funnel_rows(counts: Mapping[str, int]) -> list[tuple[str, int, str]]:
    """(stage, people, share of its basis) for prepared → sent → opened → clicked → converted; a
    conversion need not follow a click, so it is a share of everyone prepared."""
    rows = [("prepared", int(counts.get("prepared", 0)), "")]
    for stage, basis in BASIS.items():
        n = int(counts.get(stage, 0))
        rows.append((stage, n, f"{share(n, counts.get(basis, 0))} of {basis}"))
    return rows


def interval_text(found: Effect | None) -> str:
    if found is None:
        return "No holdout to compare with."
    return f"{found.difference * 100:+.2f} points (95% interval {found.low * 100:+.2f} to {found.high * 100:+.2f})"
