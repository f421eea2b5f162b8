"""Metrics count only exposed people, from their first exposure, within the attribution window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import metrics, services
from experiments.models import Variant
from profiles.models import Event
from profiles.services import merge_people
from tests.experiments.conftest import event, expose, make_people

pytestmark = pytest.mark.django_db


def _outcomes(experiment, variant_key):
    variant = Variant.objects.get(experiment=experiment, key=variant_key)
    return metrics.unit_outcomes(experiment)[variant.pk]


def test_only_exposed_people_count_and_only_inside_their_window(running, now, days):
    experiment = running("window", attribution_window_days=7, pre_period_days=28)
    exposed, late, unexposed = make_people(3)
    expose(experiment, "control", [exposed], now - days(20))
    expose(experiment, "control", [late], now - days(1))
    Event.objects.bulk_create(
        [
            event(exposed, "purchase", now - days(25), price="40.00", quantity=1),  # pre-period: covariate only
            event(exposed, "purchase", now - days(19), price="10.00", quantity=3),  # inside the window
            event(exposed, "purchase", now - days(19), price="5.00", message_id="order-9", position=0),
            event(exposed, "purchase", now - days(19), price="5.00", message_id="order-9", position=1),
            event(exposed, "purchase", now - days(10), price="99.00"),  # after the 7-day window
            event(exposed, "Recommendation Shown", now - days(19), name="Recommendation Shown"),
            event(exposed, "other", now - days(19), name="recommendation shown"),
            event(exposed, "view", now - days(19), name="Product Clicked"),
            event(exposed, "unsubscribe", now - days(18)),
            event(late, "purchase", now - days(2), price="70.00"),  # before exposure: covariate only
            event(unexposed, "purchase", now - days(5), price="500.00"),  # never exposed: not counted
        ]
    )
    control = _outcomes(experiment, "control")
    assert control.n == 2
    by_person = dict(zip([exposed, late], range(2), strict=True))
    order = np.argsort([t for t in control.first_exposed_at])  # earliest exposure first: `exposed`
    row = {name: values[order] for name, values in control.columns.items()}
    i, j = by_person[exposed], by_person[late]
    assert row["revenue"][i] == pytest.approx(40.0)  # 3 × 10 + 5 + 5
    assert row["orders"][i] == 2  # one order with two products counts once
    assert row["converted"][i] == 1 and row["converted"][j] == 0
    assert row["pre_revenue"][i] == pytest.approx(40.0) and row["pre_revenue"][j] == pytest.approx(70.0)
    assert row["impressions"][i] == 2 and row["clicks"][i] == 1
    assert row["unsubscribed"][i] == 1
    assert row["revenue"][j] == 0


def test_a_person_merged_after_exposure_is_measured_through_the_survivor(running, now, days):
    experiment = running("merged")
    anonymous, known = make_people(2)
    expose(experiment, "treatment", [anonymous], now - days(3))
    Event.objects.bulk_create([event(anonymous, "purchase", now - days(2), price="25.00")])
    merge_people(anonymous, known, reason="signed in")
    treatment = _outcomes(experiment, "treatment")
    assert treatment.n == 1
    assert treatment.columns["revenue"].tolist() == [25.0]


def test_results_have_the_documented_shape_and_are_plain_json(running, now, days):
    experiment = running(
        "shape",
        primary_metric="conversion",
        secondary_metrics=["revenue_per_unit", "click_through", "average_order_value"],
        guardrail_metrics=["unsubscribe_rate"],
    )
    rng = np.random.default_rng(7)
    control, treatment = make_people(150, "c"), make_people(150, "t")
    expose(experiment, "control", control, now - days(3))
    expose(experiment, "treatment", treatment, now - days(3))
    rows = []
    for people, rate in ((control, 0.1), (treatment, 0.14)):
        for pid in people:
            rows.append(event(pid, "Recommendation Shown", now - days(2), name="Recommendation Shown"))
            if rng.random() < rate:
                rows.append(event(pid, "purchase", now - days(2), price=f"{rng.uniform(10, 90):.2f}"))
            if rng.random() < 0.3:
                rows.append(event(pid, "purchase", now - days(10), price="30.00"))  # pre-period
    Event.objects.bulk_create(rows)

    data = services.compute_results(experiment, now=now)
    json.dumps(data, allow_nan=False)
    assert set(data) >= {"experiment", "srm", "variants", "metrics", "decisions", "decision", "guardrails", "lift"}
    assert [v["units"] for v in data["variants"]] == [150, 150]
    assert list(data["metrics"]) == [
        "conversion",
        "revenue_per_unit",
        "click_through",
        "average_order_value",
        "unsubscribe_rate",
    ]
    conversion = data["metrics"]["conversion"]["comparisons"]["treatment"]
    assert conversion["fixed"]["method"] == "cuped_welch_t"  # pre-period purchases are the covariate
    assert conversion["sequential"]["looks"] == 1
    assert data["metrics"]["click_through"]["comparisons"]["treatment"]["fixed"]["method"] == "ratio_delta_z"
    assert data["srm"]["checked"] is True and data["srm"]["mismatch"] is False
    assert data["decision"]["verdict"] in {"ahead", "behind", "wins", "loses", "no_detectable_difference"}
    assert data["guardrails"][0]["state"] == "ok"


def test_each_look_carries_the_sequential_state_forward(running, now, days):
    experiment = running("looks")
    control, treatment = make_people(60, "c"), make_people(60, "t")
    expose(experiment, "control", control, now - days(2))
    expose(experiment, "treatment", treatment, now - days(2))
    Event.objects.bulk_create(
        [event(pid, "purchase", now - days(1), price="10.00") for pid in control[:6] + treatment[:15]]
    )
    first = services.record_results(experiment, now=now)
    second = services.record_results(experiment, now=now + days(0.1))
    seq1 = first.data["metrics"]["conversion"]["comparisons"]["treatment"]["sequential"]
    seq2 = second.data["metrics"]["conversion"]["comparisons"]["treatment"]["sequential"]
    assert (seq1["looks"], seq2["looks"]) == (1, 2)
    assert seq2["p_value"] <= seq1["p_value"]
    assert seq2["mixture_variance"] == seq1["mixture_variance"]
    history = services.lift_history(experiment)
    assert len(history) == 2 and "treatment" in history[-1]["lift"]


def test_a_split_far_from_the_plan_is_flagged_but_a_weight_change_is_not(running, staff, now, days):
    uneven = running("uneven")
    expose(uneven, "control", make_people(600, "a"), now - days(1))
    expose(uneven, "treatment", make_people(400, "b"), now - days(1))
    data = services.compute_results(uneven, now=now)
    assert data["srm"]["mismatch"] is True
    assert data["decision"]["verdict"] == "sample_ratio_mismatch"

    ramped = running("ramped")
    expose(ramped, "control", make_people(500, "c"), now - days(2))
    expose(ramped, "treatment", make_people(500, "d"), now - days(2))
    services.set_weights(ramped, {"control": 80, "treatment": 20}, staff)
    expose(ramped, "control", make_people(800, "e"), now - days(1))
    expose(ramped, "treatment", make_people(200, "f"), now - days(1))
    assert services.compute_results(ramped, now=now)["srm"]["mismatch"] is False


def test_the_plan_comes_from_the_event_log_when_the_marketer_gives_no_baseline(staff, now, days):
    people = make_people(400)
    Event.objects.bulk_create(
        [event(pid, "view", now - days(1)) for pid in people]
        + [event(pid, "purchase", now - days(1), price="20.00") for pid in people[:40]]
    )
    experiment = services.create_experiment(
        "from-log",
        "From the log",
        [services.VariantSpec("a"), services.VariantSpec("b")],
        staff,
        minimum_detectable_effect=0.2,
    )
    assert experiment.baseline_source == "event_log"
    assert experiment.baseline_mean == pytest.approx(0.1)
    assert experiment.planned_sample_size == pytest.approx(3841, abs=5)  # 10% → 12% at 80% power

    services.update_experiment(experiment, {"baseline_mean": 0.05}, staff)
    experiment.refresh_from_db()
    assert experiment.baseline_source == "marketer"
    assert (experiment.planned_sample_size or 0) > 3841


def test_a_handful_of_people_is_never_a_decision(running, now, days):
    experiment = running("tiny")
    control, treatment = make_people(10, "c"), make_people(10, "t")
    expose(experiment, "control", control, now - days(1))
    expose(experiment, "treatment", treatment, now - days(1))
    Event.objects.bulk_create([event(pid, "purchase", now - days(0.5), price="10.00") for pid in treatment[:8]])
    data = services.compute_results(experiment, now=now)
    # The fixed-horizon p-value is tiny, but ten people each are far from the plan.
    assert data["metrics"]["conversion"]["comparisons"]["treatment"]["fixed"]["p_value"] < 0.01
    assert data["decision"]["verdict"] == "ahead"
    assert "not yet conclusive" in data["decision"]["message"]
