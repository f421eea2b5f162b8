"""Thompson-sampling bandits: traffic weights per arm that follow the evidence.

Where a marketer asks for a bandit instead of a fixed split, a periodic job recomputes each arm's
weight from its results so far, and assignment serves the new weights (``assignment.reallocate``
moves only the units that must move). The weight of an arm is its posterior probability of being
the best arm (Thompson, 1933; "probability matching", as in Scott, 2010 and Chapelle & Li, 2011),
estimated by drawing from each arm's posterior, with two guards a marketer expects:

* a floor: every arm keeps at least ``floor`` of the traffic, so no arm is starved on early noise
  and the estimates of all arms keep improving;
* a minimum sample: until every arm has ``min_samples`` units the split stays even.

With k arms each weight is ``floor + (1 - k floor) · P(arm is best)``, which sums to one.

Posteriors: Beta(a + successes, b + failures) for conversions (Beta-Bernoulli, uniform prior by
default); for revenue per unit, a normal model with unknown mean and variance under the reference
prior, whose posterior for the mean is mean + sqrt(variance / n) · t(n - 1) (Gelman et al., 2013).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DEFAULT_FLOOR = 0.05
DEFAULT_MIN_SAMPLES = 100
DEFAULT_DRAWS = 10_000


@dataclass(frozen=True)
class BernoulliArm:
    key: str
    successes: int
    trials: int


@dataclass(frozen=True)
class GaussianArm:
    key: str
    n: int
    mean: float
    variance: float


@dataclass(frozen=True)
class BanditAllocation:
    """Traffic weights per arm (they add up to one) and the evidence behind them.

    ``reweighted`` is False while some arm is still short of the minimum sample; the weights are
    then even and ``probability_best`` is empty.
    """

    weights: dict[str, float]
    probability_best: dict[str, float]
    reweighted: bool
    floor: float
    min_samples: int


def weights_with_floor(probability_best: Mapping[str, float], floor: float) -> dict[str, float]:
    """floor + (1 - k floor) · P(best) for each of the k arms."""
    k = len(probability_best)
    if k == 0:
        raise ValueError("a bandit needs at least one arm")
    if not 0 <= floor <= 1 / k:
        raise ValueError(f"floor must be between 0 and 1/{k} for {k} arms")
    total = sum(probability_best.values())
    return {key: floor + (1 - k * floor) * p / total for key, p in probability_best.items()}


def _probability_best(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of posterior draws (rows) in which each arm (column) has the highest value."""
    winners = np.argmax(samples, axis=1)
    return np.bincount(winners, minlength=samples.shape[1]) / samples.shape[0]


def _even(keys: Sequence[str], floor: float, min_samples: int) -> BanditAllocation:
    share = 1 / len(keys)
    return BanditAllocation({key: share for key in keys}, {}, reweighted=False, floor=floor, min_samples=min_samples)


def _check(keys: Sequence[str], floor: float, min_samples: int, draws: int) -> None:
    if not keys:
        raise ValueError("a bandit needs at least one arm")
    if len(set(keys)) != len(keys):
        raise ValueError("arm keys must be unique")
    if not 0 <= floor <= 1 / len(keys):
        raise ValueError(f"floor must be between 0 and 1/{len(keys)} for {len(keys)} arms")
    if min_samples < 0 or draws < 1:
        raise ValueError("min_samples must be >= 0 and draws >= 1")


def thompson_bernoulli(
    arms: Sequence[BernoulliArm],
    floor: float = DEFAULT_FLOOR,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    draws: int = DEFAULT_DRAWS,
    prior: tuple[float, float] = (1.0, 1.0),
    rng: np.random.Generator | int | None = None,
) -> BanditAllocation:
    """Weights for conversion arms from Beta posteriors."""
    keys = [arm.key for arm in arms]
    _check(keys, floor, min_samples, draws)
    for arm in arms:
        if not 0 <= arm.successes <= arm.trials:
            raise ValueError(f"arm {arm.key!r}: successes must be between 0 and trials")
    if any(arm.trials < min_samples for arm in arms):
        return _even(keys, floor, min_samples)
    generator = np.random.default_rng(rng)
    a = np.array([prior[0] + arm.successes for arm in arms], dtype=float)
    b = np.array([prior[1] + arm.trials - arm.successes for arm in arms], dtype=float)
    p_best = _probability_best(generator.beta(a, b, size=(draws, len(arms))))
    probability_best = dict(zip(keys, p_best.tolist(), strict=True))
    return BanditAllocation(
        weights_with_floor(probability_best, floor), probability_best, True, floor=floor, min_samples=min_samples
    )


def thompson_gaussian(
    arms: Sequence[GaussianArm],
    floor: float = DEFAULT_FLOOR,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    draws: int = DEFAULT_DRAWS,
    rng: np.random.Generator | int | None = None,
) -> BanditAllocation:
    """Weights for arms with a continuous metric (revenue per unit), higher being better."""
    keys = [arm.key for arm in arms]
    _check(keys, floor, min_samples, draws)
    if any(arm.n < max(min_samples, 2) for arm in arms):
        return _even(keys, floor, min_samples)
    generator = np.random.default_rng(rng)
    means = np.array([arm.mean for arm in arms], dtype=float)
    scales = np.sqrt(np.array([max(arm.variance, 1e-12) / arm.n for arm in arms], dtype=float))
    dof = np.array([arm.n - 1 for arm in arms], dtype=float)
    samples = means + scales * generator.standard_t(dof, size=(draws, len(arms)))
    probability_best = dict(zip(keys, _probability_best(samples).tolist(), strict=True))
    return BanditAllocation(
        weights_with_floor(probability_best, floor), probability_best, True, floor=floor, min_samples=min_samples
    )
