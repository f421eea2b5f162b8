"""Creating the event log's month partitions ahead every night, as a row of django-celery-beat
(editable in the admin). On SQLite the job finds no partitioned table and does nothing."""

from __future__ import annotations

from django.db import migrations

NAME = "Events: create the month partitions ahead"
TASK = "profiles.tasks.create_event_partitions"
DESCRIPTION = (
    "Creates the event log's partitions (PostgreSQL) for this month and EVENT_PARTITIONS_AHEAD months after it "
    "(default 3), so that events land in their month rather than in the default partition. Safe to re-run."
)


def create_job(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="45", hour="2", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": nightly, "description": DESCRIPTION, "enabled": True}
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0008_event_log_by_month"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_job, remove_job)]
