"""Watching the active version: degraded answers flagged on impressions, one snapshot a day, and the
daily django-celery-beat row that computes it (after the nightly attribution and retraining)."""

from __future__ import annotations

from django.db import migrations, models

NAME = "Model: watch the active version"
TASK = "personalization.tasks.watch_active_model"
DESCRIPTION = (
    "Yesterday's online (click-through and conversion of personalized against curated answers, degraded "
    "answers), data (event volume, unknown items, new items, people without history) and offline (NDCG@20 on "
    "the recent days against activation) figures of the active version, charted on the model page."
)


def create_job(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="6", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": TASK, "crontab": daily, "description": DESCRIPTION, "enabled": True}
    )


def remove_job(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("personalization", "0009_retraining_schedule")]

    operations = [
        migrations.AddField(
            model_name="impression",
            name="degraded",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Served without the active model, or without part of it.",
            ),
        ),
        migrations.CreateModel(
            name="ModelHealthSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(unique=True)),
                (
                    "model_version",
                    models.BigIntegerField(
                        blank=True, help_text="The version active when it was computed.", null=True
                    ),
                ),
                (
                    "online",
                    models.JSONField(
                        default=dict, help_text="Per surface: answers, click-through and conversion by arm."
                    ),
                ),
                (
                    "data",
                    models.JSONField(
                        default=dict,
                        help_text="Event volume, unknown items, new items, people without history.",
                    ),
                ),
                (
                    "offline",
                    models.JSONField(
                        default=dict, help_text="NDCG@20 on the recent days against the figure at activation."
                    ),
                ),
                (
                    "latency",
                    models.JSONField(default=dict, help_text="From an item event to the next answer for that person."),
                ),
                (
                    "drift",
                    models.JSONField(default=dict, help_text="The drift rule's verdict and what it started."),
                ),
                ("computed_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["-day"]},
        ),
        migrations.RunPython(create_job, remove_job),
    ]
