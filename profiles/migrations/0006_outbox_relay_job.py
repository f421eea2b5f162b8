"""The outbox relay's schedule, as a row of django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

NAME = "Profiles: relay the outbox"


def create_job(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15_seconds, _ = IntervalSchedule.objects.get_or_create(every=15, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "profiles.tasks.relay_outbox",
            "interval": every_15_seconds,
            "description": "Hands follow-up work that waited in the outbox (broker or Redis away) to them.",
            "enabled": True,
        },
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0005_outbox"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_job, remove_job)]
