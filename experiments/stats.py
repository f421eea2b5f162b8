"""Fixed-horizon statistics for experiments: comparisons, variance reduction, checks and planning.

Plain Python + numpy/scipy, free of Django. The results job aggregates each variant in SQL into a
few sums (count, sum, sum of squares, ...), builds the summaries below with ``from_sums`` and calls
these functions; tests and benchmarks build them from raw values with ``from_values``.

Conventions: "control" is the baseline variant, "treatment" the variant compared with it; a
difference is treatment minus control and a relative lift is treatment / control - 1. Methods,
formulas and references are in ``docs/experiments-statistics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


# --- Summaries: what a variant's data boils down to --------------------------------------------


@dataclass(frozen=True)
class SampleSummary:
    """Count, mean and sample variance (ddof=1) of a per-unit metric in one variant."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_values(cls, values: ArrayLike) -> SampleSummary:
        x = np.asarray(values, dtype=float)
        return cls(n=int(x.size), mean=float(x.mean()), variance=float(x.var(ddof=1)) if x.size > 1 else 0.0)

    @classmethod
    def from_sums(cls, n: int, total: float, total_of_squares: float) -> SampleSummary:
        if n < 1:
            raise ValueError("a summary needs at least one unit")
        mean = total / n
        variance = max(total_of_squares - total * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=mean, variance=variance)

    @classmethod
    def from_proportion(cls, conversions: int, n: int) -> SampleSummary:
        """A 0/1 metric: ``conversions`` units out of ``n`` converted."""
        return cls.from_sums(n, conversions, conversions)

    @property
    def variance_of_mean(self) -> float:
        return self.variance / self.n


@dataclass(frozen=True)
class RatioSummary:
    """Per-unit numerator and denominator (clicks and impressions of each person) in one variant.

    The metric is sum(numerators) / sum(denominators); units, not impressions, are independent,
    so its variance comes from the delta method over unit-level means (Deng et al., 2018).
    """

    n: int
    numerator_mean: float
    denominator_mean: float
    numerator_variance: float
    denominator_variance: float
    covariance: float

    @classmethod
    def from_values(cls, numerators: ArrayLike, denominators: ArrayLike) -> RatioSummary:
        x = np.asarray(numerators, dtype=float)
        y = np.asarray(denominators, dtype=float)
        if x.shape != y.shape or x.size < 2:
            raise ValueError("numerators and denominators need the same length, at least 2")
        cov = np.cov(x, y, ddof=1)
        return cls(
            n=int(x.size),
            numerator_mean=float(x.mean()),
            denominator_mean=float(y.mean()),
            numerator_variance=float(cov[0, 0]),
            denominator_variance=float(cov[1, 1]),
            covariance=float(cov[0, 1]),
        )

    @classmethod
    def from_sums(
        cls,
        n: int,
        numerator_sum: float,
        denominator_sum: float,
        numerator_squares: float,
        denominator_squares: float,
        cross_products: float,
    ) -> RatioSummary:
        if n < 2:
            raise ValueError("a ratio summary needs at least 2 units")
        mx, my = numerator_sum / n, denominator_sum / n
        return cls(
            n=n,
            numerator_mean=mx,
            denominator_mean=my,
            numerator_variance=max(numerator_squares - n * mx * mx, 0.0) / (n - 1),
            denominator_variance=max(denominator_squares - n * my * my, 0.0) / (n - 1),
            covariance=(cross_products - n * mx * my) / (n - 1),
        )

    @property
    def ratio(self) -> float:
        return self.numerator_mean / self.denominator_mean

    @property
    def variance_of_ratio(self) -> float:
        """Delta method: Var(X̄/Ȳ) ≈ (Var X - 2 R Cov(X, Y) + R² Var Y) / (n Ȳ²)."""
        r = self.ratio
        spread = self.numerator_variance - 2 * r * self.covariance + r * r * self.denominator_variance
        return max(spread, 0.0) / (self.n * self.denominator_mean**2)


