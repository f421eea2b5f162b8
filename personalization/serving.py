"""Recommendations from the active engine version, with the baseline as the fallback.

The person's recent events (their own history, read at request time, so an event ingested a
moment ago already counts) go to the engine as a ``PersonContext``; the engine's ranked list is
then filtered to what may be shown now (active, in stock, of the asked kind).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from catalog.services import servable_items
from personalization import baseline, registry
from personalization.baseline import Recommendations, RecommendedItem
from personalization.engine.history import PersonContext
from personalization.training import TRAINING_KINDS
from profiles import services as profiles
from profiles.models import Event, Person

HISTORY_LIMIT = 200


def person_events(
    person_id: int, traits: dict[str, Any] | None = None
) -> tuple[list[tuple[str, float, str, float]], str | None]:
    """The person's last ``HISTORY_LIMIT`` item events, oldest first, as (item id, epoch seconds,
    kind, quantity), and their segment (country) from ``traits`` or the database."""
    rows = list(
        Event.objects.filter(person_id=person_id, kind__in=TRAINING_KINDS)
        .exclude(item_id="")
        .order_by("-timestamp")
        .values_list("item_id", "timestamp", "kind", "quantity")[:HISTORY_LIMIT]
    )
    rows.reverse()
    if traits is None:
        traits = Person.objects.filter(pk=person_id).values_list("traits", flat=True).first() or {}
    country = traits.get("country") if isinstance(traits, dict) else None
    return [(r[0], r[1].timestamp(), r[2], float(r[3] or 1)) for r in rows], country


def person_context(person_id: int) -> PersonContext:
    events, country = person_events(person_id)
    return PersonContext(
        item_ids=[e[0] for e in events],
        timestamps=[e[1] for e in events],
        event_types=[e[2] for e in events],
        quantities=[e[3] for e in events],
        segment=country,
        now=time.time(),
    )


def recommend(person_id: int | None, limit: int = 20, kind: str | None = "product") -> Recommendations:
    if person_id is None or not profiles.has_consent(person_id, "personalization"):
        return baseline.recommend(None, limit, kind)
    _, engine = registry.serving_engine()
    if engine is None:
        return baseline.recommend(person_id, limit, kind)
    ranked = engine.recommend(person_context(person_id), k=max(limit * 3, 60), n_candidates=500)
    facts = servable_items(r.item_id for r in ranked)
    items = [
        RecommendedItem(r.item_id, facts[r.item_id].title, round(r.score, 4), r.source, r.reason)
        for r in ranked
        if r.item_id in facts and (not kind or facts[r.item_id].kind == kind)
    ][:limit]
    if len(items) < limit:  # top up from the baseline rather than answer short
        seen = {i.item_id for i in items}
        extra = [i for i in baseline.recommend(person_id, limit, kind).items if i.item_id not in seen]
        items += extra[: limit - len(items)]
    return Recommendations(uuid.uuid4().hex, True, items)
