"""What the console's person page shows of the profiles app: identities, merged-away people, traits,
consent now and its history, the computed profile, and the event timeline.

Everything covers the person and everyone merged into them (``profiles.person_data.people_of``), as
export and erasure do. The timeline is read newest first from the ``(person, timestamp)`` index,
one page at a time (no count), with the titles of the items on that page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from catalog.services import item_facts
from profiles.consent import ConsentState, consent_states
from profiles.models import ConsentChange, Event, EventKind, Identity, IdentityKind, PersonMerge, Profile, Purpose
from profiles.person_data import people_of
from profiles.profiling import compute_profile

TIMELINE_PAGE = 30
CONSENT_HISTORY_LIMIT = 100
PURPOSE_LABELS = dict(Purpose.choices)
KIND_LABELS = dict(EventKind.choices)
IDENTITY_LABELS = dict(IdentityKind.choices)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    what: str  # "Viewed", "Purchased", or the event's own name for custom ones
    name: str  # the event name as sent, when it says more than ``what``
    item_id: str
    item_title: str
    quantity: int | None
    price: Decimal | None
    order_id: str
    properties: dict[str, Any]


@dataclass
class Timeline:
    entries: list[TimelineEntry]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class ConsentRow:
    purpose: str
    label: str
    granted: bool
    source: str
    updated_at: datetime | None  # None: the default holds


@dataclass
class ProfileView:
    event_counts: list[tuple[str, int]]
    last_seen_at: datetime | None
    categories: list[tuple[str, float]]
    brands: list[tuple[str, float]]
    price_band: str
    typical_price: float | None
    computed_at: datetime | None  # None: not stored yet, computed for this page
    stored: bool


@dataclass
class PersonFacts:
    person_ids: list[int]
    identities: list[dict[str, Any]]
    merges: list[PersonMerge]
    consent: list[ConsentRow]
    consent_history: list[ConsentChange]
    profile: ProfileView


def consent_rows(states: list[ConsentState]) -> list[ConsentRow]:
    return [
        ConsentRow(s.purpose, PURPOSE_LABELS.get(s.purpose, s.purpose), s.granted, s.source, s.updated_at)
        for s in states
    ]


def _ranked(scores: Any) -> list[tuple[str, float]]:
    if not isinstance(scores, dict):
        return []
    return sorted(((str(k), float(v)) for k, v in scores.items()), key=lambda kv: -kv[1])


def profile_view(person_id: int) -> ProfileView:
    """The stored profile; for someone never profiled yet, computed now and not stored (a page reads)."""
    stored = Profile.objects.filter(person_id=person_id).first()
    price: Any
    if stored is not None:
        counts, seen = stored.event_counts, stored.last_seen_at
        cats, brands = stored.category_affinity, stored.brand_affinity
        band, at = stored.price_band, stored.computed_at
        price = stored.typical_price
    else:
        snapshot = compute_profile(person_id)
        counts, seen, cats, brands = (
            snapshot.event_counts,
            snapshot.last_seen_at,
            snapshot.category_affinity,
            snapshot.brand_affinity,
        )
        band, at = snapshot.price_band, None
        price = snapshot.typical_price
    return ProfileView(
        event_counts=sorted(
            ((KIND_LABELS.get(k, k), int(n)) for k, n in (counts or {}).items()), key=lambda kv: -kv[1]
        ),
        last_seen_at=seen,
        categories=_ranked(cats),
        brands=_ranked(brands),
        price_band=band or "",
        typical_price=float(price) if price is not None else None,
        computed_at=at,
        stored=stored is not None,
    )


def person_facts(person_id: int) -> PersonFacts:
    person_ids = people_of(person_id)
    identities = [
        {**row, "label": IDENTITY_LABELS.get(row["kind"], row["kind"])}
        for row in Identity.objects.filter(person_id__in=person_ids)
        .order_by("kind", "created_at", "id")
        .values("kind", "value", "created_at")
    ]
    return PersonFacts(
        person_ids=person_ids,
        identities=identities,
        merges=list(PersonMerge.objects.filter(target_id__in=person_ids).order_by("-merged_at")),
        consent=consent_rows(consent_states(person_id)),
        consent_history=list(
            ConsentChange.objects.filter(person_id__in=person_ids).order_by("-recorded_at", "-id")[
                :CONSENT_HISTORY_LIMIT
            ]
        ),
        profile=profile_view(person_id),
    )


def _what(kind: str, name: str) -> tuple[str, str]:
    label = KIND_LABELS.get(kind, kind)
    if kind in (EventKind.OTHER, EventKind.PAGE) and name:
        return (name if kind == EventKind.OTHER else f"Page: {name}"), ""
    # The name as sent, where it says more than the label ("Email Opened" does not; "Product Viewed" does).
    shown_name = name if name and name.lower() not in (label.lower(), kind, kind.replace("_", " ")) else ""
    return label, shown_name


def timeline(person_ids: list[int], page: int = 1, per_page: int = TIMELINE_PAGE) -> Timeline:
    """One page of the events of these people, newest first, with the titles of their items."""
    page = max(1, page)
    start = (page - 1) * per_page
    rows = list(
        Event.objects.filter(person_id__in=person_ids)
        .order_by("-timestamp", "-id")
        .values("timestamp", "kind", "name", "item_id", "quantity", "price", "order_id", "properties")[
            start : start + per_page + 1
        ]
    )
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    titles = {k: f.title for k, f in item_facts(r["item_id"] for r in rows if r["item_id"]).items()}
    entries = []
    for r in rows:
        what, name = _what(r["kind"], r["name"])
        entries.append(
            TimelineEntry(
                at=r["timestamp"],
                what=what,
                name=name,
                item_id=r["item_id"],
                item_title=titles.get(r["item_id"], ""),
                quantity=r["quantity"],
                price=r["price"],
                order_id=r["order_id"],
                properties=r["properties"] if isinstance(r["properties"], dict) else {},
            )
        )
    return Timeline(entries, page, has_next)
