from __future__ import annotations

from profiles.models import ConsentChange
from tests.conftest import track


def _seed_history(ingest_client, make_item):
    # u1 viewed a1; others viewed a1 together with b*, so co-visitation has something to say.
    for sku in ("a1", "b1", "b2", "c1", "c2", "c3"):
        make_item(sku)
    for other in ("o1", "o2", "o3"):
        for sku in ("a1", "b1", "b2"):
            ingest_client.post("/api/v1/track", track("Product Viewed", user=other, properties={"product_id": sku}))
    for _ in range(5):
        for sku in ("c1", "c2", "c3"):
            ingest_client.post("/api/v1/track", track("Order Completed", user="buyer", properties={"product_id": sku}))
    ingest_client.post("/api/v1/track", track("Product Viewed", user="u1", properties={"product_id": "a1"}))


def test_consent_put_get_and_history(secret_client):
    response = secret_client.put(
        "/api/v1/people/u1/consent", {"purposes": {"email_marketing": True}, "source": "signup form"}
    )
    assert response.status_code == 200
    states = {c["purpose"]: c for c in response.json()["consents"]}
    assert states["email_marketing"]["granted"] is True
    assert states["email_marketing"]["source"] == "signup form"
    assert states["personalization"]["source"] == "default"

    secret_client.put("/api/v1/people/u1/consent", {"purposes": {"email_marketing": False}, "source": "unsubscribe"})
    body = secret_client.get("/api/v1/people/u1/consent").json()
    assert [(h["granted"], h["source"]) for h in body["history"]] == [(False, "unsubscribe"), (True, "signup form")]


def test_unknown_purpose_is_named(secret_client):
    response = secret_client.put("/api/v1/people/u1/consent", {"purposes": {"telepathy": True}})
    assert response.status_code == 400
    assert response.json()["attr"] == "purposes"
    assert "telepathy" in response.json()["detail"]
    assert ConsentChange.objects.count() == 0


def test_consent_of_unknown_person_is_404(secret_client):
    response = secret_client.get("/api/v1/people/nobody/consent")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


def test_ingest_key_cannot_read_consent(ingest_client):
    response = ingest_client.get("/api/v1/people/u1/consent")
    assert response.status_code == 403
    assert response.json()["type"] == "permission_error"


def test_withdrawing_personalization_changes_the_very_next_recommendation(secret_client, ingest_client, make_item):
    _seed_history(ingest_client, make_item)
    before = secret_client.get("/api/v1/recommendations?person=u1&limit=3").json()
    assert before["personalized"] is True
    assert {i["item_id"] for i in before["items"][:2]} == {"b1", "b2"}  # co-visited with a1, ahead of popular c*

    secret_client.put("/api/v1/people/u1/consent", {"purposes": {"personalization": False}})
    after = secret_client.get("/api/v1/recommendations?person=u1&limit=3").json()

    assert after["personalized"] is False
    assert {i["source"] for i in after["items"]} == {"popular"}
    assert [i["item_id"] for i in after["items"]] == [
        i["item_id"] for i in secret_client.get("/api/v1/recommendations?limit=3").json()["items"]
    ]
