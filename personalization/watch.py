"""Watching the active version, once a day (``tasks.watch_active_model``, a django-celery-beat row):
one ``ModelHealthSnapshot`` per day, which the model page charts.

* **online**, per surface: click-through and conversion of the day's personalized answers (the model's,
  ``personalized`` and ``cold_start``) against the curated ones (experiment holdouts, people without
  consent), each with a 95% interval and the difference with its interval; the share of degraded answers.
  An answer counts as clicked (converted) when at least one of its items was, by the rules of
  attribution (``feedback``: the answer's id carried by the event, or within the click / purchase window);
* **data**: events that day, the share of item events on items the active version does not know,
  catalogue items added in the last 30 days that nobody has interacted with, people active that day
  without any earlier history;
* **offline**: NDCG@20 of the active version on the days since its training data ended (at most the
  last ``RECENT_DAYS``), beside its hold-out figure at activation;
* **latency**: from a person's item event to their next answer (which includes it: serving reads the
  person's latest events, from the hot profile, at every answer).
"""

from __future__ import annotations

import bisect
import logging
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from catalog.models import Item
from personalization import drift, registry, retraining, training
from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.evaluation import split_by_cutoff
from personalization.feedback import CLICK_KINDS, CLICK_WINDOW, PURCHASE_WINDOW
from personalization.gate import holdout_score
from personalization.loop_stats import difference, wilson
from personalization.models import (
    DriftRule,
    FitTrigger,
    Impression,
    ModelHealthSnapshot,
    ModelVersion,
    Surface,
    VersionStatus,
)
from profiles.models import Event

logger = logging.getLogger(__name__)

RECENT_DAYS = 7
NEW_ITEM_DAYS = 30
MODEL_ARMS = ("personalized", "cold_start")
LATENCY_SAMPLE = 20_000


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, datetime.min.time()))
    return start, start + timedelta(days=1)


# --- online ----------------------------------------------------------------------------------------


@dataclass
class _Answer:
    surface_id: int
    arm: str
    degraded: bool
    clicked: bool = False
    converted: bool = False


def arm_of(strategy: str) -> str:
    if strategy in MODEL_ARMS:
        return "personalized"
    return "curated" if strategy == "curated" else "other"


def answer_outcomes(day: date) -> list[_Answer]:
    """Every answer served on ``day``, marked clicked / converted by the rules of attribution."""
    start, end = day_bounds(day)
    answers: dict[str, _Answer] = {}
    by_person: dict[int, list[tuple[str, set[str], datetime]]] = defaultdict(list)
    rows = Impression.objects.filter(served_at__gte=start, served_at__lt=end).values_list(
        "recommendation_id", "surface_id", "person_id", "item_ids", "strategy", "degraded", "served_at"
    )
    for rec_id, surface_id, person_id, item_ids, strategy, degraded, served_at in rows.iterator(chunk_size=5000):
        answers[rec_id] = _Answer(surface_id, arm_of(strategy), degraded)
        if person_id is not None:
            by_person[person_id].append((rec_id, set(item_ids), served_at))
    events = Event.objects.filter(
        person_id__in=list(by_person),
        timestamp__gte=start,
        timestamp__lt=end + PURCHASE_WINDOW,
        kind__in=(*CLICK_KINDS, "purchase"),
    ).values_list("person_id", "kind", "item_id", "timestamp", "properties")
    for person_id, kind, item_id, at, properties in events.iterator(chunk_size=5000):
        carried = properties.get("recommendation_id") if isinstance(properties, dict) else None
        is_purchase = kind == "purchase"
        window = PURCHASE_WINDOW if is_purchase else CLICK_WINDOW
        for rec_id, items, served_at in by_person[person_id]:
            if item_id in items and (carried == rec_id or served_at <= at <= served_at + window):
                if is_purchase:
                    answers[rec_id].converted = True
                else:
                    answers[rec_id].clicked = True
                break
    return list(answers.values())


def online_figures(day: date) -> dict[str, Any]:
    keys = dict(Surface.objects.values_list("id", "key"))
    grouped: dict[int, list[_Answer]] = defaultdict(list)
    for answer in answer_outcomes(day):
        grouped[answer.surface_id].append(answer)
    surfaces: dict[str, Any] = {}
    for surface_id, answers in sorted(grouped.items(), key=lambda pair: keys.get(pair[0], "")):
        arms: dict[str, Any] = {}
        rates: dict[str, dict[str, Any]] = {}
        for arm in ("personalized", "curated", "other"):
            mine = [a for a in answers if a.arm == arm]
            if not mine:
                continue
            ctr = wilson(sum(a.clicked for a in mine), len(mine))
            conversion = wilson(sum(a.converted for a in mine), len(mine))
            rates[arm] = {"ctr": ctr, "conversion": conversion}
            arms[arm] = {"answers": len(mine), "ctr": ctr.as_dict(), "conversion": conversion.as_dict()}
        entry: dict[str, Any] = {
            "answers": len(answers),
            "degraded": sum(a.degraded for a in answers),
            "degraded_share": sum(a.degraded for a in answers) / len(answers),
            "arms": arms,
        }
        if "personalized" in rates and "curated" in rates:
            for metric in ("ctr", "conversion"):
                d, low, high = difference(rates["personalized"][metric], rates["curated"][metric])
                entry[f"{metric}_difference"] = {"value": d, "low": low, "high": high}
        surfaces[keys.get(surface_id, str(surface_id))] = entry
    total = sum(s["answers"] for s in surfaces.values())
    degraded = sum(s["degraded"] for s in surfaces.values())
    return {"surfaces": surfaces, "answers": total, "degraded_share": degraded / total if total else None}


