from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments.stats import (
    CovariateSummary,
    RatioSummary,
    SampleSummary,
    cuped_test,
    holm,
    holm_adjusted_p_values,
    minimum_detectable_lift,
    ratio_test,
    sample_ratio_check,
    sample_size_for_mean,
    sample_size_for_proportion,
    two_proportion_test,
    welch_test,
)


@pytest.mark.parametrize("seed", range(12))
def test_welch_agrees_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_c, n_t = rng.integers(5, 3000, size=2)
    control = rng.lognormal(rng.uniform(0, 2), rng.uniform(0.2, 1.5), n_c)
    treatment = rng.lognormal(rng.uniform(0, 2), rng.uniform(0.2, 1.5), n_t)
    alpha = float(rng.choice([0.01, 0.05, 0.1]))

    ours = welch_test(SampleSummary.from_values(control), SampleSummary.from_values(treatment), alpha=alpha)
    theirs = stats.ttest_ind(treatment, control, equal_var=False)
    interval = theirs.confidence_interval(confidence_level=1 - alpha)

    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-6, abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-6)
    assert ours.degrees_of_freedom == pytest.approx(theirs.df, rel=1e-6)
    assert ours.difference_interval.low == pytest.approx(interval.low, rel=1e-6, abs=1e-6)
    assert ours.difference_interval.high == pytest.approx(interval.high, rel=1e-6, abs=1e-6)


def test_welch_from_sums_equals_welch_from_values() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(20, 4, 800), rng.normal(21, 6, 900)

    from_values = welch_test(SampleSummary.from_values(a), SampleSummary.from_values(b))
    from_sums = welch_test(
        SampleSummary.from_sums(a.size, a.sum(), (a * a).sum()), SampleSummary.from_sums(b.size, b.sum(), (b * b).sum())
    )

    assert from_sums.p_value == pytest.approx(from_values.p_value, rel=1e-9)
    assert from_sums.relative_lift_interval.low == pytest.approx(from_values.relative_lift_interval.low, rel=1e-9)


