"""Finding 13 of issue 12: a request with no person or an unknown anonymous id answered
``personalized: true``. Now ``personalized`` is true only when the answer used the person's own
events or this session's context, and ``personalized_by`` says which."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from catalog.models import Item
from experiments.serving import forget_local_configuration
from personalization import registry, serving
from personalization.item_table import forget_item_table
from personalization.models import ModelVersion, VersionStatus
from personalization.surfaces import create_surface, forget_live_surfaces
from profiles.services import find_person

API = "/api/v1/surfaces/homepage/recommendations"


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("honest-label-models")


@pytest.fixture
def engine(db: Any, settings: Any, storage: Path, demo_first_fit: Any) -> Iterator[ModelVersion]:
    """The demo store with an active engine (its first fit, trained once in the session)."""
    settings.MODEL_STORAGE_DIR = storage
    for forget in (registry.forget_loaded_engine, forget_live_surfaces, forget_item_table, forget_local_configuration):
        forget()
    call_command("seed_demo", people=150, days=60, verbosity=0)
    version = demo_first_fit()
    assert version.status == VersionStatus.ACTIVE, version.error
    registry.forget_loaded_engine()
    yield version
    registry.forget_loaded_engine()
    forget_item_table()


def _surface() -> None:
    create_surface("homepage", "Homepage", {"size": 10}, by="tests")


def test_finding_13_no_person_or_an_unknown_anonymous_id_is_not_personalized(engine, secret_client):
    _surface()
    for query in ({}, {"anonymous_id": "anon-nobody-has-seen"}, {"person": "nobody@example.com"}):
        body = secret_client.get(API, query).json()
        assert (body["personalized"], body["personalized_by"]) == (False, None), (query, body)
        assert body["items"]
    for query in ({}, {"person": "nobody-at-all"}):
        body = secret_client.get("/api/v1/recommendations", query).json()
        assert (body["personalized"], body["personalized_by"]) == (False, None), (query, body)


def test_a_known_person_with_history_is_personalized_by_history(engine, secret_client):
    _surface()
    body = secret_client.get(API, {"person": "user-00003"}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "history")
    body = secret_client.get("/api/v1/recommendations", {"person": "user-00003"}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "history")


def test_an_unknown_visitor_with_an_item_on_screen_is_personalized_by_the_session(engine, secret_client):
    _surface()
    on_screen = Item.objects.filter(active=True).order_by("external_id").values_list("external_id", flat=True)[0]
    body = secret_client.get(API, {"item": on_screen}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "session")


def test_a_known_person_the_model_knows_nothing_of_is_not_personalized(engine):
    from profiles.services import ingest_messages

    ingest_messages([{"type": "identify", "userId": "brand-new", "traits": {"email": "new@example.com"}}])
    person = find_person("brand-new")
    assert person is not None
    answer = serving.recommend(person.pk, 10)
    assert (answer.personalized, answer.personalized_by) == (False, None)


def test_finding_13_the_readme_and_the_campaign_docs_state_the_delivery_guarantee_exactly():
    """The README said "exactly-once" delivery while a message whose worker died awaiting the server's
    250 is marked unconfirmed and not resent: both now say at most once for that moment."""
    root = Path(__file__).resolve().parents[2]
    for name in ("README.md", "docs/campaigns.md"):
        text = " ".join((root / name).read_text().split())
        promises = [
            m.group(0) for m in re.finditer(r"exactly[- ]once", text, re.I) if not text[: m.start()].endswith("not ")
        ]
        assert not promises, f"{name} promises exactly-once delivery"
        assert "at most once" in text and "unconfirmed" in text and "not resent" in text.replace("**", ""), name


def test_a_long_list_is_ranked_from_at_least_as_many_candidates_as_it_asks_for(engine, secret_client, monkeypatch):
    """The plain API asks the engine for three items a place: for 100 places, 300 items, which the
    engine's usual 200 candidates could not hold."""
    from personalization.engine.engine import Engine

    asked: list[tuple[int, int | None]] = []
    recommend = Engine.recommend

    def spied(self: Engine, person: object, k: int = 20, n_candidates: int | None = None) -> object:
        asked.append((k, n_candidates))
        return recommend(self, person, k, n_candidates)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "recommend", spied)
    body = secret_client.get("/api/v1/recommendations", {"person": "user-00003", "limit": 100}).json()
    assert body["personalized"] is True
    assert asked == [(300, 300)]