# --- data ------------------------------------------------------------------------------------------


def data_figures(day: date, engine: Engine | None) -> dict[str, Any]:
    start, end = day_bounds(day)
    on_day = Event.objects.filter(timestamp__gte=start, timestamp__lt=end)
    item_events = on_day.filter(kind__in=training.TRAINING_KINDS).exclude(item_id="")
    per_item = dict(item_events.values_list("item_id").annotate(n=Count("id")).values_list("item_id", "n"))
    known = engine.item_index if engine is not None else None
    item_total = sum(per_item.values())
    unknown = sum(n for item, n in per_item.items() if known is not None and item not in known)
    catalogue = set(Item.objects.filter(active=True).values_list("external_id", flat=True))
    new_items = Item.objects.filter(
        active=True, created_at__gte=end - timedelta(days=NEW_ITEM_DAYS), created_at__lt=end
    )
    untouched = new_items.filter(~Exists(Event.objects.filter(item_id=OuterRef("external_id"), timestamp__lt=end)))
    active_people = item_events.values("person_id").distinct()
    earlier = Event.objects.filter(person_id=OuterRef("person_id"), timestamp__lt=start)
    people = active_people.count()
    newcomers = active_people.filter(~Exists(earlier)).count()
    return {
        "events": on_day.count(),
        "item_events": item_total,
        "unknown_item_events": unknown if known is not None else None,
        "unknown_item_share": unknown / item_total if known is not None and item_total else None,
        "catalogue_items": len(catalogue),
        "items_unknown_to_model": len(catalogue - set(known)) if known is not None else None,
        "new_items": new_items.count(),
        "new_items_without_interactions": untouched.count(),
        "people": people,
        "people_without_history": newcomers,
        "people_without_history_share": newcomers / people if people else None,
    }


# --- offline ---------------------------------------------------------------------------------------


def offline_figures(active: ModelVersion | None, engine: Engine | None) -> dict[str, Any]:
    """NDCG@20 of the active version on events after its training data ended (the last RECENT_DAYS at most)."""
    if active is None or engine is None:
        return {"ndcg": None, "why": "no active version"}
    at_activation = ((active.metrics or {}).get("holdout") or {}).get("ndcg")
    data_end = (active.training or {}).get("data_end")
    with tempfile.TemporaryDirectory(prefix="watch-") as tmp:
        training.export_interchange(Path(tmp))
        dataset = load_interchange(tmp)
    if not len(dataset.events) or not dataset.has_timestamps:
        return {"ndcg": None, "at_activation": at_activation, "why": "no timestamped events"}
    end = float(dataset.events.time.max())
    cutoff = max(end - RECENT_DAYS * 86400.0, float(data_end) if data_end is not None else float("-inf"))
    if cutoff >= end:
        return {"ndcg": None, "at_activation": at_activation, "why": "no events since its training data ended"}
    split = split_by_cutoff(dataset, cutoff)
    if not split.test:
        return {"ndcg": None, "at_activation": at_activation, "why": "nobody with history came back since"}
    score = holdout_score(engine, split)
    return {
        "ndcg": score.ndcg,
        "recall": score.recall,
        "people": score.people,
        "since": datetime.fromtimestamp(cutoff, tz=UTC).isoformat(),
        "at_activation": at_activation,
        "change": score.ndcg / at_activation - 1 if at_activation else None,
    }


# --- latency ---------------------------------------------------------------------------------------


def latency_figures(day: date) -> dict[str, Any]:
    """From each item event received on ``day`` to that person's next answer (within a day)."""
    start, end = day_bounds(day)
    events = list(
        Event.objects.filter(received_at__gte=start, received_at__lt=end, kind__in=training.TRAINING_KINDS)
        .exclude(item_id="")
        .order_by("received_at")
        .values_list("person_id", "received_at")[:LATENCY_SAMPLE]
    )
    people = {person for person, _ in events}
    times: dict[int, list[datetime]] = defaultdict(list)
    strategies: dict[int, list[str]] = defaultdict(list)
    rows = (
        Impression.objects.filter(person_id__in=people, served_at__gte=start, served_at__lt=end + timedelta(days=1))
        .order_by("served_at")
        .values_list("person_id", "served_at", "strategy")
    )
    for person, served_at, strategy in rows.iterator(chunk_size=5000):
        if person is None:
            continue
        times[person].append(served_at)
        strategies[person].append(strategy)
    gaps: list[float] = []
    personalized = 0
    for person, received in events:
        mine = times.get(person) or []
        i = bisect.bisect_left(mine, received)
        if i < len(mine) and mine[i] - received <= timedelta(days=1):
            gaps.append((mine[i] - received).total_seconds())
            personalized += strategies[person][i] in MODEL_ARMS
    if not gaps:
        return {"events": len(events), "followed": 0}
    gaps.sort()
    return {
        "events": len(events),
        "followed": len(gaps),
        "median_seconds": statistics.median(gaps),
        "p90_seconds": gaps[min(len(gaps) - 1, int(0.9 * len(gaps)))],
        "personalized_share": personalized / len(gaps),
    }


