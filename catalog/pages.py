"""The public page of an item, where the item links of emails go (``/items/<id>``, the default of the
``ITEM_URL`` setting): its title, image, price, brand, category and description, for anyone, signed in
or not. A shop that has its own product pages sets ``ITEM_URL`` to them instead."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from catalog.models import Item

# Attribute names under which catalogues commonly send an item's picture, in the order tried.
IMAGE_ATTRIBUTES = ("image_url", "image", "image_link", "picture", "thumbnail")
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
DEFAULT_CURRENCY = "EUR"


def image_of(item: Item) -> str:
    """The item's picture: the first http(s) URL among the usual attribute names, else ""."""
    attributes: dict[str, Any] = item.attributes if isinstance(item.attributes, dict) else {}
    for name in IMAGE_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return ""


def price_text(price: Decimal | None, currency: str) -> str:
    if price is None:
        return ""
    code = (currency or DEFAULT_CURRENCY).upper()
    amount = f"{price:,.2f}"
    return f"{SYMBOLS[code]}{amount}" if code in SYMBOLS else f"{amount} {code}"


@require_GET
def item_page(request: HttpRequest, item_id: str) -> HttpResponse:
    item = get_object_or_404(Item, external_id=item_id)
    attributes = item.attributes if isinstance(item.attributes, dict) else {}
    context = {
        "item": item,
        "image": image_of(item),
        "price": price_text(item.price, str(attributes.get("currency") or "")),
        "path": [part for part in item.category.split(" > ") if part],
        "available": item.active and item.in_stock,
        "initial": (item.title or item.external_id)[:1].upper(),
    }
    return render(request, "catalog/item.html", context)
