"""Exposures are logged once per person, where the variant is shown, and only while the experiment runs."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from experiments import services
from experiments.models import Exposure
from profiles.services import record_consent
from tests.conftest import person_token
from tests.experiments.conftest import make_people

pytestmark = pytest.mark.django_db


def test_an_exposure_is_logged_once_however_often_the_variant_is_shown(running):
    experiment = running("once")
    [person] = make_people(1)
    variant = services.assign("once", person).variant  # type: ignore[union-attr]
    assert services.log_exposure("once", person, variant) is True
    assert services.log_exposure("once", person, variant) is False
    cache.clear()  # the shared-cache gate forgets; the database still says no
    assert services.log_exposure("once", person, variant) is False
    exposure = Exposure.objects.get(experiment=experiment)
    assert (exposure.person_id, exposure.variant.key, exposure.allocation_version) == (person, variant, 1)


def test_exposures_through_the_api_accept_an_ingest_key(running, ingest_client):
    running("api-exposure")
    make_people(1)
    token = person_token(ingest_client, "u0")
    query = {"person": "u0", "person_token": token}
    answer = ingest_client.get("/api/v1/experiments/assignments", query).json()["assignments"][0]
    url = "/api/v1/experiments/api-exposure/exposures"
    first = ingest_client.post(url, {**query, "variant": answer["variant"]})
    again = ingest_client.post(url, {**query, "variant": answer["variant"]})
    assert (first.status_code, first.json()) == (200, {"logged": True})
    assert (again.status_code, again.json()) == (200, {"logged": False})
    assert Exposure.objects.count() == 1


def test_unknown_people_and_variants_are_named_in_the_error(running, ingest_client):
    running("strict")
    make_people(1)
    url = "/api/v1/experiments/strict/exposures"
    unknown_person = ingest_client.post(url, {"person": "nobody", "variant": "control"})
    assert unknown_person.status_code == 400 and unknown_person.json()["attr"] == "person"
    token = person_token(ingest_client, "u0")
    unknown_variant = ingest_client.post(url, {"person": "u0", "person_token": token, "variant": "purple"})
    assert unknown_variant.status_code == 400 and unknown_variant.json()["attr"] == "variant"
    assert ingest_client.post("/api/v1/experiments/nope/exposures", {"person": "u0", "variant": "a"}).status_code == 404
    assert Exposure.objects.count() == 0


def test_an_unknown_person_gets_no_assignments(running, ingest_client):
    running("anyone")
    body = ingest_client.get("/api/v1/experiments/assignments", {"person": "never-seen"}).json()
    assert body == {"person": "never-seen", "known": False, "assignments": []}


def test_no_exposure_is_logged_when_the_experiment_is_not_running_or_analytics_was_refused(running, staff):
    experiment = running("paused")
    first, second = make_people(2)
    record_consent(second, "analytics", False, source="banner")
    assigned = services.assign("paused", second)
    assert assigned is not None
    assert services.log_exposure("paused", second, assigned.variant) is False
    services.stop(experiment, staff)
    assert services.log_exposure("paused", first, "control") is False
    assert Exposure.objects.count() == 0
