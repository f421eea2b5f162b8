"""The test suite's settings: the real ones, with keys of its own and plain HTTP.

The settings refuse to start without ``SECRET_KEY`` and ``TRACKING_SECRET_KEY`` unless ``DEBUG`` is
on, and redirect to HTTPS when it is off. The suite runs with ``DEBUG`` off, as production does, so
it gives itself keys here (never used anywhere else) and speaks plain HTTP to its test client and
live server. They are set in the environment, not only on the settings, so that the Celery workers
and servers the tests start as subprocesses read the same ones. Anything already set wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

# Redis's default number of databases (``databases 16``): the suite's workers share them out.
REDIS_DATABASES = 16


def _worker_redis_url(url: str, worker: int, span: int) -> str:
    """``url`` moved ``worker * span`` databases down (wrapping at ``REDIS_DATABASES``)."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or "0")
    return urlunsplit(parts._replace(path=f"/{(db - worker * span) % REDIS_DATABASES}"))


def _give_this_worker_its_own_services(worker_id: str) -> None:
    """Under pytest-xdist (``make test`` runs two workers) each worker is a process that must not
    touch the other's state. pytest-django gives each its own test database (``…_gw0``, ``…_gw1``);
    here each gets its own Redis databases, for the cache and the broker (a test flushes the cache,
    purges the broker's queues, and a Celery worker it starts would take the other's tasks), and its
    own data folder (model versions are folders named after a primary key, which both test databases
    number from 1). The environment changes, not only the settings, so that the Celery workers,
    servers and commands a test starts use the same; they read this module too and find it done."""
    if os.environ.get("TEST_SERVICES_OF_WORKER") == worker_id:
        return
    os.environ["TEST_SERVICES_OF_WORKER"] = worker_id
    worker = int(worker_id.removeprefix("gw"))
    names = [name for name in ("REDIS_URL", "CACHE_URL") if os.environ.get(name)]
    dbs = [int(urlsplit(os.environ[name]).path.strip("/") or "0") for name in names]
    if dbs:
        # The numbers the suite uses (REDIS_URL's and CACHE_URL's, e.g. 14 and 15): worker 1 takes the
        # same pair moved down by their span (12 and 13), worker 2 the next (10 and 11), and so on.
        span = max(dbs) - min(dbs) + 1
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or worker + 1)
        if workers * span > REDIS_DATABASES:
            raise ImproperlyConfigured(
                f"{workers} test workers need {workers * span} Redis databases, Redis has {REDIS_DATABASES}"
            )
        for name in names:
            os.environ[name] = _worker_redis_url(os.environ[name], worker, span)
    base = Path(__file__).resolve().parent.parent
    for name, default in (("DATA_DIR", base / "var"), ("MODEL_STORAGE_DIR", None)):
        value = os.environ.get(name) or default
        if value:
            os.environ[name] = str(Path(value) / f"pytest-{worker_id}")


if os.environ.get("PYTEST_XDIST_WORKER"):
    _give_this_worker_its_own_services(os.environ["PYTEST_XDIST_WORKER"])

os.environ.setdefault("SECRET_KEY", "test-suite-only-secret-key-4c8e2f7a9b1d6e3f0a5c8b2d7e4f1a9c6b3e0d")
os.environ.setdefault("TRACKING_SECRET_KEY", "test-suite-only-tracking-key-9e1f3a5c7b2d4e6f8a0c")
os.environ.setdefault("HTTPS", "False")
# A launch prepares in the caller on the embedded default, as the suite expects (tests of the
# background preparation turn it on).
os.environ.setdefault("CAMPAIGN_PREPARE_IN_BACKGROUND", "False")

from personalization.settings import *  # noqa: E402, F403  (after the environment is set)

# A password is hashed wherever the suite makes a login (every role of the permission tests, the
# demo's six logins at each seeding): the fast hasher first, so a test spends no second per login on
# key stretching. Logging in and checking passwords work as in production; the strength of the
# production hasher is Django's own, not the project's.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]