@dataclass(frozen=True)
class CovariateSummary:
    """A per-unit metric and its pre-exposure covariate (the same metric before the experiment)."""

    n: int
    mean: float
    covariate_mean: float
    variance: float
    covariate_variance: float
    covariance: float

    @classmethod
    def from_values(cls, values: ArrayLike, covariate: ArrayLike) -> CovariateSummary:
        y = np.asarray(values, dtype=float)
        x = np.asarray(covariate, dtype=float)
        if x.shape != y.shape or y.size < 2:
            raise ValueError("values and covariate need the same length, at least 2")
        cov = np.cov(y, x, ddof=1)
        return cls(
            n=int(y.size),
            mean=float(y.mean()),
            covariate_mean=float(x.mean()),
            variance=float(cov[0, 0]),
            covariate_variance=float(cov[1, 1]),
            covariance=float(cov[0, 1]),
        )

    @classmethod
    def from_sums(
        cls,
        n: int,
        total: float,
        covariate_total: float,
        total_of_squares: float,
        covariate_squares: float,
        cross_products: float,
    ) -> CovariateSummary:
        if n < 2:
            raise ValueError("a covariate summary needs at least 2 units")
        my, mx = total / n, covariate_total / n
        return cls(
            n=n,
            mean=my,
            covariate_mean=mx,
            variance=max(total_of_squares - n * my * my, 0.0) / (n - 1),
            covariate_variance=max(covariate_squares - n * mx * mx, 0.0) / (n - 1),
            covariance=(cross_products - n * my * mx) / (n - 1),
        )


# --- Comparisons ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A treatment compared with control on one metric.

    ``standard_error`` is the standard error of the difference and ``relative_standard_error``
    that of the relative lift (delta method); intervals use the quantile of Student's t with
    ``degrees_of_freedom`` (infinite: the normal). When the comparison is one of a family (several
    variants against one control), ``adjusted_p_value`` is Holm's and the intervals are at level
    ``alpha / family_size`` (Bonferroni), so an interval that excludes zero implies a Holm win.
    """

    method: str
    n_control: int
    n_treatment: int
    control_mean: float
    treatment_mean: float
    standard_error: float
    relative_standard_error: float
    degrees_of_freedom: float
    statistic: float
    p_value: float
    alpha: float = 0.05
    adjusted_p_value: float | None = None
    family_size: int = 1

    @property
    def difference(self) -> float:
        return self.treatment_mean - self.control_mean

    @property
    def relative_lift(self) -> float:
        if self.control_mean == 0:
            return math.nan
        return self.treatment_mean / self.control_mean - 1

    @property
    def interval_alpha(self) -> float:
        return self.alpha / self.family_size

    @property
    def critical_value(self) -> float:
        return _critical_value(self.interval_alpha, self.degrees_of_freedom)

    @property
    def difference_interval(self) -> Interval:
        half = self.critical_value * self.standard_error
        return Interval(self.difference - half, self.difference + half)

    @property
    def relative_lift_interval(self) -> Interval:
        half = self.critical_value * self.relative_standard_error
        return Interval(self.relative_lift - half, self.relative_lift + half)

    @property
    def decisive_p_value(self) -> float:
        """The p-value a decision rests on: Holm-adjusted in a family, otherwise the plain one."""
        return self.p_value if self.adjusted_p_value is None else self.adjusted_p_value

    @property
    def significant(self) -> bool:
        return self.decisive_p_value < self.alpha

    def to_dict(self) -> dict[str, object]:
        """Everything a results page shows, JSON-ready."""
        di, ri = self.difference_interval, self.relative_lift_interval
        return {
            "method": self.method,
            "n_control": self.n_control,
            "n_treatment": self.n_treatment,
            "control_mean": self.control_mean,
            "treatment_mean": self.treatment_mean,
            "difference": self.difference,
            "difference_interval": [di.low, di.high],
            "relative_lift": self.relative_lift,
            "relative_lift_interval": [ri.low, ri.high],
            "statistic": self.statistic,
            "p_value": self.p_value,
            "adjusted_p_value": self.adjusted_p_value,
            "alpha": self.alpha,
            "family_size": self.family_size,
            "significant": self.significant,
        }


def _critical_value(alpha: float, degrees_of_freedom: float) -> float:
    if math.isinf(degrees_of_freedom):
        return float(stats.norm.isf(alpha / 2))
    return float(stats.t.isf(alpha / 2, degrees_of_freedom))


def _two_sided_p(statistic: float, degrees_of_freedom: float) -> float:
    if math.isnan(statistic):
        return 1.0
    if math.isinf(degrees_of_freedom):
        return float(2 * stats.norm.sf(abs(statistic)))
    return float(2 * stats.t.sf(abs(statistic), degrees_of_freedom))


def _relative_standard_error(
    control_mean: float, treatment_mean: float, control_var_of_mean: float, treatment_var_of_mean: float
) -> float:
    """Delta method for T/C with independent groups: Var ≈ Var(T)/C² + T² Var(C)/C⁴."""
    if control_mean == 0:
        return math.nan
    c2 = control_mean * control_mean
    return math.sqrt(treatment_var_of_mean / c2 + treatment_mean * treatment_mean * control_var_of_mean / (c2 * c2))


def _ratio_statistic(difference: float, standard_error: float) -> float:
    if standard_error > 0:
        return difference / standard_error
    return 0.0 if difference == 0 else math.copysign(math.inf, difference)


def welch_test(control: SampleSummary, treatment: SampleSummary, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variances t-test (Welch, 1947) with Welch-Satterthwaite degrees of freedom."""
    if control.n < 2 or treatment.n < 2:
        raise ValueError("Welch's test needs at least 2 units per variant")
    vc, vt = control.variance_of_mean, treatment.variance_of_mean
    se = math.sqrt(vc + vt)
    denominator = vc * vc / (control.n - 1) + vt * vt / (treatment.n - 1)
    df = (vc + vt) ** 2 / denominator if denominator > 0 else math.inf
    statistic = _ratio_statistic(treatment.mean - control.mean, se)
    return Comparison(
        method="welch_t",
        n_control=control.n,
        n_treatment=treatment.n,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        standard_error=se,
        relative_standard_error=_relative_standard_error(control.mean, treatment.mean, vc, vt),
        degrees_of_freedom=df,
        statistic=statistic,
        p_value=_two_sided_p(statistic, df),
        alpha=alpha,
    )


