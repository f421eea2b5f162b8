"""What answering for one person needs to know, read in one query: who the key belongs to, their
country, one consent decision and their most recent item events.

Serving asks this on every request, so it is one round trip of plain SQL instead of four ORM
queries (identity, person, consent, events): the identity lookup is a common table expression, the
consent a left join and the events a ``LIMIT`` subquery over the ``(person, timestamp)`` index,
which carries item, kind and quantity so that PostgreSQL answers from the index alone (one or two
index pages for a person instead of one table page per event, which made the query 30 % slower on
the serving benchmark's shop).
The SQL is portable between PostgreSQL and SQLite except for two expressions (a JSON field and a
timestamp as epoch seconds), chosen by the connection's vendor. On PostgreSQL the statement is
prepared once per connection (planning it cost more than running it: 2.4 ms against 0.3 ms).

With Redis, the hot profile (``profiles.hot_profile``) answers first, and this query runs on its
misses, filling it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import connection

from personalization.shared_db import server_bound_cursor
from profiles import hot_profile
from profiles.models import Consent, Event, Identity, IdentityKind, Person, Purpose

RecentEvent = tuple[str, float, str, float]  # (item id, epoch seconds, kind, quantity)


def recent_event(item_id: str, epoch: float, kind: str, quantity: float | None) -> RecentEvent:
    """One event as serving reads it, from the database or from ingestion: no quantity counts as 1."""
    return str(item_id), float(epoch), str(kind), float(quantity or 1)


@dataclass(frozen=True, slots=True)
class RecentActivity:
    person_id: int
    country: str | None
    consent: bool  # the decision on the purpose asked for, or that purpose's default
    events: list[RecentEvent]  # oldest first


def recent_activity_by_key(
    key: str, *, kinds: Sequence[str], limit: int, purpose: str = "personalization"
) -> RecentActivity | None:
    """The person behind a user id, anonymous id or email (in that order, as ``find_person``)."""
    who = (
        f"SELECT person_id FROM {Identity._meta.db_table}"
        " WHERE (kind = %s AND value = %s) OR (kind = %s AND value = %s) OR (kind = %s AND value = %s)"
        " ORDER BY CASE kind WHEN %s THEN 0 WHEN %s THEN 1 ELSE 2 END LIMIT 1"
    )
    params: list[Any] = [
        IdentityKind.USER_ID.value,
        key,
        IdentityKind.ANONYMOUS_ID.value,
        key,
        IdentityKind.EMAIL.value,
        key.strip().lower(),
        IdentityKind.USER_ID.value,
        IdentityKind.ANONYMOUS_ID.value,
    ]
    if not _hot(kinds, limit, purpose):
        return _read(who, params, kinds, limit, purpose)[0]
    found = hot_profile.lookup(key=key)
    if found is None:  # Redis not answering
        return _read(who, params, kinds, limit, purpose)[0]
    if found.person_id is None:
        # Whom the key belongs to is kept now; the profile on the next request (a fill needs the
        # person's generation read before the database is, which needs the person).
        activity = _read(who, params, kinds, limit, purpose)[0]
        if activity is not None:
            hot_profile.remember_key(key, activity.person_id)
        return activity
    return _from_hot_or_database(found, kinds, limit, purpose)


def recent_activity(
    person_id: int, *, kinds: Sequence[str], limit: int, purpose: str = "personalization", keep: bool = True
) -> RecentActivity | None:
    """The same by person id. ``keep=False`` reads a copy Redis holds but does not make one on a miss:
    for work that reads each person once (rendering a campaign), which would only fill Redis."""
    if _hot(kinds, limit, purpose):
        found = hot_profile.lookup(person_id=person_id)
        if found is not None and found.person_id is not None and (keep or found.complete):
            return _from_hot_or_database(found, kinds, limit, purpose)
    return _read("SELECT %s AS person_id", [person_id], kinds, limit, purpose)[0]


def _hot(kinds: Sequence[str], limit: int, purpose: str) -> bool:
    # The hot profile keeps one consent decision, the one serving asks for.
    return purpose == Purpose.PERSONALIZATION and hot_profile.serves(kinds, limit)


def _from_hot_or_database(
    found: hot_profile.Found, kinds: Sequence[str], limit: int, purpose: str
) -> RecentActivity | None:
    assert found.person_id is not None
    if found.complete:
        events = _latest(found.events, kinds, limit)
        return RecentActivity(found.person_id, found.country, _consent(found.granted, purpose), events)
    # The copy holds every kind and as many events as the hot profile keeps, whatever this caller asked.
    activity, granted = _read(
        "SELECT %s AS person_id", [found.person_id], hot_profile.KINDS, hot_profile.EVENTS_KEPT, purpose
    )
    if activity is None:
        return None
    hot_profile.fill(found.person_id, found.generation, granted, activity.country, activity.events)
    return replace(activity, events=_latest(activity.events, kinds, limit))


def _latest(events: Iterable[RecentEvent], kinds: Sequence[str], limit: int) -> list[RecentEvent]:
    """The newest ``limit`` of the events of these kinds, from a copy that holds every kind."""
    wanted = set(kinds)
    return [e for e in events if e[2] in wanted][-limit:]


def _consent(granted: bool | None, purpose: str) -> bool:
    return settings.CONSENT_DEFAULTS[purpose] if granted is None else bool(granted)


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    if connection.vendor == "postgresql":
        with server_bound_cursor() as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _read(
    who: str, params: list[Any], kinds: Iterable[str], limit: int, purpose: str
) -> tuple[RecentActivity | None, bool | None]:
    """The activity, and the consent decision as stored (None: no decision, the default applies)."""
    kinds = sorted(kinds)
    if connection.vendor == "postgresql":
        country, epoch = "p.traits ->> 'country'", "EXTRACT(EPOCH FROM e.timestamp)::float8"
    else:
        country, epoch = "json_extract(p.traits, '$.country')", "(julianday(e.timestamp) - 2440587.5) * 86400.0"
    marks = ", ".join(["%s"] * len(kinds))
    sql = (
        f"WITH who AS ({who}) "
        f"SELECT p.id, {country}, c.granted, e.item_id, {epoch}, e.kind, e.quantity "
        f"FROM who JOIN {Person._meta.db_table} p ON p.id = who.person_id "
        f"LEFT JOIN {Consent._meta.db_table} c ON c.person_id = p.id AND c.purpose = %s "
        f"LEFT JOIN (SELECT item_id, timestamp, kind, quantity FROM {Event._meta.db_table}"
        f" WHERE person_id = (SELECT person_id FROM who) AND kind IN ({marks}) AND item_id <> ''"
        " ORDER BY timestamp DESC LIMIT %s) e ON 1 = 1"
    )
    rows = _fetch(sql, [*params, purpose, *kinds, limit])
    if not rows:
        return None, None
    person_id, found_country, granted = rows[0][:3]
    events = [recent_event(*r[3:7]) for r in rows if r[3] is not None]
    events.reverse()  # the newest came first; ties keep that order reversed, as a plain ascending read
    events.sort(key=lambda e: e[1])
    activity = RecentActivity(
        person_id=int(person_id),
        country=str(found_country) if found_country else None,
        consent=_consent(granted, purpose),
        events=events,
    )
    return activity, None if granted is None else bool(granted)
