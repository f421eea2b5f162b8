"""Serving reads a person's latest events from an index that carries them, instead of one heap page
per event; the person-only index goes, as the (person, timestamp) one answers the same lookups."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0001_initial"),
    ]

    operations = [
        # The new index first, so lookups by person never go without one.
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["person", "timestamp"], include=("item_id", "kind", "quantity"), name="event_person_recent"
            ),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="profiles_ev_person__ae5675_idx",
        ),
        migrations.AlterField(
            model_name="event",
            name="person",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="profiles.person",
            ),
        ),
    ]
