"""A preparation's claim and heartbeat, and the periodic check that resumes one whose worker died."""

from django.db import migrations, models

NAME = "Campaigns: resume stalled preparations"


def create_job(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "campaigns.tasks.resume_stalled_preparations",
            "interval": every_minute,
            "description": "Queues again each campaign preparation whose worker stopped showing progress.",
            "enabled": True,
            "expire_seconds": 50,
        },
    )


def remove_job(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_periodic_jobs"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="preparation_claim",
            field=models.CharField(blank=True, default="", editable=False, max_length=32),
        ),
        migrations.AddField(
            model_name="campaign",
            name="preparation_heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When the worker preparing the campaign last showed progress.",
                null=True,
            ),
        ),
        migrations.RunPython(create_job, remove_job),
    ]
