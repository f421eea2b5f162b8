from __future__ import annotations

import itertools
from typing import Any

from django.utils import timezone

from catalog.models import Item
from journeys import lifecycle
from journeys.models import Journey
from profiles import outbox
from tests.campaigns.conftest import mailbox, make_campaign, person, smtp, track  # noqa: F401  (fixtures)

_ids = itertools.count(1)

CART_HTML = (
    "<html><body><p>You left these in your cart:</p>"
    '{% for item in journey.cart %}<p><a href="{{ item.url }}">{{ item.title }}</a> × {{ item.quantity }}</p>'
    '{% endfor %}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
CART_TEXT = "Still yours:\n{% for item in journey.cart %}- {{ item.title }}\n{% endfor %}"
STOCK_HTML = (
    '<html><body><p><a href="{{ journey.item.url }}">{{ journey.item.title }}</a> is back in stock.</p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def cart_campaign(key: str = "cart-reminder") -> Any:
    return make_campaign(
        key,
        subject="Your cart: {{ journey.cart|length }} items",
        html=CART_HTML,
        text=CART_TEXT,
        content_limit=0,
        audience={"all": []},
    )


def stock_campaign(key: str = "back-in-stock") -> Any:
    return make_campaign(
        key,
        subject="Back in stock: {{ journey.item.title }}",
        html=STOCK_HTML,
        text="{{ journey.item.title }} is back: {{ journey.item.url }}",
        content_limit=0,
        audience={"all": []},
    )


def abandoned_cart(key: str = "abandoned-cart", wait: dict[str, Any] | None = None, **extra: Any) -> Journey:
    definition = {
        "trigger": {"type": "event", "event": "Product Added"},
        "steps": [
            {"id": "wait", "type": "wait", **(wait or {"hours": 4})},
            {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
        ],
        "exit_on": [{"event": "Order Completed"}],
        "reentry": {"mode": "after_exit"},
        **extra,
    }
    journey = lifecycle.create_journey(key, "Abandoned cart", definition)
    return lifecycle.launch(journey)


def back_in_stock(key: str = "back-in-stock", **extra: Any) -> Journey:
    definition = {
        "trigger": {"type": "back_in_stock", "interest": ["view", "add_to_cart"], "within_days": 30},
        "steps": [{"id": "send", "type": "send_email", "campaign": "back-in-stock"}],
        "reentry": {"mode": "every_time"},
        **extra,
    }
    return lifecycle.launch(lifecycle.create_journey(key, "Back in stock", definition))


def item(sku: str, stock: int | None = 5, title: str = "") -> Item:
    return Item.objects.create(external_id=sku, title=title or f"Item {sku.upper()}", price="19.90", stock=stock)


def relay() -> None:
    """Deliver the outbox as the request would after its commit (a test's transaction never commits)."""
    outbox.relay()


def now() -> Any:
    return timezone.now()
