"""The first recommender: the person's co-visited items, topped up with what is popular.

A baseline that makes the path from an event to a recommendation work from day one; the trained
engine replaces it. Respects consent: without ``personalization`` consent, popular items only.

The popular list is an aggregate over the last 90 days of events (seconds on a large shop), so no
request ever waits for it once it exists: it is kept in the shared cache with the time it was
computed, and when it is older than ``POPULAR_REFRESH_SECONDS`` the one process that takes the
refresh lock recomputes it in a background thread while every request keeps the current list.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from catalog.services import ItemFacts, servable_items
from personalization import reasons
from profiles import services as profiles

POPULAR_WINDOW = timedelta(days=90)
POPULAR_CACHE_KEY = "baseline:popular:v2"  # (epoch seconds computed, [(item id, score), ...])
POPULAR_REFRESH_SECONDS = 300
POPULAR_KEEP_SECONDS = 7 * 86_400
POPULAR_REFRESH_LOCK = "baseline:popular:refreshing"

logger = logging.getLogger(__name__)


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
    degraded: bool = False
    degraded_reason: str = ""
    # What made it personal: "history" (the person's own events) or "session" (this visit's context);
    # None when it is what anybody would get.
    personalized_by: str | None = None

    def __post_init__(self) -> None:
        if self.personalized and self.personalized_by is None:
            self.personalized_by = "history"


def _popular() -> list[tuple[str, float]]:
    cached = cache.get(POPULAR_CACHE_KEY)
    if cached is None:  # the first request ever (or after a cache flush) computes it
        return refresh_popular()
    computed_at, ranked = cached
    if time.time() - computed_at > POPULAR_REFRESH_SECONDS and cache.add(
        POPULAR_REFRESH_LOCK, 1, timeout=POPULAR_REFRESH_SECONDS
    ):
        threading.Thread(target=_refresh_in_background, name="popular-refresh", daemon=True).start()
    return ranked


def refresh_popular() -> list[tuple[str, float]]:
    """Recompute the popular list now and store it."""
    found = profiles.popular_items(timezone.now() - POPULAR_WINDOW, limit=500)
    if not found:  # a quiet shop: fall back to all-time popularity
        found = profiles.popular_items(timezone.now() - timedelta(days=3650), limit=500)
    ranked = [(str(item), float(score)) for item, score in found]
    cache.set(POPULAR_CACHE_KEY, (time.time(), ranked), POPULAR_KEEP_SECONDS)
    return ranked


def _refresh_in_background() -> None:
    try:
        refresh_popular()
    except Exception:  # the current list keeps serving; the lock expires and another try follows
        logger.exception("Could not refresh the popular list")
    finally:
        cache.delete(POPULAR_REFRESH_LOCK)
        connection.close()  # this thread's own database connection


def recommend(person_id: int | None, limit: int = 20, kind: str | None = "product") -> Recommendations:
    personalized = person_id is not None and profiles.has_consent(person_id, "personalization")
    scored: dict[str, tuple[float, str, str]] = {}
    if personalized:
        assert person_id is not None
        recent = profiles.recent_items(person_id, limit=10)
        neighbours = profiles.co_visited_items(recent, timezone.now() - POPULAR_WINDOW, exclude_person=person_id)
        best = neighbours[0][1] if neighbours else 1.0
        for item_id, score in neighbours:
            scored[item_id] = (1.0 + score / best, "co-visited", reasons.word(reasons.Evidence("co-visited")))
    popular = _popular()
    top = popular[0][1] if popular else 1.0
    for item_id, score in popular:
        if item_id not in scored:
            scored[item_id] = (score / top, "popular", reasons.word(reasons.Evidence("popular")))
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
