"""The findings of the trust audit about keys and permissions, each reproduced and now refused.

- Finding 5: the API ignored Django permissions for staff users.
- Finding 7: the browser-safe (ingest) key read people: recommendations for any email or user id.
- Finding 8: the browser-safe key rewrote people: a known person's email, merges, internal event ids.
"""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign
from catalog.models import Item
from experiments.models import Experiment
from personalization.api.person_tokens import is_valid, sign
from personalization.models import IDENTITY_SECRET_GRACE, ApiKey, KeyScope
from personalization.surfaces import create_surface
from profiles import services as profiles
from profiles.models import Consent, Event, Identity, Person, PersonMerge
from tests.access import PASSWORD, api_client, build_world, role_user, session_client
from tests.conftest import person_token, track
from tests.personalization.test_surfaces_serving import engine, shared_storage  # noqa: F401  (fixtures)

PERSONAL_REASONS = (
    "You bought this before",
    "You viewed this recently",
    "Similar to",
    "Often bought with",
    "Often chosen after",
)


def _snapshot() -> tuple[Any, ...]:
    return (
        list(Consent.objects.values_list("person_id", "purpose", "granted").order_by("pk")),
        list(Item.objects.values_list("external_id", "title", "price", "stock").order_by("pk")),
        list(Campaign.objects.values_list("key", "status", "updated_at").order_by("pk")),
        list(Experiment.objects.values_list("key", "status").order_by("pk")),
    )


