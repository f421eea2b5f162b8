"""Serving a surface: the person's recent events and this session's context go through the active
engine (candidates from every source, LightGBM ranking), then the surface's re-ranking (weights,
filters, diversity quota, exploration), and come back with a readable reason per item.

Controls that decide *what kind* of answer a person gets, in order:

1. an experiment on the surface: a holdout variant gets the curated default, a variant with
   ``surface_version`` or ``model_version`` is served with that version;
2. no ``personalization`` consent: the curated default (topped up with popular items so it is as
   full as any other answer);
3. no trained model, or the cache/engine failing: popular items from the database or the curated
   default, flagged ``degraded`` with the reason, never an error;
4. a person the engine knows nothing about: the surface's cold-start rules (context: country, device,
   referrer, interest, role), then what the engine proposes for a newcomer.

The hot path makes one query (the person's consent, country and recent events, ``profiles.recent``);
surface configuration, the engine and the catalogue arrays are in process memory.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from django.utils import timezone

from catalog.services import ItemFacts, servable_items
from experiments import services as experiments
from personalization import baseline, feedback, reasons, registry
from personalization.engine.candidates import SOURCES
from personalization.engine.engine import Engine
from personalization.engine.features import candidate_features
from personalization.engine.history import History
from personalization.item_table import ItemTable, item_table
from personalization.reranking import CandidateSet, rerank
from personalization.serving import HISTORY_LIMIT, events_context
from personalization.surfaces import LiveSurface, SurfaceConfig, live_surface, version_config
from personalization.training import TRAINING_KINDS
from profiles import services as profiles

logger = logging.getLogger(__name__)

# The person's latest answers read for the exposure features (one indexed query).
SHOWN_LIMIT = 30
SECONDS_PER_DAY = 86_400.0
SOURCE_NAMES = np.asarray(SOURCES, dtype=object)


class UnknownSurface(LookupError):
    pass


@dataclass
class ServeRequest:
    """What the caller knows: the person (None: an unknown visitor), the moment, the session."""

    surface: str
    person_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)
    current_item: str | None = None
    cart: list[str] = field(default_factory=list)
    session_items: list[tuple[str, str]] = field(default_factory=list)  # (event kind, item id), oldest first
    limit: int | None = None
    # The person's consent, country and recent events when the caller has read them already
    # (the API reads them with the identity lookup, in one query); otherwise serve reads them.
    activity: profiles.RecentActivity | None = None
    log: bool = True
    rng: np.random.Generator | None = None
    # Serve this configuration instead of the live one, outside any experiment (the console's preview).
    config: SurfaceConfig | None = None


@dataclass(frozen=True, slots=True)
class ServedItem:
    item_id: str
    title: str
    score: float
    source: str
    reason: str
    exploring: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ITEM_FIELDS}


@dataclass
class ServedAnswer:
    """What a surface answers; ``as_dict`` is the API's JSON body."""

    recommendation_id: str
    surface: str
    version: int | None
    strategy: str  # personalized | cold_start | curated | popular
    personalized: bool
    personalized_by: str | None  # "history" | "session" | None: what made it personal, if anything
    degraded: bool
    degraded_reason: str
    items: list[ServedItem]
    model_version: int | None = None
    experiment: str = ""
    variant: str = ""

    def as_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, without its recursive deep copies.
        body = {name: getattr(self, name) for name in _ANSWER_FIELDS}
        body["items"] = [item.as_dict() for item in self.items]
        return body


_ITEM_FIELDS = tuple(f.name for f in fields(ServedItem))
_ANSWER_FIELDS = tuple(f.name for f in fields(ServedAnswer) if f.name != "items")


@dataclass
class _Plan:
    config: SurfaceConfig
    version: int | None
    engine: Engine | None = None
    model_version: int | None = None
    holdout: bool = False
    experiment: str = ""
    variant: str = ""
    assignment: experiments.Assignment | None = None
    degraded: list[str] = field(default_factory=list)


# --- engines ------------------------------------------------------------------------------------

_last_engine: tuple[int | None, Engine | None] = (None, None)
_pinned: dict[int, Engine] = {}


