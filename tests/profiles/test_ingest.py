from __future__ import annotations

import base64
import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles.models import Event, EventKind, Identity
from tests.conftest import track


def test_track_is_stored_before_the_answer(ingest_client):
    response = ingest_client.post(
        "/api/v1/track",
        {"userId": "u1", "event": "Product Viewed", "messageId": "abc", "properties": {"product_id": "sku-1"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 1
    event = Event.objects.get(message_id="abc")
    assert (event.kind, event.item_id, event.name) == (EventKind.VIEW, "sku-1", "Product Viewed")
    assert Identity.objects.get(kind="user_id", value="u1").person_id == event.person_id


def test_replayed_batch_leaves_the_event_count_unchanged(ingest_client):
    batch = {"batch": [track("Product Viewed", user="u1", properties={"product_id": f"sku-{i}"}) for i in range(20)]}
    first = ingest_client.post("/api/v1/batch", batch, format="json")
    assert first.json()["accepted"] == 20
    count = Event.objects.count()

    again = ingest_client.post("/api/v1/batch", batch, format="json")

    assert again.status_code == 200
    assert again.json() == {"success": True, "accepted": 0, "duplicates": 20, "rejected": 0, "errors": []}
    assert Event.objects.count() == count == 20


def test_a_bad_event_is_named_and_does_not_stop_the_good_ones(ingest_client):
    batch = [track("Product Viewed", user="u1", properties={"product_id": "a"}) for _ in range(3)]
    batch[1]["timestamp"] = "yesterday-ish"

    response = ingest_client.post("/api/v1/batch", {"batch": batch}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert body["errors"] == [
        {
            "index": 1,
            "attr": "batch.1.timestamp",
            "code": "invalid",
            "detail": "Not an ISO 8601 date-time: 'yesterday-ish'.",
        }
    ]
    assert sorted(Event.objects.values_list("message_id", flat=True)) == sorted(
        [batch[0]["messageId"], batch[2]["messageId"]]
    )


def test_message_without_any_id_is_rejected_with_its_field(ingest_client):
    response = ingest_client.post("/api/v1/track", {"event": "Signed Up"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "required",
        "detail": "Either userId or anonymousId is required.",
        "attr": "userId",
    }
    assert Event.objects.count() == 0


def test_order_completed_stores_one_row_per_product(ingest_client):
    order = track(
        "Order Completed",
        user="u9",
        properties={
            "order_id": "o-1",
            "products": [
                {"product_id": "p1", "quantity": 2, "price": 9.5},
                {"product_id": "p2", "quantity": 1, "price": "20"},
            ],
        },
    )
    assert ingest_client.post("/api/v1/track", order, format="json").status_code == 200
    rows = list(Event.objects.order_by("position").values_list("kind", "item_id", "quantity", "price", "order_id"))
    assert [(k, i, q, float(p or 0), o) for k, i, q, p, o in rows] == [
        ("purchase", "p1", 2, 9.5, "o-1"),
        ("purchase", "p2", 1, 20.0, "o-1"),
    ]


def test_oversized_body_gets_413_not_500(ingest_client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    big = {"batch": [track("Product Viewed", user="u1", properties={"blob": "x" * 2000})]}
    response = ingest_client.post("/api/v1/batch", big, format="json")
    assert response.status_code == 413
    assert response.json()["type"] == "invalid_request"
    assert Event.objects.count() == 0


def test_oversized_single_message_in_a_batch_is_rejected_by_index(ingest_client, settings):
    settings.INGEST_MAX_EVENT_BYTES = 500
    batch = [track("Product Viewed", user="u1"), track("Product Viewed", user="u1", properties={"blob": "x" * 600})]
    body = ingest_client.post("/api/v1/batch", {"batch": batch}, format="json").json()
    assert body["accepted"] == 1
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["code"] == "too_large"


def test_malformed_json_gets_a_clear_400(ingest_client):
    response = ingest_client.post("/api/v1/batch", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request"
    assert "JSON" in response.json()["detail"]


def test_batch_over_500_is_refused_naming_the_batch(ingest_client):
    batch = [track("Product Viewed", user="u1") for _ in range(501)]
    response = ingest_client.post("/api/v1/batch", {"batch": batch}, format="json")
    assert response.status_code == 400
    assert response.json()["attr"] == "batch"
    assert Event.objects.count() == 0


def test_segment_clients_authenticate_with_basic_write_key(db, ingest_client):
    from personalization.models import ApiKey, KeyScope

    _, raw = ApiKey.issue("segment", KeyScope.INGEST)
    token = base64.b64encode(f"{raw}:".encode()).decode()
    ingest_client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    response = ingest_client.post("/api/v1/track", track("Signed Up", user="u1"), format="json")
    assert response.status_code == 200


def test_unknown_event_names_are_kept_as_sent(ingest_client):
    ingest_client.post("/api/v1/track", track("Wishlist Shared", anon="a1", properties={"x": 1}), format="json")
    event = Event.objects.get()
    assert (event.kind, event.name, event.properties) == ("other", "Wishlist Shared", {"x": 1})


def test_clock_skew_is_corrected_with_sent_at(ingest_client):
    message = track("Product Viewed", user="u1", timestamp="2020-01-01T10:00:00Z", sentAt="2020-01-01T10:05:00Z")
    ingest_client.post("/api/v1/track", message, format="json")
    event = Event.objects.get()
    # The client's clock was years behind: the event is placed 5 minutes before we received it.
    assert abs((event.received_at - event.timestamp).total_seconds() - 300) < 1


def test_a_batch_is_written_in_a_bounded_number_of_queries(ingest_client):
    batch = [track("Product Viewed", user=f"u{i % 50}", properties={"product_id": f"p{i}"}) for i in range(500)]
    with CaptureQueriesContext(connection) as queries:
        response = ingest_client.post("/api/v1/batch", {"batch": batch}, format="json")
    assert response.json()["accepted"] == 500
    assert len(queries) < 30, [q["sql"][:80] for q in queries.captured_queries]


def test_non_object_body_is_a_400_naming_no_field(ingest_client):
    response = ingest_client.post("/api/v1/track", data=json.dumps([1, 2]), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
