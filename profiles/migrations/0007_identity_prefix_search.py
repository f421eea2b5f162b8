"""The console's people search finds identities by the beginning of their key, a page at a time in
key order. Under a database collation other than C the unique (kind, value) index can serve neither
``LIKE 'ab%'`` as a range nor its order, so a short prefix would read every key of its kind (2.2 s
over a million anonymous ids under ICU en-US). An index on ``value COLLATE "C"`` serves both: the
range of the prefix, read in order and stopped at the page (0.2 ms).

PostgreSQL only: SQLite (the embedded default) compares bytes already and has no "C" collation.
"""

from django.db import migrations

CREATE = 'CREATE INDEX IF NOT EXISTS identity_kind_value_prefix ON profiles_identity (kind, (value COLLATE "C"))'
DROP = "DROP INDEX IF EXISTS identity_kind_value_prefix"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0006_outbox_relay_job"),
    ]

    operations = [migrations.RunPython(create, drop)]