# --- finding 5 --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_finding_5_a_staff_user_without_permissions_changes_nothing_through_the_api():
    world = build_world()
    client = session_client(world.users["staff"])
    before = _snapshot()
    attempts = [
        client.put("/api/v1/people/ann/consent", {"purposes": {"email_marketing": False}}, format="json"),
        client.patch("/api/v1/catalog/items/sku-1", {"title": "Changed"}, format="json"),
        client.post("/api/v1/campaigns", {"key": "new", "name": "New"}, format="json"),
        client.post("/api/v1/campaigns/draft/launch"),
        client.post("/api/v1/campaigns/spring/pause"),
        client.post("/api/v1/experiments/", {"key": "new-exp", "name": "New"}, format="json"),
        client.post("/api/v1/experiments/exp/stop", {}, format="json"),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert all(r.json()["type"] == "permission_error" for r in attempts)
    assert _snapshot() == before


@pytest.mark.django_db
def test_finding_5_a_csm_cannot_stop_or_conclude_experiments_or_preview_anyone():
    world = build_world()
    csm = session_client(world.users["csm"])
    csm.force_login(Group.objects.get(name="CSM").user_set.get())
    before = _snapshot()
    assert csm.post("/api/v1/experiments/exp/stop", {}, format="json").status_code == 403
    assert csm.post("/api/v1/experiments/exp/conclude", {}, format="json").status_code == 403
    assert csm.get("/api/v1/recommendations", {"person": "ann"}).status_code == 403
    assert csm.get("/api/v1/surfaces/homepage/recommendations", {"person": "ann"}).status_code == 403
    assert csm.post("/experiments/exp/stop").status_code == 403
    assert csm.post("/experiments/exp/conclude").status_code == 403
    assert csm.get("/surfaces/", {"person": "ann"}).status_code == 403
    assert _snapshot() == before
    # A marketer may, through the role the migration made.
    marketer = session_client(world.users["marketer"])
    assert marketer.post("/api/v1/experiments/exp/stop", {}, format="json").status_code == 200
    assert Experiment.objects.get(key="exp").status == "stopped"


@pytest.mark.django_db
def test_roles_from_the_migration_hold_what_they_name():
    world = build_world()
    analyst = session_client(world.users["analyst"])
    assert analyst.get("/api/v1/campaigns").status_code == 200
    assert analyst.get("/api/v1/experiments/exp/results").status_code == 200
    assert analyst.post("/api/v1/campaigns", {"key": "x", "name": "X"}, format="json").status_code == 403
    assert (
        analyst.put("/api/v1/people/ann/consent", {"purposes": {"analytics": False}}, format="json").status_code == 403
    )
    admin = session_client(world.users["admin"])
    assert admin.put("/api/v1/people/ann/consent", {"purposes": {"analytics": False}}, format="json").status_code == 200
    assert admin.post("/api/v1/campaigns/draft/launch").status_code == 403
    for role, permission in [
        ("Administrator", "profiles.erase_person"),
        ("Administrator", "profiles.export_person"),
        ("Administrator", "personalization.add_apikey"),
        ("Marketer", "personalization.launch_campaign"),
        ("CSM", "campaigns.approve_message"),
    ]:
        assert role_user(f"check-{role}-{permission}", role).has_perm(permission), (role, permission)
    assert not role_user("check-analyst", "Analyst").has_perm("profiles.export_person")


@pytest.mark.django_db
def test_a_csm_who_is_not_staff_logs_in_through_the_console_and_sees_only_their_accounts():
    world = build_world()
    assert not world.users["csm"].is_staff
    client = Client()
    login = client.post("/login/", {"username": "casey", "password": PASSWORD})
    assert login.status_code == 302
    assert client.get(login["Location"], follow=True).redirect_chain[-1][0] == "/approvals/"
    queue = client.get("/approvals/").content.decode()
    assert "ann@example.com" in queue and "gus@example.com" not in queue  # Globex is not theirs
    listed = client.get("/api/v1/messages").json()["results"]
    assert listed and {m["to_email"] for m in listed} == {"ann@example.com"}
    assert client.get("/campaigns/").status_code == 403


# --- finding 7 --------------------------------------------------------------------------------------------


def _ingest(world: Any) -> APIClient:
    client = api_client(world.ingest_raw)
    client.api_key = world.ingest_key  # type: ignore[attr-defined]
    return client


@pytest.mark.django_db
def test_finding_7_the_ingest_key_cannot_look_anyone_up_by_email_or_user_id():
    world = build_world()
    client = _ingest(world)
    url = "/api/v1/surfaces/homepage/recommendations"
    for person in ("ann@example.com", "nobody@example.com", "ann", "nobody"):
        for response in (client.get(url, {"person": person}), client.post(url, {"person": person}, format="json")):
            # The same answer whether the person exists or not: nothing to learn from it.
            assert response.status_code == 403, person
            body = response.json()
            assert body["type"] == "permission_error" and body["code"] == "identity_not_verified"
            assert "person_token" in body["detail"]
    forged = sign("not-the-secret", "ann", int(time.time()) + 600)
    expired = sign(world.ingest_key.identity_secret, "ann", int(time.time()) - 1)
    for token in (forged, expired, "garbage", person_token(client, "gus")):
        assert client.get(url, {"person": "ann", "person_token": token}).status_code == 403
    assert client.get(url, {"person": "ann", "person_token": person_token(client, "ann")}).status_code == 200
    assert client.get("/api/v1/recommendations", {"person": "ann"}).status_code == 403
    # Experiment assignments never look anyone up by email or unsigned user id with this key.
    by_email = client.get("/api/v1/experiments/assignments", {"person": "ann@example.com"}).json()
    assert by_email["known"] is False and by_email["assignments"] == []


def test_finding_7_answers_reveal_only_the_verified_visitors_own_history(engine):  # noqa: F811
    create_surface("homepage", "Homepage", {"size": 10}, by="tests")
    client = APIClient()
    key, raw = ApiKey.issue("storefront", KeyScope.INGEST)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.api_key = key  # type: ignore[attr-defined]
    victim = "user-00003"
    url = "/api/v1/surfaces/homepage/recommendations"
    own = client.get(url, {"person": victim, "person_token": person_token(client, victim)}).json()
    assert any(i["reason"].startswith(PERSONAL_REASONS) for i in own["items"])  # the visitor's own answer

    # An attacker ties their browser's anonymous id to the victim's user id (Segment's identify allows it)…
    tie = client.post("/api/v1/identify", {"userId": victim, "anonymousId": "attacker-browser"}, format="json")
    assert tie.status_code == 200
    # …and asks as that anonymous id: the answer is an unknown visitor's, nothing of the victim's history.
    stolen = client.get(url, {"anonymous_id": "attacker-browser"}).json()
    assert stolen["items"] and not any(i["reason"].startswith(PERSONAL_REASONS) for i in stolen["items"])
    email = Person.objects.get(identities__value=victim).traits.get("email") or "user-00003@example.com"
    assert client.get(url, {"person": email}).status_code == 403


# --- finding 8 --------------------------------------------------------------------------------------------


def _known(user_id: str, email: str, anonymous_id: str) -> Person:
    profiles.ingest_messages(
        [{"type": "identify", "userId": user_id, "anonymousId": anonymous_id, "traits": {"email": email}}]
    )
    found = profiles.find_person(user_id)
    assert found is not None
    return found


@pytest.mark.django_db
def test_finding_8_the_ingest_key_cannot_change_a_known_persons_email(ingest_client, secret_client):
    ann = _known("ann", "ann@example.com", "ann-browser")
    hijack = {"userId": "ann", "traits": {"email": "attacker@example.com", "name": "Ann"}}
    refused = ingest_client.post("/api/v1/identify", hijack, format="json")
    assert refused.status_code == 400
    assert refused.json()["attr"] == "traits.email" and refused.json()["code"] == "not_permitted"
    # A person token does not open it either: an email change comes from the backend's secret key.
    signed = {**hijack, "context": {"personToken": person_token(ingest_client, "ann")}}
    assert ingest_client.post("/api/v1/identify", signed, format="json").status_code == 400
    # In a batch, the bad message is named by index and field; the others are stored.
    batch = {
        "batch": [
            {**track("Product Viewed", user="ann"), "properties": {"product_id": "sku-1"}},
            {"type": "identify", "userId": "ann", "traits": {"email": "attacker@example.com"}},
            {"type": "identify", "anonymousId": "new-visitor", "traits": {"email": "new@example.com"}},
        ]
    }
    answer = ingest_client.post("/api/v1/batch", batch, format="json").json()
    assert (answer["accepted"], answer["rejected"]) == (2, 1)
    assert [(e["index"], e["attr"], e["code"]) for e in answer["errors"]] == [
        (1, "batch.1.traits.email", "not_permitted")
    ]
    ann.refresh_from_db()
    assert ann.traits["email"] == "ann@example.com"
    assert not Identity.objects.filter(value="attacker@example.com").exists()
    assert Identity.objects.filter(kind="email", value="new@example.com").exists()  # a visitor's first email
    # The same email again changes nothing and is accepted; the secret key may change it.
    same = {"userId": "ann", "traits": {"email": "ann@example.com", "plan": "pro"}}
    assert ingest_client.post("/api/v1/identify", same, format="json").json()["accepted"] == 1
    assert secret_client.post("/api/v1/identify", hijack, format="json").json()["accepted"] == 1


@pytest.mark.django_db
def test_a_verified_visitor_sets_their_first_email_and_the_token_is_not_stored(ingest_client):
    _known("carl", "", "carl-browser")
    first = {"userId": "carl", "traits": {"email": "carl@example.com"}}
    assert ingest_client.post("/api/v1/identify", first, format="json").status_code == 400  # unsigned
    token = person_token(ingest_client, "carl")
    signed = {**first, "messageId": "carl-email", "context": {"personToken": token, "locale": "de"}}
    assert ingest_client.post("/api/v1/identify", signed, format="json").json()["accepted"] == 1
    assert profiles.find_person("carl").traits["email"] == "carl@example.com"  # type: ignore[union-attr]
    assert Event.objects.get(message_id="carl-email").context == {"locale": "de"}


@pytest.mark.django_db
def test_finding_8_the_ingest_key_cannot_merge_two_known_people(ingest_client):
    _known("ann", "ann@example.com", "ann-browser")
    _known("bob", "bob@example.com", "bob-browser")
    merges = PersonMerge.objects.count()
    by_ids = ingest_client.post("/api/v1/identify", {"userId": "bob", "anonymousId": "ann-browser"}, format="json")
    assert by_ids.status_code == 400 and by_ids.json()["attr"] == "userId"
    by_email = ingest_client.post(
        "/api/v1/identify", {"anonymousId": "fresh-browser", "traits": {"email": "ann@example.com"}}, format="json"
    )
    assert by_email.status_code == 400 and by_email.json()["attr"] == "traits.email"
    assert PersonMerge.objects.count() == merges
    assert profiles.find_person("ann").pk != profiles.find_person("bob").pk  # type: ignore[union-attr]
    assert profiles.find_person("fresh-browser") is None
    # An anonymous visitor signing in is still stitched to their account.
    stitched = ingest_client.post("/api/v1/identify", {"userId": "bob", "anonymousId": "new-tab"}, format="json")
    assert stitched.json()["accepted"] == 1
    assert profiles.find_person("new-tab").pk == profiles.find_person("bob").pk  # type: ignore[union-attr]


@pytest.mark.django_db
def test_finding_8_the_engines_own_event_ids_cannot_be_sent_first(ingest_client, secret_client):
    person = _known("ann", "ann@example.com", "ann-browser")
    click_id = f"campaign-1-{person.pk}-click-0"
    for client in (ingest_client, secret_client):
        early = client.post("/api/v1/track", {**track("Email Link Clicked", user="ann"), "messageId": click_id})
        assert early.status_code == 400 and early.json()["attr"] == "messageId" and early.json()["code"] == "reserved"
        recipient = client.post("/api/v1/track", track("Product Viewed", anon=f"campaign-recipient-{person.pk}"))
        assert recipient.status_code == 400 and recipient.json()["attr"] == "anonymousId"
    assert not Event.objects.filter(message_id=click_id).exists()
    # The engine's own code writes it directly: the real click is stored, not dropped as a duplicate.
    result = profiles.ingest_messages(
        [{"type": "track", "event": "Email Link Clicked", "userId": "ann", "messageId": click_id}]
    )
    assert (result.accepted, result.duplicates) == (1, 0)


# --- identity verification --------------------------------------------------------------------------------


def test_the_shell_recipe_in_docs_security_makes_the_same_token():
    secret, user_id, expires = "iv_example", "user-00042", 1_900_000_000
    shell = subprocess.run(
        ["sh", "-c", f"printf '%s' '{user_id}:{expires}' | openssl dgst -sha256 -hmac '{secret}' -r | cut -d' ' -f1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert sign(secret, user_id, expires) == f"{expires}.{shell}"
    assert is_valid([secret], user_id, f"{expires}.{shell}", now=expires - 60)
    assert not is_valid([secret], user_id, f"{expires}.{shell}", now=expires + 1)  # expired
    assert not is_valid([secret], user_id, f"{expires}.{shell}", now=expires - 32 * 24 * 3600)  # too far ahead
    assert not is_valid([secret], "user-00043", f"{expires}.{shell}", now=expires - 60)  # someone else's


@pytest.mark.django_db
def test_a_rotated_identity_secret_verifies_for_the_grace_period_only():
    key, _ = ApiKey.issue("storefront", KeyScope.INGEST)
    other, _ = ApiKey.issue("another shop", KeyScope.INGEST)
    assert key.identity_secret.startswith("iv_") and key.identity_secret != other.identity_secret
    old = sign(key.identity_secret, "ann", int(time.time()) + 600)
    key.rotate_identity_secret()
    new = sign(key.identity_secret, "ann", int(time.time()) + 600)
    assert is_valid(key.identity_secrets(), "ann", old) and is_valid(key.identity_secrets(), "ann", new)
    key.identity_secret_rotated_at = timezone.now() - IDENTITY_SECRET_GRACE - timedelta(minutes=1)
    assert not is_valid(key.identity_secrets(), "ann", old) and is_valid(key.identity_secrets(), "ann", new)
