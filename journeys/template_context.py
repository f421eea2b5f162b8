"""What a journey's email template sees as ``journey``: the journey, the entry's trigger, the cart,
the item back in stock or whose price dropped, the checklist items this entry pinned
(``journey.pinned``: id, title, note, url — a deep link to that step), the account and its CSM (``journey.csm.name``,
``journey.csm.email``), and for a step with ``picks`` the items picked (``journey.picks``). Items
carry id, title, url, price, quantity, like a campaign's ``products``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from campaigns.models import Account, Campaign, Message
from campaigns.preparation import item_url
from catalog import services as catalog
from journeys.models import Entry, SurfacePin
from personalization import services as engine
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
    pins = SurfacePin.objects.filter(entry_id=entry.pk).order_by("pinned_at", "pk").values_list("item_id", "note")
    if pins:
        facts = catalog.item_facts(item_id for item_id, _ in pins)
        context["pinned"] = [
            {
                "id": item_id,
                "title": facts[item_id].title if item_id in facts else item_id,
                "note": note,
                "url": item_url(campaign, item_id),
            }
            for item_id, note in pins
        ]
    account = entry.context.get("account")
    if isinstance(account, dict):
        context["account"] = account
        found = Account.objects.select_related("csm").filter(external_id=str(account.get("id", ""))).first()
        if found is not None:
            context["account"] = {**account, "name": found.name, "plan": found.plan}
            if found.csm is not None:
                context["csm"] = {"name": found.csm.get_full_name() or found.csm.username, "email": found.csm.email}
    return context


def shown_items(person_id: int) -> set[str]:
    """Every item an earlier message (email or in product) showed the person."""
    shown: set[str] = set()
    for ids in Message.objects.filter(person_id=person_id).exclude(item_ids=[]).values_list("item_ids", flat=True):
        shown.update(str(i) for i in ids or [])
    return shown


def picks(person_id: int, campaign: Campaign, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` items recommended for the person (the campaign's content surface and kind) that
    no earlier message showed them, in the engine's order."""
    answer = engine.recommend(
        person_id,
        surface=campaign.content_surface or None,
        limit=limit + 50,
        kind=campaign.content_kind or None,
        context={"channel": campaign.channel, "campaign": campaign.key},
    )
    shown = shown_items(person_id)
    fresh = [item for item in answer.items if item.item_id not in shown][:limit]
    facts = catalog.item_facts(item.item_id for item in fresh)
    return [
        {
            "id": item.item_id,
            "title": item.title,
            "url": item_url(campaign, item.item_id),
            "price": facts[item.item_id].price if item.item_id in facts else None,
            "reason": item.reason,
        }
        for item in fresh
    ]
