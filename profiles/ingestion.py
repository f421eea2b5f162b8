"""Durable, idempotent event ingestion.

``ingest_messages`` validates every message, drops replays (same messageId), stitches identities,
and writes the events in one transaction: when it returns, what it accepted is committed. It needs
only the database: what follows (the profile refresh a worker does, the hot profile append in Redis)
is written to the outbox in the same transaction and delivered after the commit, at once or, while
the broker or Redis is away, by the relay (``profiles.outbox``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from personalization.shared_db import server_bound_cursor
from profiles import hot_profile, outbox
from profiles.erased_keys import refuse_erased
from profiles.identity import identity_keys, resolve_people
from profiles.models import Event, EventMessage, Person
from profiles.recent import RecentEvent, recent_event
from profiles.segment import EventRow, MessageError, ParsedMessage, parse_message

ERASED_DETAIL = "This person was erased; events for them are refused."


@dataclass
class MessageRejection:
    index: int
    attr: str
    code: str
    detail: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    events_stored: int = 0
    rejected: list[MessageRejection] = field(default_factory=list)
    person_ids: set[int] = field(default_factory=set)


# PostgreSQL: claim every message id of the batch in one statement. A concurrent batch that claims
# the same id waits for this one's transaction, then finds it taken: a replay racing its original
# is stored once, whatever timestamp each carries. Ids go in sorted, so two batches never wait on
# each other in a circle.
_CLAIM = (
    f"INSERT INTO {EventMessage._meta.db_table} (message_id, timestamp) "
    "SELECT m, ts FROM unnest(%b::varchar[], %b::timestamptz[]) AS t(m, ts) ORDER BY m "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)


def _claim_new_messages(messages: list[ParsedMessage], received_at: datetime) -> set[str]:
    """Record the ids of the messages never stored before and return them; the others are replays."""
    first_seen = {p.message_id: p.rows[0].timestamp if p.rows else received_at for p in messages}
    if connection.vendor == "postgresql":
        ids = sorted(first_seen)
        with server_bound_cursor() as cursor:
            cursor.execute(_CLAIM, (ids, [first_seen[m] for m in ids]), binary=True)
            return {row[0] for row in cursor.fetchall()}
    found: set[str] = set()
    ids = list(first_seen)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(EventMessage.objects.filter(message_id__in=chunk).values_list("message_id", flat=True))
    fresh = {m for m in ids if m not in found}
    EventMessage.objects.bulk_create(
        [EventMessage(message_id=m, timestamp=first_seen[m]) for m in fresh], batch_size=500, ignore_conflicts=True
    )
    return fresh


def _update_traits(parsed: list[tuple[ParsedMessage, int]]) -> list[int]:
    """Merge the messages' traits into their people; return who changed (their hot profile goes)."""
    traits_by_person: dict[int, dict[str, Any]] = {}
    for message, person_id in parsed:
        if message.traits:
            traits_by_person.setdefault(person_id, {}).update(message.traits)
    if not traits_by_person:
        return []
    now = timezone.now()
    people = list(Person.objects.filter(pk__in=traits_by_person).order_by("pk").select_for_update())
    for person in people:
        person.traits = {**(person.traits or {}), **traits_by_person[person.pk]}
        person.updated_at = now
    # One statement for all of them; the hot profile drop that a save would send goes with the
    # rest of this batch's follow-up work, through the outbox.
    Person.objects.bulk_update(people, ["traits", "updated_at"], batch_size=500)
    return [person.pk for person in people]


def ingest_messages(
    messages: Sequence[Any],
    default_type: str | None = None,
    received_at: datetime | None = None,
    refresh: bool = True,
    max_bytes: int | None = None,
) -> IngestResult:
    """Store valid, new messages; ``refresh=False`` leaves profile refreshes to the caller (bulk loads).

    Every message is validated to what the database can hold before anything is written
    (``profiles.segment``); ``max_bytes`` is the per-message limit (``INGEST_MAX_EVENT_BYTES``)."""
    received_at = received_at or timezone.now()
    max_bytes = settings.INGEST_MAX_EVENT_BYTES if max_bytes is None else max_bytes
    result = IngestResult()
    parsed_at: list[tuple[int, ParsedMessage]] = []
    for index, message in enumerate(messages):
        try:
            parsed_at.append((index, parse_message(message, received_at, default_type, max_bytes)))
        except MessageError as error:
            result.rejected.append(MessageRejection(index, error.attr, error.code, error.detail))
    # Messages for people who were erased are refused, so that a replay cannot bring them back.
    parsed_at, refused = refuse_erased(parsed_at)
    for index, attr in refused:
        result.rejected.append(MessageRejection(index, attr, "erased", ERASED_DETAIL))
    result.rejected.sort(key=lambda r: r.index)
    valid = [parsed for _, parsed in parsed_at]

    seen: set[str] = set()
    unique: list[ParsedMessage] = []
    for parsed in valid:  # a message repeated inside the same batch counts once
        if parsed.message_id in seen:
            result.duplicates += 1
        else:
            seen.add(parsed.message_id)
            unique.append(parsed)

    with transaction.atomic():
        claimed = _claim_new_messages(unique, received_at)
        fresh = [p for p in unique if p.message_id in claimed]
        result.duplicates += len(unique) - len(fresh)
        if not fresh:
            return result
        person_ids = resolve_people([identity_keys(p.anonymous_id, p.user_id, p.email) for p in fresh])
        pairs = list(zip(fresh, person_ids, strict=True))
        changed = _update_traits(pairs)
        rows = [(r, person_id) for parsed, person_id in pairs for r in parsed.rows]
        store_events(rows, received_at)
        result.accepted = len(fresh)
        result.events_stored = len(rows)
        result.person_ids = set(person_ids)
        _record_follow_up(result.person_ids if refresh else set(), rows, changed)
    return result


