"""Finding 6 of issue 12: insecure by default. DEBUG defaulted to on, SECRET_KEY to a public constant,
404 pages listed the URL patterns, 500 pages printed DATABASE_URL and REDIS_URL, and unknown API
paths answered HTML. Now DEBUG is off unless the demo turns it on, the keys are required outside the
demo, errors answer the API's JSON shape under /api/ and finished pages elsewhere, and
``manage.py check --deploy`` is clean in the production shape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
_OURS = (
    "DATABASE_URL", "REDIS_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "TRACKING_SECRET_KEY",
    "TRACKING_SECRET_KEYS_OLD", "HTTPS", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE",
)  # fmt: skip
PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "k7Qm2xV9pL4sT8wZ1bN6cR3yF5hJ0dG2aE7uK9iO4pS1vX6mB8nC3zQ5tW0rY2",
    "TRACKING_SECRET_KEY": "t3Hn8qW1eR6tY4uI9oP2aS7dF5gJ0kL3zX8cV1bN6mQ4wE9rT2yU7iO5pA0sD3f",
    "ALLOWED_HOSTS": "pe.example.com",
    "DATABASE_URL": "postgres://pe@db.example.com:5432/pe",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in _OURS}
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "personalization.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _setting(env: dict[str, str], expr: str) -> subprocess.CompletedProcess[str]:
    return _run(env, "-c", f"import django; django.setup(); from django.conf import settings; print({expr})")


def test_finding_6_debug_is_off_and_keys_are_required_by_default():
    bare = _setting({}, "settings.DEBUG")
    assert bare.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in bare.stderr

    no_tracking_key = _setting({"SECRET_KEY": PRODUCTION["SECRET_KEY"]}, "settings.DEBUG")
    assert no_tracking_key.returncode != 0
    assert "TRACKING_SECRET_KEY must be set when DEBUG is off" in no_tracking_key.stderr

    production = _setting(PRODUCTION, "settings.DEBUG, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE")
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["False", "True", "True"]


def test_the_demo_turns_debug_on_and_listens_on_loopback_only():
    demo = _setting({"DEBUG": "True"}, "settings.DEBUG, settings.SECRET_KEY != settings.TRACKING_SECRET_KEY")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.split() == ["True", "True"]
    makefile = (ROOT / "Makefile").read_text()
    demo_target = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"runserver( --[\w-]+)* 127\.0\.0\.1:", demo_target) and "0.0.0.0" not in demo_target
    assert "DEBUG=True" in makefile.split("\ndemo:", 1)[0].rsplit("\n\n", 1)[1]


@pytest.mark.slow
def test_finding_6_check_deploy_is_clean_in_the_production_shape():
    result = _run(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # The documented switch for plain HTTP turns the HTTPS settings off, and check --deploy says so.
    plain = _run({**PRODUCTION, "HTTPS": "False"}, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert plain.returncode != 0
    assert "security.W008" in plain.stderr + plain.stdout and "security.W012" in plain.stderr + plain.stdout


def test_proxy_header_is_trusted_only_when_asked():
    unset = _setting(PRODUCTION, "getattr(settings, 'SECURE_PROXY_SSL_HEADER', None)")
    trusted = _setting({**PRODUCTION, "TRUST_X_FORWARDED_PROTO": "True"}, "settings.SECURE_PROXY_SSL_HEADER")
    assert unset.stdout.strip() == "None"
    assert trusted.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


ERROR_KEYS = {"type", "code", "detail", "attr"}


@pytest.mark.parametrize("debug", [False, True])
def test_finding_6_unknown_api_paths_answer_the_json_error_shape(db, client, settings, debug):
    settings.DEBUG = debug
    for path in ("/api/v1/no-such-thing", "/api/nothing/here", "/api/v1/catalog/items/x/y/z"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == ERROR_KEYS and body["type"] == "not_found"
        assert b"urlpatterns" not in response.content and b"URLconf" not in response.content


def test_api_405_and_500_answer_the_json_error_shape_without_settings(db, secret_client, settings):
    not_allowed = secret_client.delete("/api/v1/recommendations/popular")
    assert not_allowed.status_code == 405 and set(not_allowed.json()) == ERROR_KEYS
    assert not_allowed.json()["code"] == "method_not_allowed"

    # A failure outside any API view (here in a middleware) used to answer Django's HTML page.
    for debug in (False, True):
        settings.DEBUG = debug
        failing = Client(raise_request_exception=False)
        with mock.patch(
            "django.contrib.sessions.middleware.SessionMiddleware.process_request",
            side_effect=RuntimeError("boom"),
        ):
            response = failing.get("/api/v1/recommendations/popular")
        assert response.status_code == 500
        assert response.json() == {
            "type": "server_error",
            "code": "error",
            "detail": "A server error occurred; it has been logged.",
            "attr": None,
        }


@pytest.mark.parametrize("debug", [False, True])
def test_finding_6_the_404_page_lists_no_url_patterns(db, client, settings, debug):
    settings.DEBUG = debug
    for path in ("/no-such-page/", "/campaigns/999999/"):
        response = client.get(path)
        assert response.status_code in (404, 302)  # a console page may first ask for a login
        if response.status_code == 404:
            page = response.content.decode()
            assert "Page not found" in page and "There is no page at this address" in page
            for leak in ("URLconf", "admin/", "api/v1/", "personalization.urls", "Django tried"):
                assert leak not in page.replace('href="/admin/"', "")


def test_finding_6_the_500_page_prints_no_settings(db, settings):
    secret_url = "postgres://pe:hunter2@db.internal:5432/pe"
    failing = Client(raise_request_exception=False)
    for debug in (False, True):
        settings.DEBUG = debug
        with mock.patch(
            "django.contrib.sessions.middleware.SessionMiddleware.process_request",
            side_effect=RuntimeError("boom"),
        ):
            response = failing.get("/surfaces/", DATABASE_URL=secret_url, REDIS_URL="redis://redis.internal:6379/0")
        assert response.status_code == 500
        page = response.content.decode()
        assert "hunter2" not in page and "redis.internal" not in page
        assert settings.SECRET_KEY not in page and settings.TRACKING_SECRET_KEY not in page
        if not debug:
            assert "Something went wrong" in page and "The error has been logged" in page
