"""Attributing yesterday's answers every night, as a row of django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

NAME = "Surfaces: attribute yesterday's clicks and purchases"
TASK = "personalization.tasks.attribute_surface_feedback"
DESCRIPTION = (
    "Per-surface click-through and conversion for the day before, and the per-item exposure counts that "
    "exploration samples from. Runs after midnight so that the day is complete; re-running a day is safe."
)


def create_job(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": nightly, "description": DESCRIPTION, "enabled": True}
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0003_surfaces"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_job, remove_job)]
