"""The hot profile against the real Redis: filled on a miss, read without the database, kept current
by ingestion and dropped by every change that makes it stale, never written from a stale read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from personalization.shared_cache import redis_client
from profiles import hot_profile
from profiles.identity import merge_people
from profiles.models import Event, Identity, Person
from profiles.services import ingest_messages, recent_activity, recent_activity_by_key, record_consent

KINDS = ("view", "add_to_cart", "purchase")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not isinstance(caches["default"], RedisCache), reason="the hot profile lives in Redis: set CACHE_URL"
    ),
]


@pytest.fixture(autouse=True)
def _hot(settings: Any) -> None:
    settings.HOT_PROFILE_SECONDS = 600


def _person(user_id: str, country: str = "DE") -> Person:
    person = Person.objects.create(traits={"country": country})
    Identity.objects.create(person=person, kind="user_id", value=user_id)
    for n, (kind, item) in enumerate([("view", "a"), ("add_to_cart", "b"), ("purchase", "c")]):
        Event.objects.create(
            message_id=f"m-{user_id}-{n}",
            person=person,
            kind=kind,
            name=kind,
            item_id=item,
            quantity=1,
            timestamp=T0 + timedelta(minutes=n),
            received_at=T0,
        )
    return person


def _read(key: str) -> Any:
    return recent_activity_by_key(key, kinds=KINDS, limit=200)


def _found(**who: Any) -> hot_profile.Found:
    found = hot_profile.lookup(**who)
    assert found is not None, "Redis answered"
    return found


def _warm(key: str) -> Any:
    _read(key)  # learns whose key it is
    return _read(key)  # keeps the profile


def test_a_profile_read_twice_is_then_served_from_redis_alone(django_assert_num_queries):
    person = _person("u-1")
    from_database = _warm("u-1")
    with django_assert_num_queries(0):
        from_redis = _read("u-1")
    assert from_redis == from_database
    assert from_redis.person_id == person.pk and from_redis.country == "DE" and from_redis.consent is True
    assert [(e[0], e[2]) for e in from_redis.events] == [("a", "view"), ("b", "add_to_cart"), ("c", "purchase")]
    # Timestamps survive the round trip exactly, so an event read both ways is recognised as one.
    assert from_redis.events[0][1] == (T0).timestamp()
    # Asked by person id (the plain recommendations path), the same copy answers.
    with django_assert_num_queries(0):
        assert recent_activity(person.pk, kinds=KINDS, limit=200) == from_database
    # Fewer kinds or fewer events than kept are cut from it.
    with django_assert_num_queries(0):
        views = recent_activity_by_key("u-1", kinds=("view",), limit=200)
    assert views is not None and [e[0] for e in views.events] == ["a"]


def test_a_short_read_still_fills_the_whole_copy(django_assert_num_queries):
    _person("u-9")
    _read("u-9")
    first = recent_activity_by_key("u-9", kinds=("view", "purchase"), limit=1)  # fills the copy
    assert first is not None and [e[0] for e in first.events] == ["c"]
    with django_assert_num_queries(0):
        assert [e[0] for e in _read("u-9").events] == ["a", "b", "c"]


def test_ingested_events_are_appended_to_the_copy(django_assert_num_queries, django_capture_on_commit_callbacks):
    person = _person("u-2")
    _warm("u-2")
    message = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "u-2",
        "messageId": "fresh-view",
        "timestamp": (T0 + timedelta(hours=1)).isoformat(),
        "properties": {"product_id": "fresh"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_messages([message]).accepted == 1
    with django_assert_num_queries(0):
        found = _read("u-2")
    assert found.person_id == person.pk and [e[0] for e in found.events] == ["a", "b", "c", "fresh"]
    # The database read gives the same list: the copy and the record agree.
    hot_profile.drop([person.pk])
    assert _read("u-2") == found


def test_an_event_appended_while_a_fill_read_the_database_counts_once():
    person = _person("u-3")
    _read("u-3")
    found = _found(key="u-3")
    assert found.person_id == person.pk and not found.complete
    activity = recent_activity(person.pk, kinds=KINDS, limit=200)  # fills with the events a, b, c
    assert activity is not None
    hot_profile.append({person.pk: [activity.events[-1]]})  # c again, as if ingested meanwhile
    assert [e[0] for e in _read("u-3").events] == ["a", "b", "c"]


def test_a_consent_change_reaches_the_next_read(django_capture_on_commit_callbacks):
    person = _person("u-4")
    assert _warm("u-4").consent is True
    with django_capture_on_commit_callbacks(execute=True):
        record_consent(person.pk, "personalization", False, source="test")
    assert _read("u-4").consent is False
    assert _read("u-4").consent is False  # and the copy made again says so too


def test_a_fill_that_read_before_a_change_is_refused():
    person = _person("u-5")
    _read("u-5")
    before = _found(key="u-5")
    hot_profile.drop([person.pk])  # a change committed after that lookup
    assert not hot_profile.fill(person.pk, before.generation, True, "DE", [("stale", 1.0, "view", 1.0)])
    assert not _found(key="u-5").complete


def test_a_merged_person_is_found_under_the_survivor(django_capture_on_commit_callbacks):
    anonymous, known = _person("anon-6"), _person("u-6", country="FR")
    _warm("anon-6")
    with django_capture_on_commit_callbacks(execute=True):
        merge_people(anonymous.pk, known.pk, reason="test")
    found = _read("anon-6")
    assert found.person_id == known.pk and found.country == "FR"
    assert len(found.events) == 6  # both people's events, now the survivor's
    # The old person's copy is gone for good: a late fill for it is refused.
    assert not hot_profile.fill(anonymous.pk, "0", True, "DE", [])


def test_an_erased_person_is_not_served_from_the_copy(django_capture_on_commit_callbacks):
    person = _person("u-7")
    _warm("u-7")
    with django_capture_on_commit_callbacks(execute=True):
        person.delete()
    assert _read("u-7") is None


def test_without_redis_every_read_goes_to_the_database(settings):
    person = _person("u-8")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    found = _warm("u-8")
    assert found is not None and found.person_id == person.pk and len(found.events) == 3


def test_appends_do_not_keep_a_copy_alive_past_its_time():
    # A change that could not be dropped (Redis unreachable at that moment) is seen once the copy
    # expires, however active the person: appending events must not extend the copy's life.
    person = _person("u-10")
    _warm("u-10")
    client = redis_client()
    assert client is not None
    header = cache.make_key("hot:") + f"pf:{person.pk}"
    client.pexpire(header, 1_000)
    hot_profile.append({person.pk: [("later", T0.timestamp() + 3600, "view", 1.0)]})
    assert 0 < client.pttl(header) <= 1_000


def test_a_read_that_keeps_nothing_uses_a_copy_but_makes_none(django_assert_num_queries):
    # Rendering a campaign reads each person once: it would only fill Redis.
    person = _person("u-11")
    _read("u-11")  # the key is known, the profile not yet copied
    assert recent_activity(person.pk, kinds=KINDS, limit=200, keep=False) is not None
    assert not _found(person_id=person.pk).complete
    _read("u-11")  # the API's read makes the copy; a read that keeps nothing then uses it
    with django_assert_num_queries(0):
        found = recent_activity(person.pk, kinds=KINDS, limit=200, keep=False)
    assert found is not None and len(found.events) == 3
