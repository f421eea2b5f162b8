"""The first recommender: the person's co-visited items, topped up with what is popular.

A baseline that makes the path from an event to a recommendation work from day one; the trained
engine replaces it. Respects consent: without ``personalization`` consent, popular items only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from catalog.services import ItemFacts, servable_items
from profiles import services as profiles

POPULAR_WINDOW = timedelta(days=90)
POPULAR_CACHE_KEY = "baseline:popular:v1"
POPULAR_CACHE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    item_id: str
    title: str
    score: float
    source: str
    reason: str


@dataclass
class Recommendations:
    recommendation_id: str
    personalized: bool
    items: list[RecommendedItem] = field(default_factory=list)


def _popular() -> list[tuple[str, float]]:
    cached = cache.get(POPULAR_CACHE_KEY)
    if cached is None:
        cached = profiles.popular_items(timezone.now() - POPULAR_WINDOW, limit=500)
        if not cached:  # a quiet shop: fall back to all-time popularity
            cached = profiles.popular_items(timezone.now() - timedelta(days=3650), limit=500)
        cache.set(POPULAR_CACHE_KEY, cached, POPULAR_CACHE_SECONDS)
    return [(str(item), float(score)) for item, score in cached]


def recommend(person_id: int | None, limit: int = 20, kind: str | None = "product") -> Recommendations:
    personalized = person_id is not None and profiles.has_consent(person_id, "personalization")
    scored: dict[str, tuple[float, str, str]] = {}
    if personalized:
        assert person_id is not None
        recent = profiles.recent_items(person_id, limit=10)
        neighbours = profiles.co_visited_items(recent, timezone.now() - POPULAR_WINDOW, exclude_person=person_id)
        best = neighbours[0][1] if neighbours else 1.0
        for item_id, score in neighbours:
            scored[item_id] = (1.0 + score / best, "co-visited", "Often viewed together with items you looked at")
    popular = _popular()
    top = popular[0][1] if popular else 1.0
    for item_id, score in popular:
        if item_id not in scored:
            scored[item_id] = (score / top, "popular", "Popular right now")
    ranked = sorted(scored.items(), key=lambda kv: -kv[1][0])
    facts: dict[str, ItemFacts] = servable_items(item_id for item_id, _ in ranked)
    items = []
    for item_id, (score, source, reason) in ranked:
        fact = facts.get(item_id)
        if fact is None or (kind and fact.kind != kind):
            continue
        items.append(RecommendedItem(item_id, fact.title, round(score, 4), source, reason))
        if len(items) == limit:
            break
    return Recommendations(uuid.uuid4().hex, personalized and any(i.source != "popular" for i in items), items)
