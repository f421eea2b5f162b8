"""Retraining on a schedule: why a version was fitted, the audit of loop settings, and the nightly
django-celery-beat row (editable on the model page, /model/)."""

from __future__ import annotations

from django.db import migrations, models

NAME = "Model: retrain on schedule"
TASK = "personalization.tasks.retrain_on_schedule"
DESCRIPTION = (
    "Fits a new engine version from the event log and activates it only if it validates at least as well as "
    "the active one on the same fresh hold-out; a refused or failed fit is recorded with its reason. Runs after "
    "attribution (02:30) and retention (03:15). Edit the time and days on the model page."
)


def create_job(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": nightly, "description": DESCRIPTION, "enabled": True}
    )


def remove_job(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0008_csm_reads_account_people"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("manual", "Asked for by someone"),
                    ("schedule", "The retraining schedule"),
                    ("drift", "The drift rule"),
                ],
                default="manual",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="trigger_reason",
            field=models.TextField(blank=True, help_text="Why the drift rule started this fit."),
        ),
        migrations.CreateModel(
            name="LoopChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("by", models.CharField(max_length=200)),
                ("what", models.CharField(help_text="schedule | drift_rule", max_length=32)),
                ("detail", models.JSONField(default=dict)),
            ],
            options={"ordering": ["-at", "-id"]},
        ),
        migrations.RunPython(create_job, remove_job),
    ]