def _active_engine(plan: _Plan) -> None:
    global _last_engine
    try:
        _last_engine = registry.serving_engine()
        plan.model_version, plan.engine = _last_engine
    except Exception as exc:  # Redis down: keep serving the engine this process already holds
        logger.warning("Active model lookup failed: %s", exc)
        plan.model_version, plan.engine = _last_engine
        plan.degraded.append("cache unavailable" + ("; serving the last loaded model" if plan.engine else ""))
        return
    problem = registry.serving_problem()
    if problem:
        plan.degraded.append(problem + ("; serving the last loaded model" if plan.engine else ""))


def _pinned_engine(version_id: int) -> Engine | None:
    """A model version an experiment asks for, loaded once per process."""
    if version_id not in _pinned:
        from personalization.models import ModelVersion

        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None or not registry.has_artifacts(version):
            return None
        engine = Engine.load(registry.artifact_path(version))
        engine.ranker.compile()
        _pinned[version_id] = engine
    return _pinned[version_id]


# --- the answer ---------------------------------------------------------------------------------


def serve(request: ServeRequest) -> ServedAnswer:
    """The answer for one request; raises only ``UnknownSurface``."""
    surface = live_surface(request.surface)
    if surface is None:
        raise UnknownSurface(request.surface)
    plan = _Plan(config=surface.config, version=surface.version_number)
    if request.config is not None:
        plan.config, plan.version = request.config, None
    person_id = request.person_id
    if person_id is not None and request.config is None:
        _resolve_experiment(plan, surface, person_id)
    size = request.limit or plan.config.size

    try:
        if person_id is not None and request.activity is None:
            # Callers inside the app (campaign rendering, the preview page) ask about a person once:
            # no hot profile copy is made for them. The API reads with the key and keeps one.
            request.activity = profiles.recent_activity(
                person_id, kinds=TRAINING_KINDS, limit=HISTORY_LIMIT, keep=False
            )
        consent = request.activity is None or request.activity.consent
    except Exception as exc:
        logger.warning("Consent lookup failed: %s", exc)
        consent, plan.degraded = False, [*plan.degraded, "consent unavailable"]

    personalized_by: str | None = None
    if plan.holdout or not consent:
        strategy, items = "curated", _curated(surface, plan, size)
    else:
        if plan.engine is None:
            _active_engine(plan)
        try:
            strategy, items, personalized_by = _personalized(surface, plan, request, size)
        except Exception as exc:  # never a 500: the curated default and the reason
            logger.exception("Personalized answer failed on %s", surface.key)
            plan.degraded.append(f"engine failed: {type(exc).__name__}")
            strategy, items, personalized_by = "curated", _curated(surface, plan, size), None

    answer = ServedAnswer(
        recommendation_id=uuid.uuid4().hex,
        surface=surface.key,
        version=plan.version,
        strategy=strategy,
        personalized=personalized_by is not None,
        personalized_by=personalized_by,
        degraded=bool(plan.degraded),
        degraded_reason="; ".join(plan.degraded),
        items=items,
        model_version=plan.model_version if strategy in ("personalized", "cold_start") else None,
        experiment=plan.experiment,
        variant=plan.variant,
    )
    if request.log:
        _log(answer, surface, plan, person_id)
    return answer


def _resolve_experiment(plan: _Plan, surface: LiveSurface, person_id: int) -> None:
    try:
        found = experiments.assignments_for(person_id, target_kind="surface", target_key=surface.key)
    except Exception as exc:
        logger.warning("Experiment assignment failed: %s", exc)
        plan.degraded.append("experiments unavailable")
        return
    if not found:
        return
    assignment = found[0]  # experiments on one surface share a layer: at most one is live per person
    plan.assignment, plan.experiment, plan.variant = assignment, assignment.experiment, assignment.variant
    payload = assignment.payload
    if assignment.is_holdout:
        plan.holdout = True
        return
    number = payload.get("surface_version")
    if isinstance(number, int):
        config = version_config(surface.id, number)
        if config is not None:
            plan.config, plan.version = config, number
    model = payload.get("model_version")
    if isinstance(model, str) and model.lstrip("v").isdigit():
        model = int(model.lstrip("v"))
    if isinstance(model, int):
        engine = _pinned_engine(model)
        if engine is not None:
            plan.engine, plan.model_version = engine, model


