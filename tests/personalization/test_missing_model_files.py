"""Finding 10 of issue 12: with the active version's model files missing, a freshly started process
answered 500 on /recommendations and onboarding (warm processes kept serving). Now it answers the
fallback with ``degraded`` and the reason, like the surfaces do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from personalization import registry
from personalization.models import ModelVersion, VersionStatus


@pytest.fixture
def trained_then_files_lost(db, model_storage: Path, demo_first_fit) -> ModelVersion:
    call_command("seed_demo", people=150, days=60, verbosity=0)
    version = demo_first_fit()
    assert version.status == VersionStatus.ACTIVE, version.error
    shutil.rmtree(model_storage / version.artifact_dir)  # the disk was replaced, a volume not mounted…
    registry.forget_loaded_engine()  # a fresh process: nothing loaded yet
    return version


def test_finding_10_recommendations_degrade_instead_of_500(trained_then_files_lost, secret_client):
    version = trained_then_files_lost
    response = secret_client.get("/api/v1/recommendations", {"person": "user-00003"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["degraded"], body["degraded_reason"]) == (True, f"model files of version {version.pk} missing")
    assert body["items"], "the popular fallback still answers"
    assert "engine" not in {item["source"] for item in body["items"]}
    # Without a person the answer is the popular list whatever the model: it never needed one.
    anonymous = secret_client.get("/api/v1/recommendations")
    assert anonymous.status_code == 200 and anonymous.json()["items"]


def test_finding_10_onboarding_degrades_instead_of_500(trained_then_files_lost, secret_client):
    version = trained_then_files_lost
    response = secret_client.get("/api/v1/onboarding/user-00003")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["degraded"] is True
    assert f"model files of version {version.pk} missing" in body["degraded_reason"]


def test_surfaces_name_the_missing_files_not_the_cache(trained_then_files_lost):
    from personalization.surface_serving import ServeRequest, serve
    from personalization.surfaces import create_surface
    from profiles.services import find_person

    create_surface("homepage", "Homepage", {"size": 5}, by="tests")
    person = find_person("user-00003")
    answer = serve(ServeRequest(surface="homepage", person_id=person.pk if person else None))
    assert answer.degraded and "model files of version" in answer.degraded_reason
    assert "cache unavailable" not in answer.degraded_reason
    assert answer.items


def test_a_healthy_answer_is_not_degraded(db, model_storage, secret_client):
    call_command("seed_demo", people=150, days=60, verbosity=0)
    body = secret_client.get("/api/v1/recommendations", {"person": "user-00003"}).json()
    assert body["degraded"] is False and body["degraded_reason"] == ""
