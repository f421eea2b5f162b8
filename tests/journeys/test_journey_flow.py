"""The two journeys built so far, in one process: the outbox delivered by its relay, the due steps
advanced and the messages sent as the workers would (the worker tests run the same in a real worker)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F

from campaigns.models import Message, MessageState, Reason
from catalog import services as catalog
from journeys import services
from journeys.models import Entry, EntryState, StepRun
from profiles import services as profiles
from profiles.models import OutboxEntry
from tests.campaigns.conftest import send_all
from tests.journeys.conftest import (
    abandoned_cart,
    back_in_stock,
    cart_campaign,
    item,
    now,
    person,
    relay,
    stock_campaign,
    track,
)

pytestmark = pytest.mark.django_db


def advance(at: Any = None) -> services.AdvanceReport:
    return services.advance_due(now=at or now())


def elapse(**delta: float) -> None:
    """Time passes for the waiting entries: what was due in ``delta`` is due now."""
    Entry.objects.filter(state=EntryState.ACTIVE).update(due_at=F("due_at") - timedelta(**delta))


def test_an_abandoned_cart_gets_one_email_with_its_items_after_the_wait(mailoutbox: list[Any]) -> None:
    item("a1", title="Blue mug")
    item("b1", title="Red kettle")
    cart_campaign()
    journey = abandoned_cart()
    ana = person("ana")
    track("ana", "Product Added", product_id="a1", quantity=2)
    track("ana", "Product Added", product_id="b1")
    assert OutboxEntry.objects.filter(action="journey_events").count() == 2
    relay()
    # after_exit: the second add while the first entry is active enters nobody new.
    entry = Entry.objects.get(journey=journey, person=ana)
    assert entry.state == EntryState.ACTIVE and entry.step == "wait"

    advance()  # the wait begins
    entry.refresh_from_db()
    assert entry.step == "send" and entry.due_at > now() + timedelta(hours=3, minutes=59)
    advance(now() + timedelta(hours=3))  # not yet due
    assert not Message.objects.exists()

    elapse(hours=4)
    advance()
    advance()  # a second round finds nothing to do
    entry.refresh_from_db()
    assert entry.state == EntryState.DONE
    message = Message.objects.get(person=ana)
    assert message.state == MessageState.SCHEDULED and message.origin == f"journey:{entry.pk}:send"
    assert message.subject == "Your cart: 2 items"
    assert "Blue mug</a> × 2" in message.html and "Red kettle</a> × 1" in message.html
    send_all()
    send_all()
    assert [m.to for m in mailoutbox] == [["ana@example.com"]]
    assert StepRun.objects.filter(entry=entry).count() == 2


def test_buying_before_the_wait_ends_exits_the_journey(mailoutbox: list[Any]) -> None:
    item("a1")
    cart_campaign()
    journey = abandoned_cart()
    bo = person("bo")
    track("bo", "Product Added", product_id="a1")
    relay()
    advance()
    track("bo", "Order Completed", products=[{"product_id": "a1", "price": 19.9}])
    relay()
    entry = Entry.objects.get(journey=journey, person=bo)
    assert entry.state == EntryState.EXITED and entry.exit_reason == "exit event: Order Completed"
    elapse(hours=5)
    advance()
    assert not Message.objects.exists()
    assert mailoutbox == []


def test_a_purchase_the_outbox_has_not_delivered_yet_still_exits_at_the_step() -> None:
    item("a1")
    cart_campaign()
    journey = abandoned_cart()
    cy = person("cy")
    track("cy", "Product Added", product_id="a1")
    relay()
    advance()
    track("cy", "Order Completed", products=[{"product_id": "a1"}])  # not relayed
    elapse(hours=5)
    advance()
    entry = Entry.objects.get(journey=journey, person=cy)
    assert entry.state == EntryState.EXITED
    assert not Message.objects.exists()


def test_consent_withdrawn_during_the_wait_stops_the_email(mailoutbox: list[Any]) -> None:
    item("a1")
    cart_campaign()
    abandoned_cart()
    di = person("di")
    track("di", "Product Added", product_id="a1")
    relay()
    advance()
    profiles.record_consent(di.pk, "email_marketing", False, source="preference centre")
    elapse(hours=4)
    advance()
    message = Message.objects.get(person=di)
    assert (message.state, message.reason) == (MessageState.SUPPRESSED, Reason.NO_CONSENT)
    send_all()
    assert mailoutbox == []


def test_consent_withdrawn_after_the_step_stops_the_send_too(mailoutbox: list[Any]) -> None:
    item("a1")
    cart_campaign()
    abandoned_cart(wait={"seconds": 0})
    ed = person("ed")
    track("ed", "Product Added", product_id="a1")
    relay()
    advance()
    advance()
    assert Message.objects.get(person=ed).state == MessageState.SCHEDULED
    profiles.record_consent(ed.pk, "email_marketing", False, source="preference centre")
    send_all()
    assert Message.objects.get(person=ed).state == MessageState.SUPPRESSED
    assert mailoutbox == []


def test_quiet_hours_defer_the_journey_email_never_drop_it() -> None:
    item("a1")
    cart_campaign()
    from campaigns.models import Campaign

    Campaign.objects.filter(key="cart-reminder").update(quiet_start="00:00", quiet_end="23:59")
    abandoned_cart(wait={"seconds": 0})
    person("fay", timezone="UTC")
    track("fay", "Product Added", product_id="a1")
    relay()
    advance()
    advance()
    message = Message.objects.get()
    assert message.state == MessageState.SCHEDULED and message.scheduled_for > now()


def test_an_approval_step_puts_the_journey_email_in_the_csm_queue() -> None:
    item("a1")
    cart_campaign()
    definition = {
        "trigger": {"type": "event", "event": "Product Added"},
        "steps": [
            {"id": "approve", "type": "require_approval"},
            {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
        ],
    }
    services.launch(services.create_journey("csm-cart", "Cart via CSM", definition))
    person("gus")
    track("gus", "Product Added", product_id="a1")
    relay()
    advance()
    message = Message.objects.get()
    assert message.state == MessageState.PENDING_APPROVAL and message.needs_approval


def test_a_paused_journey_enters_nobody_and_advances_nobody() -> None:
    item("a1")
    cart_campaign()
    journey = abandoned_cart(wait={"seconds": 0})
    person("hal")
    track("hal", "Product Added", product_id="a1")
    relay()
    services.pause(journey)
    advance()
    assert Entry.objects.get().step == "wait"
    person("ida")
    track("ida", "Product Added", product_id="a1")
    relay()
    assert Entry.objects.count() == 1


def test_back_in_stock_emails_each_interested_person_once_per_item(mailoutbox: list[Any]) -> None:
    item("s1", stock=0, title="Green lamp")
    item("s2", stock=3)
    stock_campaign()
    journey = back_in_stock()
    jo = person("jo")
    kim = person("kim")
    person("lee")  # no interest
    track("jo", "Product Viewed", product_id="s1")
    track("kim", "Product Added", product_id="s1")
    track("lee", "Product Viewed", product_id="s2")

    catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 0}])
    catalog.upsert_items([{"external_id": "s2", "title": "Item S2", "stock": 9}])  # never was out
    relay()
    assert not Entry.objects.exists()

    catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 4}])
    relay()
    assert set(Entry.objects.filter(journey=journey).values_list("person_id", flat=True)) == {jo.pk, kim.pk}
    advance()
    send_all()
    assert sorted(m.to[0] for m in mailoutbox) == ["jo@example.com", "kim@example.com"]
    assert mailoutbox[0].subject == "Back in stock: Green lamp"

    # Out again and back again: still once per person and item.
    catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 0}])
    catalog.upsert_items([{"external_id": "s1", "title": "Green lamp", "stock": 2}])
    relay()
    advance()
    send_all()
    assert len(mailoutbox) == 2
    assert Entry.objects.filter(journey=journey).count() == 2


def test_an_outbox_entry_delivered_twice_enters_nobody_twice() -> None:
    from journeys import following

    item("a1")
    cart_campaign()
    journey = abandoned_cart(reentry={"mode": "every_time"})
    person("max")
    track("max", "Product Added", product_id="a1")
    payload = OutboxEntry.objects.get(action="journey_events").payload
    following.perform_events(1, payload)
    following.perform_events(1, payload)
    relay()
    assert Entry.objects.filter(journey=journey).count() == 1


def test_the_holdout_share_is_entered_but_gets_nothing() -> None:
    item("a1")
    cart_campaign()
    journey = abandoned_cart(wait={"seconds": 0}, holdout_share=0.5)
    for n in range(30):
        person(f"h{n}")
        track(f"h{n}", "Product Added", product_id="a1")
    relay()
    advance()
    advance()
    held = Entry.objects.filter(journey=journey, state=EntryState.HELD_OUT).count()
    assert 5 <= held <= 25
    assert Message.objects.count() == 30 - held


def test_a_purchase_in_the_same_batch_as_the_add_exits_too() -> None:
    item("a1")
    cart_campaign()
    journey = abandoned_cart(wait={"seconds": 0})
    person("ole")
    at = now() - timedelta(minutes=5)
    profiles.ingest_messages(
        [
            {
                "type": "track",
                "userId": "ole",
                "event": "Product Added",
                "properties": {"product_id": "a1"},
                "messageId": "ole-add",
                "timestamp": at.isoformat(),
            },
            {
                "type": "track",
                "userId": "ole",
                "event": "Order Completed",
                "properties": {"products": [{"product_id": "a1"}]},
                "messageId": "ole-buy",
                "timestamp": (at + timedelta(minutes=1)).isoformat(),
            },
        ],
        refresh=False,
    )
    relay()
    advance()
    advance()
    entry = Entry.objects.get(journey=journey)
    assert entry.state == EntryState.EXITED
    assert not Message.objects.exists()
