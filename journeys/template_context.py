"""What a journey's email template sees as ``journey``: the journey, the entry's trigger, the cart,
the item back in stock. Items carry id, title, url, price, quantity, like a campaign's ``products``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from campaigns.models import Campaign
from campaigns.preparation import item_url
from catalog import services as catalog
from journeys.models import Entry
from profiles.models import Event

CART_DAYS = 30


def cart_items(person_id: int, campaign: Campaign, entry: Entry) -> list[dict[str, Any]]:
    """Items added to the cart in the last days and not bought or removed since they were added."""
    since = entry.entered_at - timedelta(days=CART_DAYS)
    rows = (
        Event.objects.filter(person_id=person_id, timestamp__gte=since)
        .exclude(item_id="")
        .order_by("timestamp", "pk")
        .values_list("kind", "name", "item_id", "quantity")
    )
    cart: dict[str, int] = {}
    for kind, name, item_id, quantity in rows:
        if kind == "add_to_cart":
            cart[item_id] = cart.get(item_id, 0) + (quantity or 1)
        elif kind == "purchase" or name.lower() in ("product removed", "remove from cart"):
            cart.pop(item_id, None)
    facts = catalog.item_facts(cart)
    return [
        {
            "id": item_id,
            "title": facts[item_id].title if item_id in facts else item_id,
            "price": facts[item_id].price if item_id in facts else None,
            "quantity": quantity,
            "url": item_url(campaign, item_id),
        }
        for item_id, quantity in cart.items()
    ]


def for_entry(entry: Entry, campaign: Campaign) -> dict[str, Any]:
    context: dict[str, Any] = {
        "key": entry.journey.key,
        "name": entry.journey.name,
        "entered_at": entry.entered_at.isoformat(),
        "event": entry.context.get("event"),
        "cart": cart_items(entry.person_id, campaign, entry),
    }
    item = entry.context.get("item")
    if isinstance(item, dict):
        context["item"] = {**item, "url": item_url(campaign, str(item.get("id", "")))}
    return context
