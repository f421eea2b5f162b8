"""Surfaces are configured in the console and the API: the Administrator role may change them too, and
the key's help text names the real path (the old one lost ``<key>`` as an HTML tag in the admin)."""

from django.db import migrations, models

from personalization.roles import ensure_roles


def refresh_roles(apps, schema_editor):
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [("personalization", "0013_audit_entries")]

    operations = [
        migrations.AlterField(
            model_name="surface",
            name="key",
            field=models.SlugField(
                help_text="Used in the API: /api/v1/surfaces/KEY/recommendations.", max_length=100, unique=True
            ),
        ),
        migrations.RunPython(refresh_roles, migrations.RunPython.noop),
    ]
