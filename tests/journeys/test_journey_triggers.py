"""Triggers are evaluated from committed events through the outbox, and from the catalogue sync."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign
from catalog import services as catalog
from journeys import lifecycle
from journeys.models import Entry, EntryState
from profiles.models import OutboxEntry
from tests.campaigns.conftest import make_campaign, person, track
from tests.journeys.conftest import item, relay

pytestmark = pytest.mark.django_db


def live(key: str, definition: dict) -> None:
    if not Campaign.objects.filter(key="note").exists():
        make_campaign("note", content_limit=0)
    lifecycle.launch(lifecycle.create_journey(key, key, definition))


def test_events_a_live_journey_watches_wait_in_the_outbox_in_the_ingest_transaction() -> None:
    person("ann")
    track("ann", "Product Added", product_id="a1")
    assert not OutboxEntry.objects.filter(action="journey_events").exists()  # nobody watches yet
    live(
        "cart",
        {
            "trigger": {"type": "event", "event": "product added", "where": {"currency": "EUR"}},
            "steps": [{"id": "send", "type": "send_email", "campaign": "note"}],
        },
    )
    track("ann", "Product Added", product_id="a1", currency="USD")
    track("ann", "Product Viewed", product_id="a1")  # not watched: no entry at all
    track("ann", "Product Added", product_id="a2", currency="EUR")
    assert OutboxEntry.objects.filter(action="journey_events").count() == 2
    relay()
    assert not OutboxEntry.objects.exists()
    entry = Entry.objects.get()
    assert entry.state == EntryState.ACTIVE and entry.step == "send"
    assert entry.context["event"]["item_id"] == "a2" and entry.occurrence.startswith("event:")


def test_an_event_count_enters_once_per_period_when_it_reaches_the_threshold() -> None:
    person("bea")
    live(
        "usage",
        {
            "trigger": {"type": "event_count", "event": "API Call", "threshold": 3, "period_days": 30},
            "steps": [{"id": "send", "type": "send_email", "campaign": "note"}],
            "reentry": {"mode": "every_time"},
        },
    )
    for _ in range(2):
        track("bea", "API Call")
    relay()
    assert not Entry.objects.exists()
    for _ in range(3):
        track("bea", "API Call")
    relay()
    assert Entry.objects.count() == 1 and Entry.objects.get().occurrence.startswith("count:")


def test_reentry_once_never_enters_the_same_person_again() -> None:
    person("cal")
    live(
        "welcome",
        {
            "trigger": {"type": "event", "event": "Signed Up"},
            "steps": [{"id": "out", "type": "exit"}],
            "reentry": {"mode": "once"},
        },
    )
    track("cal", "Signed Up")
    track("cal", "Signed Up")
    relay()
    assert Entry.objects.count() == 1


def test_only_a_restock_from_zero_triggers_back_in_stock() -> None:
    item("z1", stock=0)
    item("n1", stock=None)
    person("dan")
    track("dan", "Product Viewed", product_id="z1")
    track("dan", "Product Viewed", product_id="n1")
    live("bis", {"trigger": {"type": "back_in_stock"}, "steps": [{"id": "out", "type": "exit"}]})
    catalog.upsert_items([{"external_id": "n1", "title": "untracked", "stock": 5}])
    assert not OutboxEntry.objects.filter(action="journey_restock").exists()
    catalog.upsert_items([{"external_id": "z1", "title": "back", "stock": 5}])
    assert OutboxEntry.objects.get(action="journey_restock").payload == {"items": ["z1"]}
    relay()
    assert Entry.objects.get().occurrence == "item:z1"


def test_a_patch_that_brings_stock_above_zero_is_a_restock(secret_client: Any) -> None:
    item("p1", stock=0)
    person("eve")
    track("eve", "Product Added", product_id="p1")
    live("bis", {"trigger": {"type": "back_in_stock"}, "steps": [{"id": "out", "type": "exit"}]})
    assert secret_client.patch("/api/v1/catalog/items/p1", {"title": "renamed"}, format="json").status_code == 200
    assert not OutboxEntry.objects.filter(action="journey_restock").exists()
    assert secret_client.patch("/api/v1/catalog/items/p1", {"stock": 2}, format="json").status_code == 200
    relay()
    assert Entry.objects.get().occurrence == "item:p1"


def test_a_weekly_schedule_enters_each_person_in_their_own_local_hour_once() -> None:
    from datetime import UTC, datetime

    from journeys import entering

    fin = person("fin", timezone="Asia/Tokyo")
    gil = person("gil", timezone="America/New_York")
    live(
        "digest",
        {
            "trigger": {"type": "schedule", "every": "weekly", "weekday": 0, "local_time": "09:00"},
            "steps": [{"id": "out", "type": "exit"}],
            "reentry": {"mode": "every_time"},
        },
    )
    tokyo_monday = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # 09:30 on Monday in Tokyo; Sunday evening in New York
    assert entering.on_schedule(tokyo_monday) == 1
    assert entering.on_schedule(tokyo_monday) == 0  # the same local day: nobody again
    assert list(Entry.objects.values_list("person_id", "occurrence")) == [(fin.pk, "day:2026-11-30")]
    new_york_monday = datetime(2026, 11, 30, 14, 45, tzinfo=UTC)  # 09:45 in New York
    assert entering.on_schedule(new_york_monday) == 1
    assert Entry.objects.filter(person=gil).count() == 1
