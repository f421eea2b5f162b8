"""Ingestion enqueues profile refreshes; a real Celery worker process picks them up over Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from personalization.celery import app
from profiles.models import Profile
from profiles.services import find_person
from tests.conftest import track
from tests.processes import database_url_of_test_db

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the worker runs in another process",
    ),
]


@pytest.fixture
def worker():
    app.control.purge()  # leftovers of earlier runs would point at people who no longer exist
    env = {**os.environ, "DATABASE_URL": database_url_of_test_db()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "personalization",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_the_profile_after_ingestion(ingest_client, make_item, worker):
    make_item("sku-r", category="Women > Dresses", brand="Maison Vela")
    response = ingest_client.post(
        "/api/v1/track", track("Product Viewed", user="worker-u1", properties={"product_id": "sku-r"})
    )
    assert response.status_code == 200
    person = find_person("worker-u1")
    assert person is not None

    deadline = time.monotonic() + 60
    profile = None
    while time.monotonic() < deadline and profile is None:
        profile = Profile.objects.filter(person=person).first()
        if worker.poll() is not None:
            pytest.fail(f"worker exited early:\n{worker.stdout.read() if worker.stdout else ''}")
        time.sleep(0.3)
    assert profile is not None, "the worker did not refresh the profile within 60 s"
    assert profile.category_affinity == {"Women": 1.0, "Women > Dresses": 1.0}
    assert profile.brand_affinity == {"Maison Vela": 1.0}
