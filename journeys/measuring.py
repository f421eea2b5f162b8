"""How a journey is doing, per step and against its holdout.

Per step of the current version (the counts are ``journeys.counting``'s, from the same reading):

- ``entered``: entries that reached the step (ran it, or, for the first step, wait to run it);
- ``waiting``: active entries held at it now (a wait they are in, or the first step not yet run);
- ``moved_on``: entries that went past it, to the next step or to the end;
- ``exited``: entries that left the journey there, by reason (an exit event during the wait that
  followed the step, an exit step); ``finished``: of those that moved on, the ones that ended the
  journey after it;
- ``converted`` and ``revenue``: of the entries that reached the step, those who bought within
  ``CONVERSION_DAYS`` of entering, and what they spent (price × quantity of their purchases);
  their conversion rate and revenue per entry beside the holdout's, with a 95% interval for each
  difference.

For the journey: the same for every entry that went through it against those held out (the
journey's holdout share, drawn per person): two-proportion z for conversion, Welch for revenue per
entry (``experiments.stats``), both from sums, so nothing is read entry by entry.
"""

from __future__ import annotations

import math
from typing import Any

from experiments import stats
from journeys.counting import CONVERSION_DAYS, CONVERSION_KIND, Money, read
from journeys.models import Journey

__all__ = ["CONVERSION_DAYS", "CONVERSION_KIND", "compare", "step_measures"]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare(treated: Money, held: Money) -> dict[str, Any]:
    """Conversion rate and revenue per entry of a group beside the holdout's, with 95% intervals
    for the differences (none when a side is too small to tell)."""
    out: dict[str, Any] = {
        "entries": treated.n,
        "held_out": held.n,
        "conversion_rate": treated.converted / treated.n if treated.n else None,
        "holdout_conversion_rate": held.converted / held.n if held.n else None,
        "revenue_per_entry": treated.revenue / treated.n if treated.n else None,
        "holdout_revenue_per_entry": held.revenue / held.n if held.n else None,
        "conversion_lift": None,
        "conversion_lift_interval": None,
        "revenue_lift": None,
        "revenue_lift_interval": None,
    }
    if treated.n and held.n:
        test = stats.two_proportion_test(held.converted, held.n, treated.converted, treated.n)
        out["conversion_lift"] = test.difference
        out["conversion_lift_interval"] = [
            _finite(test.difference_interval.low),
            _finite(test.difference_interval.high),
        ]
    if treated.n >= 2 and held.n >= 2:
        welch = stats.welch_test(
            stats.SampleSummary.from_sums(held.n, held.revenue, held.revenue_squares),
            stats.SampleSummary.from_sums(treated.n, treated.revenue, treated.revenue_squares),
        )
        out["revenue_lift"] = _finite(welch.difference)
        out["revenue_lift_interval"] = [_finite(welch.difference_interval.low), _finite(welch.difference_interval.high)]
    return out


def step_measures(journey: Journey) -> dict[str, Any]:
    """Per step and for the journey against its holdout (see the module's docstring)."""
    reading = read(journey)
    steps = []
    for count in reading.flow.steps:
        money = reading.steps.get(count.id, Money())
        against = compare(money, reading.held_out)
        steps.append(
            {
                "id": count.id,
                "type": count.type,
                "entered": count.entered,
                "waiting": count.waiting,
                "moved_on": count.moved_on,
                "exited": count.exited,
                "exited_by_reason": dict(count.exit_reasons),
                "finished": count.finished,
                "outcomes": dict(count.outcomes),
                "converted": money.converted,
                "revenue": round(money.revenue, 2),
                "conversion_rate": against["conversion_rate"],
                "revenue_per_entry": against["revenue_per_entry"],
                "conversion_lift": against["conversion_lift"],
                "conversion_lift_interval": against["conversion_lift_interval"],
                "revenue_lift": against["revenue_lift"],
                "revenue_lift_interval": against["revenue_lift_interval"],
            }
        )
    return {
        "conversion_days": CONVERSION_DAYS,
        "entries": dict(reading.flow.entries),
        "total": reading.flow.total,
        "steps": steps,
        "holdout": compare(reading.treated, reading.held_out),
    }
