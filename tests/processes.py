"""Helpers for tests that start real processes (Celery workers, beat, gunicorn) against the test
database: those processes must connect to the database pytest-django created, not DATABASE_URL's."""

from __future__ import annotations

from django.db import connection


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
