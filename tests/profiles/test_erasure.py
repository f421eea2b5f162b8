"""Erasure against PostgreSQL and Redis: a person with a rich life is erased, and a walk over every model,
every field that can hold a person's id or email, every Redis key and the next training input finds
nothing of them; a receipt without personal data remains and refuses their replayed events."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, models
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test.utils import isolate_apps
from django.utils import timezone

from campaigns.models import ApprovalAction, Campaign, CampaignChange, Message
from experiments.models import Experiment, Exposure, Variant
from personalization.models import Impression, Surface
from personalization.shared_cache import redis_client
from personalization.training import export_interchange
from profiles import hot_profile
from profiles.erased_keys import key_hash
from profiles.erasure import AlreadyErased, PersonNotFound, erase_person
from profiles.models import ConsentChange, ErasedKey, ErasureReceipt, Event, Identity, Person, PersonMerge, Profile
from profiles.person_data import PERSON_ID_FIELDS, person_tables, unclassified_fields
from profiles.profiling import get_profile
from profiles.services import ingest_messages, recent_activity_by_key, record_consent

pytestmark = pytest.mark.django_db

USER = "customer-7f3a9c"
EMAIL = "ada.lovelace@example.org"
PHONE_ANON = "anon-phone-5d1e8b72"
LAPTOP_ANON = "anon-laptop-93c0aa41"
KEYS = (USER, EMAIL, PHONE_ANON, LAPTOP_ANON)


_message_ids = iter(range(1, 10_000))


def _track(event: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "messageId": f"m-{next(_message_ids)}", **fields}


def _rich_life(staff: User) -> tuple[Person, list[int], Person]:
    """Ada browses on two devices, signs in on both (a merge), consents twice, gets a campaign message that
    a CSM approves, sees recommendations and an experiment, and is edited in the admin. Grace, another
    customer, invites her by email and mentions her in nothing else."""
    t0 = timezone.now() - timedelta(days=3)
    views = [
        _track("Product Viewed", anonymousId=LAPTOP_ANON, properties={"product_id": "sku-1"}),
        _track("Product Added", anonymousId=PHONE_ANON, properties={"product_id": "sku-2"}),
        {"type": "identify", "userId": USER, "anonymousId": LAPTOP_ANON, "traits": {"email": EMAIL, "country": "GB"}},
        _track("Order Completed", userId=USER, properties={"products": [{"product_id": "sku-2", "price": 12}]}),
    ]
    for n, view in enumerate(views):
        view.setdefault("messageId", f"m-identify-{n}")
        view["timestamp"] = (t0 + timedelta(minutes=n)).isoformat()
    assert not ingest_messages(views, refresh=False).rejected
    phone_person = Identity.objects.get(value=PHONE_ANON).person_id
    # Signing in on the phone ties its anonymous history to Ada: the phone's person is merged into hers.
    assert not ingest_messages(
        [{"type": "identify", "userId": USER, "anonymousId": PHONE_ANON, "messageId": "m-identify-phone"}],
        refresh=False,
    ).rejected
    ada = Person.objects.get(identities__value=USER)
    assert Person.objects.get(pk=phone_person).merged_into_id == ada.pk
    record_consent(ada.pk, "email_marketing", True, source="signup form", recorded_by="api-key:sk_test")
    record_consent(ada.pk, "personalization", False, source="banner", recorded_by=EMAIL)

    # Grace invites Ada: Ada's email is in Grace's event, which stays (Grace's), with Ada's email blanked.
    assert not ingest_messages(
        [_track("Friend Invited", userId="customer-grace-01", properties={"invitee": EMAIL, "product_id": "sku-1"})],
        refresh=False,
    ).rejected
    grace = Person.objects.get(identities__value="customer-grace-01")

    campaign = Campaign.objects.create(
        key="spring", name="Spring", audience={"any": [{"field": "trait.email", "op": "eq", "value": EMAIL}]}
    )
    message = Message.objects.create(
        campaign=campaign, person=ada, to_email=EMAIL, subject="Ada, picked for you", html=f"<p>Hi {EMAIL}</p>"
    )
    ApprovalAction.objects.create(
        message=message, action="approve", actor=staff, actor_name="csm", at=timezone.now(), after={"to": EMAIL}
    )
    CampaignChange.objects.create(
        campaign=campaign, action="test_send", actor="marketer", changed_at=timezone.now(), detail={"to": EMAIL}
    )
    surface = Surface.objects.create(key="homepage", name="Homepage")
    for n, person_id in enumerate((ada.pk, phone_person, grace.pk)):
        Impression.objects.create(
            recommendation_id=f"rec-{n}", surface=surface, person_id=person_id, item_ids=["sku-1"], served_at=t0
        )
    experiment = Experiment.objects.create(key="hero", name="Hero")
    variant = Variant.objects.create(experiment=experiment, key="b")
    Exposure.objects.create(experiment=experiment, variant=variant, person=ada, first_exposed_at=t0)
    Exposure.objects.create(experiment=experiment, variant=variant, person=grace, first_exposed_at=t0)
    Profile.objects.create(person=ada, event_counts={"purchase": 1}, computed_at=t0)

    person_type = ContentType.objects.get_for_model(Person)
    for who in (ada, grace):
        LogEntry.objects.create(
            user=staff, content_type=person_type, object_id=str(who.pk), object_repr=str(who), action_flag=CHANGE
        )
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(Campaign),
        object_id=str(campaign.pk),
        object_repr="Spring",
        action_flag=CHANGE,
        change_message=f"Sent a test to {EMAIL}",
    )
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(Campaign),
        object_id=str(campaign.pk),
        object_repr="Spring",
        action_flag=CHANGE,
        change_message="Changed subject.",
    )
    return ada, [ada.pk, phone_person], grace


def _string_fields(model: type[models.Model]) -> Iterator[models.Field]:
    for field in model._meta.concrete_fields:
        if isinstance(field, (models.CharField, models.TextField, models.JSONField)) and not field.is_relation:
            yield field


def _what_remains(person_ids: list[int], keys: tuple[str, ...]) -> list[str]:
    """Walk every model: rows pointing at the people, ids in listed fields, any text or JSON naming a key."""
    person = apps.get_model("profiles", "Person")
    found = []
    id_fields = {tuple(label.rsplit(".", 1)) for label in PERSON_ID_FIELDS}
    for model in apps.get_models():
        rows = model._default_manager.all()
        for field in model._meta.concrete_fields:
            label = f"{model._meta.label}.{field.name}"
            points_at_person = field.is_relation and field.related_model is person
            holds_person_id = points_at_person or (model._meta.label, field.attname) in id_fields
            if holds_person_id and rows.filter(**{f"{field.attname}__in": person_ids}).exists():
                found.append(f"{label} holds an erased person's id")
        for field in _string_fields(model):
            as_text = rows.annotate(_text=Cast(field.name, TextField()))
            for key in keys:
                if as_text.filter(_text__icontains=key).exists():
                    found.append(f"{model._meta.label}.{field.name} names {key}")
    person_type = ContentType.objects.get_for_model(person)
    if LogEntry.objects.filter(content_type=person_type, object_id__in=[str(p) for p in person_ids]).exists():
        found.append("admin log entries about the people")
    return found


def _redis_remains(person_ids: list[int], keys: tuple[str, ...]) -> list[str]:
    client = redis_client()
    assert client is not None
    found = []
    for raw_name in client.scan_iter(count=1000):
        name = raw_name.decode()
        if any(key in name.lower() for key in keys):
            found.append(f"key {name}")
        tail = name.rsplit(":", 2)
        if tail[-1].isdigit() and int(tail[-1]) in person_ids and tail[-2] not in ("gen", "gone"):
            found.append(f"key {name} of an erased person")  # gen/gone hold a number, no personal data
        if client.type(raw_name) == b"string":
            value = client.get(raw_name) or b""
            if any(key.encode() in value for key in keys):
                found.append(f"value of {name}")
    return found


@pytest.fixture
def staff(db: Any) -> User:
    return User.objects.create_user("support", "support@shop.test", "pw", is_staff=True)


needs_redis = pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the copies erasure drops live in Redis: set CACHE_URL"
)


@needs_redis
def test_erasure_leaves_nothing_of_a_person_with_a_rich_life(
    staff, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.HOT_PROFILE_SECONDS = 600
    ada, person_ids, grace = _rich_life(staff)
    grace_events = Event.objects.filter(person=grace).count()
    # Serving and the profile cache hold copies of her in Redis, under her id and every key she was asked by.
    for key in (USER, EMAIL, PHONE_ANON):
        recent_activity_by_key(key, kinds=("view", "purchase"), limit=20)
        recent_activity_by_key(key, kinds=("view", "purchase"), limit=20)
    get_profile(ada.pk)
    assert _redis_remains(person_ids, KEYS), "the test starts with copies in Redis"
    assert _what_remains(person_ids, KEYS), "the test starts with her data everywhere"

    with django_capture_on_commit_callbacks(execute=True):
        receipt = erase_person(EMAIL, requested_by="support@shop.test")

    assert _what_remains(person_ids, KEYS) == []
    assert _redis_remains(person_ids, KEYS) == []
    assert hot_profile.lookup(USER) == hot_profile.Found(person_id=None)
    # Nothing of hers reaches the next fit: training reads the event log as exported here.
    export_interchange(tmp_path)
    for name in ("events.csv", "users.csv"):
        with open(Path(tmp_path) / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert not [r for r in rows if r["user_id"] in {str(p) for p in person_ids}], name
        text = (Path(tmp_path) / name).read_text()
        assert not any(key in text for key in KEYS)

    # Grace keeps everything that is hers; her event only lost Ada's email.
    assert Event.objects.filter(person=grace).count() == grace_events
    invite = Event.objects.get(person=grace, name="Friend Invited")
    assert invite.properties == {"invitee": "[erased]", "product_id": "sku-1"}
    assert Impression.objects.filter(person_id=grace.pk).count() == 1
    assert Exposure.objects.filter(person=grace).count() == 1
    assert LogEntry.objects.filter(object_id=str(grace.pk)).count() == 1
    assert LogEntry.objects.filter(change_message="Changed subject.").count() == 1
    assert Campaign.objects.get(key="spring").audience == {
        "any": [{"field": "trait.email", "op": "eq", "value": "[erased]"}]
    }

    # The receipt: who asked, when, per table, hashes; nothing that names her.
    assert receipt.requested_by == "support@shop.test" and receipt.people == 2
    assert receipt.counts["profiles.Person"] == 2
    assert receipt.counts["profiles.Identity"] == 4  # her user id, email and both devices
    assert receipt.counts["profiles.Event"] == 5  # four rows from the laptop and phone, plus the identify
    assert receipt.counts["personalization.Impression"] == 2
    assert receipt.counts["experiments.Exposure"] == 1
    assert receipt.counts["campaigns.Message"] == 1 and receipt.counts["campaigns.ApprovalAction"] == 1
    assert receipt.counts["profiles.ConsentChange"] == 2 and receipt.counts["profiles.Consent"] == 2
    assert receipt.counts["admin.LogEntry"] == 2
    assert receipt.counts["profiles.Event.properties"] == 1
    hashes = set(ErasedKey.objects.filter(receipt=receipt).values_list("key_hash", flat=True))
    assert hashes == {
        key_hash("user_id", USER),
        key_hash("email", EMAIL),
        key_hash("anonymous_id", PHONE_ANON),
        key_hash("anonymous_id", LAPTOP_ANON),
    }


def test_every_field_that_could_hold_a_person_is_accounted_for():
    assert unclassified_fields() == []


def test_a_new_table_that_erasure_would_miss_is_caught():
    with isolate_apps("profiles"):

        class Referral(models.Model):  # noqa: DJ008 — a key to Person that would leave the row behind
            referrer = models.ForeignKey(Person, null=True, on_delete=models.SET_NULL, related_name="+")

            class Meta:
                app_label = "profiles"

        class Ticket(models.Model):  # noqa: DJ008 — a person key by name and free-form JSON, owned by nobody
            customer_email = models.CharField(max_length=200)
            payload = models.JSONField(default=dict)

            class Meta:
                app_label = "profiles"

        missing = unclassified_fields([Referral, Ticket])
    assert missing == ["profiles.Referral.referrer", "profiles.Ticket.customer_email", "profiles.Ticket.payload"]


def test_every_table_with_a_cascading_key_to_a_person_is_walked():
    walked = {t.label: t.paths for t in person_tables()}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            cascades = field.remote_field is not None and field.remote_field.on_delete is models.CASCADE
            if field.is_relation and field.related_model is Person and cascades:
                assert model._meta.label in walked, model
    assert walked["campaigns.ApprovalAction"] == ("message__person",)
    assert walked["experiments.Exposure"] == ("person",)


def test_erasing_a_merged_person_takes_everyone_merged_into_them_and_no_one_else(staff):
    _, person_ids, grace = _rich_life(staff)
    before = PersonMerge.objects.count()
    erase_person(PHONE_ANON, requested_by="ops")  # any of her keys leads to her
    assert not Person.objects.filter(pk__in=person_ids).exists()
    assert PersonMerge.objects.count() == before - 1
    assert Person.objects.filter(pk=grace.pk).exists()
    assert Identity.objects.filter(person=grace).count() == 1


def test_an_unknown_key_and_an_erased_one_are_told_apart(staff):
    _rich_life(staff)
    receipt = erase_person(USER, requested_by="ops")
    with pytest.raises(AlreadyErased) as erased:
        erase_person(EMAIL.upper(), requested_by="ops")
    assert erased.value.receipt_id == receipt.pk
    with pytest.raises(PersonNotFound):
        erase_person("nobody-at-all", requested_by="ops")
    with pytest.raises(ValueError):
        erase_person("customer-grace-01", requested_by="  ")
    assert ErasureReceipt.objects.count() == 1


def test_consent_history_of_the_person_goes_and_the_receipt_names_no_one(staff):
    ada, person_ids, _ = _rich_life(staff)
    receipt = erase_person(USER, requested_by="ops")
    assert not ConsentChange.objects.filter(person_id__in=person_ids).exists()
    stored = ErasureReceipt.objects.filter(pk=receipt.pk).values().get()
    text = repr(stored) + repr(list(ErasedKey.objects.values_list("key_hash", flat=True)))
    assert not any(key in text for key in KEYS)
    assert str(ada.pk) not in repr(stored["counts"].keys())


def test_deleting_a_person_in_the_admin_is_an_erasure(client, staff):
    _, person_ids, grace = _rich_life(staff)
    admin = User.objects.create_superuser("root", "root@shop.test", "pw")
    client.force_login(admin)
    merged_away = person_ids[1]
    # The merged-away row leads to Ada, whose data it is now: she goes, with everyone merged into her.
    answer = client.post(f"/admin/profiles/person/{merged_away}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Person.objects.filter(pk__in=person_ids).exists()
    assert not Impression.objects.filter(person_id__in=person_ids).exists()
    receipt = ErasureReceipt.objects.get()
    assert receipt.requested_by == "admin:root" and receipt.people == 2
    # The admin's own record of the deletion named her; it went too. Grace is untouched.
    assert not LogEntry.objects.filter(object_repr__icontains=EMAIL).exists()
    assert Person.objects.filter(pk=grace.pk).exists()


def test_the_admin_offers_delete_only_with_the_erase_permission(client, staff):
    ada, _, _ = _rich_life(staff)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_person", "delete_person"]))
    client.force_login(staff)
    assert client.post(f"/admin/profiles/person/{ada.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Person.objects.filter(pk=ada.pk).exists() and not ErasureReceipt.objects.exists()
    staff.user_permissions.add(Permission.objects.get(codename="erase_person"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.post(f"/admin/profiles/person/{ada.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Person.objects.filter(pk=ada.pk).exists() and ErasureReceipt.objects.count() == 1


def test_mentions_blank_long_keys_anywhere_and_short_keys_only_whole():
    from profiles.erasure import Mentions

    mentions = Mentions(["Ada@Example.org", "42", "anon-3f9e8d7c"])
    assert mentions.redact({"to": "ada@example.org", "note": "mail ADA@example.org today", "n": 42}) == {
        "to": "[erased]",
        "note": "mail [erased] today",
        "n": 42,
    }
    assert mentions.redact(["42", "order 42", {"anon-3f9e8d7c": ["x-anon-3f9e8d7c-y"]}]) == [
        "[erased]",
        "order 42",
        {"[erased]": ["x-[erased]-y"]},
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks as PostgreSQL takes them")
def test_an_event_that_arrives_during_the_erasure_is_not_stored(monkeypatch):
    """The erasure locks the people first: an event for them committed meanwhile waits, then fails its
    commit (the client retries and is refused), so nothing of theirs outlives the receipt."""
    import threading

    from django.db import IntegrityError

    from profiles import erasure

    assert not ingest_messages([_track("Product Viewed", userId=USER)], refresh=False).rejected
    locked, go = threading.Event(), threading.Event()
    keys_of = erasure._keys_of

    def keys_then_wait(person_ids: list[int]) -> Any:
        found = keys_of(person_ids)
        locked.set()
        go.wait(10)
        return found

    monkeypatch.setattr(erasure, "_keys_of", keys_then_wait)
    outcome: dict[str, Any] = {}

    def erase() -> None:
        try:
            outcome["receipt"] = erase_person(USER, requested_by="ops")
        finally:
            connection.close()

    def ingest() -> None:
        try:
            ingest_messages([_track("Product Viewed", userId=USER, messageId="late-1")], refresh=False)
            outcome["ingested"] = True
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    eraser = threading.Thread(target=erase)
    eraser.start()
    assert locked.wait(10)
    late = threading.Thread(target=ingest)
    late.start()
    late.join(1.0)
    assert late.is_alive(), "the late event waits for the erasure"
    go.set()
    eraser.join(10)
    late.join(10)
    assert "receipt" in outcome
    assert isinstance(outcome.get("error"), IntegrityError), outcome
    assert not Event.objects.filter(message_id="late-1").exists()
    assert not Person.objects.exists()


def test_a_key_with_accents_and_quotes_is_found_in_json(staff):
    person = Person.objects.create(traits={"email": "zoë.o'brien@example.org"})
    Identity.objects.create(person=person, kind="email", value="zoë.o'brien@example.org")
    other = Person.objects.create()
    Event.objects.create(
        message_id="x-1",
        person=other,
        kind="other",
        properties={"invitee": "Zoë.O'Brien@example.org", "note": 'said "zoë.o\'brien@example.org"'},
        timestamp=timezone.now(),
        received_at=timezone.now(),
    )
    erase_person("zoë.o'brien@example.org", requested_by="ops")
    assert Event.objects.get(message_id="x-1").properties == {"invitee": "[erased]", "note": 'said "[erased]"'}
