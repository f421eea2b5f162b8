"""The test suite's settings: the real ones, with keys of its own and plain HTTP.

The settings refuse to start without ``SECRET_KEY`` and ``TRACKING_SECRET_KEY`` unless ``DEBUG`` is
on, and redirect to HTTPS when it is off. The suite runs with ``DEBUG`` off, as production does, so
it gives itself keys here (never used anywhere else) and speaks plain HTTP to its test client and
live server. They are set in the environment, not only on the settings, so that the Celery workers
and servers the tests start as subprocesses read the same ones. Anything already set wins.
"""

from __future__ import annotations

import os

from django.conf import global_settings

os.environ.setdefault("SECRET_KEY", "test-suite-only-secret-key-4c8e2f7a9b1d6e3f0a5c8b2d7e4f1a9c6b3e0d")
os.environ.setdefault("TRACKING_SECRET_KEY", "test-suite-only-tracking-key-9e1f3a5c7b2d4e6f8a0c")
os.environ.setdefault("HTTPS", "False")
# A launch prepares in the caller on the embedded default, as the suite expects (tests of the
# background preparation turn it on).
os.environ.setdefault("CAMPAIGN_PREPARE_IN_BACKGROUND", "False")

from personalization.settings import *  # noqa: F403

# A password is hashed wherever the suite makes a login (every role of the permission tests, the
# demo's six logins at each seeding): the fast hasher first, so a test spends no second per login on
# key stretching. Logging in and checking passwords work as in production; the strength of the
# production hasher is Django's own, not the project's.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]
