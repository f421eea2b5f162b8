"""Erasure receipts: who asked, when, rows per table and salted hashes of the erased keys (which ingestion
checks to refuse replays); the export_person and erase_person permissions."""

import django.db.models.deletion
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0002_event_person_recent_covering'),
    ]

    operations = [
        migrations.CreateModel(
            name='ErasureReceipt',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('requested_by', models.CharField(help_text='The user, API key or operator who asked.', max_length=200)),
                ('requested_at', models.DateTimeField(db_index=True)),
                ('people', models.PositiveIntegerField(default=0, help_text='The person and everyone merged into them.')),
                ('counts', models.JSONField(default=dict, help_text='Rows removed per table (app_label.Model) and redacted fields.')),
            ],
            options={
                'ordering': ['-requested_at'],
                'permissions': [('export_person', 'Can export everything held about a person'), ('erase_person', 'Can erase a person and everyone merged into them')],
            },
        ),
        migrations.CreateModel(
            name='ErasedKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key_hash', models.CharField(db_index=True, max_length=64)),
                ('receipt', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='keys', to='profiles.erasurereceipt')),
            ],
        ),
    ]
