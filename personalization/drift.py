"""Figures of the watch and the drift rule, in plain Python: intervals for click-through and
conversion, and the rule that decides whether the active version has drifted far enough to retrain
before the schedule would.

The rule fires when any of these holds (thresholds in ``Thresholds``, edited on the model page):

* **unknown items**: more than ``unknown_item_share`` of the day's item events are on items the
  active version does not know (new catalogue, changed assortment);
* **offline quality**: the active version's NDCG@20 on the days since its training fell more than
  ``ndcg_drop`` (relative) below its hold-out figure at activation;
* **click-through**: on a surface, personalized answers' click-through of the day fell more than
  ``ctr_drop`` (relative) below the previous days', and the 95% interval of the difference excludes
  zero — so a day of ordinary noise does not fire it. Both sides need ``min_answers`` answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from personalization.loop_stats import difference, wilson


@dataclass(frozen=True)
class Thresholds:
    enabled: bool = True
    unknown_item_share: float = 0.30
    ndcg_drop: float = 0.20
    ctr_drop: float = 0.15
    min_answers: int = 500
    baseline_days: int = 7
    cooldown_hours: int = 24

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SurfaceClicks:
    """A surface's personalized answers and how many were clicked: on the day, and on the days before."""

    surface: str
    day: tuple[int, int]  # (clicked answers, answers)
    before: tuple[int, int]


@dataclass
class Verdict:
    fired: bool = False
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {"fired": self.fired, "reasons": self.reasons, "checks": self.checks}


def evaluate(
    thresholds: Thresholds,
    *,
    unknown_item_share: float | None,
    item_events: int,
    ndcg_recent: float | None,
    ndcg_at_activation: float | None,
    clicks: Sequence[SurfaceClicks] = (),
) -> Verdict:
    verdict = Verdict()
    if not thresholds.enabled:
        verdict.checks["disabled"] = True
        return verdict
    if unknown_item_share is not None and item_events >= thresholds.min_answers // 5:
        fired = unknown_item_share > thresholds.unknown_item_share
        verdict.checks["unknown_items"] = {"share": unknown_item_share, "limit": thresholds.unknown_item_share}
        if fired:
            verdict.reasons.append(
                f"{unknown_item_share:.0%} of the day's item events were on items the model does not know"
                f" (limit {thresholds.unknown_item_share:.0%})"
            )
    if ndcg_recent is not None and ndcg_at_activation:
        drop = 1 - ndcg_recent / ndcg_at_activation
        verdict.checks["ndcg"] = {"drop": drop, "limit": thresholds.ndcg_drop}
        if drop > thresholds.ndcg_drop:
            verdict.reasons.append(
                f"NDCG@20 on recent days {ndcg_recent:.4f} is {drop:.0%} below {ndcg_at_activation:.4f} at activation"
                f" (limit {thresholds.ndcg_drop:.0%})"
            )
    for surface in clicks:
        day, before = wilson(*surface.day), wilson(*surface.before)
        if day.n < thresholds.min_answers or before.n < thresholds.min_answers or not before.value:
            continue
        change, low, high = difference(day, before)
        relative = change / before.value
        verdict.checks[f"ctr:{surface.surface}"] = {
            "day": day.value,
            "before": before.value,
            "relative": relative,
            "interval": [low, high],
            "limit": thresholds.ctr_drop,
        }
        if high < 0 and -relative > thresholds.ctr_drop:
            verdict.reasons.append(
                f"click-through of personalized answers on {surface.surface} fell to {day.value:.2%} from"
                f" {before.value:.2%} ({relative:+.0%}; 95% interval of the change {low:+.2%} to {high:+.2%},"
                f" limit {thresholds.ctr_drop:.0%})"
            )
    verdict.fired = bool(verdict.reasons)
    return verdict


def thresholds_from(values: Mapping[str, Any]) -> Thresholds:
    known = {k: values[k] for k in Thresholds.__dataclass_fields__ if k in values}
    return Thresholds(**known)
