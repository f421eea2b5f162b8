"""A plain-language reading of an experiment result, for the marketer who launched it.

The order of the checks is the order in which they matter: a sample ratio mismatch makes every
other figure unreliable; a significant result is a decision; a result without significance is
"not yet" before the planned sample size and "no detectable difference" after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from experiments.stats import Interval, SampleRatioCheck


class ResultLike(Protocol):
    """What a decision needs from a fixed-horizon ``Comparison`` or a ``SequentialResult``."""

    @property
    def n_control(self) -> int: ...
    @property
    def n_treatment(self) -> int: ...
    @property
    def relative_lift(self) -> float: ...
    @property
    def relative_lift_interval(self) -> Interval: ...
    @property
    def interval_alpha(self) -> float: ...
    @property
    def significant(self) -> bool: ...


class Verdict(StrEnum):
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"
    WINS = "wins"
    LOSES = "loses"
    AHEAD = "ahead"
    BEHIND = "behind"
    NO_DETECTABLE_DIFFERENCE = "no_detectable_difference"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    message: str
    days_remaining: int | None = None

    @property
    def conclusive(self) -> bool:
        return self.verdict in (Verdict.WINS, Verdict.LOSES, Verdict.NO_DETECTABLE_DIFFERENCE)


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1%}"


def _interval_text(result: ResultLike) -> str:
    interval = result.relative_lift_interval
    level = 1 - result.interval_alpha
    return f"{level:.0%} interval {_percent(interval.low)} to {_percent(interval.high)}"


def days_remaining(n_per_variant: int, planned_n_per_variant: int, daily_units_per_variant: float) -> int:
    """Whole days until the smaller variant reaches the planned size at the current daily traffic."""
    if daily_units_per_variant <= 0:
        raise ValueError("daily_units_per_variant must be positive")
    return max(0, math.ceil((planned_n_per_variant - n_per_variant) / daily_units_per_variant))


def decide(
    result: ResultLike,
    *,
    variant: str = "B",
    control: str = "A",
    sample_ratio: SampleRatioCheck | None = None,
    planned_n_per_variant: int | None = None,
    daily_units_per_variant: float | None = None,
    higher_is_better: bool = True,
) -> Decision:
    """The verdict and the sentence a results page shows for ``variant`` against ``control``."""
    if sample_ratio is not None and sample_ratio.mismatch:
        observed = ", ".join(f"{key} {count:,}" for key, count in sample_ratio.observed.items())
        return Decision(
            Verdict.SAMPLE_RATIO_MISMATCH,
            f"Sample ratio mismatch: results unreliable. The split of units ({observed}) is too far from the "
            f"plan to be chance (p = {sample_ratio.p_value:.1e}); check assignment and exposure logging "
            "before reading any result.",
        )

    lift = result.relative_lift
    better = lift > 0 if higher_is_better else lift < 0
    worse = lift < 0 if higher_is_better else lift > 0
    estimate = f"{_percent(lift)} vs {control} ({_interval_text(result)})"
    if result.significant:
        if better:
            return Decision(Verdict.WINS, f"{variant} wins: {estimate}.")
        return Decision(Verdict.LOSES, f"{variant} loses: {estimate}; keep {control}.")

    n = min(result.n_control, result.n_treatment)
    if planned_n_per_variant is not None and n >= planned_n_per_variant:
        interval = result.relative_lift_interval
        return Decision(
            Verdict.NO_DETECTABLE_DIFFERENCE,
            f"No detectable difference between {variant} and {control} at the planned sample size: the change is "
            f"somewhere between {_percent(interval.low)} and {_percent(interval.high)}.",
        )

    verdict = Verdict.BEHIND if worse else Verdict.AHEAD
    position = "behind" if worse else "ahead of" if better else "level with"
    message = f"{variant} is {position} {control}"
    if lift != 0:
        message += f": {_percent(lift)} ({_interval_text(result)})"
    message += "; not yet conclusive"
    days: int | None = None
    if planned_n_per_variant is not None and daily_units_per_variant:
        days = days_remaining(n, planned_n_per_variant, daily_units_per_variant)
        message += f"; ~{days} more day{'s' if days != 1 else ''} at current traffic."
    elif planned_n_per_variant is not None:
        message += f"; {n:,} of {planned_n_per_variant:,} planned units per variant so far."
    else:
        message += "."
    return Decision(verdict, message, days)
