"""The people endpoints and commands: the support summary, the streamed export, erasure with its receipt,
who may call them, and the refusal of events that name an erased person."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.test import APIClient

from personalization.models import Impression, Surface
from profiles.erased_keys import refuse_erased
from profiles.models import ErasureReceipt, Event, Identity, Person
from profiles.segment import parse_message
from profiles.services import ingest_messages, record_consent

pytestmark = pytest.mark.django_db

USER = "customer-0042"
EMAIL = "grace.hopper@example.org"
ANON = "anon-tablet-1b2c3d"


def _person() -> Person:
    t0 = timezone.now() - timedelta(days=1)
    messages = [
        {"type": "track", "event": "Product Viewed", "anonymousId": ANON, "messageId": "m-1",
         "properties": {"product_id": "sku-1"}, "timestamp": t0.isoformat()},
        {"type": "identify", "userId": "customer-0042-old", "messageId": "m-2", "timestamp": t0.isoformat()},
        {"type": "identify", "userId": USER, "messageId": "m-3", "traits": {"email": EMAIL, "name": "Grace"}},
        {"type": "track", "event": "Order Completed", "userId": USER, "messageId": "m-4",
         "properties": {"products": [{"product_id": "sku-1", "price": 9.5}]}},
    ]  # fmt: skip
    assert not ingest_messages(messages, refresh=False).rejected
    # The tablet's anonymous visitor signs in: merged into Grace.
    assert not ingest_messages(
        [{"type": "identify", "userId": USER, "anonymousId": ANON, "messageId": "m-5"}], refresh=False
    ).rejected
    person = Person.objects.get(identities__value=USER)
    record_consent(person.pk, "email_marketing", True, source="form")
    surface = Surface.objects.create(key="homepage", name="Homepage")
    merged = Person.objects.get(merged_into=person)
    Impression.objects.create(
        recommendation_id="r-1", surface=surface, person_id=merged.pk, item_ids=["sku-1"], served_at=timezone.now()
    )
    return person


def _session(*permissions: str) -> APIClient:
    user = User.objects.create_user(f"staff-{len(permissions)}-{'-'.join(permissions)}"[:150], is_staff=True)
    for permission in permissions:
        app, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    client = APIClient()
    client.force_login(user)
    return client


def _export(response: Any) -> dict[str, Any]:
    assert isinstance(response, StreamingHttpResponse)
    return json.loads(b"".join(response.streaming_content))  # type: ignore[arg-type]


def test_the_summary_tells_support_who_the_person_is(secret_client):
    person = _person()
    merged = Person.objects.get(merged_into=person)
    answer = secret_client.get(f"/api/v1/people/{EMAIL.upper()}")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["person_id"] == person.pk and body["merged_people"] == 1
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("anonymous_id", ANON),
        ("user_id", USER),
        ("email", EMAIL),
    }
    assert body["traits"]["email"] == EMAIL
    assert {c["purpose"]: c["granted"] for c in body["consents"]}["email_marketing"] is True
    assert body["counts"]["profiles.Event"] == Event.objects.filter(person__in=[person.pk, merged.pk]).count() == 4
    assert body["counts"]["personalization.Impression"] == 1
    assert body["last_seen_at"] is not None


def test_the_export_streams_everything_held_about_the_person_and_who_was_merged_into_them(secret_client):
    person = _person()
    merged = Person.objects.get(merged_into=person)
    response = secret_client.get(f"/api/v1/people/{USER}/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = _export(response)
    assert sorted(document["people"]) == sorted([person.pk, merged.pk])
    tables = document["tables"]
    assert {row["id"] for row in tables["profiles.Person"]} == {person.pk, merged.pk}
    assert {row["value"] for row in tables["profiles.Identity"]} >= {USER, EMAIL, ANON}
    stored = Event.objects.filter(person_id__in=[person.pk, merged.pk]).count()
    assert len(tables["profiles.Event"]) == stored
    # The anonymous tablet view came along with the merge, properties and all.
    assert any(
        row["properties"] == {"product_id": "sku-1"} and row["kind"] == "view" for row in tables["profiles.Event"]
    )
    assert [row["purpose"] for row in tables["profiles.ConsentChange"]] == ["email_marketing"]
    assert [row["person_id"] for row in tables["personalization.Impression"]] == [merged.pk]
    assert [row["source_person_id"] for row in tables["profiles.PersonMerge"]] == [merged.pk]
    for label in ("campaigns.Message", "campaigns.ApprovalAction", "experiments.Exposure", "profiles.Profile"):
        assert tables[label] == []


def test_the_export_command_writes_the_same_document(tmp_path):
    person = _person()
    out = tmp_path / "grace.json"
    call_command("export_person", EMAIL, "--out", str(out), stderr=StringIO())
    document = json.loads(out.read_text())
    assert document["person_id"] == person.pk
    assert {row["value"] for row in document["tables"]["profiles.Identity"]} >= {USER, EMAIL, ANON}
    with pytest.raises(CommandError):
        call_command("export_person", "nobody@example.org")


def test_delete_erases_and_answers_the_receipt(secret_client):
    person = _person()
    answer = secret_client.delete(f"/api/v1/people/{USER}")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    receipt = ErasureReceipt.objects.get()
    assert body["receipt"] == str(receipt.pk) and body["people"] == 2
    assert body["requested_by"].startswith("api-key:sk_")
    assert body["counts"]["profiles.Person"] == 2 and body["counts"]["personalization.Impression"] == 1
    assert not Person.objects.filter(pk=person.pk).exists()
    assert not Identity.objects.filter(value__in=[USER, EMAIL, ANON]).exists()
    # Asked again, the answer says it was erased and by which receipt (the error shape, code "erased").
    again = secret_client.delete(f"/api/v1/people/{USER}")
    assert again.status_code == 404
    assert again.json() == {
        "type": "not_found",
        "code": "erased",
        "detail": f"The person known by {USER!r} was erased (receipt {receipt.pk}).",
        "attr": None,
    }
    assert secret_client.get(f"/api/v1/people/{EMAIL}").json()["code"] == "erased"
    unknown = secret_client.get("/api/v1/people/nobody-here")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_the_erase_command_prints_the_receipt():
    _person()
    out = StringIO()
    call_command("erase_person", ANON, "--requested-by", "dpo@shop.test", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["requested_by"] == "dpo@shop.test" and printed["people"] == 2
    assert ErasureReceipt.objects.get().requested_by == "dpo@shop.test"
    with pytest.raises(CommandError, match="erased"):
        call_command("erase_person", USER, "--requested-by", "dpo@shop.test")


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("get", f"/api/v1/people/{USER}", "profiles.view_person"),
        ("get", f"/api/v1/people/{USER}/export", "profiles.export_person"),
        ("delete", f"/api/v1/people/{USER}", "profiles.erase_person"),
    ],
)
def test_only_the_secret_key_or_the_permission_of_the_action_may_call(ingest_client, method, path, permission):
    person = _person()
    events = Event.objects.count()
    other = {
        "profiles.view_person": "profiles.erase_person",
        "profiles.export_person": "profiles.view_person",
        "profiles.erase_person": "profiles.export_person",
    }[permission]
    for client, why in (
        (ingest_client, "the browser-safe key"),
        (_session(other), "a session with another permission"),
        (_session(), "a staff session without permissions"),
    ):
        answer = getattr(client, method)(path)
        assert answer.status_code == 403, why
        assert answer.json()["type"] == "permission_error"
    assert getattr(APIClient(), method)(path).status_code == 401
    # Nothing changed.
    assert Person.objects.filter(pk=person.pk).exists() and Event.objects.count() == events
    assert not ErasureReceipt.objects.exists()
    allowed = getattr(_session(permission), method)(path)
    assert allowed.status_code == 200


def test_replayed_events_for_an_erased_person_are_refused_naming_the_field(secret_client, ingest_client):
    _person()
    assert secret_client.delete(f"/api/v1/people/{EMAIL}").status_code == 200
    events = Event.objects.count()
    batch = [
        {"type": "track", "event": "Product Viewed", "anonymousId": "someone-else-99", "messageId": "n-1"},
        {"type": "track", "event": "Product Viewed", "userId": USER, "messageId": "m-4"},  # a replay
        {"type": "track", "event": "Product Viewed", "anonymousId": ANON, "messageId": "n-3"},
        {"type": "identify", "userId": "new-person-7", "traits": {"email": EMAIL.upper()}, "messageId": "n-4"},
    ]
    answer = ingest_client.post("/api/v1/batch", {"batch": batch}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"] == 3
    assert [(e["index"], e["attr"], e["code"]) for e in body["errors"]] == [
        (1, "batch.1.userId", "erased"),
        (2, "batch.2.anonymousId", "erased"),
        (3, "batch.3.traits.email", "erased"),
    ]
    assert Event.objects.count() == events + 1
    assert not Identity.objects.filter(value__in=[USER, EMAIL, ANON]).exists()
    # A single message is answered 400 with the field named.
    single = ingest_client.post(
        "/api/v1/track", {"event": "Product Viewed", "userId": USER, "messageId": "n-9"}, format="json"
    )
    assert single.status_code == 400 and single.json()["attr"] == "userId" and single.json()["code"] == "erased"


def test_the_erased_check_is_one_query_per_batch(django_assert_num_queries):
    now = timezone.now()
    parsed = [
        (n, parse_message({"type": "track", "event": "View", "userId": f"u-{n}", "anonymousId": f"a-{n}",
                           "messageId": f"q-{n}"}, now, None))
        for n in range(500)
    ]  # fmt: skip
    with django_assert_num_queries(1):
        kept, refused = refuse_erased(parsed)
    assert len(kept) == 500 and refused == []


def test_the_schema_documents_the_people_endpoints(secret_client):
    schema = secret_client.get("/api/schema/?format=json")
    paths = json.loads(schema.content)["paths"]
    person = paths["/api/v1/people/{person_key}"]
    assert set(person) >= {"get", "delete"}
    assert {"200", "401", "403", "404"} <= set(person["delete"]["responses"])
    assert "/api/v1/people/{person_key}/export" in paths
    error = person["delete"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ApiError")


def test_recording_consent_cannot_bring_an_erased_person_back(secret_client):
    _person()
    assert secret_client.delete(f"/api/v1/people/{USER}").status_code == 200
    people = Person.objects.count()
    answer = secret_client.put(f"/api/v1/people/{USER}/consent", {"purposes": {"email_marketing": True}})
    assert answer.status_code == 404 and answer.json()["code"] == "erased"
    assert Person.objects.count() == people and not Identity.objects.filter(value=USER).exists()
    # Someone never erased still gets a person with their first consent.
    assert secret_client.put("/api/v1/people/newcomer-1/consent", {"purposes": {"analytics": True}}).status_code == 200


def test_an_erased_customer_who_comes_back_can_be_let_in_again(secret_client):
    _person()
    assert secret_client.delete(f"/api/v1/people/{EMAIL}").status_code == 200
    signup = {"type": "identify", "userId": "customer-0042-new", "traits": {"email": EMAIL}, "messageId": "back-1"}
    assert ingest_messages([signup]).rejected[0].attr == "traits.email"
    out = StringIO()
    call_command("allow_return", EMAIL, stdout=out)
    assert "accepted again" in out.getvalue()
    assert not ingest_messages([signup]).rejected
    assert Identity.objects.filter(value=EMAIL).exists()
    # The receipt stays, with the other keys still refused.
    assert ErasureReceipt.objects.count() == 1
    assert ingest_messages([{**signup, "userId": USER, "messageId": "back-2"}]).rejected[0].attr == "userId"
    with pytest.raises(CommandError):
        call_command("allow_return", EMAIL)
