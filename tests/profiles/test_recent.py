from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from profiles.models import Event, Identity, IdentityKind, Person
from profiles.services import recent_activity, recent_activity_by_key, record_consent

KINDS = ("view", "add_to_cart", "purchase")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _person(traits: dict | None = None, **identities: str) -> Person:
    person = Person.objects.create(traits=traits or {})
    for kind, value in identities.items():
        Identity.objects.create(person=person, kind=kind, value=value)
    return person


def _event(person: Person, n: int, kind: str = "view", item: str = "", minutes: float = 0.0, quantity: int = 1) -> None:
    Event.objects.create(
        message_id=f"m-{person.pk}-{n}",
        position=0,
        person=person,
        kind=kind,
        name=kind,
        item_id=item,
        quantity=quantity,
        timestamp=T0 + timedelta(minutes=minutes),
        received_at=T0,
    )


@pytest.mark.django_db
def test_the_key_finds_the_person_with_country_consent_and_recent_events_oldest_first():
    person = _person({"country": "DE", "plan": "pro"}, user_id="u-1", email="ada@example.com")
    _event(person, 1, "view", "a", minutes=1)
    _event(person, 2, "purchase", "b", minutes=3, quantity=2)
    _event(person, 3, "add_to_cart", "c", minutes=2)
    _event(person, 4, "page", "", minutes=4)  # no item: not a recent item event
    _event(person, 5, "signup", "d", minutes=5)  # a kind not asked for

    found = recent_activity_by_key("u-1", kinds=KINDS, limit=10)
    assert found is not None and found.person_id == person.pk
    assert found.country == "DE" and found.consent is True
    assert [(e[0], e[2], e[3]) for e in found.events] == [
        ("a", "view", 1.0),
        ("c", "add_to_cart", 1.0),
        ("b", "purchase", 2.0),
    ]
    assert found.events[0][1] == pytest.approx((T0 + timedelta(minutes=1)).timestamp(), abs=1e-3)
    # Emails match whatever their case; the same answer by id.
    by_email = recent_activity_by_key("  ADA@example.com", kinds=KINDS, limit=10)
    assert by_email is not None and by_email.person_id == person.pk
    assert recent_activity(person.pk, kinds=KINDS, limit=10) == found


@pytest.mark.django_db
def test_the_limit_keeps_the_newest_events_and_consent_is_read():
    person = _person(anonymous_id="anon-9")
    for n in range(8):
        _event(person, n, "view", f"i{n}", minutes=n)
    record_consent(person.pk, "personalization", False, source="tests")
    found = recent_activity_by_key("anon-9", kinds=KINDS, limit=3)
    assert found is not None
    assert [e[0] for e in found.events] == ["i5", "i6", "i7"]
    assert found.consent is False and found.country is None


@pytest.mark.django_db
def test_a_user_id_wins_over_an_anonymous_id_with_the_same_value_and_unknown_keys_find_nobody():
    anonymous = _person(anonymous_id="same")
    known = _person(user_id="same")
    found = recent_activity_by_key("same", kinds=KINDS, limit=5)
    assert found is not None and found.person_id == known.pk
    assert anonymous.pk != known.pk
    assert recent_activity_by_key("nobody", kinds=KINDS, limit=5) is None
    assert recent_activity(10_000_000, kinds=KINDS, limit=5) is None
    assert Identity.objects.filter(kind=IdentityKind.USER_ID).count() == 1


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_the_serving_query_is_prepared_and_planned_once_for_all_people():
    """Planning the query over every month of the partitioned log cost more than running it: after
    PostgreSQL's five trial plans, one generic plan serves every person."""
    people = [_person(user_id=f"prepared-{n}") for n in range(8)]
    for person in people:
        _event(person, 1, item="i1")
        recent_activity_by_key(f"prepared-{person.pk}", kinds=KINDS, limit=10)  # finds nobody: still run
        recent_activity(person.pk, kinds=KINDS, limit=10)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%profiles_event%'"
        )
        plans = cursor.fetchall()
    assert plans, "the serving query was not prepared"
    assert max(generic for generic, _ in plans) >= 3
