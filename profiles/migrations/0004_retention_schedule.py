"""Deleting events and impressions older than RETENTION_MONTHS every night, as a row of
django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

NAME = "Retention: delete events and impressions older than RETENTION_MONTHS"
TASK = "profiles.tasks.apply_retention"
DESCRIPTION = (
    "Deletes events and surface impressions older than the RETENTION_MONTHS setting (default 24) in batches of "
    "RETENTION_BATCH_ROWS rows, each its own short transaction. Safe to re-run; `manage.py apply_retention "
    "--dry-run` counts what it would delete."
)


def create_job(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="3", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": nightly, "description": DESCRIPTION, "enabled": True}
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0003_erasure_receipt"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_job, remove_job)]
