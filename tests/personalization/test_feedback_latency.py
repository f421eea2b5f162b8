"""Feedback-loop latency (a): a click reaches the next answer for that person as soon as it is stored.

Measured through the API with the hot profile on: the visitor's answer before the view is the
newcomer's; the one right after it is built from the view. The model page states the result and the
production figure of the daily watch; (b), the weights, follows the retraining schedule.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from personalization import registry
from personalization.engine.engine import Engine
from personalization.models import ModelVersion, VersionStatus
from personalization.surfaces import create_surface, forget_live_surfaces
from tests.access import role_user


@pytest.fixture
def trained(db, settings, tmp_path: Path, demo_first_fit) -> Iterator[ModelVersion]:
    settings.MODEL_STORAGE_DIR = tmp_path
    settings.SURFACE_IMPRESSIONS_INLINE = True
    registry.forget_loaded_engine()
    forget_live_surfaces()
    call_command("seed_demo", people=150, days=60, verbosity=0)
    version = demo_first_fit()
    assert version.status == VersionStatus.ACTIVE, version.error
    registry.forget_loaded_engine()
    yield version
    registry.forget_loaded_engine()


def test_a_view_reaches_the_very_next_answer(trained, secret_client, settings, django_capture_on_commit_callbacks):
    settings.HOT_PROFILE_SECONDS = 600  # as in production: serving reads the person from Redis
    create_surface("homepage", "Homepage", {"size": 10}, by="tests")
    item = Engine.load(registry.artifact_path(trained)).item_ids[0]
    url = "/api/v1/surfaces/homepage/recommendations?person=latency-visitor"
    with django_capture_on_commit_callbacks(execute=True):
        signed_up = {"userId": "latency-visitor", "event": "Signed Up", "messageId": "lat-1"}
        assert secret_client.post("/api/v1/track", signed_up, format="json").status_code == 200
    before = secret_client.get(url).json()
    secret_client.get(url)  # the second read keeps the person's copy in Redis
    assert before["personalized"] is False

    started = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):  # the ingest's transaction commits here
        view = {
            "userId": "latency-visitor",
            "event": "Product Viewed",
            "messageId": "lat-2",
            "timestamp": timezone.now().isoformat(),
            "properties": {"product_id": item},
        }
        assert secret_client.post("/api/v1/track", view, format="json").status_code == 200
    after = secret_client.get(url).json()
    elapsed = time.perf_counter() - started

    assert after["personalized"] is True and after["personalized_by"] == "history", after
    assert after["strategy"] == "personalized" and after["model_version"] == trained.pk
    print(f"view stored → next answer built from it: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0


def test_the_model_page_reports_both_latencies(trained):
    analyst = Client()
    analyst.force_login(role_user("ana", "Analyst"))
    page = analyst.get("/model/").content.decode()

    assert "…the next answer for that person" in page and "hot profile" in page
    weights = page[page.index('id="latency-weights"') :]
    assert "every day at 03:30 (UTC); next run" in weights
    assert f"The active version v{trained.pk} was activated" in weights
    assert "A click made now reaches the weights within" in weights