def _log(answer: ServedAnswer, surface: LiveSurface, plan: _Plan, person_id: int | None) -> None:
    if plan.assignment is not None and plan.assignment.active and person_id is not None:
        try:
            experiments.log_exposure(plan.assignment.experiment, person_id, plan.assignment.variant)
        except Exception as exc:
            logger.warning("Exposure not logged: %s", exc)
    feedback.record_impression(
        feedback.ImpressionRow(
            recommendation_id=answer.recommendation_id,
            surface_id=surface.id,
            version_number=answer.version,
            model_version=answer.model_version,
            person_id=person_id,
            item_ids=[i.item_id for i in answer.items],
            strategy=answer.strategy,
            experiment=answer.experiment,
            variant=answer.variant,
            served_at=timezone.now(),
            degraded=answer.degraded,
            explored=[n for n, item in enumerate(answer.items) if item.exploring],
        )
    )


# --- curated default and popular ----------------------------------------------------------------


def _curated(surface: LiveSurface, plan: _Plan, size: int) -> list[ServedItem]:
    """The marketer's picks, then the best sellers, so the answer is as full as any other.

    Both go through one pass of the surface's filters and diversity caps: a pick that would break a
    cap gives its slot to the next best seller that keeps it.
    """
    picks = [i for i in plan.config.curated_items if i not in plan.config.exclude_items][: size * 2]
    wanted = [(i, "curated", reasons.word(reasons.Evidence("curated"))) for i in picks]
    wanted += _popular_wanted(plan, exclude=set(picks))[: size * 4]
    return _servable_list(surface, plan.config, wanted, size)


def _popular_wanted(plan: _Plan, exclude: set[str]) -> list[tuple[str, str, str]]:
    try:
        ranked = baseline._popular()
    except Exception as exc:  # the cache is down: straight from the database
        logger.warning("Popular list from cache failed: %s", exc)
        if "cache unavailable" not in "; ".join(plan.degraded):
            plan.degraded.append("cache unavailable")
        since = timezone.now() - baseline.POPULAR_WINDOW
        ranked = [(str(i), float(s)) for i, s in profiles.popular_items(since, limit=500)]
    popular = reasons.word(reasons.Evidence("popular"))
    return [(i, "popular", popular) for i, _ in ranked if i not in exclude]


def _servable_list(
    surface: LiveSurface,
    config: SurfaceConfig,
    wanted: list[tuple[str, str, str]],
    size: int,
) -> list[ServedItem]:
    return [item for item, _ in _servable_entries(surface, config, wanted, size)]


def _servable_entries(
    surface: LiveSurface,
    config: SurfaceConfig,
    wanted: list[tuple[str, str, str]],
    size: int,
) -> list[tuple[ServedItem, ItemFacts]]:
    """The first ``size`` of ``wanted`` (item id, source, reason) that may be shown, with their facts."""
    facts = servable_items(i for i, _, _ in wanted) if wanted else {}
    excluded_categories = set(config.exclude_categories)
    allowed = [
        (item_id, source, reason, facts[item_id])
        for item_id, source, reason in wanted
        if item_id in facts
        and (not surface.item_kinds or facts[item_id].kind in surface.item_kinds)
        and facts[item_id].category not in excluded_categories
        and item_id not in config.exclude_items
    ]
    # The surface's diversity caps hold here too: fill in order within them, and only when the
    # list would otherwise be short, top it up past them (as the re-ranker's backfill does).
    category_cap = max(1, int(config.max_share_per_category * size + 1e-9))
    brand_cap = max(1, int(config.max_share_per_brand * size + 1e-9))
    chosen: list[tuple[str, str, str, ItemFacts]] = []
    per_category: Counter[str] = Counter()
    per_brand: Counter[str] = Counter()
    for entry in allowed:
        fact = entry[3]
        if len(chosen) == size:
            break
        if per_category[fact.category] >= category_cap or (fact.brand and per_brand[fact.brand] >= brand_cap):
            continue
        chosen.append(entry)
        per_category[fact.category] += 1
        per_brand[fact.brand] += 1
    if len(chosen) < size:
        taken = {entry[0] for entry in chosen}
        chosen += [entry for entry in allowed if entry[0] not in taken][: size - len(chosen)]
    return [
        (
            ServedItem(item_id, fact.title, round(1.0 - n / (2.0 * max(size, 1)), 4), source, reason),
            fact,
        )
        for n, (item_id, source, reason, fact) in enumerate(chosen)
    ]


