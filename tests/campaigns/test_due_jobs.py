"""The embedded default's scheduler: ``run_due_jobs`` runs beat's due rows in-process, so a due
message goes out through the configured email backend (files under var/mail/ in the demo)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from campaigns import services
from campaigns.models import Message, MessageState
from personalization.due_jobs import run_due_jobs
from tests.campaigns.conftest import make_campaign, person

SEND_JOB = "Campaigns: send due messages"


@pytest.mark.django_db
def test_a_due_message_is_sent_to_the_file_backend_by_the_due_jobs_runner(settings, tmp_path, shop):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    settings.SITE_URL = "http://127.0.0.1:8123"
    shop()
    ada = person("ada", first_name="Ada")
    campaign = make_campaign(item_url="")
    services.launch(campaign, prepare_now=True)
    message = Message.objects.get(campaign=campaign, person=ada)
    assert message.state == MessageState.SCHEDULED  # due now, waiting for the sending round

    PeriodicTask.objects.exclude(name=SEND_JOB).update(enabled=False)  # this test is about sending
    out = StringIO()
    call_command("run_due_jobs", stdout=out)
    assert f"{SEND_JOB}: ok" in out.getvalue()

    message.refresh_from_db()
    assert message.state == MessageState.SENT
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1
    body = files[0].read_text()
    assert "To: ada@example.com" in body
    # Tracking links follow SITE_URL (the demo's port); item links go to a page that exists.
    assert "http://127.0.0.1:8123/t/" in body and "localhost:8000" not in body
    assert "http://127.0.0.1:8123/items/" in message.html

    # Beat's bookkeeping: the job ran now, so it is not due again for a minute.
    job = PeriodicTask.objects.get(name=SEND_JOB)
    assert job.last_run_at is not None and job.total_run_count == 1
    assert [run.name for run in run_due_jobs()] == []
    assert [run.name for run in run_due_jobs(run_all=True)] == [SEND_JOB]


@pytest.mark.django_db
def test_a_missing_task_is_reported_and_the_other_jobs_still_run(settings):
    PeriodicTask.objects.update(enabled=False)
    PeriodicTask.objects.filter(name=SEND_JOB).update(enabled=True)
    broken = PeriodicTask.objects.get(name=SEND_JOB)
    broken.pk, broken.name, broken.task = None, "A job whose task is gone", "nowhere.tasks.missing"
    broken.save()
    runs = {run.name: run.error for run in run_due_jobs()}
    assert runs == {"A job whose task is gone": "no task 'nowhere.tasks.missing' is registered", SEND_JOB: None}


def test_a_nightly_job_never_run_waits_for_its_time_instead_of_running_at_every_fresh_start(db):
    from datetime import timedelta

    from django.utils import timezone

    from personalization.due_jobs import is_due

    nightly = PeriodicTask.objects.get(task="personalization.tasks.retrain_on_schedule")
    assert nightly.crontab is not None and nightly.last_run_at is None
    now = timezone.now()
    PeriodicTask.objects.filter(pk=nightly.pk).update(date_changed=now)
    nightly.refresh_from_db()
    assert not is_due(nightly, now)  # made just now: its first time is tonight
    PeriodicTask.objects.filter(pk=nightly.pk).update(date_changed=now - timedelta(days=2))
    nightly.refresh_from_db()
    assert is_due(nightly, now)  # made two days ago: a night has passed since, as beat would have seen
