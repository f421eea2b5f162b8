"""How journeys hear of what happens: committed events, restocks and price drops, through the profiles outbox.

Ingestion calls :func:`select_events` in the batch's transaction; when any event is one a live
journey watches (its trigger, an exit condition, a wait's event), the events go into an outbox entry
written in that same transaction, so they are evaluated even if Redis or the broker is away when
they are committed; when a live journey is entered by coming into a saved segment, so do the batch's
people, whose segments are checked right after the commit (an identify that changes a trait, an
event that makes a behaviour rule true), instead of at the next periodic check. The catalogue sync
calls :func:`note_restock` in its transaction the same way.
The outbox performs the entry (at once after the commit, or by its relay) with :func:`perform_events`
/ :func:`perform_restock`, in the transaction that deletes it; entering is idempotent, so a repeated
delivery enters nobody twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from campaigns import composition
from catalog import services as catalog
from journeys import entering, sending
from journeys.definition import EventFacts
from profiles import outbox

EVENTS = "journey_events"
RESTOCK = "journey_restock"
PRICE_DROP = "journey_price_drop"


def connect() -> None:
    outbox.register_action(EVENTS, perform_events)
    outbox.register_action(RESTOCK, perform_restock)
    outbox.register_action(PRICE_DROP, perform_price_drop)
    outbox.follow_events(select_events)
    catalog.follow_restocks(note_restock)
    catalog.follow_price_drops(note_price_drop)
    composition.follow_senders(sending.csm_sender)


def select_events(rows: Sequence[Any]) -> tuple[str, dict[str, Any]] | None:
    """What a live journey needs of the batch: the events it watches (its trigger, exits, waits) and,
    when a live journey enters people coming into a saved segment, the people of the batch, whose
    events or traits may have brought them into it (``entering.on_audiences`` checks only them)."""
    live = entering.live_versions()
    if not live:
        return None
    names: set[str] = set()
    for version in live:
        names.update(version.watched or [])
    payload: dict[str, Any] = {}
    wanted = [
        [person_id, r.kind, r.name, r.item_id, r.properties, r.timestamp.timestamp(), r.message_id, r.position]
        for r, person_id in rows
        if r.kind in names or r.name.lower() in names
    ]
    if wanted:
        payload["events"] = wanted
    if any(v.definition["trigger"]["type"] == "audience" for v in live):
        payload["people"] = sorted({int(person_id) for _, person_id in rows})
    return (EVENTS, payload) if payload else None


def perform_events(entry_id: int, payload: dict[str, Any]) -> None:
    now = timezone.now()
    events = [
        EventFacts(int(p), k, n, i, dict(props or {}), float(ts), m, int(pos))
        for p, k, n, i, props, ts, m, pos in payload.get("events", [])
    ]
    if events:
        entering.on_events(events, now)
    if payload.get("people"):
        entering.on_audiences(now, people=[int(p) for p in payload["people"]])


def note_restock(item_ids: list[str]) -> None:
    outbox.record(RESTOCK, {"items": sorted(item_ids)})


def perform_restock(entry_id: int, payload: dict[str, Any]) -> None:
    entering.on_restock(payload["items"], timezone.now())


def note_price_drop(drops: list[tuple[str, float, float]]) -> None:
    if entering.any_live("price_drop"):
        outbox.record(PRICE_DROP, {"drops": [list(drop) for drop in drops]})


def perform_price_drop(entry_id: int, payload: dict[str, Any]) -> None:
    drops = [(str(key), float(before), float(after)) for key, before, after in payload["drops"]]
    entering.on_price_drop(drops, timezone.now())
