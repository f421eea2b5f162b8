"""Retraining on a schedule: the beat row, the gate it runs through, and what the console shows."""

from __future__ import annotations

import json

import pytest
from celery import current_app
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from personalization import registry, retraining
from personalization.models import FitTrigger, LoopChange, ModelVersion, VersionStatus
from personalization.surface_serving import ServeRequest, serve
from personalization.surfaces import create_surface
from profiles.services import find_person
from tests.access import role_user


def session_client(user) -> Client:
    """A signed-in browser: forms are posted form-encoded."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def store(db):
    call_command("seed_demo", people=150, days=60, verbosity=0)


def run_as_beat() -> ModelVersion:
    """What celery beat does at the scheduled time: send the row's task with the row's arguments."""
    job = PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME)
    assert job.enabled
    before = ModelVersion.objects.order_by("-id").values_list("id", flat=True).first() or 0
    current_app.tasks[job.task].apply(args=json.loads(job.args or "[]"), kwargs=json.loads(job.kwargs or "{}"))
    return ModelVersion.objects.filter(id__gt=before).get()


def test_the_beat_row_exists_nightly_and_names_a_registered_task(db):
    job = PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME)
    assert job.task == "personalization.tasks.retrain_on_schedule" and job.task in current_app.tasks
    assert job.enabled and job.crontab is not None
    assert (job.crontab.hour, job.crontab.minute, job.crontab.day_of_week) == ("3", "30", "*")
    assert retraining.schedule().text == "every day at 03:30 (UTC)"


def test_the_scheduled_run_fits_through_the_gate_and_activates_a_version_that_passes(store, model_storage):
    first = run_as_beat()
    assert first.trigger == FitTrigger.SCHEDULE and first.status == VersionStatus.ACTIVE, first.error
    assert first.metrics["passed_gate"] is True and first.metrics["active"] is None

    second = run_as_beat()
    # The second fit was scored beside the active one on one hold-out before it could replace it.
    assert second.metrics["active"]["version"] == first.pk
    assert second.metrics["active"]["basis"] in ("same hold-out", "same hold-out, as recorded")
    assert second.metrics["passed_gate"] == (second.metrics["holdout"]["ndcg"] >= second.metrics["active"]["ndcg"])
    assert (registry.active_version() == second) == second.metrics["passed_gate"]


def test_a_refused_version_never_serves_and_the_console_says_why(store, model_storage):
    active = run_as_beat()
    # No event came since, and the active version's score on this very split is perfect: no candidate can match it.
    active.metrics = {**active.metrics, "holdout": {"ndcg": 1.0, "recall": 1.0, "people": 50}}
    active.save()

    refused = run_as_beat()

    assert refused.status == VersionStatus.REJECTED and refused.trigger == FitTrigger.SCHEDULE
    assert registry.active_version() == active
    registry._loaded.checked_at = 0
    assert registry.serving_engine()[0] == active.pk
    person = find_person("user-00003")
    assert person is not None
    create_surface("homepage", "Homepage", {"size": 10}, by="tests")
    answer = serve(ServeRequest(surface="homepage", person_id=person.pk, log=False))
    assert answer.strategy == "personalized" and answer.model_version == active.pk
    with pytest.raises(registry.ActivationRefused):
        registry.activate(refused, by="someone")

    analyst = session_client(role_user("ana", "Analyst"))
    page = analyst.get("/model/").content.decode()
    assert f"Refused by the gate: hold-out NDCG@20 {refused.metrics['holdout']['ndcg']:.4f}" in page
    assert "1.0000" in page  # the active version's figure it was compared with
    home = analyst.get("/", follow=True).content.decode()
    assert 'id="fit-alert"' in home and f"Model v{refused.pk}" in home and "Refused by the gate" in home


def test_a_failed_fit_is_recorded_with_its_reason_and_shown_until_a_fit_succeeds(db, model_storage):
    failed = run_as_beat()  # no events at all

    assert failed.status == VersionStatus.FAILED
    assert "no events to learn from" in failed.error
    admin = session_client(role_user("adam", "Administrator"))
    page = admin.get("/model/").content.decode()
    assert 'id="fit-alert"' in page and "Failed: There are no events to learn from yet." in page
    # People who may not see model versions are not shown it.
    marketer = session_client(role_user("mara", "Marketer"))
    assert 'id="fit-alert"' not in marketer.get("/surfaces/").content.decode()


def test_a_scheduled_run_does_not_start_while_a_fit_is_training(db, model_storage):
    running = ModelVersion.objects.create(requested_by="ops")

    skipped = run_as_beat()

    assert skipped.status == VersionStatus.FAILED
    assert skipped.error == f"Not started: version {running.pk} was still training."
    assert ModelVersion.objects.get(pk=running.pk).status == VersionStatus.TRAINING


def test_an_administrator_edits_the_schedule_on_the_model_page(db):
    admin = session_client(role_user("adam", "Administrator"))

    response = admin.post("/model/schedule", {"enabled": "on", "hour": "1", "minute": "5", "days": ["1", "4"]})

    assert response.status_code == 302
    job = PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME)
    assert (job.crontab.hour, job.crontab.minute, job.crontab.day_of_week, job.enabled) == ("1", "5", "1,4", True)
    assert retraining.schedule().text == "Mon, Thu at 01:05 (UTC)"
    change = LoopChange.objects.get()
    assert change.by == "adam" and change.what == "schedule" and change.detail["days"] == ["1", "4"]

    admin.post("/model/schedule", {"hour": "1", "minute": "5", "days": ["1", "4"]})  # unticked: off
    assert PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME).enabled is False
    assert "off (was Mon, Thu at 01:05 (UTC))" in admin.get("/model/").content.decode()


def test_a_bad_schedule_is_refused_beside_the_field_and_changes_nothing(db):
    admin = session_client(role_user("adam", "Administrator"))

    response = admin.post("/model/schedule", {"enabled": "on", "hour": "24", "minute": "5"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Hour: Ensure this value is less than or equal to 23." in page
    assert "Days: Pick at least one day." in page
    job = PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME)
    assert (job.crontab.hour, job.crontab.minute) == ("3", "30") and not LoopChange.objects.exists()


def test_an_analyst_sees_the_schedule_but_cannot_change_it(db):
    analyst = session_client(role_user("ana", "Analyst"))

    assert "Save schedule" not in analyst.get("/model/").content.decode()
    response = analyst.post("/model/schedule", {"enabled": "on", "hour": "1", "minute": "0", "days": ["1"]})
    assert response.status_code == 403
    job = PeriodicTask.objects.get(name=retraining.SCHEDULE_NAME)
    assert (job.crontab.hour, job.crontab.minute) == ("3", "30") and not LoopChange.objects.exists()
