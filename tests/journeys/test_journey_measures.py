"""A journey's measures on a small known case: the counts per step, conversions and revenue in the
window, the holdout comparison with its intervals; the console's page, its refresh and the API
show the same numbers (one reading, ``journeys.counting.read``)."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.test import Client

from experiments import stats
from journeys import lifecycle, services
from journeys.models import Entry, EntryState, StepRun
from profiles.models import Event, Person
from tests.access import role_user
from tests.journeys.conftest import cart_campaign, now

pytestmark = pytest.mark.django_db
_ids = count(1)


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role.lower(), role))
    return client


def _purchase(person: Person, at: Any, price: str, quantity: int) -> None:
    Event.objects.create(
        message_id=f"m{next(_ids)}",
        person=person,
        kind="purchase",
        name="Order Completed",
        item_id="a1",
        price=Decimal(price),
        quantity=quantity,
        timestamp=at,
        received_at=at,
    )


def _known_case() -> tuple[Any, Any]:
    """Eight entries ten days ago: five went through the wait-then-email journey, three were held out."""
    cart_campaign()
    journey = lifecycle.launch(
        lifecycle.create_journey(
            "cart",
            "Cart",
            {
                "trigger": {"type": "event", "event": "Product Added"},
                "steps": [
                    {"id": "wait", "type": "wait", "hours": 4},
                    {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
                ],
                "exit_on": [{"event": "Order Completed"}],
                "holdout_share": 0.1,
            },
        )
    )
    version = journey.current_version
    assert version is not None
    start = now() - timedelta(days=10)
    people: dict[str, Person] = {}
    plan = [  # name, state, next step, steps run, exit reason
        ("waits", EntryState.ACTIVE, "send", ["wait"], ""),
        ("bought", EntryState.EXITED, "", ["wait"], "exit event: Order Completed"),
        ("emailed", EntryState.DONE, "", ["wait", "send"], ""),
        ("late", EntryState.DONE, "", ["wait", "send"], ""),
        ("new", EntryState.ACTIVE, "wait", [], ""),
        ("held1", EntryState.HELD_OUT, "", [], ""),
        ("held2", EntryState.HELD_OUT, "", [], ""),
        ("held3", EntryState.HELD_OUT, "", [], ""),
    ]
    for name, state, step, ran, reason in plan:
        people[name] = Person.objects.create(traits={"email": f"{name}@example.com"})
        entry = Entry.objects.create(
            journey=journey,
            version=version,
            person=people[name],
            occurrence=f"o-{name}",
            state=state,
            step=step,
            exit_reason=reason,
            entered_at=start,
        )
        for n, step_id in enumerate(ran):
            kind = "wait" if step_id == "wait" else "send_email"
            StepRun.objects.create(entry=entry, step=step_id, kind=kind, ran_at=start + timedelta(hours=4 * n))
    _purchase(people["waits"], start + timedelta(hours=1), "5.00", 2)  # 10.00, in the window
    _purchase(people["bought"], start + timedelta(hours=2), "20.00", 1)  # 20.00
    _purchase(people["late"], start + timedelta(days=8), "50.00", 1)  # after the 7 days: not counted
    _purchase(people["emailed"], start - timedelta(hours=1), "50.00", 1)  # before entering: not counted
    _purchase(people["held1"], start + timedelta(days=1), "4.00", 1)  # a held out person who bought
    return journey, people


def test_the_measures_of_a_known_case_and_the_page_and_api_agree() -> None:
    journey, _ = _known_case()
    measures = services.step_measures(journey)
    wait, send = measures["steps"]
    assert measures["entries"] == {"active": 2, "done": 2, "exited": 1, "held_out": 3} and measures["total"] == 8
    assert {k: wait[k] for k in ("entered", "waiting", "moved_on", "exited", "finished", "converted", "revenue")} == {
        "entered": 5,  # four ran it, one is about to
        "waiting": 2,
        "moved_on": 2,
        "exited": 1,
        "finished": 0,
        "converted": 2,
        "revenue": 30.0,
    }
    assert wait["exited_by_reason"] == {"exit event: Order Completed": 1}
    assert {k: send[k] for k in ("entered", "waiting", "moved_on", "exited", "finished", "converted", "revenue")} == {
        "entered": 2,
        "waiting": 0,
        "moved_on": 2,
        "exited": 0,
        "finished": 2,
        "converted": 0,
        "revenue": 0.0,
    }

    # Against the holdout: 2 of 5 bought (10 + 20 spent) beside 1 of 3 (4 spent).
    holdout = measures["holdout"]
    assert (holdout["entries"], holdout["held_out"]) == (5, 3)
    assert holdout["conversion_rate"] == pytest.approx(0.4)
    assert holdout["holdout_conversion_rate"] == pytest.approx(1 / 3)
    assert holdout["revenue_per_entry"] == pytest.approx(6.0)
    assert holdout["holdout_revenue_per_entry"] == pytest.approx(4 / 3)
    se = math.sqrt(0.4 * 0.6 / 5 + (1 / 3) * (2 / 3) / 3)
    z = 1.959963984540054
    assert holdout["conversion_lift"] == pytest.approx(0.4 - 1 / 3)
    assert holdout["conversion_lift_interval"] == pytest.approx([0.4 - 1 / 3 - z * se, 0.4 - 1 / 3 + z * se])
    welch = stats.welch_test(
        stats.SampleSummary.from_values([4.0, 0.0, 0.0]), stats.SampleSummary.from_values([10.0, 20.0, 0.0, 0.0, 0.0])
    )
    assert holdout["revenue_lift"] == pytest.approx(6.0 - 4 / 3)
    assert holdout["revenue_lift_interval"] == pytest.approx(
        [welch.difference_interval.low, welch.difference_interval.high]
    )
    # Each step's own against the same holdout: the wait's five are the journey's; nobody past the email bought.
    assert wait["conversion_lift_interval"] == pytest.approx(holdout["conversion_lift_interval"])
    assert send["conversion_rate"] == 0.0 and send["conversion_lift"] == pytest.approx(-1 / 3)
    assert send["revenue_lift"] == pytest.approx(-4 / 3)

    analyst = signed_in("Analyst")
    api = analyst.get("/api/v1/journeys/cart").json()["measures"]
    page = analyst.get("/journeys/cart/")
    assert [row["count"] for row in page.context["rows"]] == api["steps"]
    refreshed = analyst.get("/journeys/cart/counts").json()
    assert refreshed["steps"] == api["steps"] and refreshed["holdout"] == api["holdout"]
    assert refreshed["entries"] == api["entries"] == measures["entries"]
    html = page.content.decode()
    assert "2 of 5 bought (40.0%); held out 33.3%, difference +6.7 pts (95%: −61.8 pts to +75.1 pts)" in html
    assert "30.00 spent (6.00 per entry); held out 1.33, difference +4.67 (95%: " in html
    assert refreshed["words"]["send"]["conversion"].startswith("0 of 2 bought (0.0%); held out 33.3%")
    steps = analyst.get("/api/v1/journeys/cart/steps").json()["steps"]
    assert [(s["ran"], s["waiting"]) for s in steps] == [(4, 2), (2, 0)]


def test_the_measures_are_read_in_a_fixed_number_of_queries(django_assert_max_num_queries: Any) -> None:
    journey, _ = _known_case()
    with django_assert_max_num_queries(1):
        services.step_measures(journey)
