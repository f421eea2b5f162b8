from __future__ import annotations

import pytest

from experiments.bandits import (
    BernoulliArm,
    GaussianArm,
    thompson_bernoulli,
    thompson_gaussian,
    weights_with_floor,
)


def test_the_best_conversion_arm_gets_most_traffic_and_losers_keep_their_floor() -> None:
    arms = [BernoulliArm("A", 400, 10_000), BernoulliArm("B", 500, 10_000), BernoulliArm("C", 600, 10_000)]

    allocation = thompson_bernoulli(arms, floor=0.05, min_samples=100, rng=1)

    assert allocation.reweighted
    assert allocation.weights["C"] > 0.85
    assert allocation.weights["A"] == pytest.approx(0.05)
    assert allocation.weights["B"] >= 0.05
    assert sum(allocation.weights.values()) == pytest.approx(1.0)


def test_floors_hold_for_every_arm_whatever_the_evidence() -> None:
    arms = [BernoulliArm(str(i), s, 50_000) for i, s in enumerate([100, 2_000, 5_000, 9_000])]

    allocation = thompson_bernoulli(arms, floor=0.1, rng=2)

    assert min(allocation.weights.values()) >= 0.1 - 1e-12
    assert allocation.probability_best["3"] == pytest.approx(1.0)


def test_traffic_stays_even_until_every_arm_has_the_minimum_sample() -> None:
    arms = [BernoulliArm("A", 5, 1000), BernoulliArm("B", 90, 1000), BernoulliArm("C", 3, 99)]

    allocation = thompson_bernoulli(arms, min_samples=100, rng=3)

    assert not allocation.reweighted
    assert allocation.weights == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})


def test_evenly_matched_arms_share_traffic() -> None:
    arms = [BernoulliArm("A", 50, 1000), BernoulliArm("B", 50, 1000)]

    allocation = thompson_bernoulli(arms, rng=4, draws=40_000)

    assert allocation.weights["A"] == pytest.approx(0.5, abs=0.02)


def test_revenue_arms_follow_the_higher_mean() -> None:
    arms = [GaussianArm("A", 2000, 10.0, 400.0), GaussianArm("B", 2000, 12.0, 400.0)]

    allocation = thompson_gaussian(arms, floor=0.05, rng=5)

    assert allocation.probability_best["B"] > 0.99
    assert allocation.weights["A"] == pytest.approx(0.05, abs=0.01)


def test_revenue_arms_with_overlapping_evidence_split_traffic() -> None:
    arms = [GaussianArm("A", 200, 10.0, 400.0), GaussianArm("B", 200, 10.5, 400.0)]

    allocation = thompson_gaussian(arms, floor=0.05, rng=6)

    assert 0.2 < allocation.weights["A"] < 0.5 < allocation.weights["B"] < 0.8


def test_same_seed_same_weights() -> None:
    arms = [BernoulliArm("A", 40, 1000), BernoulliArm("B", 50, 1000)]

    assert thompson_bernoulli(arms, rng=7).weights == thompson_bernoulli(arms, rng=7).weights


def test_a_floor_too_large_for_the_arms_is_refused() -> None:
    with pytest.raises(ValueError):
        weights_with_floor({"A": 0.5, "B": 0.3, "C": 0.2}, floor=0.4)
