"""The bandit job: move the traffic of bandit experiments toward the arms that do best on the primary metric.

Weights come from the core's Thompson sampling (``bandits``): each arm's posterior probability of
being best, with a floor share per arm and an even split until every arm has the minimum sample.
The new weights go through ``lifecycle.set_weights``, so only the people whose bucket must move
change arm, and every re-weighting is on the audit trail.
"""

from __future__ import annotations

import logging

import numpy as np

from experiments import lifecycle, metrics
from experiments.bandits import BanditAllocation, BernoulliArm, GaussianArm, thompson_bernoulli, thompson_gaussian
from experiments.metrics import PROPORTION, RATIO
from experiments.models import ChangeAction, Experiment, Status

logger = logging.getLogger(__name__)

# Weights that moved less than this (in share of traffic) are left alone: Thompson estimates
# jitter from run to run, and every change moves some people and adds an allocation version.
MIN_WEIGHT_CHANGE = 0.005


def bandit_weights(experiment: Experiment, rng: np.random.Generator | int | None = None) -> BanditAllocation | None:
    """Thompson-sampling weights for the arms still in play (None with fewer than two)."""
    definition = metrics.metric(experiment.primary_metric)
    arms = [v for v in experiment.variants.order_by("position", "id") if not v.stopped_by_guardrail]
    if len(arms) < 2:
        return None
    outcomes = metrics.unit_outcomes(experiment)
    floor, min_samples = experiment.bandit_floor, experiment.bandit_min_samples
    if definition.kind == PROPORTION:
        bernoulli = []
        for arm in arms:
            data = outcomes.get(arm.pk)
            n = data.n if data else 0
            hits = int(data.columns[definition.column].sum()) if data else 0
            # For a rate where lower is better (unsubscribes), the success is not doing it.
            bernoulli.append(BernoulliArm(arm.key, hits if definition.higher_is_better else n - hits, n))
        return thompson_bernoulli(bernoulli, floor=floor, min_samples=min_samples, rng=rng)
    gaussian = []
    for arm in arms:
        data = outcomes.get(arm.pk)
        if data is None or data.n < 2:
            gaussian.append(GaussianArm(arm.key, data.n if data else 0, 0.0, 0.0))
            continue
        if definition.kind == RATIO:
            x, y = data.columns[definition.numerator], data.columns[definition.denominator]
            if y.sum() <= 0:
                gaussian.append(GaussianArm(arm.key, 0, 0.0, 0.0))
                continue
            ratio = float(x.mean() / y.mean())
            spread = float(np.var(x - ratio * y, ddof=1)) / float(y.mean()) ** 2
            gaussian.append(GaussianArm(arm.key, data.n, ratio, spread))
        else:
            values = data.columns[definition.column]
            gaussian.append(GaussianArm(arm.key, data.n, float(values.mean()), float(values.var(ddof=1))))
    if not definition.higher_is_better:
        gaussian = [GaussianArm(a.key, a.n, -a.mean, a.variance) for a in gaussian]
    return thompson_gaussian(gaussian, floor=floor, min_samples=min_samples, rng=rng)


def reweight(experiment: Experiment, rng: np.random.Generator | int | None = None) -> BanditAllocation | None:
    """Re-weight one bandit experiment; returns the allocation it applied, or None when nothing changed."""
    allocation = bandit_weights(experiment, rng)
    if allocation is None or not allocation.reweighted:
        return None
    variants = list(experiment.variants.all())
    current = {v.key: v.weight for v in variants}
    total = sum(current.values()) or 1.0
    weights = {v.key: 0.0 for v in variants if v.stopped_by_guardrail}
    weights.update(allocation.weights)
    if all(abs(weights[k] - current.get(k, 0.0) / total) < MIN_WEIGHT_CHANGE for k in weights):
        return None
    lifecycle.set_weights(
        experiment,
        weights,
        None,
        action=ChangeAction.BANDIT_REWEIGHT,
        detail={"probability_best": allocation.probability_best, "floor": allocation.floor},
    )
    return allocation


def reweight_bandits(rng: np.random.Generator | int | None = None) -> list[str]:
    """Re-weight every running bandit; returns the keys of those whose weights changed."""
    changed = []
    for experiment in Experiment.objects.filter(status=Status.RUNNING, is_bandit=True):
        try:
            if reweight(experiment, rng) is not None:
                changed.append(experiment.key)
        except Exception:
            logger.exception("Could not re-weight the bandit %s", experiment.key)
    return changed
