"""The outbox: follow-up work written with the change, delivered once after the commit or by the relay."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from profiles import outbox
from profiles.models import OutboxEntry
from tests.conftest import track


def test_a_batch_writes_its_follow_up_in_its_own_transaction_and_delivers_it_after_commit(
    ingest_client, django_capture_on_commit_callbacks, monkeypatch
):
    published: list[list[int]] = []
    monkeypatch.setattr(outbox, "_publish", lambda task, ids: published.append(ids))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ingest_client.post("/api/v1/track", track("Product Viewed", user="ob-1"), format="json")
    assert response.status_code == 200
    (entry,) = OutboxEntry.objects.all()
    assert entry.action == outbox.AFTER_INGEST and len(entry.payload["refresh"]) == 1
    assert published == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()

    assert published == [entry.payload["refresh"]]
    assert not OutboxEntry.objects.exists()


def test_an_entry_the_broker_did_not_take_waits_for_the_relay(
    ingest_client, django_capture_on_commit_callbacks, monkeypatch
):
    def away(task: Any, ids: list[int]) -> None:
        raise outbox.BrokerUnreachable("connection refused")

    monkeypatch.setattr(outbox, "_publish", away)
    with django_capture_on_commit_callbacks(execute=True):
        response = ingest_client.post("/api/v1/track", track("Product Viewed", user="ob-2"), format="json")
    assert response.status_code == 200
    (entry,) = OutboxEntry.objects.all()

    report = outbox.relay()
    assert (report.delivered, report.waiting) == (0, 1) and "refused" in report.stopped_by
    entry.refresh_from_db()
    assert entry.attempts == 1 and "refused" in entry.last_error

    published: list[list[int]] = []
    monkeypatch.setattr(outbox, "_publish", lambda task, ids: published.append(ids))
    call_command("relay_outbox")
    assert published == [entry.payload["refresh"]]
    assert not OutboxEntry.objects.exists()


def test_an_entry_that_fails_for_another_reason_does_not_hold_up_the_rest(db, monkeypatch):
    broken = OutboxEntry.objects.create(action="no such action", payload={}, created_at="2026-01-01T00:00:00Z")
    fine = outbox.record(outbox.AFTER_INGEST, {"refresh": [1]})
    published: list[list[int]] = []
    monkeypatch.setattr(outbox, "_publish", lambda task, ids: published.append(ids))

    report = outbox.relay()

    assert (report.delivered, report.failed, report.waiting) == (1, 1, 1)
    assert published == [[1]] and not OutboxEntry.objects.filter(pk=fine).exists()
    broken.refresh_from_db()
    assert broken.attempts == 1 and "Unknown outbox action" in broken.last_error


def test_the_relay_runs_every_15_seconds_from_beat(db):
    job = PeriodicTask.objects.get(task="profiles.tasks.relay_outbox")
    assert job.enabled and (job.interval.every, job.interval.period) == (15, "seconds")


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_deliver_the_same_entry(monkeypatch):
    OutboxEntry.objects.bulk_create(
        OutboxEntry(action=outbox.AFTER_INGEST, payload={"refresh": [n]}, created_at="2026-01-01T00:00Z")
        for n in range(60)
    )
    delivered: list[int] = []
    lock = threading.Lock()

    def slow_publish(task: Any, people: list[int]) -> None:
        time.sleep(0.005)
        with lock:
            delivered.extend(people)

    monkeypatch.setattr(outbox, "_publish", slow_publish)

    def run() -> None:
        try:
            outbox.relay(batch_size=7)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(delivered) == list(range(60))
    assert not OutboxEntry.objects.exists()