def two_proportion_test(
    control_conversions: int, control_n: int, treatment_conversions: int, treatment_n: int, alpha: float = 0.05
) -> Comparison:
    """The two-proportion z-test: pooled standard error for the test, unpooled for the intervals."""
    if control_n < 1 or treatment_n < 1:
        raise ValueError("each variant needs at least one unit")
    if not (0 <= control_conversions <= control_n and 0 <= treatment_conversions <= treatment_n):
        raise ValueError("conversions must be between 0 and the number of units")
    pc, pt = control_conversions / control_n, treatment_conversions / treatment_n
    pooled = (control_conversions + treatment_conversions) / (control_n + treatment_n)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    vc, vt = pc * (1 - pc) / control_n, pt * (1 - pt) / treatment_n
    statistic = _ratio_statistic(pt - pc, pooled_se)
    return Comparison(
        method="two_proportion_z",
        n_control=control_n,
        n_treatment=treatment_n,
        control_mean=pc,
        treatment_mean=pt,
        standard_error=math.sqrt(vc + vt),
        relative_standard_error=_relative_standard_error(pc, pt, vc, vt),
        degrees_of_freedom=math.inf,
        statistic=statistic,
        p_value=_two_sided_p(statistic, math.inf),
        alpha=alpha,
    )


def ratio_test(control: RatioSummary, treatment: RatioSummary, alpha: float = 0.05) -> Comparison:
    """A ratio metric (clicks / impressions) compared with the delta method and a z-test."""
    if control.denominator_mean <= 0 or treatment.denominator_mean <= 0:
        raise ValueError("a ratio metric needs a positive denominator (some impressions) in each variant")
    vc, vt = control.variance_of_ratio, treatment.variance_of_ratio
    se = math.sqrt(vc + vt)
    statistic = _ratio_statistic(treatment.ratio - control.ratio, se)
    return Comparison(
        method="ratio_delta_z",
        n_control=control.n,
        n_treatment=treatment.n,
        control_mean=control.ratio,
        treatment_mean=treatment.ratio,
        standard_error=se,
        relative_standard_error=_relative_standard_error(control.ratio, treatment.ratio, vc, vt),
        degrees_of_freedom=math.inf,
        statistic=statistic,
        p_value=_two_sided_p(statistic, math.inf),
        alpha=alpha,
    )


# --- CUPED ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CupedComparison:
    """A Welch comparison on CUPED-adjusted values, with what the adjustment did.

    ``variance_reduction`` is 1 - Var(adjusted) / Var(raw) over the pooled data, which equals the
    squared correlation between metric and covariate.
    """

    comparison: Comparison
    theta: float
    correlation: float
    variance_reduction: float


