"""The surface configuration API: create, read, change (a new version with its author and note),
versions, rollback; every invalid setting is refused with the field named and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from personalization.models import Surface, SurfaceVersion
from personalization.surface_serving import ServeRequest, serve
from personalization.surfaces import create_surface
from tests.access import role_user, session_client


@pytest.fixture
def homepage(db: Any, make_item: Any) -> Surface:
    make_item("lamp", title="Floor Lamp")
    make_item("kettle", title="Kettle")
    return create_surface("homepage", "Homepage", {"size": 8}, by="tests")


def test_create_read_and_list(secret_client, homepage):
    body = {
        "key": "product-page",
        "name": "Product page",
        "kind": "carousel",
        "config": {"size": 6, "weights": {"relevance": 1, "margin": 0.5}, "curated_items": ["lamp"]},
        "note": "First cut",
    }
    created = secret_client.post("/api/v1/surfaces", body, format="json")
    assert created.status_code == 201, created.json()
    answer = created.json()
    assert answer["version"] == 1 and answer["note"] == "First cut" and answer["changed_by"] == "API key tests"
    assert answer["config"]["weights"] == {"relevance": 1.0, "margin": 0.5}
    assert answer["config"]["curated_items"] == ["lamp"] and answer["config"]["max_share_per_category"] == 1.0
    version = SurfaceVersion.objects.get(surface__key="product-page")
    assert version.config["size"] == 6 and version.created_by == "API key tests"

    read = secret_client.get("/api/v1/surfaces/product-page").json()
    assert read["kind"] == "carousel" and read["config"]["size"] == 6
    keys = [s["key"] for s in secret_client.get("/api/v1/surfaces").json()]
    assert keys == ["homepage", "product-page"]


def test_a_change_is_a_new_version_that_serves_and_a_rollback_restores(db, homepage):
    marketer = session_client(role_user("mara", "Marketer"))
    changed = marketer.patch(
        "/api/v1/surfaces/homepage",
        {"config": {"size": 3, "weights": {"margin": 2}, "max_share_per_category": 0.5}, "note": "Margin push"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    answer = changed.json()
    assert answer["version"] == 2 and answer["changed_by"] == "mara" and answer["note"] == "Margin push"
    # Merged: relevance kept, margin added.
    assert answer["config"]["weights"]["relevance"] == 1.0 and answer["config"]["weights"]["margin"] == 2.0
    assert len(serve(ServeRequest(surface="homepage", log=False)).items) <= 3
    assert serve(ServeRequest(surface="homepage", log=False)).version == 2

    versions = marketer.get("/api/v1/surfaces/homepage/versions").json()
    assert [(v["number"], v["current"], v["created_by"]) for v in versions] == [
        (2, True, "mara"),
        (1, False, "tests"),
    ]
    back = marketer.post("/api/v1/surfaces/homepage/rollback", {"version": 1, "note": "Too narrow"}, format="json")
    assert back.status_code == 200, back.json()
    assert back.json()["version"] == 3 and back.json()["config"]["size"] == 8
    latest = SurfaceVersion.objects.get(surface=homepage, number=3)
    assert latest.note == "Rollback to version 1: Too narrow" and latest.created_by == "mara"
    assert serve(ServeRequest(surface="homepage", log=False)).version == 3


@pytest.mark.parametrize(
    ("config", "attr"),
    [
        ({"size": 0}, "config.size"),
        ({"size": "many"}, "config.size"),
        ({"weights": {"charm": 1}}, "config.weights.charm"),
        ({"weights": {"margin": -1}}, "config.weights.margin"),
        ({"weights": {"relevance": 0}}, "config.weights"),
        ({"max_share_per_category": 1.5}, "config.max_share_per_category"),
        ({"max_share_per_brand": -0.1}, "config.max_share_per_brand"),
        ({"min_share_outside_top_categories": 2}, "config.min_share_outside_top_categories"),
        ({"exploration_share": 1.2}, "config.exploration_share"),
        ({"under_exposed_below": -3}, "config.under_exposed_below"),
        ({"new_item_days": -1}, "config.new_item_days"),
        ({"source_quotas": {"astrology": 10}}, "config.source_quotas.astrology"),
        ({"source_quotas": {"covisitation": -1}}, "config.source_quotas.covisitation"),
        ({"curated_items": ["lamp", "no-such-item"]}, "config.curated_items.1"),
        ({"exclude_categories": "Lamps"}, "config.exclude_categories"),
        ({"in_stock_only": "perhaps"}, "config.in_stock_only"),
        ({"cold_start": [{"when": {"horoscope": "leo"}}]}, "config.cold_start.0.when.horoscope"),
        ({"cold_start": [{"when": {"country": "DE"}, "items": ["ghost"]}]}, "config.cold_start.0.items.0"),
        ({"colour": "red"}, "config.colour"),
    ],
)
def test_an_invalid_setting_is_refused_naming_the_field(secret_client, homepage, config, attr):
    response = secret_client.patch("/api/v1/surfaces/homepage", {"config": config}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["type"] == "validation_error" and error["attr"] == attr, error
    assert SurfaceVersion.objects.filter(surface=homepage).count() == 1


def test_create_refuses_a_taken_key_and_rollback_an_unknown_version(secret_client, homepage):
    taken = secret_client.post("/api/v1/surfaces", {"key": "homepage", "name": "Again"}, format="json")
    assert taken.status_code == 400 and taken.json()["attr"] == "key"
    bad_key = secret_client.post("/api/v1/surfaces", {"key": "has space", "name": "X"}, format="json")
    assert bad_key.status_code == 400 and bad_key.json()["attr"] == "key"
    missing = secret_client.post("/api/v1/surfaces/homepage/rollback", {"version": 9}, format="json")
    assert missing.status_code == 400 and missing.json()["attr"] == "version"
    assert secret_client.get("/api/v1/surfaces/nowhere").status_code == 404
    assert Surface.objects.count() == 1 and SurfaceVersion.objects.count() == 1


def test_an_analyst_reads_and_cannot_change(db, homepage):
    analyst = session_client(role_user("ana", "Analyst"))
    assert analyst.get("/api/v1/surfaces/homepage").status_code == 200
    assert analyst.get("/api/v1/surfaces/homepage/versions").status_code == 200
    refused = analyst.patch("/api/v1/surfaces/homepage", {"config": {"size": 2}}, format="json")
    assert refused.status_code == 403
    assert analyst.post("/api/v1/surfaces/homepage/rollback", {"version": 1}, format="json").status_code == 403
    assert SurfaceVersion.objects.filter(surface=homepage).count() == 1


def test_an_administrator_may_change(db, homepage):
    admin = session_client(role_user("adam", "Administrator"))
    response = admin.patch("/api/v1/surfaces/homepage", {"config": {"exploration_share": 0.1}}, format="json")
    assert response.status_code == 200 and response.json()["config"]["exploration_share"] == 0.1
