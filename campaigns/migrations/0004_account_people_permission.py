"""A CSM reads the people of the accounts they manage: the permission that says so (campaigns.account_people)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0003_preparation_heartbeat'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='account',
            options={'ordering': ['name', 'external_id'], 'permissions': [('view_account_people', 'Can view the people of the accounts they manage')]},
        ),
    ]
