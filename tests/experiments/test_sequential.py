from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from experiments.sequential import (
    confidence_radius,
    mixture_log_likelihood_ratio,
    mixture_variance_for,
    plan_mixture_variance,
    sequential_proportion_test,
    sequential_test,
)
from experiments.stats import SampleSummary


def _looks(rng: np.random.Generator, runs: int, looks: int, per_look: int, shift: float) -> tuple[np.ndarray, ...]:
    """Cumulative difference of means and its estimated variance at each look, for many A/B runs."""
    data = rng.normal(0.0, 1.0, (runs, 2, looks, per_look))
    data[:, 1] += shift
    sums = data.sum(axis=-1).cumsum(axis=-1)
    squares = (data * data).sum(axis=-1).cumsum(axis=-1)
    n = per_look * np.arange(1, looks + 1)
    means = sums / n
    variances = (squares - sums * means) / (n - 1)
    return means[:, 1] - means[:, 0], (variances[:, 0] + variances[:, 1]) / n


def test_twenty_looks_keep_false_positives_at_most_alpha_while_naive_tests_do_not() -> None:
    rng = np.random.default_rng(20)
    difference, variance = _looks(rng, runs=2000, looks=20, per_look=200, shift=0.0)
    tau2 = plan_mixture_variance(1.0, 20 * 200)

    sequential = (mixture_log_likelihood_ratio(difference, variance, tau2).max(axis=1) >= math.log(1 / 0.05)).mean()
    naive = (np.abs(difference / np.sqrt(variance)) > 1.959964).any(axis=1).mean()

    assert sequential <= 0.05
    assert naive > 0.15


def test_confidence_sequence_covers_the_true_difference_at_every_look() -> None:
    rng = np.random.default_rng(21)
    difference, variance = _looks(rng, runs=2000, looks=20, per_look=200, shift=0.1)
    tau2 = plan_mixture_variance(1.0, 4000)

    missed = (np.abs(difference - 0.1) > confidence_radius(variance, tau2)).any(axis=1).mean()

    assert missed <= 0.05


def test_p_value_below_alpha_exactly_when_the_interval_excludes_zero() -> None:
    rng = np.random.default_rng(22)
    difference = rng.normal(0, 0.05, 5000)
    variance = rng.uniform(1e-4, 1e-3, 5000)

    rejected = mixture_log_likelihood_ratio(difference, variance, 1e-3) >= math.log(20)
    excluded = np.abs(difference) >= confidence_radius(variance, 1e-3, 0.05)

    assert (rejected == excluded).all()


def test_mixture_variance_makes_the_interval_narrowest_at_the_planned_size() -> None:
    planned = 2e-3
    tau2 = mixture_variance_for(planned)

    best = confidence_radius(planned, tau2)

    assert best < confidence_radius(planned, tau2 * 2) and best < confidence_radius(planned, tau2 / 2)


def test_results_only_tighten_from_look_to_look() -> None:
    rng = np.random.default_rng(23)
    control, treatment = rng.normal(10, 3, 4000), rng.normal(10.3, 3, 4000)
    tau2 = plan_mixture_variance(3.0, 4000)
    previous = None
    history = []
    for n in range(400, 4001, 400):
        previous = sequential_test(
            SampleSummary.from_values(control[:n]), SampleSummary.from_values(treatment[:n]), tau2, previous=previous
        )
        history.append(previous)

    assert [r.looks for r in history] == list(range(1, 11))
    for before, after in pairwise(history):
        assert after.p_value <= before.p_value
        assert before.difference_interval.low <= after.difference_interval.low
        assert after.difference_interval.high <= before.difference_interval.high
    assert history[-1].significant  # a 0.1 sd lift on 4,000 per variant is found
    assert history[-1].relative_lift_interval.contains(0.03)


def test_the_experiment_settings_cannot_change_between_looks() -> None:
    summary = SampleSummary(n=100, mean=1.0, variance=1.0)
    first = sequential_test(summary, summary, 0.01)

    with pytest.raises(ValueError):
        sequential_test(summary, summary, 0.02, previous=first)


def test_sequential_conversion_rates() -> None:
    tau2 = mixture_variance_for(2 * 0.05 * 0.95 / 20_000)

    clear = sequential_proportion_test(1000, 20_000, 1300, 20_000, tau2)
    level = sequential_proportion_test(1000, 20_000, 1000, 20_000, tau2)

    assert clear.significant and clear.relative_lift == pytest.approx(0.3)
    assert not level.significant and level.p_value == 1.0
