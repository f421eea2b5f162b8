"""Always-valid inference, so that marketers may look at results every day without inflating errors.

A fixed-horizon test is valid once, at the planned sample size; checking it daily and stopping at
the first p < 0.05 makes false wins several times likelier than 5%. The mixture sequential
probability ratio test (mSPRT; Robbins, 1970; Johari, Koomen, Pekelis & Walsh, 2017/2022) is valid
at every look: with probability at least 1 - alpha its confidence interval covers the true
difference at *all* times simultaneously, and its p-value falls below alpha with probability at
most alpha however often it is read.

The estimate is the difference of means Δ̂ with estimated variance V = s_c²/n_c + s_t²/n_t. Under
a normal approximation (asymptotically valid; Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, 2024)
and a normal mixture N(0, τ²) over the true difference, the mixture likelihood ratio against
"no difference" is

    Λ = sqrt(V / (V + τ²)) · exp(τ² Δ̂² / (2 V (V + τ²)))

The always-valid p-value is min over looks of 1/Λ, and the confidence interval is the running
intersection of Δ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/alpha) + log((V + τ²) / V))).

τ² sets the sample size at which the interval is tightest; :func:`mixture_variance_for` picks it
for the variance expected at the planned sample size. It must be fixed before the data is seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from experiments.stats import Interval, SampleSummary


def mixture_log_likelihood_ratio(
    difference: ArrayLike, variance: ArrayLike, mixture_variance: float, null_difference: float = 0.0
) -> NDArray[np.float64]:
    """log Λ for estimated differences with the given variances (vectorized over looks or runs)."""
    d = np.asarray(difference, dtype=float) - null_difference
    v = np.asarray(variance, dtype=float)
    tau2 = mixture_variance
    return 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2 * v * (v + tau2))


def confidence_radius(variance: ArrayLike, mixture_variance: float, alpha: float = 0.05) -> NDArray[np.float64]:
    """Half-width of the mixture confidence sequence at one look (before intersecting over looks)."""
    v = np.asarray(variance, dtype=float)
    tau2 = mixture_variance
    return np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))


def mixture_variance_for(planned_variance: float, alpha: float = 0.05) -> float:
    """τ² that makes the confidence sequence narrowest when Var(Δ̂) reaches ``planned_variance``.

    With r = τ² / V the squared radius is V (1 + r) / r · (2 log(1/alpha) + log(1 + r)); the best r
    depends only on alpha (about 8.2 at alpha = 0.05, 6.6 at alpha = 0.1).
    """
    if planned_variance <= 0:
        raise ValueError("planned_variance must be positive")
    log_inverse_alpha = math.log(1 / alpha)

    def squared_radius(log_r: float) -> float:
        r = math.exp(log_r)
        return (1 + r) / r * (2 * log_inverse_alpha + math.log1p(r))

    best = optimize.minimize_scalar(squared_radius, bounds=(-10.0, 10.0), method="bounded")
    return math.exp(best.x) * planned_variance


def plan_mixture_variance(baseline_sd: float, planned_n_per_variant: int, alpha: float = 0.05) -> float:
    """τ² for a two-variant test of means planned at ``planned_n_per_variant`` units each."""
    if baseline_sd <= 0 or planned_n_per_variant < 1:
        raise ValueError("baseline_sd and planned_n_per_variant must be positive")
    return mixture_variance_for(2 * baseline_sd**2 / planned_n_per_variant, alpha)


@dataclass(frozen=True)
class SequentialResult:
    """The always-valid state after a look; pass it back as ``previous`` at the next look.

    ``p_value`` and the intervals already include every earlier look (running minimum and running
    intersection), so they only ever tighten. The relative-lift interval applies the same boundary
    to the delta-method variance of the lift, with mixture variance τ² / control mean²; it is an
    approximation that is good once each variant has a few hundred units.
    """

    n_control: int
    n_treatment: int
    control_mean: float
    treatment_mean: float
    standard_error: float
    relative_standard_error: float
    mixture_variance: float
    alpha: float
    log_likelihood_ratio: float
    p_value: float
    difference_interval: Interval
    relative_lift_interval: Interval
    looks: int = 1

    @property
    def difference(self) -> float:
        return self.treatment_mean - self.control_mean

    @property
    def relative_lift(self) -> float:
        return math.nan if self.control_mean == 0 else self.treatment_mean / self.control_mean - 1

    @property
    def interval_alpha(self) -> float:
        return self.alpha

    @property
    def decisive_p_value(self) -> float:
        return self.p_value

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, object]:
        di, ri = self.difference_interval, self.relative_lift_interval
        return {
            "method": "msprt_normal_mixture",
            "n_control": self.n_control,
            "n_treatment": self.n_treatment,
            "control_mean": self.control_mean,
            "treatment_mean": self.treatment_mean,
            "difference": self.difference,
            "difference_interval": [di.low, di.high],
            "relative_lift": self.relative_lift,
            "relative_lift_interval": [ri.low, ri.high],
            "p_value": self.p_value,
            "alpha": self.alpha,
            "mixture_variance": self.mixture_variance,
            "looks": self.looks,
            "significant": self.significant,
        }


def _intersect(current: Interval, previous: Interval | None) -> Interval:
    if previous is None:
        return current
    return Interval(max(current.low, previous.low), min(current.high, previous.high))


def sequential_test(
    control: SampleSummary,
    treatment: SampleSummary,
    mixture_variance: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """One look of the always-valid test of treatment vs control means (cumulative summaries)."""
    if control.n < 2 or treatment.n < 2:
        raise ValueError("the sequential test needs at least 2 units per variant")
    if mixture_variance <= 0:
        raise ValueError("mixture_variance must be positive")
    if previous is not None and (previous.alpha != alpha or previous.mixture_variance != mixture_variance):
        raise ValueError("alpha and mixture_variance must stay the same for the whole experiment")
    vc, vt = control.variance_of_mean, treatment.variance_of_mean
    variance = max(vc + vt, 1e-300)
    difference = treatment.mean - control.mean
    log_lr = float(mixture_log_likelihood_ratio(difference, variance, mixture_variance))
    p_value = min(1.0, math.exp(-log_lr))
    radius = float(confidence_radius(variance, mixture_variance, alpha))
    difference_interval = Interval(difference - radius, difference + radius)

    if control.mean != 0:
        c2 = control.mean**2
        relative_variance = max(vt / c2 + treatment.mean**2 * vc / (c2 * c2), 1e-300)
        lift = treatment.mean / control.mean - 1
        relative_radius = float(confidence_radius(relative_variance, mixture_variance / c2, alpha))
        relative_interval = Interval(lift - relative_radius, lift + relative_radius)
        relative_se = math.sqrt(relative_variance)
    else:
        relative_interval = Interval(-math.inf, math.inf)
        relative_se = math.nan

    if previous is not None:
        p_value = min(p_value, previous.p_value)
        difference_interval = _intersect(difference_interval, previous.difference_interval)
        relative_interval = _intersect(relative_interval, previous.relative_lift_interval)
    return SequentialResult(
        n_control=control.n,
        n_treatment=treatment.n,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        standard_error=math.sqrt(variance),
        relative_standard_error=relative_se,
        mixture_variance=mixture_variance,
        alpha=alpha,
        log_likelihood_ratio=log_lr,
        p_value=p_value,
        difference_interval=difference_interval,
        relative_lift_interval=relative_interval,
        looks=1 if previous is None else previous.looks + 1,
    )


def sequential_proportion_test(
    control_conversions: int,
    control_n: int,
    treatment_conversions: int,
    treatment_n: int,
    mixture_variance: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """The always-valid test for conversion rates (a 0/1 metric per unit)."""
    return sequential_test(
        SampleSummary.from_proportion(control_conversions, control_n),
        SampleSummary.from_proportion(treatment_conversions, treatment_n),
        mixture_variance,
        alpha,
        previous,
    )