def test_two_proportion_z_by_hand() -> None:
    result = two_proportion_test(200, 1000, 250, 1000)

    pooled = 450 / 2000
    z = (0.25 - 0.20) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert z == pytest.approx(2.6774, abs=1e-4)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    # The z-test is the uncorrected chi-square test on the 2x2 table.
    chi2 = stats.chi2_contingency([[200, 800], [250, 750]], correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    unpooled = math.sqrt(0.2 * 0.8 / 1000 + 0.25 * 0.75 / 1000)
    assert result.difference_interval.low == pytest.approx(0.05 - 1.959964 * unpooled, abs=1e-6)
    assert result.relative_lift == pytest.approx(0.25)


def test_relative_lift_interval_uses_the_delta_method() -> None:
    result = two_proportion_test(200, 1000, 250, 1000)

    se = math.sqrt((0.25 * 0.75 / 1000) / 0.2**2 + 0.25**2 * (0.2 * 0.8 / 1000) / 0.2**4)
    assert result.relative_lift_interval.low == pytest.approx(0.25 - stats.norm.isf(0.025) * se, rel=1e-9)
    assert result.relative_lift_interval.high == pytest.approx(0.25 + stats.norm.isf(0.025) * se, rel=1e-9)


def test_relative_lift_interval_covers_the_true_lift_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    runs, n, base, lift = 2000, 400, 10.0, 0.05
    control = rng.gamma(2.0, base / 2.0, (runs, n))
    treatment = rng.gamma(2.0, base * (1 + lift) / 2.0, (runs, n))

    covered = sum(
        welch_test(SampleSummary.from_values(c), SampleSummary.from_values(t)).relative_lift_interval.contains(lift)
        for c, t in zip(control, treatment, strict=True)
    )

    assert 0.935 <= covered / runs <= 0.965


def test_ratio_metric_with_one_impression_each_is_the_mean_comparison() -> None:
    rng = np.random.default_rng(5)
    clicks_c, clicks_t = rng.binomial(1, 0.10, 5000), rng.binomial(1, 0.11, 5000)
    ones = np.ones(5000)

    ratio = ratio_test(RatioSummary.from_values(clicks_c, ones), RatioSummary.from_values(clicks_t, ones))
    welch = welch_test(SampleSummary.from_values(clicks_c), SampleSummary.from_values(clicks_t))

    assert ratio.difference == pytest.approx(welch.difference)
    assert ratio.standard_error == pytest.approx(welch.standard_error, rel=1e-9)


def test_ratio_metric_accounts_for_clustered_impressions() -> None:
    # Each person has many impressions and a personal click rate: impressions are not independent.
    rng = np.random.default_rng(8)
    runs, people, false_positives, naive_false_positives = 600, 400, 0, 0
    for _ in range(runs):
        groups = []
        for _ in range(2):
            impressions = rng.poisson(20, people) + 1
            clicks = rng.binomial(impressions, rng.beta(1, 9, people))
            groups.append((clicks, impressions))
        (cc, ic), (ct, it) = groups
        result = ratio_test(RatioSummary.from_values(cc, ic), RatioSummary.from_values(ct, it))
        false_positives += result.p_value < 0.05
        naive_false_positives += (
            two_proportion_test(int(cc.sum()), int(ic.sum()), int(ct.sum()), int(it.sum())).p_value < 0.05
        )

    assert false_positives / runs < 0.08
    assert naive_false_positives / runs > 0.15  # treating impressions as units is badly wrong


def test_ratio_from_sums_equals_ratio_from_values() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.poisson(3, 500).astype(float), rng.poisson(30, 500).astype(float) + 1

    a = RatioSummary.from_values(x, y)
    b = RatioSummary.from_sums(500, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())

    assert b.variance_of_ratio == pytest.approx(a.variance_of_ratio, rel=1e-9)


def _correlated(rng: np.random.Generator, n: int, rho: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    pre = rng.normal(0, 1, n)
    post = rho * pre + math.sqrt(1 - rho * rho) * rng.normal(0, 1, n) + 10 + shift
    return post, pre + 5


def test_cuped_equals_welch_on_hand_adjusted_values() -> None:
    rng = np.random.default_rng(4)
    yc, xc = _correlated(rng, 3000, 0.6, 0.0)
    yt, xt = _correlated(rng, 3200, 0.6, 0.1)
    x, y = np.concatenate([xc, xt]), np.concatenate([yc, yt])
    theta = np.cov(y, x)[0, 1] / x.var(ddof=1)

    result = cuped_test(CovariateSummary.from_values(yc, xc), CovariateSummary.from_values(yt, xt))
    expected = stats.ttest_ind(yt - theta * (xt - x.mean()), yc - theta * (xc - x.mean()), equal_var=False)

    assert result.theta == pytest.approx(theta, rel=1e-9)
    assert result.comparison.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)
    assert result.comparison.statistic == pytest.approx(expected.statistic, rel=1e-6)


def test_cuped_removes_about_rho_squared_of_the_variance() -> None:
    rng = np.random.default_rng(9)
    yc, xc = _correlated(rng, 50_000, 0.5, 0.0)
    yt, xt = _correlated(rng, 50_000, 0.5, 0.0)

    cuped = cuped_test(CovariateSummary.from_values(yc, xc), CovariateSummary.from_values(yt, xt))
    plain = welch_test(SampleSummary.from_values(yc), SampleSummary.from_values(yt))

    assert cuped.variance_reduction == pytest.approx(0.25, abs=0.01)
    assert 1 - (cuped.comparison.standard_error / plain.standard_error) ** 2 == pytest.approx(0.25, abs=0.01)


def test_cuped_from_sums_equals_from_values() -> None:
    rng = np.random.default_rng(6)
    y, x = _correlated(rng, 700, 0.4, 0.0)

    a = CovariateSummary.from_values(y, x)
    b = CovariateSummary.from_sums(700, y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (x * y).sum())

    assert b.covariance == pytest.approx(a.covariance, rel=1e-9)
    assert b.variance == pytest.approx(a.variance, rel=1e-9)


def test_holm_on_hand_computed_cases() -> None:
    assert holm_adjusted_p_values([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjusted_p_values([0.005, 0.011, 0.02, 0.04]) == pytest.approx([0.02, 0.033, 0.04, 0.04])
    assert holm_adjusted_p_values([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjusted_p_values([0.02]) == pytest.approx([0.02])


def test_holm_on_comparisons_marks_only_family_wide_wins() -> None:
    comparisons = {
        "B": two_proportion_test(500, 10_000, 590, 10_000),  # p ~ 0.005
        "C": two_proportion_test(500, 10_000, 560, 10_000),  # p ~ 0.06
        "D": two_proportion_test(500, 10_000, 570, 10_000),  # p ~ 0.03
    }
    assert comparisons["D"].significant

    adjusted = holm(comparisons)

    assert adjusted["B"].adjusted_p_value == pytest.approx(3 * comparisons["B"].p_value)
    assert adjusted["B"].significant
    assert not adjusted["D"].significant
    # Intervals are at alpha / 3, so wider than the single-comparison ones.
    assert adjusted["B"].difference_interval.low < comparisons["B"].difference_interval.low


def test_sample_ratio_mismatch_is_flagged_at_51_5_to_48_5_on_20000_units() -> None:
    check = sample_ratio_check({"A": 10_300, "B": 9_700}, {"A": 0.5, "B": 0.5})

    assert check.statistic == pytest.approx(18.0)
    assert check.mismatch


def test_a_split_within_chance_is_not_flagged() -> None:
    assert not sample_ratio_check({"A": 10_100, "B": 9_900}, {"A": 1, "B": 1}).mismatch
    assert not sample_ratio_check({"A": 20_150, "B": 9_950, "C": 9_900}, {"A": 2, "B": 1, "C": 1}).mismatch


@pytest.mark.parametrize(("effect_size", "cohen"), [(0.5, 64), (0.8, 26)])
def test_sample_size_for_a_mean_matches_cohens_table(effect_size: float, cohen: int) -> None:
    # Cohen (1988), Table 2.4.1: two-sided alpha 0.05, power 0.80.
    assert sample_size_for_mean(10.0, 1.0 / effect_size, 0.1) == cohen  # effect 1.0, sd 1/d


def test_sample_size_for_a_proportion_matches_fleiss() -> None:
    # 5% -> 10%, two-sided alpha 0.05, power 0.80: 435 per group, 474 with Fleiss' continuity correction.
    assert sample_size_for_proportion(0.05, 1.0) == 435
    assert sample_size_for_proportion(0.05, 1.0, continuity_correction=True) == 474


def test_minimum_detectable_lift_inverts_the_sample_size() -> None:
    n = sample_size_for_mean(40.0, 80.0, 0.05)

    assert minimum_detectable_lift(40.0, 80.0, n) == pytest.approx(0.05, abs=0.0005)
    assert minimum_detectable_lift(40.0, 80.0, n // 4) == pytest.approx(0.10, abs=0.002)


def test_a_ratio_metric_without_impressions_is_refused() -> None:
    empty = RatioSummary.from_values([0, 0, 0], [0, 0, 0])

    with pytest.raises(ValueError, match="denominator"):
        ratio_test(empty, empty)
