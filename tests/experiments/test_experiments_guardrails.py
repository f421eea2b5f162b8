"""The guardrail job stops a variant that harms a guardrail metric; its people fall back to control."""

from __future__ import annotations

import numpy as np
import pytest
from django_celery_beat.models import PeriodicTask

from experiments import services, tasks
from experiments.models import ChangeAction, ExperimentChange, ResultSnapshot, Variant
from profiles.models import Event
from tests.experiments.conftest import event, expose, make_people

pytestmark = pytest.mark.django_db


def _simulate(experiment, now, days, unsubscribe_rates, people=300, seed=3):
    """Exposed people per variant with the given unsubscribe rates and ordinary purchases."""
    rng = np.random.default_rng(seed)
    groups = {}
    rows = []
    for key, rate in unsubscribe_rates.items():
        ids = make_people(people, f"{key}-")
        expose(experiment, key, ids, now - days(4))
        groups[key] = ids
        for pid in ids:
            if rng.random() < rate:
                rows.append(event(pid, "unsubscribe", now - days(3)))
            if rng.random() < 0.1:
                rows.append(event(pid, "purchase", now - days(3), price="20.00"))
    Event.objects.bulk_create(rows)
    return groups


def test_a_harmful_variant_is_stopped_by_the_guardrail_job_and_its_people_get_control(
    running, now, days, mailoutbox, client, staff
):
    experiment = running("welcome-series", guardrail_metrics=["unsubscribe_rate"])
    groups = _simulate(experiment, now, days, {"control": 0.02, "treatment": 0.25})

    assert tasks.run_guardrails() == 1  # the task, called as the worker would

    treatment = Variant.objects.get(experiment=experiment, key="treatment")
    assert treatment.stopped_by_guardrail
    assert "Unsubscribe rate got significantly worse" in treatment.stop_reason
    change = ExperimentChange.objects.get(experiment=experiment, action=ChangeAction.GUARDRAIL_STOP)
    assert change.changed_by is None and change.detail["metric"] == "unsubscribe_rate"
    assert ResultSnapshot.objects.filter(experiment=experiment).count() == 1

    # Everyone who was in the treatment now gets control; exposures of the stopped variant are ignored.
    person = groups["treatment"][0]
    answers = [services.assign("welcome-series", pid) for pid in range(1, 2000)]
    assert {a.variant for a in answers if a} == {"control"}
    assert services.log_exposure("welcome-series", person, "treatment") is False

    [mail] = mailoutbox
    assert mail.to == ["marketer@example.com"]
    assert "treatment" in mail.subject and "/experiments/welcome-series/" in mail.body
    client.force_login(staff)
    page = client.get("/experiments/welcome-series/").content.decode()
    assert "was stopped and its people now get the control" in page
    assert "Unsubscribe rate got significantly worse in Treatment" in page

    # With no treatment left the experiment stops too, and the next run has nothing to do.
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert "guardrail" in experiment.stop_reason
    assert tasks.run_guardrails() == 0


def test_a_harmless_variant_keeps_running(running, now, days, mailoutbox):
    experiment = running("harmless", guardrail_metrics=["unsubscribe_rate"])
    _simulate(experiment, now, days, {"control": 0.03, "treatment": 0.03})
    assert services.run_guardrails() == []
    assert not Variant.objects.filter(experiment=experiment, stopped_by_guardrail=True).exists()
    assert mailoutbox == []


def test_only_the_harmful_one_of_several_variants_is_stopped(running, now, days):
    experiment = running(
        "three-way",
        variants=[services.VariantSpec("a", is_control=True), services.VariantSpec("b"), services.VariantSpec("c")],
        guardrail_metrics=["unsubscribe_rate"],
    )
    _simulate(experiment, now, days, {"a": 0.02, "b": 0.02, "c": 0.3})
    stops = services.run_guardrails()
    assert [(s.variant, s.metric) for s in stops] == [("c", "unsubscribe_rate")]
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert experiment.allocation_history[str(experiment.allocation_version)]["c"] == 0
    served = {services.assign("three-way", pid).variant for pid in range(1, 3000)}  # type: ignore[union-attr]
    assert served == {"a", "b"}


def test_the_schedules_are_rows_of_the_database_scheduler():
    tasks_by_name = dict(PeriodicTask.objects.values_list("task", "enabled"))
    assert tasks_by_name["experiments.tasks.run_guardrails"] is True
    assert tasks_by_name["experiments.tasks.reweight_bandits"] is True
