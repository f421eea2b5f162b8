"""The campaigns app's schedule, as a row of django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

NAME = "Campaigns: send due messages"


def create_job(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "campaigns.tasks.send_due_messages",
            "interval": every_minute,
            "description": "Recovers claims of lost workers, schedules approved messages and sends what is due.",
            "enabled": True,
            "expire_seconds": 120,
        },
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_job, remove_job)]
