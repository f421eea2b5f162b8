"""The benchmarks' big event log (``bench/big_log.py``): its events land in their month partitions,
belong to people with identities, carry a mix of kinds, and are recognised as stored when a message
of theirs comes again through ingestion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from psycopg.conninfo import make_conninfo

from bench.big_log import preload
from profiles.ingestion import ingest_messages
from profiles.models import Event, EventMessage, Identity

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the event log is partitioned on PostgreSQL only"
)


def _conninfo() -> str:
    settings = connection.settings_dict
    return make_conninfo(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=str(settings["PORT"]) if settings["PORT"] else None,
    )


@pytest.mark.django_db(transaction=True)
def test_the_preloaded_log_fills_the_months_and_is_recognised_by_ingestion():
    # An event of this month stored before: its partition is replaced by the loaded one, with it inside.
    before = ingest_messages([_viewed("before-1", "earlier", datetime.now(UTC) - timedelta(hours=1))])
    assert before.accepted == 1
    lines: list[str] = []

    result = preload(_conninfo(), 3_000, ["sku-1", "sku-2", "sku-3"], chunk=1_000, progress=lines.append)

    assert result.events == 3_000 and result.people == 75
    assert any("3,000 / 3,000 events" in line for line in lines)
    assert Event.objects.count() == 3_001
    assert Event.objects.filter(message_id="before-1").exists()
    assert EventMessage.objects.filter(message_id__startswith="log-").count() == 3_000
    assert EventMessage.objects.filter(message_id="before-1").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM profiles_event_default")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(DISTINCT tableoid) FROM profiles_event")
        assert cursor.fetchone()[0] >= 24
        # every event's person exists and is known by a user id
        cursor.execute(
            "SELECT count(*) FROM profiles_event e WHERE NOT EXISTS (SELECT 1 FROM profiles_identity i "
            "WHERE i.person_id = e.person_id AND i.kind = 'user_id')"
        )
        assert cursor.fetchone()[0] == 0
    assert Identity.objects.filter(value__startswith="log-u").count() == 75
    kinds = set(Event.objects.values_list("kind", flat=True).distinct())
    assert {"view", "add_to_cart", "purchase", "page", "search"} <= kinds
    purchase = Event.objects.filter(kind="purchase").first()
    assert purchase is not None and purchase.price is not None and purchase.order_id.startswith("log-o")
    assert purchase.item_id in {"sku-1", "sku-2", "sku-3"}
    assert not Event.objects.filter(kind="page").exclude(item_id="").exists()
    oldest = Event.objects.order_by("timestamp").first()
    assert oldest is not None and oldest.timestamp > datetime.now(UTC) - timedelta(days=24 * 31)
    # newer months hold more events than older ones: the shop grew
    recent = Event.objects.filter(timestamp__gte=datetime.now(UTC) - timedelta(days=183)).count()
    assert recent > 3_000 / 4 * 1.2

    replayed = ingest_messages(
        [
            {
                "type": "track",
                "event": "Product Viewed",
                "messageId": "log-7",
                "userId": "someone",
                "timestamp": "2026-01-05T10:00:00Z",
                "properties": {"product_id": "sku-1"},
            }
        ]
    )

    assert (replayed.accepted, replayed.duplicates) == (0, 1)
    again = ingest_messages([_viewed("before-1", "earlier", datetime.now(UTC) - timedelta(hours=1))])
    assert (again.accepted, again.duplicates) == (0, 1)
    assert Event.objects.count() == 3_001


@pytest.mark.django_db(transaction=True)
def test_each_loaded_month_is_a_partition_with_the_parents_indexes_and_keys():
    preload(_conninfo(), 2_000, ["sku-1"], chunk=500, progress=lambda line: None)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'profiles_event'::regclass"
        )
        parent_indexes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT c.relname, count(x.indexrelid), count(p.inhparent) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid LEFT JOIN pg_index x ON x.indrelid = c.oid "
            "LEFT JOIN pg_inherits p ON p.inhrelid = x.indexrelid "
            "WHERE i.inhparent = 'profiles_event'::regclass GROUP BY c.relname"
        )
        partitions = cursor.fetchall()
        # none left behind half-made, and the message ids' keys back
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^profiles_event_.*_(load|old)$'")
        leftovers = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'profiles_eventmessage'::regclass")
        message_keys = cursor.fetchone()[0]

    assert parent_indexes == 5
    assert len(partitions) >= 25
    # every partition has the parent's indexes, each one the partition's share of a parent's index
    assert all(indexes == attached == parent_indexes for _, indexes, attached in partitions), partitions
    assert leftovers == 0
    assert message_keys == 2  # the primary key and the unique message id


def _viewed(message_id: str, user: str, when: datetime) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": message_id,
        "userId": user,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "properties": {"product_id": "sku-1"},
    }
