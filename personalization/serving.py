"""Recommendations from the active engine version, with the baseline as the fallback.

The person's recent events (their own history, read at request time, so an event ingested a
moment ago already counts) go to the engine as a ``PersonContext``; the engine's ranked list is
then filtered to what may be shown now (active, in stock, of the asked kind).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import numpy as np

from catalog.services import ItemFacts, servable_items
from personalization import baseline, reasons, registry
from personalization.baseline import Recommendations, RecommendedItem
from personalization.engine.engine import Engine, Recommendation
from personalization.engine.history import PersonContext
from personalization.item_table import item_table
from personalization.training import TRAINING_KINDS
from profiles import services as profiles
from profiles.recent import RecentEvent

HISTORY_LIMIT = 200


def events_context(
    events: list[RecentEvent], segment: str | None, now: float, positions: np.ndarray | None = None
) -> PersonContext:
    """The engine's view of a person: their (item id, epoch seconds, kind, quantity) events, oldest
    first (``positions``: each event's item in the engine's index, when the caller has them)."""
    return PersonContext(
        item_ids=[e[0] for e in events],
        timestamps=[e[1] for e in events],
        event_types=[e[2] for e in events],
        quantities=[e[3] for e in events],
        segment=segment,
        now=now,
        item_positions=positions,
    )


def recommend(
    person_id: int | None, limit: int = 20, kind: str | None = "product", *, keep_profile: bool = True
) -> Recommendations:
    """``keep_profile=False`` for callers that ask about each person once (campaigns): no hot
    profile copy is made for them."""
    if person_id is None:
        return baseline.recommend(None, limit, kind)
    activity = profiles.recent_activity(person_id, kinds=TRAINING_KINDS, limit=HISTORY_LIMIT, keep=keep_profile)
    if activity is None:  # no such person: the purpose's default, and nothing to go on
        consent, person = profiles.has_consent(person_id, "personalization"), events_context([], None, time.time())
    else:
        consent, person = activity.consent, events_context(activity.events, activity.country, time.time())
    if not consent:
        return baseline.recommend(None, limit, kind)
    version, engine = registry.serving_engine()
    if engine is None:
        fallback = baseline.recommend(person_id, limit, kind)
        problem = registry.serving_problem()
        if problem:  # trained, but this process cannot load the model: the fallback, and why
            fallback.degraded, fallback.degraded_reason = True, problem
        return fallback
    # Personalized only if the model knows at least one of the person's items: otherwise the engine's
    # answer is its popularity fallback, the same as anybody's.
    # Each event's item looked up once, for this, the engine's history and the reasons.
    positions = engine.item_index.positions(list(person.item_ids))
    person = replace(person, item_positions=positions)
    used_history = bool((positions >= 0).any())
    # Three asked for each place (some cannot be shown), from at least as many candidates.
    wanted = max(limit * 3, 60)
    ranked = engine.recommend(person, k=wanted, n_candidates=max(engine.config.n_candidates, wanted))
    facts = servable_items(r.item_id for r in ranked)
    shown = [r for r in ranked if r.item_id in facts and (not kind or facts[r.item_id].kind == kind)][:limit]
    titles = item_table(version or id(engine), engine.item_ids).title
    worded = _reasons(engine, titles, person, activity, shown, facts)
    items = [
        RecommendedItem(r.item_id, facts[r.item_id].title, round(r.score, 4), r.source, reason)
        for r, reason in zip(shown, worded, strict=True)
    ]
    if len(items) < limit:  # top up from the baseline rather than answer short
        seen = {i.item_id for i in items}
        extra = [i for i in baseline.recommend(person_id, limit, kind).items if i.item_id not in seen]
        items += extra[: limit - len(items)]
    by = "history" if used_history else None
    return Recommendations(uuid.uuid4().hex, used_history, items, personalized_by=by)


def _reasons(
    engine: Engine,
    titles: reasons.Titles,
    person: PersonContext,
    activity: profiles.RecentActivity | None,
    shown: list[Recommendation],
    facts: dict[str, ItemFacts],
) -> list[str]:
    """Each item's reason, naming the person's item it was retrieved from (as surfaces word them)."""
    history = engine.history_for(person)
    index = engine.item_index.positions([r.item_id for r in shown])
    anchored = reasons.anchors(
        engine.sources, reasons.person_items(history, engine.config), index, [r.source for r in shown], titles
    )
    events = list(activity.events) if activity is not None else []
    # ``person`` holds the same events in the same order, already looked up.
    looked_up = person.item_positions
    if looked_up is None:
        looked_up = engine.item_index.positions([e[0] for e in events])
    positions = looked_up.tolist()
    kinds = reasons.strongest_kinds(events, engine.item_index, positions)
    purchased = {i for i, e in zip(positions, events, strict=True) if i >= 0 and e[2] == "purchase"}
    worded = []
    for r, i, anchor in zip(shown, index.tolist(), anchored, strict=True):
        evidence = reasons.Evidence(
            r.source,
            anchor=titles[anchor] if anchor is not None else None,
            anchor_kind=kinds.get(anchor, "view") if anchor is not None else "view",
            purchased=i in purchased,
            country=person.segment,
            category=facts[r.item_id].category,
        )
        worded.append(reasons.word(evidence))
    return worded
