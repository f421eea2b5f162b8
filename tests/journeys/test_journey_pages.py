"""The console's journey pages on PostgreSQL: the list and the flow with counts that follow real
entries, launch / pause / archive, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client

from journeys import services
from journeys.models import Entry, EntryState
from tests.access import role_user
from tests.journeys.conftest import abandoned_cart, cart_campaign, item, now, person, relay, track

pytestmark = pytest.mark.django_db


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role.lower(), role))
    return client


def test_the_flow_counts_people_as_they_enter_wait_and_leave():
    item("a1")
    cart_campaign()
    journey = abandoned_cart()
    for name in ("ana", "bob", "cy"):
        person(name)
        track(name, "Product Added", product_id="a1")
    relay()
    services.advance_due(now=now())
    track("bob", "Order Completed", order_id="o1", products=[{"product_id": "a1", "price": "9"}])
    relay()
    marketer = signed_in("Marketer")

    listed = marketer.get("/journeys/")
    assert listed.status_code == 200
    row = listed.context["rows"][0]
    assert row["journey"].key == journey.key and row["counts"]["active"] == 2 and row["counts"]["exited"] == 1

    page = marketer.get(f"/journeys/{journey.key}/")
    wait, send = page.context["rows"]
    assert (wait["count"].entered, wait["count"].waiting, wait["count"].exited) == (3, 2, 1)
    assert wait["count"].exit_reasons == {"exit event: Order Completed": 1}
    assert send["count"].entered == 0
    assert "When someone adds something to the cart (Product Added)" in page.content.decode()
    assert "Wait 4 hours" in page.content.decode()

    Entry.objects.filter(state=EntryState.ACTIVE).update(due_at=F("due_at") - timedelta(hours=4))
    services.advance_due(now=now())
    counts = marketer.get(f"/journeys/{journey.key}/counts").json()
    wait_now, send_now = counts["steps"]
    assert (wait_now["moved_on"], wait_now["waiting"], send_now["entered"], send_now["moved_on"]) == (2, 0, 2, 2)
    assert counts["entries"] == {"active": 0, "done": 2, "exited": 1, "held_out": 0}


def test_launch_pause_archive_and_who_may():
    cart_campaign()
    journey = services.create_journey(
        "cart",
        "Cart",
        {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [{"id": "s", "type": "send_email", "campaign": "cart-reminder"}],
        },
    )
    analyst = signed_in("Analyst")
    assert analyst.get(f"/journeys/{journey.key}/").status_code == 200
    assert analyst.post(f"/journeys/{journey.key}/launch").status_code == 403
    assert b'id="launch"' not in analyst.get(f"/journeys/{journey.key}/").content
    marketer = signed_in("Marketer")
    for action, status in (("launch", "live"), ("pause", "paused"), ("launch", "live"), ("archive", "archived")):
        assert marketer.post(f"/journeys/{journey.key}/{action}").status_code == 302
        journey.refresh_from_db()
        assert journey.status == status
    refused = marketer.post(f"/journeys/{journey.key}/pause", follow=True)
    assert "The journey is archived: it cannot be paused." in refused.content.decode()
