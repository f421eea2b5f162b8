"""Aggregate questions about the event log that the engine's first recommender asks."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db.models import Count, Max

from profiles.models import Event, EventKind

ITEM_KINDS = [EventKind.VIEW, EventKind.ADD_TO_CART, EventKind.PURCHASE, EventKind.FEATURE_ACTIVATED]
POPULARITY_WEIGHTS: dict[str, int] = {
    EventKind.VIEW: 1,
    EventKind.ADD_TO_CART: 3,
    EventKind.PURCHASE: 5,
    EventKind.FEATURE_ACTIVATED: 2,
}


def recent_items(person_id: int, limit: int = 20) -> list[str]:
    """The distinct items a person touched, most recent first."""
    rows = (
        Event.objects.filter(person_id=person_id, kind__in=ITEM_KINDS)
        .exclude(item_id="")
        .values("item_id")
        .annotate(last=Max("timestamp"))
        .order_by("-last")[:limit]
    )
    return [row["item_id"] for row in rows]


def purchased_items(person_id: int) -> set[str]:
    return set(
        Event.objects.filter(person_id=person_id, kind=EventKind.PURCHASE)
        .exclude(item_id="")
        .values_list("item_id", flat=True)
        .distinct()
    )


def popular_items(since: datetime, limit: int = 200) -> list[tuple[str, float]]:
    """Items by weighted count of views, carts, purchases and activations since a time."""
    scores: Counter[str] = Counter()
    rows = (
        Event.objects.filter(timestamp__gte=since, kind__in=ITEM_KINDS)
        .exclude(item_id="")
        .values("item_id", "kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        scores[row["item_id"]] += POPULARITY_WEIGHTS.get(row["kind"], 1) * row["n"]
    return [(item, float(score)) for item, score in scores.most_common(limit)]


def co_visited_items(
    item_ids: list[str], since: datetime, exclude_person: int | None = None, neighbours: int = 400, limit: int = 100
) -> list[tuple[str, float]]:
    """Items that other people who touched ``item_ids`` also touched, by number of such people."""
    if not item_ids:
        return []
    people = (
        Event.objects.filter(item_id__in=item_ids, timestamp__gte=since, kind__in=ITEM_KINDS)
        .exclude(person_id=exclude_person or 0)
        .values("person_id")
        .annotate(last=Max("timestamp"))
        .order_by("-last")
        .values_list("person_id", flat=True)[:neighbours]
    )
    rows = (
        Event.objects.filter(person_id__in=list(people), timestamp__gte=since, kind__in=ITEM_KINDS)
        .exclude(item_id="")
        .exclude(item_id__in=item_ids)
        .values("item_id")
        .annotate(n=Count("person_id", distinct=True))
        .order_by("-n")[:limit]
    )
    return [(row["item_id"], float(row["n"])) for row in rows]


def recently_active_people(limit: int = 5, scan: int = 5000) -> list[tuple[int, str]]:
    """A few people who touched items lately, newest first, each with the key a marketer would type
    (user id, else email, else anonymous id): the console's sample people for a preview."""
    from profiles.models import Identity, IdentityKind

    people: list[int] = []
    recent = Event.objects.filter(kind__in=ITEM_KINDS).exclude(item_id="").order_by("-timestamp")
    for person_id in recent.values_list("person_id", flat=True)[:scan]:
        if person_id not in people:
            people.append(person_id)
            if len(people) == limit:
                break
    keys: dict[int, dict[str, str]] = {}
    for person_id, kind, value in Identity.objects.filter(person_id__in=people).values_list(
        "person_id", "kind", "value"
    ):
        keys.setdefault(person_id, {}).setdefault(kind, value)
    labels = []
    for person_id in people:
        found = keys.get(person_id, {})
        key = found.get(IdentityKind.USER_ID) or found.get(IdentityKind.EMAIL) or found.get(IdentityKind.ANONYMOUS_ID)
        labels.append((person_id, key or f"person {person_id}"))
    return labels
