"""The event log partitioned by month on PostgreSQL: partitions created ahead by the daily job, events
outside every partition still stored, retention by dropping whole months, the serving indexes on
every partition, a replay stored once whatever its timestamp, and the migration of existing rows."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_celery_beat.models import PeriodicTask

from personalization.queues import MAINTENANCE, ROUTES
from profiles import partitions
from profiles.models import Event, EventMessage, Person
from profiles.partitions import Month
from profiles.retention import apply_retention
from tests.conftest import track

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the event log is partitioned on PostgreSQL only"
)

NOW = datetime(2026, 11, 27, 3, 15, tzinfo=UTC)


def _partition_of(message_id: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM profiles_event WHERE message_id = %s", [message_id])
        return [row[0] for row in cursor.fetchall()]


def _event(person: Person, message_id: str, at: datetime) -> Event:
    return Event.objects.create(
        message_id=message_id, person=person, kind="view", item_id="sku-1", timestamp=at, received_at=NOW
    )


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return {row[0].split(" USING ", 1)[1] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_the_daily_job_creates_this_month_and_the_next_ones(settings):
    settings.EVENT_PARTITIONS_AHEAD = 2
    far = datetime(2031, 1, 15, tzinfo=UTC)
    assert Month(2031, 1) not in partitions.month_partitions()

    created = partitions.create_ahead(now=far)

    assert [str(m) for m in created] == ["2031-01", "2031-02", "2031-03"]
    assert {Month(2031, 1), Month(2031, 2), Month(2031, 3)} <= set(partitions.month_partitions())
    assert Month(2031, 4) not in partitions.month_partitions()
    assert partitions.create_ahead(now=far) == []  # again: nothing to do
    person = Person.objects.create()
    _event(person, "feb", datetime(2031, 2, 28, 23, 59, tzinfo=UTC))
    _event(person, "mar", datetime(2031, 3, 1, tzinfo=UTC))
    assert _partition_of("feb") == ["profiles_event_2031_02"]
    assert _partition_of("mar") == ["profiles_event_2031_03"]
    # Each new partition has the serving indexes, as the parent declares them.
    assert _indexes("profiles_event_2031_02") == {
        i.replace("profiles_event_2031_02", "profiles_event") for i in _indexes("profiles_event")
    }
    assert any(
        '(person_id, "timestamp") INCLUDE (item_id, kind, quantity)' in i for i in _indexes("profiles_event_2031_02")
    )


@pytest.mark.django_db
def test_the_scheduled_task_is_a_beat_row_on_the_maintenance_queue(settings):
    from profiles.tasks import create_event_partitions

    job = PeriodicTask.objects.get(task="profiles.tasks.create_event_partitions")
    assert job.enabled and job.crontab is not None
    assert ROUTES["profiles.tasks.create_event_partitions"] == MAINTENANCE
    settings.EVENT_PARTITIONS_AHEAD = 30  # further than the migration made: the task adds the rest
    made = create_event_partitions.run()
    assert made and all(Month(int(m[:4]), int(m[5:])) in partitions.month_partitions() for m in made)


@pytest.mark.django_db
def test_an_event_at_a_far_date_is_stored_and_moves_to_its_month_when_that_is_created(ingest_client):
    # The API takes timestamps from 2000 to a day ahead; no partition covers 2001.
    response = ingest_client.post(
        "/api/v1/track",
        track("Product Viewed", user="u1", messageId="far-past", timestamp="2001-05-04T10:00:00Z"),
        format="json",
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.json()
    assert _partition_of("far-past") == ["profiles_event_default"]
    # Rows written another way (an import, a repair) are not bound by the API's window.
    _event(Person.objects.create(), "far-ahead", datetime(2098, 7, 9, tzinfo=UTC))
    assert _partition_of("far-ahead") == ["profiles_event_default"]

    assert partitions.create_month(Month(2001, 5)) is True
    assert partitions.create_month(Month(2001, 5)) is False

    assert _partition_of("far-past") == ["profiles_event_2001_05"]  # moved, not copied
    assert _partition_of("far-ahead") == ["profiles_event_default"]
    assert Event.objects.filter(message_id__in=["far-past", "far-ahead"]).count() == 2


@pytest.mark.django_db
def test_retention_drops_the_months_older_than_the_cutoff_and_keeps_the_others(settings):
    settings.RETENTION_MONTHS = 24  # cutoff 2024-11-27
    for month in (Month(2024, 9), Month(2024, 10), Month(2024, 11)):
        partitions.create_month(month)
    person = Person.objects.create()
    _event(person, "sep", datetime(2024, 9, 10, tzinfo=UTC))
    _event(person, "oct-1", datetime(2024, 10, 1, tzinfo=UTC))
    _event(person, "oct-2", datetime(2024, 10, 31, 23, tzinfo=UTC))
    _event(person, "nov", datetime(2024, 11, 2, tzinfo=UTC))  # the cutoff's month: stays until all of it is older
    _event(person, "recent", datetime(2026, 11, 20, tzinfo=UTC))
    _event(person, "old-in-default", datetime(1999, 1, 1, tzinfo=UTC))

    dry = apply_retention(now=NOW, dry_run=True)
    assert dry.dropped == ["2024-09", "2024-10"] and dry.deleted["profiles.Event"] == 4
    assert Event.objects.count() == 6 and Month(2024, 9) in partitions.month_partitions()

    report = apply_retention(now=NOW)

    assert report.dropped == ["2024-09", "2024-10"]
    assert report.deleted["profiles.Event"] == 4
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["nov", "recent"]
    months = partitions.month_partitions()
    assert Month(2024, 9) not in months and Month(2024, 10) not in months and Month(2024, 11) in months
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('profiles_event_2024_10')")
        assert cursor.fetchone() == (None,)


@pytest.mark.django_db
def test_a_replay_with_another_timestamp_is_stored_once(ingest_client):
    first = track("Product Viewed", user="u1", messageId="m-1", timestamp="2026-11-20T10:00:00Z")
    again = {**first, "timestamp": "2026-10-02T10:00:00Z"}  # another month, another partition
    assert ingest_client.post("/api/v1/track", first, format="json").json()["accepted"] == 1
    assert ingest_client.post("/api/v1/track", again, format="json").json()["duplicates"] == 1
    assert Event.objects.filter(message_id="m-1").count() == 1
    assert EventMessage.objects.filter(message_id="m-1").count() == 1


def _migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


def _latest_profiles() -> tuple[str, str]:
    executor = MigrationExecutor(connection)
    return next(key for key in executor.loader.graph.leaf_nodes() if key[0] == "profiles")


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_rows_into_their_months():
    latest = _latest_profiles()
    _migrate([("profiles", "0007_identity_prefix_search")])  # the plain table, as before
    try:
        assert not partitions.is_partitioned()
        person = Person.objects.create()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO profiles_event (id, message_id, position, person_id, kind, name, item_id, order_id, "
                'properties, context, "timestamp", received_at) VALUES '
                "(101, 'a', 0, %(p)s, 'view', '', 'sku-1', '', '{}', '{}', now() - interval '40 days', now()), "
                "(102, 'b', 0, %(p)s, 'purchase', '', 'sku-2', 'o1', '{}', '{}', now(), now()), "
                "(103, 'b', 1, %(p)s, 'purchase', '', 'sku-3', 'o1', '{}', '{}', now(), now()), "
                "(104, 'c', 0, %(p)s, 'view', '', 'sku-4', '', '{}', '{}', '1980-01-01', now())",
                {"p": person.pk},
            )
    finally:
        _migrate([latest])

    assert partitions.is_partitioned()
    assert Event.objects.count() == 4
    assert _partition_of("c") == ["profiles_event_default"]
    this_month = Month.of(datetime.now(UTC))
    assert set(_partition_of("b")) == {this_month.table}
    assert Month.of(Event.objects.get(message_id="a").timestamp).table == _partition_of("a")[0]
    # The messages are remembered: replays of them are recognised.
    assert set(EventMessage.objects.values_list("message_id", flat=True)) == {"a", "b", "c"}
    # Ids continue after the highest one moved; the keys carry the partition key.
    after = Event.objects.create(
        message_id="d",
        person_id=Event.objects.get(message_id="a").person_id,
        kind="view",
        timestamp=datetime.now(UTC),
        received_at=datetime.now(UTC),
    )
    assert after.pk > 104
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'profiles_event'::regclass AND contype IN ('p', 'u', 'f') ORDER BY conname"
        )
        constraints = dict(cursor.fetchall())
    assert constraints["event_unique_message"] == 'UNIQUE (message_id, "position", "timestamp")'
    assert constraints["profiles_event_pkey"] == 'PRIMARY KEY (id, "timestamp")'
    assert any(d.startswith("FOREIGN KEY (person_id) REFERENCES profiles_person(id)") for d in constraints.values())
    assert any('(person_id, "timestamp") INCLUDE (item_id, kind, quantity)' in i for i in _indexes(this_month.table))


@pytest.mark.django_db(transaction=True)
def test_a_replay_racing_its_original_waits_for_it_and_is_stored_once():
    """The original's batch has claimed the message id but not committed; the replay, with another
    timestamp (another partition), waits on that claim and, once the original commits, is a duplicate."""
    from django.db import connections, transaction

    from profiles.ingestion import ingest_messages

    original = track("Product Viewed", user="u1", messageId="race", timestamp="2026-11-20T10:00:00Z")
    replay = {**original, "timestamp": "2026-10-02T10:00:00Z"}
    claimed, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def send_original() -> None:
        try:
            with transaction.atomic():
                results["original"] = ingest_messages([original])
                claimed.set()
                release.wait(10)
        finally:
            connections.close_all()

    def send_replay() -> None:
        try:
            results["replay"] = ingest_messages([replay])
        finally:
            connections.close_all()

    first = threading.Thread(target=send_original)
    first.start()
    assert claimed.wait(10)
    second = threading.Thread(target=send_replay)
    second.start()
    time.sleep(1.0)
    assert second.is_alive(), "the replay did not wait for the original's transaction"
    release.set()
    first.join(10)
    second.join(10)
    assert (results["original"].accepted, results["replay"].accepted, results["replay"].duplicates) == (1, 0, 1)
    assert Event.objects.filter(message_id="race").count() == 1
