"""A person's profile from their events: counts, recency, decayed category/brand affinity, price band.

Plain Python, free of Django. Old signals decay: weight halves every ``half_life_days``; events
older than 12 months count half again; events older than 24 months are left out entirely.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

# How much one event of each kind says about taste, relative to a view.
KIND_WEIGHTS = {
    "view": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "email_click": 1.5,
    "search": 0.5,
    "feature_activated": 2.0,
}
LESS_AFTER = timedelta(days=365)
EXCLUDED_AFTER = timedelta(days=730)
TOP_N = 20


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    kind: str
    timestamp: datetime
    category: str = ""
    brand: str = ""
    price: float | None = None


@dataclass
class ProfileSnapshot:
    event_counts: dict[str, int] = field(default_factory=dict)
    last_seen_at: datetime | None = None
    category_affinity: dict[str, float] = field(default_factory=dict)
    brand_affinity: dict[str, float] = field(default_factory=dict)
    typical_price: float | None = None
    price_band: str = ""


def signal_weight(age: timedelta, half_life_days: float) -> float:
    """Decay for an event of this age: 0 beyond 24 months, halved again beyond 12 months."""
    if age >= EXCLUDED_AFTER:
        return 0.0
    days = max(age.total_seconds() / 86400.0, 0.0)
    weight = math.pow(0.5, days / half_life_days)
    return weight * 0.5 if age >= LESS_AFTER else weight


def _top(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    best = max(scores.values())
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:TOP_N]
    return {key: round(value / best, 4) for key, value in ranked if value > 0}


def price_band(price: float | None, thresholds: Sequence[float]) -> str:
    """'budget', 'mid' or 'premium' by the catalogue's price tertiles (``thresholds`` = [p33, p66])."""
    if price is None or len(thresholds) != 2:
        return ""
    if price <= thresholds[0]:
        return "budget"
    return "mid" if price <= thresholds[1] else "premium"


def build_profile(
    events: Iterable[ProfileEvent], now: datetime, price_thresholds: Sequence[float] = (), half_life_days: float = 90
) -> ProfileSnapshot:
    snapshot = ProfileSnapshot()
    counts: Counter[str] = Counter()
    categories: dict[str, float] = {}
    brands: dict[str, float] = {}
    prices: list[float] = []
    for event in events:
        age = now - event.timestamp
        decay = signal_weight(age, half_life_days)
        if decay == 0.0:
            continue
        counts[event.kind] += 1
        if snapshot.last_seen_at is None or event.timestamp > snapshot.last_seen_at:
            snapshot.last_seen_at = event.timestamp
        weight = KIND_WEIGHTS.get(event.kind, 0.0) * decay
        if weight <= 0:
            continue
        if event.category:
            # Credit every level of the path, so "Home > Kitchen" also lifts "Home".
            parts = event.category.split(" > ")
            for depth in range(1, len(parts) + 1):
                key = " > ".join(parts[:depth])
                categories[key] = categories.get(key, 0.0) + weight
        if event.brand:
            brands[event.brand] = brands.get(event.brand, 0.0) + weight
        if event.price is not None and event.kind in ("purchase", "add_to_cart", "view"):
            prices.append(event.price)
    snapshot.event_counts = dict(counts)
    snapshot.category_affinity = _top(categories)
    snapshot.brand_affinity = _top(brands)
    if prices:
        snapshot.typical_price = round(median(prices), 2)
        snapshot.price_band = price_band(snapshot.typical_price, price_thresholds)
    return snapshot
