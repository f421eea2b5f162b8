"""Finding 13 of issue 12: a request with no person or an unknown anonymous id answered
``personalized: true``. Now ``personalized`` is true only when the answer used the person's own
events or this session's context, and ``personalized_by`` says which."""

from __future__ import annotations

from catalog.models import Item
from personalization import serving
from profiles.services import find_person
from tests.personalization.test_surfaces_serving import _surface, engine, shared_storage  # noqa: F401

API = "/api/v1/surfaces/homepage/recommendations"


def test_finding_13_no_person_or_an_unknown_anonymous_id_is_not_personalized(engine, secret_client):  # noqa: F811
    _surface()
    for query in ({}, {"anonymous_id": "anon-nobody-has-seen"}, {"person": "nobody@example.com"}):
        body = secret_client.get(API, query).json()
        assert (body["personalized"], body["personalized_by"]) == (False, None), (query, body)
        assert body["items"]
    for query in ({}, {"person": "nobody-at-all"}):
        body = secret_client.get("/api/v1/recommendations", query).json()
        assert (body["personalized"], body["personalized_by"]) == (False, None), (query, body)


def test_a_known_person_with_history_is_personalized_by_history(engine, secret_client):  # noqa: F811
    _surface()
    body = secret_client.get(API, {"person": "user-00003"}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "history")
    body = secret_client.get("/api/v1/recommendations", {"person": "user-00003"}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "history")


def test_an_unknown_visitor_with_an_item_on_screen_is_personalized_by_the_session(engine, secret_client):  # noqa: F811
    _surface()
    on_screen = Item.objects.filter(active=True).order_by("external_id").values_list("external_id", flat=True)[0]
    body = secret_client.get(API, {"item": on_screen}).json()
    assert (body["personalized"], body["personalized_by"]) == (True, "session")


def test_a_known_person_the_model_knows_nothing_of_is_not_personalized(engine):  # noqa: F811
    from profiles.services import ingest_messages

    ingest_messages([{"type": "identify", "userId": "brand-new", "traits": {"email": "new@example.com"}}])
    person = find_person("brand-new")
    assert person is not None
    answer = serving.recommend(person.pk, 10)
    assert (answer.personalized, answer.personalized_by) == (False, None)
