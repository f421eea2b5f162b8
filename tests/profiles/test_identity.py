from __future__ import annotations

from profiles.models import Event, Identity, Person, PersonMerge
from profiles.services import find_person, record_consent
from tests.conftest import person_token, track


def person(key: str) -> Person:
    found = find_person(key)
    assert found is not None, key
    return found


def test_identify_merges_an_anonymous_history_into_the_known_person(ingest_client):
    ingest_client.post("/api/v1/track", track("Product Viewed", anon="anon-1", properties={"product_id": "a"}))
    ingest_client.post("/api/v1/track", track("Order Completed", user="user-7", properties={"product_id": "b"}))
    anonymous = find_person("anon-1")
    known = find_person("user-7")
    assert anonymous and known and anonymous.pk != known.pk

    # user-7 is known: with the ingest key, their first email needs the backend's person token.
    verified = {"personToken": person_token(ingest_client, "user-7")}
    response = ingest_client.post(
        "/api/v1/identify",
        {"userId": "user-7", "anonymousId": "anon-1", "traits": {"email": "Ann@Example.com"}, "context": verified},
    )

    assert response.status_code == 200
    merged = person("anon-1")
    assert merged.pk == known.pk
    assert set(Event.objects.filter(person=merged).values_list("item_id", flat=True)) == {"a", "b", ""}
    assert Person.objects.get(pk=anonymous.pk).merged_into_id == known.pk
    merge = PersonMerge.objects.get()
    assert (merge.source_person_id, merge.target_id, merge.events_moved) == (anonymous.pk, known.pk, 1)
    assert person("ann@example.com").pk == known.pk
    assert merged.traits["email"] == "Ann@Example.com"


def test_one_batch_linking_three_identities_ends_with_one_person(ingest_client):
    batch = [
        track("Product Viewed", anon="a"),
        track("Product Viewed", anon="a", user="u"),
        {"type": "identify", "userId": "u", "traits": {"email": "u@example.com"}, "messageId": "i1"},
    ]
    assert ingest_client.post("/api/v1/batch", {"batch": batch}).json()["accepted"] == 3
    assert Person.objects.filter(merged_into=None).count() == 1
    assert Identity.objects.values("person_id").distinct().count() == 1


def test_merge_keeps_the_newer_consent_decision(ingest_client):
    ingest_client.post("/api/v1/track", track("Product Viewed", anon="a2"))
    ingest_client.post("/api/v1/track", track("Product Viewed", user="u2"))
    record_consent(person("u2").pk, "email_marketing", True, "form")
    record_consent(person("a2").pk, "email_marketing", False, "banner")  # newer

    ingest_client.post("/api/v1/identify", {"userId": "u2", "anonymousId": "a2", "messageId": "x"})

    survivor = person("u2")
    assert list(survivor.consents.values_list("purpose", "granted")) == [("email_marketing", False)]
    assert survivor.consent_history.count() == 2