# --- the shop's popular list ----------------------------------------------------------------------

POPULAR_ANSWER_SECONDS = 5.0
POPULAR_REASON = reasons.word(reasons.Evidence("popular"))
_popular_answers: dict[tuple[int, str], tuple[float, list[ServedItem]]] = {}


def popular_answer(limit: int = 20, kind: str = "product") -> list[ServedItem]:
    """The shop's best sellers of one kind that may be shown now: the same for everyone, no profile read.

    For pages that want no personalization at all (a landing page for a campaign, a cache in front of
    the site). The ranked list comes from the shared cache; the stock and ``active`` check of its
    head is kept in process memory for ``POPULAR_ANSWER_SECONDS``, so an answer is one cache read
    at most.
    """
    now = time.monotonic()
    found = _popular_answers.get((limit, kind))
    if found is not None and now - found[0] < POPULAR_ANSWER_SECONDS:
        return found[1]
    ranked = baseline._popular()
    facts = servable_items(i for i, _ in ranked[: limit * 4]) if ranked else {}
    best = ranked[0][1] if ranked else 1.0
    items: list[ServedItem] = []
    for item_id, score in ranked:
        fact = facts.get(item_id)
        if fact is None or fact.kind != kind:
            continue
        items.append(ServedItem(item_id, fact.title, round(score / best, 4), "popular", POPULAR_REASON))
        if len(items) == limit:
            break
    _popular_answers[(limit, kind)] = (now, items)
    return items


def forget_popular_answers() -> None:
    _popular_answers.clear()


# --- personalized -------------------------------------------------------------------------------


