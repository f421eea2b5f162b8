"""Bandit re-weighting: an even split until every arm has the minimum sample, then Thompson weights with floors."""

from __future__ import annotations

import pytest

from experiments import services, tasks
from experiments.assignment import Allocation
from experiments.models import ChangeAction, ExperimentChange, Variant
from profiles.models import Event
from tests.experiments.conftest import event, expose, make_people

pytestmark = pytest.mark.django_db

ARMS = [services.VariantSpec("a", is_control=True), services.VariantSpec("b"), services.VariantSpec("c")]


def _arm(experiment, key, people, conversions, now, days):
    ids = make_people(people, f"{key}-")
    expose(experiment, key, ids, now - days(2))
    Event.objects.bulk_create([event(pid, "purchase", now - days(1), price="10.00") for pid in ids[:conversions]])


def test_no_reweighting_before_every_arm_has_the_minimum_sample(running, now, days):
    experiment = running("subject-lines", variants=ARMS, is_bandit=True, bandit_min_samples=100, bandit_floor=0.1)
    _arm(experiment, "a", 150, 10, now, days)
    _arm(experiment, "b", 150, 40, now, days)
    _arm(experiment, "c", 60, 1, now, days)  # short of the minimum
    assert tasks.reweight_bandits() == 0
    experiment.refresh_from_db()
    assert experiment.allocation_version == 1
    assert not ExperimentChange.objects.filter(action=ChangeAction.BANDIT_REWEIGHT).exists()


def test_traffic_moves_to_the_best_arm_and_every_arm_keeps_its_floor(running, now, days):
    experiment = running("hero-copy", variants=ARMS, is_bandit=True, bandit_min_samples=100, bandit_floor=0.1)
    _arm(experiment, "a", 200, 10, now, days)
    _arm(experiment, "b", 200, 50, now, days)
    _arm(experiment, "c", 200, 12, now, days)
    before = {pid: services.assign("hero-copy", pid).variant for pid in range(1, 5001)}  # type: ignore[union-attr]

    assert services.reweight_bandits(rng=1) == ["hero-copy"]

    experiment.refresh_from_db()
    weights = dict(Variant.objects.filter(experiment=experiment).values_list("key", "weight"))
    assert weights["b"] > 0.75
    assert min(weights.values()) >= 0.1 - 1e-9
    assert sum(weights.values()) == pytest.approx(1.0)
    shares = Allocation.from_dict(experiment.allocation).shares()
    assert min(shares.values()) >= 0.0999
    change = ExperimentChange.objects.get(experiment=experiment, action=ChangeAction.BANDIT_REWEIGHT)
    assert change.changed_by is None and change.detail["probability_best"]["b"] > 0.9
    after = {pid: services.assign("hero-copy", pid).variant for pid in range(1, 5001)}  # type: ignore[union-attr]
    assert all(after[pid] == "b" for pid in before if before[pid] == "b")  # the growing arm keeps its people


def test_a_revenue_bandit_uses_the_gaussian_model(running, now, days):
    experiment = running(
        "revenue-bandit",
        is_bandit=True,
        primary_metric="revenue_per_unit",
        baseline_mean=5.0,
        baseline_sd=20.0,
        bandit_min_samples=50,
        bandit_floor=0.05,
    )
    control, treatment = make_people(120, "c"), make_people(120, "t")
    expose(experiment, "control", control, now - days(2))
    expose(experiment, "treatment", treatment, now - days(2))
    Event.objects.bulk_create(
        [event(pid, "purchase", now - days(1), price="10.00") for pid in control[:20]]
        + [event(pid, "purchase", now - days(1), price="60.00") for pid in treatment[:40]]
    )
    allocation = services.reweight(experiment, rng=2)
    assert allocation is not None and allocation.weights["treatment"] > 0.9
    assert allocation.weights["control"] >= 0.05
