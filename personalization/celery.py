"""The Celery app. Workers: ``celery -A personalization worker``; beat uses the database scheduler."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")

app = Celery("personalization")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
