"""The catalogue's public functions; other apps use these, never the models directly."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Field, Q

from catalog.models import Item

UPSERT_FIELDS = (
    "kind",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "margin",
    "stock",
    "published_at",
    "active",
    "attributes",
)
PRICE_THRESHOLDS_KEY = "catalog:price-thresholds:v1"

# Called in the sync's transaction with the external ids whose stock went from zero (or less) to
# above zero; journeys register here (from their AppConfig.ready) to write their follow-up work.
_restock_followers: list[Callable[[list[str]], None]] = []


def follow_restocks(follower: Callable[[list[str]], None]) -> None:
    if follower not in _restock_followers:
        _restock_followers.append(follower)


# Called the same way with (external id, price before, price after) for each item whose price fell.
_price_drop_followers: list[Callable[[list[tuple[str, float, float]]], None]] = []


def follow_price_drops(follower: Callable[[list[tuple[str, float, float]]], None]) -> None:
    if follower not in _price_drop_followers:
        _price_drop_followers.append(follower)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    external_id: str
    kind: str
    title: str
    category: str
    brand: str
    price: float | None
    active: bool
    in_stock: bool


def _facts(item: Item) -> ItemFacts:
    return ItemFacts(
        external_id=item.external_id,
        kind=item.kind,
        title=item.title,
        category=item.category,
        brand=item.brand,
        price=None if item.price is None else float(item.price),
        active=item.active,
        in_stock=item.in_stock,
    )


def item_facts(external_ids: Iterable[str]) -> dict[str, ItemFacts]:
    ids = list(set(external_ids))
    found: dict[str, ItemFacts] = {}
    for start in range(0, len(ids), 2000):
        for item in Item.objects.filter(external_id__in=ids[start : start + 2000]).only(
            "external_id", "kind", "title", "category", "brand", "price", "active", "stock"
        ):
            found[item.external_id] = _facts(item)
    return found


def servable_items(external_ids: Iterable[str]) -> dict[str, ItemFacts]:
    """The subset that may be shown: active and in stock."""
    return {k: f for k, f in item_facts(external_ids).items() if f.active and f.in_stock}


def search_items(query: str, limit: int = 20) -> list[ItemFacts]:
    """Items whose title (or id) contains ``query``, active first: the console's item picker."""
    query = query.strip()
    if not query:
        return []
    found = Item.objects.filter(Q(title__icontains=query) | Q(external_id__iexact=query))
    return [_facts(item) for item in found.order_by("-active", "title", "external_id")[:limit]]


def categories(limit: int = 500) -> list[str]:
    """The catalogue's categories, for the console's pickers."""
    rows = Item.objects.exclude(category="").values_list("category", flat=True).distinct().order_by("category")
    return list(rows[:limit])


def price_thresholds() -> list[float]:
    """The catalogue's price tertiles [p33, p66], cached; empty when prices are unknown."""
    cached = cache.get(PRICE_THRESHOLDS_KEY)
    if cached is not None:
        return list(cached)
    prices = sorted(float(p) for p in Item.objects.filter(price__isnull=False).values_list("price", flat=True) if p)
    thresholds = [prices[len(prices) // 3], prices[(2 * len(prices)) // 3]] if len(prices) >= 3 else []
    cache.set(PRICE_THRESHOLDS_KEY, thresholds, 600)
    return thresholds


@transaction.atomic
def upsert_items(rows: list[dict]) -> int:
    """Create or fully replace items by external id. ``rows`` are validated field dicts."""
    if not rows:
        return 0
    items = [Item(**{f: row.get(f, _default(f)) for f in ("external_id", *UPSERT_FIELDS)}) for row in rows]
    restocked = _restocked(items) if _restock_followers else []
    dropped = _price_drops(items) if _price_drop_followers else []
    Item.objects.bulk_create(
        items,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["external_id"],
        update_fields=[*UPSERT_FIELDS, "updated_at"],
    )
    cache.delete(PRICE_THRESHOLDS_KEY)
    if restocked:
        for follower in _restock_followers:
            follower(restocked)
    if dropped:
        for price_follower in _price_drop_followers:
            price_follower(dropped)
    return len(items)


def note_stock_change(external_id: str, before: int | None, after: int | None) -> None:
    """One item's stock changed in the current transaction (a PATCH): a rise from zero is a restock."""
    if before is not None and before <= 0 and after is not None and after > 0:
        for follower in _restock_followers:
            follower([external_id])


def note_price_change(external_id: str, before: Any, after: Any) -> None:
    """One item's price changed in the current transaction (a PATCH): a fall is a price drop."""
    if before is not None and after is not None and float(after) < float(before):
        for follower in _price_drop_followers:
            follower([(external_id, float(before), float(after))])


def _price_drops(items: list[Item]) -> list[tuple[str, float, float]]:
    """Items already known whose price this sync lowers, with the prices before and after; their rows
    are locked until the sync commits (as for restocks)."""
    new_prices = {item.external_id: float(item.price) for item in items if item.price is not None}
    if not new_prices:
        return []
    before = (
        Item.objects.select_for_update()
        .filter(external_id__in=sorted(new_prices), price__isnull=False)
        .order_by("external_id")
        .values_list("external_id", "price")
    )
    return [
        (key, float(old), new_prices[key]) for key, old in before if old is not None and new_prices[key] < float(old)
    ]


def _restocked(items: list[Item]) -> list[str]:
    """Items already known with a stock of zero or less that this sync brings above zero. Their rows
    are locked until the sync commits, so two concurrent syncs cannot both see the same restock."""
    rising = {item.external_id for item in items if item.stock is not None and item.stock > 0}
    if not rising:
        return []
    empty = (
        Item.objects.select_for_update()
        .filter(external_id__in=sorted(rising), stock__lte=0)
        .order_by("external_id")
        .values_list("external_id", flat=True)
    )
    return list(empty)


def _default(field_name: str) -> object:
    field = Item._meta.get_field(field_name)
    return field.get_default() if isinstance(field, Field) else None
