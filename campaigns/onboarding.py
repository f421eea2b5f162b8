"""Onboarding's next best action: features and content a person has not activated yet, ranked by how
likely people like them were to activate each one.

"People like them" are the people who share the person's segment (the ``plan`` trait unless
``CAMPAIGN_SEGMENT_TRAIT`` says otherwise). For each candidate item the activation rate among those
peers is shrunk toward the rate among everyone, like a Beta prior worth ``PRIOR_STRENGTH`` people:

    rate = (peers who activated + m * population rate) / (peers + m)

so a segment of five people does not outrank what thousands did, and a person without a segment
(or without personalization consent) gets the population's ranking. A feature counts as activated
with a ``feature_activated`` event, a piece of content with a view (or an activation) of it.
Candidates are the features people activate and the feature and content items the engine's
``recommend`` offers for the ``onboarding-checklist`` surface; only active items are shown.

A journey may put a step on the person's checklist (``update_surface``): that item comes first, with
the journey's note as its reason, until the person activates it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.cache import cache

from campaigns import conf, people
from catalog import services as catalog
from personalization import services as engine
from profiles import services as profiles

SURFACE = "onboarding-checklist"
KINDS = ("feature", "content")
ACTIVATION_EVENTS = {"feature": ("feature_activated",), "content": ("view", "feature_activated")}
PRIOR_STRENGTH = 20.0
MIN_PEERS_TO_QUOTE = 5
CACHE_SECONDS = 300


@dataclass(frozen=True)
class NextAction:
    item_id: str
    title: str
    kind: str
    score: float
    activation_rate: float
    peers_activated: int
    reason: str


@dataclass(frozen=True)
class OnboardingAnswer:
    person_id: int
    recommendation_id: str
    personalized: bool
    peer_trait: str | None
    peer_value: str | None
    peers: int
    population: int
    items: list[NextAction] = field(default_factory=list)
    degraded_reason: str = ""  # why the engine's candidates were a fallback (e.g. model files missing)

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_reason)


def _candidates(person_id: int | None, kinds: tuple[str, ...]) -> tuple[dict[str, catalog.ItemFacts], str]:
    """The candidate items, and why the engine's part of them was a fallback ("" when it was not)."""
    ids = set(people.activated_items("feature_activated")) if "feature" in kinds else set()
    degraded: list[str] = []
    for kind in kinds:
        answer = engine.recommend(person_id, surface=SURFACE, limit=50, kind=kind, context={"channel": "onboarding"})
        ids.update(item.item_id for item in answer.items)
        if answer.degraded_reason and answer.degraded_reason not in degraded:
            degraded.append(answer.degraded_reason)
    return {k: f for k, f in catalog.servable_items(ids).items() if f.kind in kinds}, "; ".join(degraded)


def _counts(candidates: dict[str, catalog.ItemFacts], trait: str | None, value: Any) -> tuple[int, dict[str, int]]:
    digest = hashlib.sha256("|".join(sorted(candidates)).encode()).hexdigest()[:16]
    key = f"campaigns:onboarding:v1:{trait}:{str(value).lower()}:{digest}"
    cached = cache.get(key)
    if cached is not None:
        return int(cached[0]), dict(cached[1])
    total = people.people_count(trait, value) if trait else people.people_count()
    counts: dict[str, int] = {}
    for kind, events in ACTIVATION_EVENTS.items():
        ids = [item_id for item_id, facts in candidates.items() if facts.kind == kind]
        counts.update(people.activations(ids, events, trait, value))
    cache.set(key, (total, counts), CACHE_SECONDS)
    return total, counts


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _pinned_first(person_id: int, actions: list[NextAction], done: set[str]) -> list[NextAction]:
    """Items a journey pinned on this person's checklist, newest first, ahead of the ranked ones."""
    from journeys.services import pinned_items  # journeys build on campaigns; read them lazily

    pins = [(item_id, note) for item_id, note in pinned_items(person_id, SURFACE) if item_id not in done]
    if not pins:
        return actions
    ranked = {action.item_id: action for action in actions}
    facts = catalog.servable_items(item_id for item_id, _ in pins if item_id not in ranked)
    first: list[NextAction] = []
    for item_id, note in pins:
        if item_id in ranked:
            first.append(replace(ranked[item_id], reason=note or ranked[item_id].reason))
        elif item_id in facts:
            found = facts[item_id]
            first.append(NextAction(item_id, found.title, found.kind, 1.0, 0.0, 0, note))
    chosen = {action.item_id for action in first}
    activated = [action for action in first if action.item_id not in done]
    return activated + [action for action in actions if action.item_id not in chosen]


def next_best_actions(person_id: int, limit: int = 5, kinds: tuple[str, ...] = KINDS) -> OnboardingAnswer:
    personalized = profiles.has_consent(person_id, "personalization")
    trait = conf.segment_trait()
    value = people.traits_of([person_id]).get(person_id, {}).get(trait) if personalized else None
    segment = str(value) if value not in (None, "") else None
    candidates, degraded_reason = _candidates(person_id if personalized else None, kinds)
    population, everyone = _counts(candidates, None, None)
    peers, among_peers = _counts(candidates, trait, segment) if segment else (0, {})
    done: set[str] = set()
    for kind, events in ACTIVATION_EVENTS.items():
        done |= people.activated_by(person_id, [k for k, f in candidates.items() if f.kind == kind], events)

    actions = []
    for item_id, facts in candidates.items():
        if item_id in done:
            continue
        population_rate = (everyone.get(item_id, 0) + 1.0) / (population + 2.0)
        activated = among_peers.get(item_id, 0)
        if segment and peers:
            rate = (activated + PRIOR_STRENGTH * population_rate) / (peers + PRIOR_STRENGTH)
        else:
            rate = population_rate
        if segment and peers >= MIN_PEERS_TO_QUOTE:
            reason = f"{_percent(activated / peers)} of people on the {segment} {trait} use it"
        else:
            reason = f"{_percent(everyone.get(item_id, 0) / max(population, 1))} of all people use it"
        actions.append(
            NextAction(
                item_id=item_id,
                title=facts.title,
                kind=facts.kind,
                score=round(rate, 4),
                activation_rate=round(activated / peers if segment and peers else population_rate, 4),
                peers_activated=activated if segment else everyone.get(item_id, 0),
                reason=reason,
            )
        )
    actions.sort(key=lambda action: (-action.score, action.title, action.item_id))
    actions = _pinned_first(person_id, actions, done)
    return OnboardingAnswer(
        person_id=person_id,
        recommendation_id=uuid.uuid4().hex,
        personalized=personalized and segment is not None,
        peer_trait=trait if segment else None,
        peer_value=segment,
        peers=peers,
        population=population,
        items=actions[:limit],
        degraded_reason=degraded_reason,
    )
