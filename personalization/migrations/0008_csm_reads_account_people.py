"""The CSM role reads the people of the accounts they manage (campaigns.view_account_people)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from personalization.roles import ensure_roles


def update_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # Permissions that later migrations add (journeys) are given by the migration after them.
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0007_artifact_chunks"),
        ("campaigns", "0004_account_people_permission"),
    ]

    operations = [migrations.RunPython(update_roles, migrations.RunPython.noop)]
