"""The experiments app's schedules, as rows of django-celery-beat (editable in the admin)."""

from __future__ import annotations

from django.db import migrations

JOBS = [
    (
        "Experiments: recompute results and apply guardrails",
        "experiments.tasks.run_guardrails",
        "Stores a fresh look at every running experiment and stops variants that harm a guardrail metric.",
    ),
    (
        "Experiments: re-weight bandits",
        "experiments.tasks.reweight_bandits",
        "Moves the traffic of bandit experiments toward the best arms (Thompson sampling with floors).",
    ),
]


def create_jobs(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    for name, task, description in JOBS:
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": hourly, "description": description, "enabled": True}
        )


def remove_jobs(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in JOBS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_jobs, remove_jobs)]