def _pooled_moments(control: CovariateSummary, treatment: CovariateSummary) -> tuple[float, float, float, float]:
    """Pooled covariate mean, metric variance, covariate variance and covariance over both groups."""
    n = control.n + treatment.n
    mx = (control.n * control.covariate_mean + treatment.n * treatment.covariate_mean) / n
    my = (control.n * control.mean + treatment.n * treatment.mean) / n

    def pooled(within_c: float, within_t: float, dev_c: float, dev_t: float) -> float:
        return ((control.n - 1) * within_c + (treatment.n - 1) * within_t + control.n * dev_c + treatment.n * dev_t) / (
            n - 1
        )

    var_y = pooled(control.variance, treatment.variance, (control.mean - my) ** 2, (treatment.mean - my) ** 2)
    var_x = pooled(
        control.covariate_variance,
        treatment.covariate_variance,
        (control.covariate_mean - mx) ** 2,
        (treatment.covariate_mean - mx) ** 2,
    )
    cov = pooled(
        control.covariance,
        treatment.covariance,
        (control.mean - my) * (control.covariate_mean - mx),
        (treatment.mean - my) * (treatment.covariate_mean - mx),
    )
    return mx, var_y, var_x, cov


def cuped_theta(control: CovariateSummary, treatment: CovariateSummary) -> float:
    """θ = Cov(Y, X) / Var(X) over the pooled data of both groups (Deng et al., 2013)."""
    _, _, var_x, cov = _pooled_moments(control, treatment)
    return cov / var_x if var_x > 0 else 0.0


def cuped_adjusted(summary: CovariateSummary, theta: float, pooled_covariate_mean: float) -> SampleSummary:
    """The summary of Y - θ (X - pooled mean of X) in one group."""
    variance = summary.variance - 2 * theta * summary.covariance + theta * theta * summary.covariate_variance
    return SampleSummary(
        n=summary.n,
        mean=summary.mean - theta * (summary.covariate_mean - pooled_covariate_mean),
        variance=max(variance, 0.0),
    )


def cuped_test(control: CovariateSummary, treatment: CovariateSummary, alpha: float = 0.05) -> CupedComparison:
    """CUPED: remove the part of the metric explained by its pre-exposure value, then Welch's test.

    The covariate must be measured before exposure (it cannot be affected by the variant), so the
    adjustment leaves the expected difference unchanged and shrinks its variance by about ρ².
    """
    mx, var_y, var_x, cov = _pooled_moments(control, treatment)
    theta = cov / var_x if var_x > 0 else 0.0
    comparison = welch_test(cuped_adjusted(control, theta, mx), cuped_adjusted(treatment, theta, mx), alpha=alpha)
    correlation = cov / math.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else 0.0
    adjusted_variance = var_y - 2 * theta * cov + theta * theta * var_x
    reduction = 1 - adjusted_variance / var_y if var_y > 0 else 0.0
    return CupedComparison(
        comparison=replace(comparison, method="cuped_welch_t"),
        theta=theta,
        correlation=correlation,
        variance_reduction=reduction,
    )


# --- Several variants ----------------------------------------------------------------------------


def holm_adjusted_p_values(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm, 1979), in the input order.

    Sorted ascending, the i-th (0-based) of m gets max over j <= i of min(1, (m - j) p_(j)).
    Rejecting where the adjusted p-value is below alpha controls the family-wise error rate.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def holm(comparisons: Mapping[str, Comparison]) -> dict[str, Comparison]:
    """Each variant-vs-control comparison with Holm's adjusted p-value and Bonferroni-level intervals."""
    keys = list(comparisons)
    adjusted = holm_adjusted_p_values([comparisons[key].p_value for key in keys])
    return {
        key: replace(comparisons[key], adjusted_p_value=p, family_size=len(keys))
        for key, p in zip(keys, adjusted, strict=True)
    }


# --- Sample ratio mismatch -----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRatioCheck:
    """Chi-square goodness of fit of the units seen per variant against the planned split."""

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    threshold: float = SRM_THRESHOLD

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold


