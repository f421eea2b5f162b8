"""Keeping computed profiles up to date from the event log, with a Redis-backed cache in front."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from catalog.services import item_facts, price_thresholds
from profiles.affinity import EXCLUDED_AFTER, ProfileEvent, ProfileSnapshot, build_profile
from profiles.models import Event, Person, Profile


def _cache_key(person_id: int) -> str:
    return f"profile:v1:{person_id}"


def compute_profile(person_id: int) -> ProfileSnapshot:
    now = timezone.now()
    rows = list(
        Event.objects.filter(person_id=person_id, timestamp__gt=now - EXCLUDED_AFTER)
        .values_list("kind", "timestamp", "item_id", "price")
        .order_by()
    )
    facts = item_facts(item_id for _, _, item_id, _ in rows if item_id)
    events = []
    for kind, timestamp, item_id, price in rows:
        fact = facts.get(item_id)
        known_price = float(price) if price is not None else (fact.price if fact else None)
        events.append(
            ProfileEvent(kind, timestamp, fact.category if fact else "", fact.brand if fact else "", known_price)
        )
    return build_profile(events, now, price_thresholds(), settings.PROFILE_HALF_LIFE_DAYS)


def refresh_profile(person_id: int) -> ProfileSnapshot:
    snapshot = compute_profile(person_id)
    Profile.objects.update_or_create(
        person_id=person_id,
        defaults={
            "event_counts": snapshot.event_counts,
            "last_seen_at": snapshot.last_seen_at,
            "category_affinity": snapshot.category_affinity,
            "brand_affinity": snapshot.brand_affinity,
            "price_band": snapshot.price_band,
            "typical_price": snapshot.typical_price,
            "computed_at": timezone.now(),
        },
    )
    cache.set(_cache_key(person_id), asdict(snapshot), settings.PROFILE_CACHE_SECONDS)
    return snapshot


def refresh_profiles(person_ids: Iterable[int]) -> int:
    """Recompute profiles of people who still exist and were not merged away meanwhile."""
    live = Person.objects.filter(pk__in=list(person_ids), merged_into__isnull=True).values_list("pk", flat=True)
    count = 0
    for person_id in live:
        refresh_profile(person_id)
        count += 1
    return count


def get_profile(person_id: int) -> ProfileSnapshot:
    """The person's profile: from the cache, else the database, else computed now."""
    cached = cache.get(_cache_key(person_id))
    if cached is not None:
        return ProfileSnapshot(**cached)
    stored = Profile.objects.filter(person_id=person_id).first()
    if stored is None:
        return refresh_profile(person_id)
    snapshot = ProfileSnapshot(
        event_counts=stored.event_counts,
        last_seen_at=stored.last_seen_at,
        category_affinity=stored.category_affinity,
        brand_affinity=stored.brand_affinity,
        typical_price=float(stored.typical_price) if stored.typical_price is not None else None,
        price_band=stored.price_band,
    )
    cache.set(_cache_key(person_id), asdict(snapshot), settings.PROFILE_CACHE_SECONDS)
    return snapshot


def forget_profile(person_id: int) -> None:
    cache.delete(_cache_key(person_id))
