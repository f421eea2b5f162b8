"""The journeys REST API: create, read, change (a new version), launch, pause, step counts; errors
name the field; analysts read and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from journeys.models import Journey
from tests.journeys.conftest import cart_campaign

pytestmark = pytest.mark.django_db

DEFINITION: dict[str, Any] = {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 4},
        {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
    ],
    "exit_on": [{"event": "Order Completed"}],
}


def signed_in(role: str) -> APIClient:
    user = User.objects.create_user(role.lower(), password="pw-for-tests")
    user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.force_login(user)
    return client


def test_a_marketer_creates_changes_launches_and_pauses_a_journey() -> None:
    cart_campaign()
    client = signed_in("Marketer")
    created = client.post("/api/v1/journeys", {"key": "cart", "name": "Cart", "definition": DEFINITION}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft" and created.json()["version"] == 1
    assert created.json()["definition"]["steps"][0]["seconds"] == 4 * 3600

    changed = client.patch("/api/v1/journeys/cart", {"definition": {**DEFINITION, "holdout_share": 0.1}}, format="json")
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert client.post("/api/v1/journeys/cart/launch").json()["status"] == "live"
    assert client.post("/api/v1/journeys/cart/launch").status_code == 409
    assert client.post("/api/v1/journeys/cart/pause").json()["status"] == "paused"
    counts = client.get("/api/v1/journeys/cart/steps").json()
    assert counts["steps"] == [
        {"id": "wait", "type": "wait", "ran": 0, "waiting": 0},
        {"id": "send", "type": "send_email", "ran": 0, "waiting": 0},
    ]
    assert [j["key"] for j in client.get("/api/v1/journeys").json()["results"]] == ["cart"]


def test_a_wrong_definition_is_refused_naming_the_field() -> None:
    cart_campaign()
    client = signed_in("Marketer")
    wrong = {**DEFINITION, "steps": [{"id": "wait", "type": "wait", "hours": "soon"}]}
    answer = client.post("/api/v1/journeys", {"key": "cart", "name": "Cart", "definition": wrong}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["type"] == "validation_error"
    assert body["attr"] == "definition.steps[0].hours"
    assert body["detail"] == "Give a number from 0 to 8784."
    assert not Journey.objects.exists()


def test_a_count_per_billing_cycle_is_accepted_and_a_wrong_period_refused_naming_the_field() -> None:
    cart_campaign()
    client = signed_in("Marketer")
    trigger = {"type": "event_count", "event": "API Call", "threshold": 500, "per": "account"}
    steps = [{"id": "send", "type": "send_email", "campaign": "cart-reminder"}]
    wrong = {"trigger": {**trigger, "period": "quarter"}, "steps": steps}
    answer = client.post("/api/v1/journeys", {"key": "usage", "name": "Usage", "definition": wrong}, format="json")
    assert answer.status_code == 400 and answer.json()["attr"] == "definition.trigger.period"
    assert not Journey.objects.exists()
    right = {"trigger": {**trigger, "period": "billing_cycle"}, "steps": steps}
    created = client.post("/api/v1/journeys", {"key": "usage", "name": "Usage", "definition": right}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["definition"]["trigger"]["period"] == "billing_cycle"
    assert "period_days" not in created.json()["definition"]["trigger"]


def test_an_analyst_reads_but_changes_nothing() -> None:
    cart_campaign()
    signed_in("Marketer").post(
        "/api/v1/journeys", {"key": "cart", "name": "Cart", "definition": DEFINITION}, format="json"
    )
    analyst = signed_in("Analyst")
    assert analyst.get("/api/v1/journeys/cart").status_code == 200
    assert analyst.post("/api/v1/journeys/cart/launch").status_code == 403
    assert analyst.patch("/api/v1/journeys/cart", {"name": "Mine"}, format="json").status_code == 403
    journey = Journey.objects.get()
    assert (journey.status, journey.name) == ("draft", "Cart")


def test_the_abandoned_cart_example_of_the_docs_runs_through_the_api(secret_client: Any, ingest_client: Any) -> None:
    """docs/journeys.md, case 1, call by call (the wait shortened)."""
    from datetime import timedelta

    from django.db.models import F

    from campaigns.models import Message
    from journeys import services
    from journeys.models import Entry
    from profiles import outbox
    from tests.journeys.conftest import item, person

    item("SKU-1", title="Kettle")
    person("user-00002")
    template = {
        "key": "cart-reminder",
        "name": "Cart reminder",
        "content_limit": 0,
        "subject": "Still thinking it over? {{ journey.cart|length }} items in your cart",
        "html": '<p>You left these:</p>{% for i in journey.cart %}<p><a href="{{ i.url }}">{{ i.title }}</a> × '
        '{{ i.quantity }}</p>{% endfor %}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        "text": "{% for i in journey.cart %}- {{ i.title }}: {{ i.url }}\n{% endfor %}",
    }
    assert secret_client.post("/api/v1/campaigns", template, format="json").status_code == 201
    journey = {
        "key": "abandoned-cart",
        "name": "Abandoned cart",
        "definition": {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [
                {"id": "wait", "type": "wait", "hours": 4},
                {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
            ],
            "exit_on": [{"event": "Order Completed"}],
            "reentry": {"mode": "after_exit"},
        },
    }
    assert secret_client.post("/api/v1/journeys", journey, format="json").status_code == 201
    assert secret_client.post("/api/v1/journeys/abandoned-cart/launch").status_code == 200
    event = {"userId": "user-00002", "event": "Product Added", "properties": {"product_id": "SKU-1", "quantity": 1}}
    assert ingest_client.post("/api/v1/track", event, format="json").status_code == 200
    outbox.relay()
    services.advance_due()
    counts = secret_client.get("/api/v1/journeys/abandoned-cart/steps").json()
    assert counts["entries"]["active"] == 1
    assert counts["steps"] == [
        {"id": "wait", "type": "wait", "ran": 1, "waiting": 1},  # held in the wait
        {"id": "send", "type": "send_email", "ran": 0, "waiting": 0},
    ]
    Entry.objects.update(due_at=F("due_at") - timedelta(hours=4))  # four hours later
    services.advance_due()
    message = Message.objects.get()
    assert message.subject == "Still thinking it over? 1 items in your cart"
    assert "Kettle</a> × 1" in message.html
