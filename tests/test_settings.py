from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from personalization.env import envbool, envint


def test_env_helpers_fail_loudly(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG=yes"):
        envbool("SOME_FLAG", "False")
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER=ten"):
        envint("SOME_NUMBER", "1")
    monkeypatch.setenv("SOME_NUMBER", "10")
    assert envint("SOME_NUMBER", "1") == 10


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "TRACKING_SECRET_KEY", "HTTPS")
    }
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "personalization.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_is_required_when_debug_is_off():
    result = _settings_in_subprocess({"DEBUG": "False"}, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_embedded_default_needs_no_services():
    result = _settings_in_subprocess(
        {"DEBUG": "True"},  # the demo's shape (`make demo`)
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, "
        "settings.CACHES['default']['BACKEND']",
    )
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout and "True" in result.stdout and "LocMemCache" in result.stdout


def test_database_and_redis_urls_switch_to_the_services():
    result = _settings_in_subprocess(
        {
            "DEBUG": "True",
            "DATABASE_URL": "postgres://u@db.example:5432/pe",
            "REDIS_URL": "redis://cache.example:6379/1",
        },
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "postgresql" in result.stdout and "redis://cache.example:6379/1" in result.stdout and "False" in result.stdout
    )