def _personalized(
    surface: LiveSurface, plan: _Plan, request: ServeRequest, size: int
) -> tuple[str, list[ServedItem], str | None]:
    """The strategy, the items, and what made them personal: "history" when the model knows one of the
    person's own items, "session" when it knows one of this visit's or a cold-start rule matched this
    visit's context, None when the answer is what anybody would get."""
    engine = plan.engine
    if engine is None:
        if not registry.serving_problem():  # else _active_engine already said why
            plan.degraded.append("no trained model")
        return "popular", _curated(surface, plan, size), None

    now = time.time()
    activity = request.activity
    events, country = (list(activity.events), activity.country) if activity is not None else ([], None)
    # This session's inline context counts as events that happened just now.
    session = list(request.session_items)
    session += [("add_to_cart", item) for item in request.cart]
    if request.current_item:
        session.append(("view", request.current_item))
    # Every id of the request found in one search of the engine's id arrays.
    found = engine.item_index.positions([item for item, *_ in events] + [item for _, item in session])
    own_history = bool((found[: len(events)] >= 0).any())
    session_known = bool((found[len(events) :] >= 0).any())
    events += [(item, now, kind, 1.0) for kind, item in session]
    country = str(request.context.get("country") or country or "") or None

    config = plan.config
    cold = not (own_history or session_known)
    lead: list[ServedItem] = []
    lead_facts: list[ItemFacts] = []
    segment = country
    if cold:
        rule = next((r for r in config.cold_start if r.matches(request.context)), None)
        if rule is not None:
            segment = rule.segment or segment
            reason = reasons.word(reasons.Evidence("cold_start", own_words=rule.reason))
            entries = _servable_entries(surface, config, [(i, "cold_start", reason) for i in rule.items], size)
            lead, lead_facts = [e[0] for e in entries], [e[1] for e in entries]

    person = events_context(events, segment, now, found)
    history = engine.history_for(person)
    if engine.exposure is not None and request.person_id is not None:
        _add_shown(engine, history, request.person_id)
    # What is in the cart or on screen now is not proposed again; viewed items may be.
    not_again = {item for kind, item in session if kind != "view"} | {i.item_id for i in lead}
    if request.current_item:
        not_again.add(request.current_item)
    excluded = engine.item_index.positions(sorted(not_again))
    excluded = excluded[excluded >= 0].astype(np.int32)
    engine_config = engine.config
    if config.source_quotas:
        engine_config = replace(engine_config, quotas={**engine_config.quotas, **config.source_quotas})
    signals = engine.sources.signals(history, engine_config)
    candidates = engine.sources.generate(history, signals, engine_config, engine_config.n_candidates, excluded=excluded)
    features = candidate_features(engine.sources, history, signals, candidates, engine.item_price, engine.exposure)
    relevance = engine.ranker.score(features).astype(np.float64)

    table = item_table(plan.model_version or id(engine), engine.item_ids)
    index = candidates.items.astype(np.int64)
    allowed = table.known[index] & table.active[index]
    if surface.item_kinds:
        allowed &= table.of_kinds(surface.item_kinds)[index]
    relevance[~allowed] = np.nan  # the re-ranker never serves a candidate without a finite relevance
    age_days = (now - table.published[index]) / SECONDS_PER_DAY
    event_index = found.tolist()  # the engine index of each of ``events`` (-1: unknown)
    purchased = {i for i, e in zip(event_index, events, strict=True) if i >= 0 and e[2] == "purchase"}
    exposures = feedback.item_exposures(surface.id)
    ids = table.ids(index)
    impressions = clicks = None
    if exposures:
        shown_clicked = [exposures.get(i, (0, 0)) for i in ids.tolist()]
        impressions, clicks = [s for s, _ in shown_clicked], [c for _, c in shown_clicked]
    category = table.category[index]
    candidate_set = CandidateSet.from_arrays(
        ids,
        relevance,
        margin=table.margin[index],
        age_days=age_days,
        stock=np.nan_to_num(table.stock[index], nan=0.0),
        popularity=engine.sources.popularity.popular[index],
        category=category,
        brand=table.brand[index],
        in_stock=table.in_stock[index],
        purchased_by_person=np.isin(index, list(purchased)) if purchased else None,
        is_new=np.nan_to_num(age_days, nan=np.inf) < config.new_item_days,
        impressions=impressions,
        clicks=clicks,
        source=SOURCE_NAMES[candidates.source],
    )
    top_categories = _top_categories(table, history.items)
    # A cold-start rule's picks come first and count against the diversity caps of the whole answer.
    result = rerank(
        candidate_set,
        config.rerank_config(),
        top_categories=top_categories,
        rng=request.rng,
        size=size - len(lead),
        placed=[(f.category, f.brand) for f in lead_facts],
    )

    chosen = result.items[: size - len(lead)]
    chosen_index = np.asarray([index[r.index] for r in chosen], dtype=np.int64)
    chosen_sources = [reasons.EXPLORING if r.exploring else r.reason for r in chosen]
    # The person's item each one was retrieved from, named in its reason (never the item itself).
    anchored = reasons.anchors(
        engine.sources, reasons.person_items(history, engine_config), chosen_index, chosen_sources, table.title
    )
    kinds = reasons.strongest_kinds(events, engine.item_index, event_index)
    items = list(lead)
    for ranked, i, source, anchor in zip(chosen, chosen_index.tolist(), chosen_sources, anchored, strict=True):
        evidence = reasons.Evidence(
            source,
            anchor=table.title[anchor] if anchor is not None else None,
            anchor_kind=kinds.get(anchor, "view") if anchor is not None else "view",
            purchased=i in purchased,
            country=country,
            category=str(table.category[i] or ""),
            is_new=bool(candidate_set.is_new[ranked.index]),
            exploring=ranked.exploring,
        )
        items.append(
            ServedItem(
                str(ranked.item_id),
                table.title[i],
                round(ranked.score, 4),
                source,
                reasons.word(evidence),
                ranked.exploring,
            )
        )
    strategy = "cold_start" if cold and lead else "personalized"
    by = "history" if own_history else "session" if session_known or (lead and request.context) else None
    return strategy, items, by


def _add_shown(engine: Engine, history: History, person_id: int) -> None:
    """What this person was shown lately, for the exposure features of a model trained with them."""
    shown: list[tuple[int, float]] = []
    for item_ids, served_at in feedback.recent_impressions(person_id, SHOWN_LIMIT):
        at = served_at.timestamp()
        shown += [(engine.item_index[i], at) for i in item_ids if i in engine.item_index]
    history.shown_items = np.asarray([i for i, _ in shown], dtype=np.int32)
    history.shown_times = np.asarray([t for _, t in shown], dtype=np.float64)


def _top_categories(table: ItemTable, history_items: np.ndarray) -> set[str]:
    if history_items.shape[0] == 0:
        return set()
    counts = Counter(c for c in table.category[history_items.astype(np.int64)].tolist() if c)
    return {c for c, _ in counts.most_common(2)}
