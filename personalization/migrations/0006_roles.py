"""The console's roles as groups: Marketer, CSM, Analyst, Administrator (personalization/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from personalization.roles import ensure_roles


def create_roles(apps, schema_editor):
    # Permissions are made after the last migration by default; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # view_audit comes with 0008, which gives it to the roles.
    ensure_roles(
        apps.get_model("auth", "Group"),
        apps.get_model("auth", "Permission"),
        later=frozenset({"personalization.view_audit"}),
    )


def remove_roles(apps, schema_editor):
    from personalization.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0005_identity_verification_and_access"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0002_item_updated_at_index"),
        ("profiles", "0004_retention_schedule"),
        ("experiments", "0002_periodic_jobs"),
        ("campaigns", "0002_periodic_jobs"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