def sample_ratio_check(
    observed: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Flags a split that is too uneven to be chance (p < ``threshold``, 0.001 by default).

    A mismatch means something other than the assignment decides who is counted (a redirect that
    loses some visitors, a bot filter, a crash in one variant): the comparison is then unreliable.
    """
    if set(observed) != set(weights):
        raise ValueError("observed counts and weights must name the same variants")
    total_weight = sum(weights.values())
    if total_weight <= 0 or any(w <= 0 for w in weights.values()):
        raise ValueError("every weight must be positive")
    total = sum(observed.values())
    expected = {key: total * weights[key] / total_weight for key in observed}
    if total == 0:
        return SampleRatioCheck(dict(observed), expected, 0.0, 1.0, threshold)
    statistic = sum((observed[key] - expected[key]) ** 2 / expected[key] for key in observed)
    p_value = float(stats.chi2.sf(statistic, len(observed) - 1))
    return SampleRatioCheck(dict(observed), expected, float(statistic), p_value, threshold)


# --- Planning ------------------------------------------------------------------------------------


def _z_quantiles(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    return float(stats.norm.isf(alpha / 2)), float(stats.norm.ppf(power))


def t_test_power(effect_size: float, n_per_variant: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test for a standardized effect (Cohen's d), noncentral t."""
    df = 2 * n_per_variant - 2
    noncentrality = abs(effect_size) * math.sqrt(n_per_variant / 2)
    crit = float(stats.t.isf(alpha / 2, df))
    upper = float(stats.nct.sf(crit, df, noncentrality))
    lower = float(stats.nct.cdf(-crit, df, noncentrality))  # wrong-sign rejections; NaN when negligible
    return upper + (lower if math.isfinite(lower) else 0.0)


def sample_size_for_mean(
    baseline_mean: float,
    baseline_sd: float,
    relative_mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_sd: float | None = None,
) -> int:
    """Units per variant to detect a relative change of ``relative_mde`` in a mean.

    The normal approximation n = (sd_c² + sd_t²) (z_{1-alpha/2} + z_{power})² / δ² with
    δ = relative_mde * mean, refined to the smallest n whose power (noncentral t, with the effect
    standardized by the root mean square of the two sds) reaches ``power``. With equal sds (the
    default) this agrees with Cohen's (1988) tables to within one unit. Pass ``treatment_sd`` when
    the change scales the whole distribution (``baseline_sd * (1 + relative_mde)``), and
    ``alpha / (variants - 1)`` when several variants are each compared with control.
    """
    sd_t = baseline_sd if treatment_sd is None else treatment_sd
    if baseline_sd <= 0 or sd_t <= 0 or baseline_mean == 0 or relative_mde == 0:
        raise ValueError("sds must be positive, baseline_mean and relative_mde non-zero")
    z_alpha, z_power = _z_quantiles(alpha, power)
    d = abs(relative_mde * baseline_mean) / math.sqrt((baseline_sd**2 + sd_t**2) / 2)
    n = max(2, math.ceil(2 * (z_alpha + z_power) ** 2 / (d * d)))
    while t_test_power(d, n, alpha) < power:
        n += 1
    while n > 2 and t_test_power(d, n - 1, alpha) >= power:
        n -= 1
    return n


def sample_size_for_proportion(
    baseline_rate: float,
    relative_mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    continuity_correction: bool = False,
) -> int:
    """Units per variant to detect a relative change of ``relative_mde`` in a conversion rate.

    Fleiss, Levin & Paik (2003, ch. 4): n = (z_{1-alpha/2} √(2 p̄ q̄) + z_{power} √(p₁q₁ + p₂q₂))² / (p₂ - p₁)²,
    optionally with Fleiss' continuity correction (n/4 (1 + √(1 + 4 / (n |p₂ - p₁|)))²).
    """
    p1 = baseline_rate
    p2 = baseline_rate * (1 + relative_mde)
    if not 0 < p1 < 1 or not 0 < p2 < 1 or p1 == p2:
        raise ValueError("baseline and target rates must be distinct and strictly between 0 and 1")
    z_alpha, z_power = _z_quantiles(alpha, power)
    p_bar = (p1 + p2) / 2
    spread = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = spread * spread / (p2 - p1) ** 2
    if continuity_correction:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * abs(p2 - p1)))) ** 2
    return math.ceil(n - 1e-9)


def minimum_detectable_lift(
    baseline_mean: float, baseline_sd: float, n_per_variant: int, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest relative change in a mean detectable with ``power`` at ``n_per_variant`` units.

    Solves the noncentral-t power for the effect size, so it inverts :func:`sample_size_for_mean`.
    """
    if n_per_variant < 2 or baseline_sd <= 0 or baseline_mean == 0:
        raise ValueError("needs at least 2 units per variant, a positive sd and a non-zero mean")
    upper = 50.0
    if t_test_power(upper, n_per_variant, alpha) < power:
        return math.inf
    d = optimize.brentq(lambda e: t_test_power(e, n_per_variant, alpha) - power, 1e-9, upper, xtol=1e-12)
    return float(d) * baseline_sd / abs(baseline_mean)
