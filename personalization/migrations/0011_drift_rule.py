"""The drift rule's thresholds, one row with the documented defaults (docs/evaluation.md)."""

from __future__ import annotations

from django.db import migrations, models


def create_rule(apps, schema_editor):
    apps.get_model("personalization", "DriftRule").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("personalization", "0010_model_watch")]

    operations = [
        migrations.CreateModel(
            name="DriftRule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "enabled",
                    models.BooleanField(default=True, help_text="Start a retraining early when the rule fires."),
                ),
                (
                    "unknown_item_share",
                    models.FloatField(
                        default=0.3,
                        help_text="Fires above this share of a day's item events on items the model does not know.",
                    ),
                ),
                (
                    "ndcg_drop",
                    models.FloatField(
                        default=0.2,
                        help_text="Fires when NDCG@20 on recent days is this much (relative) below its activation "
                        "figure.",
                    ),
                ),
                (
                    "ctr_drop",
                    models.FloatField(
                        default=0.15,
                        help_text="Fires when a surface's personalized click-through falls this much (relative) "
                        "below the days before and the 95% interval of the change excludes zero.",
                    ),
                ),
                (
                    "min_answers",
                    models.PositiveIntegerField(
                        default=500,
                        help_text="Answers needed on the day and on the days before for the click-through check.",
                    ),
                ),
                (
                    "baseline_days",
                    models.PositiveSmallIntegerField(default=7, help_text="Days the click-through is compared with."),
                ),
                (
                    "cooldown_hours",
                    models.PositiveSmallIntegerField(
                        default=24, help_text="No second early retraining within this many hours of the last one."
                    ),
                ),
                ("updated_by", models.CharField(blank=True, max_length=200)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.RunPython(create_rule, migrations.RunPython.noop),
    ]
