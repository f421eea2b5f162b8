"""Training a new engine version from the event log, gated against the active one.

1. export the event log (people who withheld ``personalization`` consent left out), the
   catalogue and the impressions (items shown, with position and exploration slot) to the
   interchange format — the same reader then serves offline evaluation and
   training, so the two cannot drift apart;
2. hold out the most recent events (the last 7 days, or a tenth of the span when shorter), fit a
   candidate on what came before and score it and the active version on the same hold-out;
3. if the candidate is not worse, refit on everything and activate that; else keep it, rejected.

Both are scored on a hold-out that neither has seen: when the active version's training data
reaches past the usual cut-off (a nightly fit's active version was fitted yesterday), the hold-out
starts where its data ended, and the candidate is fitted on everything before that. When nothing
came after the active version's data, its recorded score counts only if it was measured on the very
same split (same cut-off, same data end); otherwise there is nothing to compare on and the candidate
is refused, with that reason. The record says which basis was used.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils import timezone

from catalog.models import Item
from personalization import model_storage, registry
from personalization.engine.config import EngineConfig
from personalization.engine.dataset import Dataset, load_interchange
from personalization.engine.engine import Engine
from personalization.engine.evaluation import EvaluationSplit, split_by_cutoff, split_by_holdout
from personalization.feedback import CLICK_WINDOW, PURCHASE_WINDOW
from personalization.gate import HoldoutScore, holdout_score, not_worse
from personalization.models import Impression, ModelVersion, VersionStatus
from profiles.models import Consent, Event, Person

TRAINING_KINDS = ("view", "add_to_cart", "purchase", "feature_activated")
HOLDOUT_DAYS = 7.0

Progress = Callable[[int, str], None]


def export_interchange(folder: Path) -> dict[str, int]:
    """Write events.csv, items.csv and users.csv of the live data into ``folder``."""
    withheld = set(Consent.objects.filter(purpose="personalization", granted=False).values_list("person_id", flat=True))
    events = 0
    with open(folder / "events.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "event_type", "timestamp", "quantity", "price", "order_id"))
        rows = (
            Event.objects.filter(kind__in=TRAINING_KINDS)
            .exclude(item_id="")
            .order_by("timestamp", "id")
            .values_list("person_id", "item_id", "kind", "timestamp", "quantity", "price", "order_id")
        )
        for person_id, item_id, kind, at, quantity, price, order_id in rows.iterator(chunk_size=5000):
            if person_id in withheld:
                continue
            writer.writerow((person_id, item_id, kind, at.isoformat(), quantity or "", price or "", order_id))
            events += 1
    items = 0
    with open(folder / "items.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("item_id", "title", "description", "category", "brand", "price", "kind"))
        for item in Item.objects.filter(active=True).iterator(chunk_size=2000):
            writer.writerow(
                (item.external_id, item.title, item.description, item.category, item.brand, item.price or "", item.kind)
            )
            items += 1
    impressions = export_impressions(folder, withheld)
    people = 0
    with open(folder / "users.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "country"))
        for person_id, traits in Person.objects.filter(merged_into__isnull=True).values_list("pk", "traits"):
            country = (traits or {}).get("country") if isinstance(traits, dict) else None
            if country and person_id not in withheld:
                writer.writerow((person_id, country))
                people += 1
    return {"events": events, "items": items, "people_with_segment": people, "impressions": impressions}


def export_impressions(folder: Path, withheld: set[int]) -> int:
    """impressions.csv: one row per item shown to a known person, with its position and whether it
    filled an exploration slot (the ranker's exposure negatives and position propensity)."""
    written = 0
    with open(folder / "impressions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "timestamp", "position", "explored"))
        rows = (
            Impression.objects.filter(person_id__isnull=False)
            .order_by("served_at", "id")
            .values_list("person_id", "item_ids", "served_at", "explored")
        )
        for person_id, item_ids, served_at, explored in rows.iterator(chunk_size=5000):
            if person_id in withheld:
                continue
            at = f"{served_at.timestamp():.3f}"
            slots = set(explored or ())
            for position, item_id in enumerate(item_ids):
                writer.writerow((person_id, item_id, at, position, int(position in slots)))
                written += 1
    return written


def engine_config() -> EngineConfig:
    """The engine's settings (``ENGINE_SETTINGS`` over the defaults) with the surfaces' attribution
    windows: what counts as taken is what attribution counts as a click or a purchase."""
    overrides = json.loads(settings.ENGINE_SETTINGS) if settings.ENGINE_SETTINGS else {}
    if not isinstance(overrides, dict):
        raise ValueError("ENGINE_SETTINGS must be a JSON object of engine settings")
    known = {f.name for f in fields(EngineConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"ENGINE_SETTINGS: no engine setting named {', '.join(unknown)}")
    return EngineConfig.from_dict(
        {
            **EngineConfig().to_dict(),
            **overrides,
            "exposure_click_window_hours": CLICK_WINDOW.total_seconds() / 3600.0,
            "exposure_purchase_window_days": PURCHASE_WINDOW.total_seconds() / 86400.0,
        }
    )


def holdout_split(dataset: Dataset, fresh_after: float | None = None) -> EvaluationSplit:
    """The most recent events (the last 7 days, or a tenth of the span when shorter) as hold-out;
    with ``fresh_after`` (the end of the active version's training data), only events after it."""
    if not dataset.has_timestamps or not len(dataset.events):
        return split_by_holdout(dataset)
    start, end = float(dataset.events.time.min()), float(dataset.events.time.max())
    cutoff = end - min(HOLDOUT_DAYS * 86400.0, (end - start) / 10.0)
    if fresh_after is not None and fresh_after < end and fresh_after >= cutoff:
        cutoff = float(np.nextafter(fresh_after, np.inf))  # its last event stays in the history
    return split_by_cutoff(dataset, cutoff)


def train_version(version: ModelVersion, progress: Progress | None = None) -> ModelVersion:
    def step(percent: int, stage: str) -> None:
        ModelVersion.objects.filter(pk=version.pk).update(progress=percent, stage=stage)
        if progress:
            progress(percent, stage)

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="training-") as tmp:
            step(5, "exporting the event log")
            sizes = export_interchange(Path(tmp))
            dataset = load_interchange(tmp)
        if not len(dataset.events):
            raise ValueError("There are no events to learn from yet.")
        active = registry.active_version()
        split = holdout_split(dataset, _data_end(active))
        step(20, "fitting a candidate on events before the hold-out")
        candidate = Engine.fit(split.train, engine_config(), as_of=split.as_of)
        step(55, "scoring the candidate and the active version on the hold-out")
        score = holdout_score(candidate, split)
        active_score, basis = _active_score(active, split, dataset)
        passed = not_worse(score, active_score) and not (active is not None and active_score is None)
        folder = f"v{version.pk}"
        with model_storage.store().new_folder(folder) as written:
            if passed:
                step(70, "refitting on all events")
                Engine.fit(dataset, engine_config()).save(written)
            else:
                candidate.save(written)  # kept for inspection; it never serves
        data_end = float(dataset.events.time.max()) if dataset.has_timestamps else None
        version.artifact_dir = folder
        version.metrics = {
            "holdout": score.as_dict(),
            "split": split.description,
            "split_as_of": split.as_of,
            "active": {"version": active.pk, **active_score.as_dict(), "basis": basis}
            if active and active_score
            else ({"version": active.pk, "basis": basis} if active else None),
            "passed_gate": passed,
        }
        version.training = {
            **sizes,
            "data_end": data_end,
            "seconds": round(time.perf_counter() - started, 1),
            "timings": {k: round(v, 2) for k, v in candidate.timings.items()},
            # What the fit read of the data, what it chose on its validation lists, and the figures.
            "engine": candidate.training_summary,
        }
        version.status = VersionStatus.READY if passed else VersionStatus.REJECTED
        version.trained_at, version.progress, version.stage = timezone.now(), 100, "done"
        version.save()
        if passed:
            registry.activate(version, by=version.requested_by or "training")
    except Exception as exc:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=VersionStatus.FAILED, error=str(exc)[:2000], stage="failed"
        )
        raise
    version.refresh_from_db()
    return version


def _data_end(version: ModelVersion | None) -> float | None:
    end = (version.training or {}).get("data_end") if version is not None else None
    return float(end) if end is not None else None


def _active_score(
    active: ModelVersion | None, split: EvaluationSplit, dataset: Dataset
) -> tuple[HoldoutScore | None, str]:
    """The active version's score on the candidate's hold-out, and on what basis; (None, why) when
    there is no hold-out both are fresh to."""
    if active is None:
        return None, ""
    data_end = _data_end(active)
    if data_end is None or data_end < split.as_of:
        if not split.test:
            return None, "no hold-out: nobody with history came back after the cut-off"
        return holdout_score(Engine.load(registry.artifact_path(active)), split), "same hold-out"
    # Nothing came after the active version's data: its recorded score stands for it only when it
    # was measured on this very split (the same events, the same cut-off).
    recorded = (active.metrics or {}).get("holdout")
    same_split = (active.metrics or {}).get("split_as_of") == split.as_of and dataset.has_timestamps
    same_split = same_split and data_end == float(dataset.events.time.max())
    if recorded and same_split:
        return HoldoutScore(recorded["ndcg"], recorded["recall"], recorded["people"]), "same hold-out, as recorded"
    return None, "no hold-out both are fresh to: no events after the active version's training data"