# --- the snapshot ----------------------------------------------------------------------------------


def compute_snapshot(day: date) -> ModelHealthSnapshot:
    """The day's figures of the active version, stored (re-running a day replaces its row)."""
    active = registry.active_version()
    engine: Engine | None = None
    if active is not None:
        try:
            engine = Engine.load(registry.artifact_path(active))
        except Exception as exc:  # the watch reports what it can without the files
            logger.error("Watch: cannot load model version %s: %s", active.pk, exc)
    snapshot, _ = ModelHealthSnapshot.objects.update_or_create(
        day=day,
        defaults={
            "model_version": active.pk if active else None,
            "online": online_figures(day),
            "data": data_figures(day, engine),
            "offline": offline_figures(active, engine),
            "latency": latency_figures(day),
        },
    )
    return snapshot


# --- the drift rule --------------------------------------------------------------------------------


def thresholds() -> drift.Thresholds:
    rule = DriftRule.current()
    return drift.Thresholds(
        enabled=rule.enabled,
        unknown_item_share=rule.unknown_item_share,
        ndcg_drop=rule.ndcg_drop,
        ctr_drop=rule.ctr_drop,
        min_answers=rule.min_answers,
        baseline_days=rule.baseline_days,
        cooldown_hours=rule.cooldown_hours,
    )


def _personalized_clicks(snapshot: ModelHealthSnapshot, surface: str) -> tuple[int, int]:
    ctr = (((snapshot.online.get("surfaces") or {}).get(surface) or {}).get("arms") or {}).get("personalized", {})
    ctr = ctr.get("ctr") or {}
    return int(ctr.get("hits", 0)), int(ctr.get("n", 0))


def surface_clicks(snapshot: ModelHealthSnapshot, baseline_days: int) -> list[drift.SurfaceClicks]:
    """Per surface: the day's personalized answers and clicks, and those of the ``baseline_days`` before."""
    earlier = list(
        ModelHealthSnapshot.objects.filter(day__gte=snapshot.day - timedelta(days=baseline_days), day__lt=snapshot.day)
    )
    found = []
    for surface in snapshot.online.get("surfaces") or {}:
        before = [_personalized_clicks(s, surface) for s in earlier]
        found.append(
            drift.SurfaceClicks(
                surface,
                _personalized_clicks(snapshot, surface),
                (sum(h for h, _ in before), sum(n for _, n in before)),
            )
        )
    return found


def apply_drift_rule(snapshot: ModelHealthSnapshot) -> drift.Verdict:
    """Judge the snapshot by the rule; when it fires, start a retraining now (after this commits) and
    record why, unless one was started within the cooldown or a newer version serves already."""
    rule = thresholds()
    clicks = surface_clicks(snapshot, rule.baseline_days)
    _, day_end = day_bounds(snapshot.day)
    active = registry.active_version()
    replaced_since = active is not None and active.activated_at is not None and active.activated_at >= day_end
    if replaced_since:
        clicks = []  # the day's answers came from a version that no longer serves
    verdict = drift.evaluate(
        rule,
        unknown_item_share=snapshot.data.get("unknown_item_share"),
        item_events=int(snapshot.data.get("item_events") or 0),
        ndcg_recent=snapshot.offline.get("ndcg"),
        ndcg_at_activation=snapshot.offline.get("at_activation"),
        clicks=clicks,
    )
    action = ""
    if verdict.fired:
        action = _retrain_early(verdict, rule)
    snapshot.drift = {**verdict.as_dict(), "thresholds": rule.as_dict(), "action": action}
    snapshot.save(update_fields=["drift", "computed_at"])
    return verdict


def _retrain_early(verdict: drift.Verdict, rule: drift.Thresholds) -> str:
    from personalization.tasks import train_engine

    since = timezone.now() - timedelta(hours=rule.cooldown_hours)
    recent = ModelVersion.objects.filter(trigger=FitTrigger.DRIFT, created_at__gte=since).order_by("-id").first()
    if recent is not None:
        return f"not retrained: v{recent.pk} was started by the drift rule at {recent.created_at:%Y-%m-%d %H:%M}"
    version = retraining.start_fit(FitTrigger.DRIFT, reason=verdict.text)
    if version.status == VersionStatus.FAILED:
        return f"not retrained: {version.error}"
    transaction.on_commit(lambda: train_engine.delay(version.pk))
    return f"retraining: v{version.pk}"