def _record_follow_up(refresh: set[int], rows: list[tuple[EventRow, int]], changed: list[int]) -> None:
    """The batch's follow-up work, as one outbox entry in the batch's transaction."""
    payload: dict[str, Any] = {}
    if refresh:
        payload["refresh"] = sorted(refresh)
    if hot_profile.enabled():
        payload["append"] = {str(person): events for person, events in _recent_by_person(rows).items()}
        if changed:
            payload["drop"] = sorted(changed)
    if payload:
        outbox.record(outbox.AFTER_INGEST, payload)
    outbox.record_event_followers(rows)


def _recent_by_person(rows: list[tuple[EventRow, int]]) -> dict[int, list[RecentEvent]]:
    """Stored events as the hot profile keeps them (as ``profiles.recent`` reads them back)."""
    by_person: dict[int, list[RecentEvent]] = {}
    for r, person_id in rows:
        events = by_person.setdefault(person_id, [])
        if r.item_id and r.kind in hot_profile.KINDS:
            events.append(recent_event(r.item_id, r.timestamp.timestamp(), r.kind, r.quantity))
    return by_person


EVENT_COLUMNS = (
    "message_id",
    "position",
    "person_id",
    "kind",
    "name",
    "item_id",
    "quantity",
    "price",
    "order_id",
    "properties",
    "context",
    "timestamp",
    "received_at",
)
# PostgreSQL: the whole batch in one statement, one array per column. Much cheaper than the ORM's
# row-by-row parameter building. The messages were claimed first (``_claim_new_messages``); ON
# CONFLICT is the second guard, on the unique key the partitioned table can have.
_UNNEST_INSERT = (
    f"INSERT INTO {Event._meta.db_table} ({', '.join(EVENT_COLUMNS)}) "
    "SELECT m, p, pe, k, n, i, q, pr, o, props::jsonb, ctx::jsonb, ts, ra FROM unnest("
    "%b::varchar[], %b::smallint[], %b::bigint[], %b::varchar[], %b::varchar[], %b::varchar[], %b::integer[], "
    "%b::numeric[], %b::varchar[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[]"
    ") AS t(m, p, pe, k, n, i, q, pr, o, props, ctx, ts, ra) ON CONFLICT (message_id, position, timestamp) DO NOTHING"
)


def store_events(rows: list[tuple[EventRow, int]], received_at: datetime) -> None:
    if connection.vendor == "postgresql":
        dumps = json.JSONEncoder(default=str, separators=(",", ":")).encode
        columns: tuple[list[Any], ...] = tuple([] for _ in EVENT_COLUMNS)
        for r, person_id in rows:
            for column, value in zip(
                columns,
                (
                    r.message_id,
                    r.position,
                    person_id,
                    r.kind,
                    r.name,
                    r.item_id,
                    r.quantity,
                    r.price,
                    r.order_id,
                    dumps(r.properties),
                    dumps(r.context),
                    r.timestamp,
                    received_at,
                ),
                strict=True,
            ):
                column.append(value)
        # Bound on the server, the arrays go in binary, without quoting each value.
        with server_bound_cursor() as cursor:
            cursor.execute(_UNNEST_INSERT, columns, binary=True)
        return
    Event.objects.bulk_create(
        [
            Event(
                message_id=r.message_id,
                position=r.position,
                person_id=person_id,
                kind=r.kind,
                name=r.name,
                item_id=r.item_id,
                quantity=r.quantity,
                price=r.price,
                order_id=r.order_id,
                properties=r.properties,
                context=r.context,
                timestamp=r.timestamp,
                received_at=received_at,
            )
            for r, person_id in rows
        ],
        batch_size=1000,
        ignore_conflicts=True,  # a concurrent replay of the same message may have landed meanwhile
    )
