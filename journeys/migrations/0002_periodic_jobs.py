"""The journeys' schedules, as rows of django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

ADVANCE = "Journeys: advance due entries"
SCHEDULED = "Journeys: enter people on schedules"


def create_jobs(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_5_seconds, _ = IntervalSchedule.objects.get_or_create(every=5, period="seconds")
    every_15_minutes, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=ADVANCE,
        defaults={
            "task": "journeys.tasks.advance_journeys",
            "interval": every_5_seconds,
            "description": "Runs the steps of journey entries that are due (waits ended, new entries).",
            "enabled": True,
        },
    )
    PeriodicTask.objects.get_or_create(
        name=SCHEDULED,
        defaults={
            "task": "journeys.tasks.enter_scheduled_journeys",
            "interval": every_15_minutes,
            "description": "Enters people into daily and weekly journeys at their local time.",
            "enabled": True,
        },
    )


def remove_jobs(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[ADVANCE, SCHEDULED]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_jobs, remove_jobs)]
