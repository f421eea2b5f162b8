"""The abandoned-cart and back-in-stock journeys end to end: PostgreSQL, Redis, a real Celery worker
and a real SMTP server on loopback. Ingestion and the catalogue sync run here (committing, so the
outbox delivers after the commit as in a web process); the worker advances the due entries and sends.

And a worker killed (SIGKILL) in the middle of advancing a batch: nothing of the batch was committed,
the next worker advances every entry once, and every person gets exactly one email.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Message, MessageState, Reason
from catalog import services as catalog
from journeys.models import Entry, EntryState, StepRun
from journeys.tasks import advance_journeys
from personalization.celery import app
from profiles import services as profiles
from tests.campaigns.conftest import Mailbox
from tests.campaigns.test_campaigns_worker import Worker
from tests.journeys.conftest import (
    abandoned_cart,
    back_in_stock,
    cart_campaign,
    item,
    person,
    stock_campaign,
    track,
)
from tests.processes import database_url_of_test_db

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the worker runs in another process",
    ),
]


def wait_for(condition: Callable[[], bool], seconds: float, what: str, worker: Worker, nudge: bool = True) -> None:
    """Poll, and do what celery beat does every 5 seconds: queue the advancing round."""
    deadline = time.monotonic() + seconds
    last = 0.0
    while time.monotonic() < deadline:
        if condition():
            return
        if not worker.alive():
            pytest.fail(f"the worker exited:\n{worker.log.read_text()[-4000:]}")
        if nudge and time.monotonic() - last > 1:
            advance_journeys.delay()
            last = time.monotonic()
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{worker.log.read_text()[-4000:]}")


def settle(box: Mailbox, worker: Worker, seconds: float = 3.0) -> None:
    """A few more rounds, to see that nothing more is sent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        advance_journeys.delay()
        time.sleep(0.5)


@pytest.mark.django_db(transaction=True)
def test_abandoned_cart_end_to_end(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    item("a1", title="Blue mug")
    item("b1", title="Red kettle")
    cart_campaign()
    journey = abandoned_cart(wait={"seconds": 4})
    person("ana")
    person("bo")
    cy = person("cy")
    for who in ("ana", "bo", "cy"):
        track(who, "Product Added", product_id="a1")
    track("ana", "Product Added", product_id="b1", quantity=2)
    assert Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).count() == 3  # the outbox delivered
    track("bo", "Order Completed", products=[{"product_id": "a1", "price": 19.9}])  # buys within the wait
    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        # The wait has begun for everyone; cy withdraws consent on the way.
        wait_for(lambda: not Entry.objects.filter(journey=journey, step="wait").exists(), 60, "the waits", worker)
        profiles.record_consent(cy.pk, "email_marketing", False, source="preference centre")
        wait_for(lambda: len(box.received) >= 1, 90, "the cart email", worker)
        wait_for(
            lambda: not Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).exists(), 30, "the ends", worker
        )
        settle(box, worker)
    finally:
        worker.stop()

    assert box.by_recipient() == {"ana@example.com": 1}
    sent = box.received[0]
    assert str(sent["Subject"]) == "Your cart: 2 items"
    body = sent.get_body(("html",))
    assert body is not None
    html = body.get_content()
    assert "Blue mug</a> × 1" in html and "Red kettle</a> × 2" in html
    states = {e.person.traits["email"]: (e.state, e.exit_reason) for e in Entry.objects.select_related("person")}
    assert states["bo@example.com"] == (EntryState.EXITED, "exit event: Order Completed")
    assert states["ana@example.com"][0] == EntryState.DONE
    refused = Message.objects.get(person=cy)
    assert (refused.state, refused.reason) == (MessageState.SUPPRESSED, Reason.NO_CONSENT)


@pytest.mark.django_db(transaction=True)
def test_back_in_stock_end_to_end(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    item("s1", stock=0, title="Green lamp")
    stock_campaign()
    back_in_stock()
    person("jo")
    person("kim")
    track("jo", "Product Viewed", product_id="s1")
    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 3}])
        wait_for(lambda: len(box.received) >= 1, 90, "the back-in-stock email", worker)
        # Sold out and back again: the same person and item get nothing more.
        catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 0}])
        catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 7}])
        settle(box, worker)
    finally:
        worker.stop()
    assert box.by_recipient() == {"jo@example.com": 1}
    assert str(box.received[0]["Subject"]) == "Back in stock: Green lamp"
    text = box.received[0].get_body(("plain",))
    assert text is not None and "Green lamp is back: http" in text.get_content()
    assert [url for url, _ in Message.objects.get().links] == ["https://shop.example.com/p/s1"]  # tracked


def _blocked_holds_messages(dsn: str) -> bool:
    """The blocked session has written campaign messages in its open transaction (the first sends)."""
    with psycopg.connect(dsn, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE a.datname = %s AND a.wait_event_type = 'Lock' "
            "AND l.relation = 'campaigns_message'::regclass AND l.mode = 'RowExclusiveLock'",
            [connection.settings_dict["NAME"]],
        ).fetchone()
    return bool(row and row[0])


def _blocked_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [connection.settings_dict["NAME"]],
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_advance_loses_and_duplicates_nothing(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    item("a1")
    cart_campaign()
    journey = abandoned_cart(wait={"seconds": 0})
    people = [f"k{n}" for n in range(6)]
    for who in people:
        person(who)
        track(who, "Product Added", product_id="a1")
    entries = list(Entry.objects.filter(journey=journey).order_by("pk"))
    assert len(entries) == len(people)
    # Everyone is due at the send step (their wait is over), the last one a moment after the others.
    Entry.objects.filter(journey=journey).update(step="send")
    StepRun.objects.bulk_create(
        [StepRun(entry=e, step="wait", kind="wait", outcome="waited", ran_at=e.entered_at) for e in entries]
    )
    last = entries[-1]
    Entry.objects.filter(journey=journey).update(due_at=timezone.now() - timedelta(minutes=1))
    Entry.objects.filter(pk=last.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    # Another session holds the last entry's send step (uncommitted): the worker's batch stops there,
    # with the first five sends done but not committed.
    dsn = database_url_of_test_db()
    holder = psycopg.connect(dsn)
    holder.execute(
        "INSERT INTO journeys_steprun (entry_id, step, kind, outcome, ran_at) "
        "VALUES (%s, 'send', 'send_email', '', now())",
        [last.pk],
    )
    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        wait_for(lambda: _blocked_backends(dsn) >= 1, 60, "the worker to block mid-batch", worker)
        assert _blocked_holds_messages(dsn)
        worker.kill()
        holder.rollback()
        holder.close()
        # The dead worker's transaction is rolled back once its server process notices: nothing it did stays.
        deadline = time.monotonic() + 30
        while _blocked_backends(dsn) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        assert not Message.objects.exists()
        assert StepRun.objects.filter(step="send").count() == 0
        assert set(Entry.objects.values_list("step", flat=True)) == {"send"}

        worker.start()
        wait_for(lambda: len(box.received) >= len(people), 90, "every email after the restart", worker)
        settle(box, worker)
    finally:
        worker.stop()
        if not holder.closed:
            holder.close()

    assert box.by_recipient() == {f"{who}@example.com": 1 for who in people}
    assert StepRun.objects.filter(step="send").count() == len(people)
    assert Message.objects.filter(state=MessageState.SENT).count() == len(people)
    assert set(Entry.objects.values_list("state", flat=True)) == {EntryState.DONE}
