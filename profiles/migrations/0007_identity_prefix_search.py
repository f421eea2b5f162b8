"""The console's people search finds identities by prefix; under a database collation other than C
the unique (kind, value) index cannot serve ``LIKE 'prefix%'``, so a pattern-ops index does."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0006_outbox_relay_job"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="identity",
            index=models.Index(
                fields=["kind", "value"],
                name="identity_kind_value_prefix",
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
            ),
        ),
    ]
