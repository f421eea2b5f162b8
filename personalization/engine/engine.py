"""The engine: fit candidate sources and the ranker, save and load them, recommend for one person.

``Engine.fit`` first reads what kind of data it has (``regime.read_regime``: real timestamps or
not, how often people re-consume), builds point-in-time training lists from windows before
``as_of`` (or from each person's held-out share where re-consumption is rare or there is no clock),
chooses EASE's regularization and whether the LambdaRank ranker beats the sources' own order on
lists kept aside, then fits the serving candidate sources on everything before ``as_of``.
``Engine.save`` writes a directory of plain artifacts (``.npy``, LightGBM model text, a FAISS
index, JSON) that a model registry can version; ``Engine.load`` reads it back.
``Engine.recommend`` is the single-person serving path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from personalization.engine.artifacts import load_array, load_json, save_array, save_json
from personalization.engine.candidates import SOURCES, Candidates, CandidateSources
from personalization.engine.config import EngineConfig
from personalization.engine.content import ContentIndex
from personalization.engine.dataset import (
    DEFAULT_EVENT_WEIGHTS,
    SECONDS_PER_DAY,
    UNKNOWN_EVENT_WEIGHT,
    Dataset,
    event_weight,
)
from personalization.engine.examples import (
    ExampleWindow,
    TrainingExamples,
    build_examples,
    fit_window_sources,
    holdout_window,
    temporal_windows,
)
from personalization.engine.exposure import ExposureIndex, ExposureTraining
from personalization.engine.features import FEATURE_NAMES, candidate_features
from personalization.engine.fit_choices import choose_ease
from personalization.engine.history import History, PersonContext
from personalization.engine.item_ids import ItemIds, ItemIndex
from personalization.engine.ranker import DEFAULT_FALLBACK, Ranker, choose_ranker
from personalization.engine.regime import read_regime
from personalization.engine.threads import blas_threads, serve_on_one_thread

ARTIFACT_FORMAT = 2
# The event-weight table's entry for event types it does not name.
UNKNOWN_TYPE = "*"

# Why an item is on the list, in words a marketer can show; keyed by the source that ranked it best.
REASONS = {
    "history": "You bought this before",
    "als": "Picked for your taste",
    "ease": "Picked for your taste",
    "item_knn": "Similar to items you bought",
    "covisitation": "Often bought together with items you bought recently",
    "content": "Similar to items you like",
    "popular": "Popular right now",
    "segment": "Popular in your area",
    "trending": "Trending",
    "new": "New in the catalogue",
    "segment_trending": "Trending in your area",
    "sequence": "Often chosen next after items you chose",
}


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    source: str
    reason: str


@dataclass
class Engine:
    config: EngineConfig
    sources: CandidateSources
    ranker: Ranker
    item_ids: Sequence[str]  # an ItemIds after construction
    item_price: np.ndarray
    segment_names: list[str]
    event_weights: dict[str, float]
    has_timestamps: bool
    timings: dict[str, float] = field(default_factory=dict)
    training_summary: dict[str, object] = field(default_factory=dict)
    exposure: ExposureIndex | None = None  # impressions before the fit time, for exposure features

    def __post_init__(self) -> None:
        if not isinstance(self.item_ids, ItemIds):
            self.item_ids = ItemIds.of(list(self.item_ids))
        self.item_index = ItemIndex(self.item_ids)
        self.segment_index = {name: i for i, name in enumerate(self.segment_names)}

    # -- fitting ------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        dataset: Dataset,
        config: EngineConfig | None = None,
        *,
        as_of: float | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Engine:
        """Fit on ``dataset``'s events before ``as_of`` (default: just after the last event)."""
        config = config or EngineConfig()
        with blas_threads(1):
            engine = cls._fit(dataset, config, as_of, progress)
        serve_on_one_thread()
        return engine

    @classmethod
    def _fit(
        cls, dataset: Dataset, config: EngineConfig, as_of: float | None, progress: Callable[[str], None] | None
    ) -> Engine:
        events = dataset.events
        if as_of is None:
            as_of = float(events.time.max()) + 1.0 if len(events) else 0.0
        if len(events) and float(events.time.max()) >= as_of:
            dataset = dataset.with_events(events.subset(events.time < as_of))
        exposure = _exposure_training(dataset, config, as_of)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        # The strongest kind of event in the data counts 1: type weights say how much one kind says
        # relative to another, and a data set of ratings or plays alone is as strong as purchases
        # (ALS's confidences and the history features would otherwise shrink with the type's weight).
        strongest = max((event_weight(t) for t in dataset.event_types), default=1.0) if len(dataset.events) else 1.0
        scale = 1.0 / strongest if strongest > 0 else 1.0
        if scale != 1.0:
            dataset = dataset.with_events(replace(dataset.events, weight=dataset.events.weight * np.float32(scale)))
        regime = read_regime(dataset)
        exclude_seen = regime.rare_repeats
        config = regime_config(config, dataset.has_timestamps)
        if progress:
            progress(f"the data: {regime.describe()}")

        step = time.perf_counter()
        content = ContentIndex.fit(dataset.catalogue.texts)
        # Rows for every item touched before as_of: text alone decides the neighbours, so training
        # windows can share them without seeing anything of their future.
        content.with_neighbours(
            np.unique(dataset.events.item), config.content_neighbours, config.content_max_postings, config.train_threads
        )
        timings["content"] = time.perf_counter() - step

        step = time.perf_counter()
        windows = _training_windows(dataset, as_of, config, regime.rare_repeats)
        lists = "time windows" if windows and not windows[0].per_person_now else "held-out share of each person"
        choices: dict[str, object] = {}
        parts: list[TrainingExamples] = []
        for n, window in enumerate(windows):
            ease = None
            if n == 0:  # the most recent window doubles as the validation split for EASE
                ease, choices = choose_ease(dataset, window, config, exclude_seen=exclude_seen)
                if "ease_lambda" in choices:
                    config = replace(config, ease_lambda=float(choices["ease_lambda"]))  # type: ignore[arg-type]
            fitting = time.perf_counter()
            sources = fit_window_sources(dataset, window, config, content=content, exclude_seen=exclude_seen, ease=ease)
            timings["window_sources"] = timings.get("window_sources", 0.0) + time.perf_counter() - fitting
            if progress:
                progress(f"window before {window.as_of:.0f}: sources fitted ({_stages(sources.timings)})")
            parts.append(build_examples(dataset, window, config, sources=sources, progress=progress, exposure=exposure))
        if sum(p.n_groups for p in parts) == 0 and len(dataset.events) and (lists == "time windows" or not windows):
            # Too short a history for time windows (none had a past, or none had lists): hold out
            # each person's last events.
            window = holdout_window(dataset, config.holdout_share)
            lists = "held-out share of each person"
            sources = fit_window_sources(dataset, window, config, content=content, exclude_seen=exclude_seen)
            parts = [build_examples(dataset, window, config, sources=sources, exposure=exposure)]
        examples = TrainingExamples.concatenate(parts, len(FEATURE_NAMES))
        timings["examples"] = time.perf_counter() - step
        if lists == "time windows" and config.n_candidates_time_windows:
            config = replace(config, n_candidates=min(config.n_candidates, int(config.n_candidates_time_windows)))

        step = time.perf_counter()
        ranker, ranker_choice = choose_ranker(examples, config)
        timings["ranker"] = time.perf_counter() - step
        if progress:
            progress(f"ranker: {ranker_choice}")

        step = time.perf_counter()
        sources = CandidateSources.fit(
            dataset.events,
            n_users=dataset.n_users,
            n_items=dataset.n_items,
            texts=dataset.catalogue.texts,
            user_segment=dataset.user_segment,
            n_segments=len(dataset.segment_names),
            as_of=as_of,
            config=config,
            content=content,
            has_time=dataset.has_timestamps,
            exclude_seen=exclude_seen,
        )
        timings["sources"] = time.perf_counter() - step
        timings["total"] = time.perf_counter() - started
        if progress:
            progress(f"sources fitted on everything ({_stages(sources.timings)}); stages: {_stages(timings)}")
        weights = {name: weight * scale for name, weight in DEFAULT_EVENT_WEIGHTS.items()}
        weights.update({t.strip().lower(): event_weight(t) * scale for t in dataset.event_types})
        weights[UNKNOWN_TYPE] = UNKNOWN_EVENT_WEIGHT * scale
        return cls(
            config=config,
            sources=sources,
            ranker=ranker,
            item_ids=list(dataset.catalogue.item_ids),
            item_price=dataset.catalogue.price.astype(np.float32),
            segment_names=list(dataset.segment_names),
            event_weights=weights,
            has_timestamps=dataset.has_timestamps,
            timings=timings,
            exposure=exposure.index if exposure is not None else None,
            training_summary={
                "exposure": {
                    "impressions": len(exposure.log),
                    "taken": int(np.isfinite(exposure.taken).sum()),
                    "list_rows": examples.exposure_rows,
                    "negatives": examples.exposure_negatives,
                    "propensity": exposure.propensity.as_dict(),
                }
                if exposure is not None
                else None,
                "regime": regime.as_dict(),
                "lists": lists,
                "windows": len(parts),
                "groups": examples.n_groups,
                "rows": int(examples.labels.shape[0]),
                "positives": int(examples.labels.sum()),
                "ranker": "lightgbm" if ranker.booster is not None else ranker.fallback,
                "ranker_choice": ranker_choice,
                "candidates": config.n_candidates,
                **choices,
            },
        )

    # -- serving ------------------------------------------------------------------------------

    def history_for(self, person: PersonContext) -> History:
        """Index a person's events; items the engine does not know are ignored."""
        found = person.item_positions
        if found is None or found.shape[0] != len(person.item_ids):
            found = self.item_index.positions(list(person.item_ids))
        known = found >= 0
        positions = np.flatnonzero(known).astype(np.int64)
        items = found[known].astype(np.int32)
        any_known = bool(positions.shape[0])
        if person.timestamps is not None and self.has_timestamps:
            times = np.asarray(person.timestamps, dtype=np.float64)[positions] if any_known else np.zeros(0)
        else:
            # No clock: the order of the list is the clock, ending just before the fit time.
            times = self.sources.as_of - 1.0 - (len(person.item_ids) - 1 - positions).astype(np.float64)
        if person.event_types is not None:
            unknown = self.event_weights.get(UNKNOWN_TYPE, UNKNOWN_EVENT_WEIGHT)
            type_weight = [self.event_weights.get(t.strip().lower(), unknown) for t in person.event_types]
            weights = np.asarray(type_weight, dtype=np.float32)[positions] if any_known else np.zeros(0, np.float32)
        else:
            weights = np.ones(items.shape[0], dtype=np.float32)
        if person.quantities is not None:
            quantities = np.asarray(person.quantities, dtype=np.float32)[positions] if any_known else np.zeros(0)
        else:
            quantities = np.ones(items.shape[0], dtype=np.float32)
        now = person.now
        if now is None:
            now = max(self.sources.as_of, float(times.max()) if times.shape[0] else self.sources.as_of)
        shown = [
            (self.item_index[i], t)
            for i, t in zip(person.shown_item_ids, person.shown_timestamps, strict=True)
            if i in self.item_index
        ]
        return History(
            shown_items=np.asarray([i for i, _ in shown], dtype=np.int32),
            shown_times=np.asarray([t for _, t in shown], dtype=np.float64),
            items=items,
            times=times,
            weights=weights,
            quantities=quantities.astype(np.float32),
            segment=self.segment_index.get(person.segment or "", -1),
            now=float(now),
            half_life_days=self.config.half_life_days,
        )

    def rank(
        self, history: History, k: int = 20, n_candidates: int | None = None, excluded: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top ``k`` (item indices, ranker scores, source indices) for an indexed history."""
        sources = self.sources
        signals = sources.signals(history, self.config)
        candidates = sources.generate(history, signals, self.config, n_candidates or self.config.n_candidates)
        features = candidate_features(sources, history, signals, candidates, self.item_price, self.exposure)
        scores = self.ranker.score(features)
        if excluded is not None and excluded.shape[0]:
            # Excluded items are dropped after scoring: the others keep their scores and order.
            keep = ~np.isin(candidates.items, excluded)
            candidates = Candidates(candidates.items[keep], candidates.best_rank[keep], candidates.source[keep])
            scores = scores[keep]
        k = min(k, scores.shape[0])
        if k == 0:
            return candidates.items[:0], scores[:0], candidates.source[:0]
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return candidates.items[top], scores[top], candidates.source[top]

    def recommend(self, person: PersonContext, k: int = 20, n_candidates: int | None = None) -> list[Recommendation]:
        history = self.history_for(person)
        excluded = self.item_index.positions(list(person.exclude))
        excluded = excluded[excluded >= 0].astype(np.int32)
        items, scores, sources = self.rank(history, k, n_candidates, excluded)
        return [
            Recommendation(item_id=self.item_ids[i], score=float(s), source=SOURCES[src], reason=REASONS[SOURCES[src]])
            for i, s, src in zip(items.tolist(), scores.tolist(), sources.tolist(), strict=True)
        ]

    def similar_items(self, item_id: str, k: int = 20, exclude: Sequence[str] = ()) -> list[Recommendation]:
        """ "People who bought this also bought": the item's co-visitation neighbours, then (for
        items too new or too rare to have enough) its nearest items by text, then by buyers."""
        item = self.item_index.get(item_id)
        if item is None:
            return []
        sources = self.sources
        skip = {item} | {self.item_index[i] for i in exclude if i in self.item_index}
        picked: list[tuple[int, float, str]] = []
        seen: set[int] = set(skip)
        neighbour_lists = [
            (sources.covisitation.getrow(item), "covisitation"),
            (sources.item_knn.getrow(item), "item_knn"),
        ]
        if sources.content.has_text:
            row = sources.content_neighbours(self.config).getrow(item)
            if row.nnz == 0:  # an item nobody had touched at fit time: its nearest texts, found now
                config = self.config
                row = sources.content.neighbour_rows(
                    np.asarray([item]), config.content_neighbours, config.content_max_postings
                )
            neighbour_lists.insert(1, (row, "content"))
        for row, source in neighbour_lists:
            order = np.argsort(-row.data, kind="stable")
            for j, score in zip(row.indices[order].tolist(), row.data[order].tolist(), strict=True):
                if len(picked) >= k:
                    break
                if j not in seen:
                    seen.add(j)
                    picked.append((j, float(score), source))
        return [
            Recommendation(item_id=self.item_ids[j], score=score, source=source, reason=REASONS[source])
            for j, score, source in picked
        ]

    # -- artifacts ----------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write every artifact under ``folder`` (created if needed) and return it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.sources.save(folder)
        self.ranker.save(folder / "ranker.txt")
        save_array(folder, "item_price", self.item_price)
        assert isinstance(self.item_ids, ItemIds)
        self.item_ids.save(folder)
        save_json(folder, "items", list(self.item_ids))  # the same ids, readable
        if self.exposure is not None:
            for name, array in self.exposure.arrays().items():
                save_array(folder, name, array)
        save_json(
            folder,
            "engine",
            {
                "format": ARTIFACT_FORMAT,
                "config": self.config.to_dict(),
                "features": list(FEATURE_NAMES),
                "segments": self.segment_names,
                "event_weights": self.event_weights,
                "has_timestamps": self.has_timestamps,
                "timings": self.timings,
                "training": self.training_summary,
                "ranker_fallback": self.ranker.fallback,
                "exposure": self.exposure.meta() if self.exposure is not None else None,
            },
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Engine:
        folder = Path(folder)
        serve_on_one_thread()
        meta = load_json(folder, "engine")
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"{folder} holds artifact format {meta.get('format')}, this code reads {ARTIFACT_FORMAT}")
        if list(meta["features"]) != list(FEATURE_NAMES):
            raise ValueError(f"{folder} was trained on other features than this code computes; retrain it")
        config = EngineConfig.from_dict(meta["config"])
        sources = CandidateSources.load(folder)
        sources.retrieval.set_ef_search(config.hnsw_ef_search)
        return cls(
            config=config,
            sources=sources,
            ranker=Ranker.load(folder / "ranker.txt", fallback=meta.get("ranker_fallback", DEFAULT_FALLBACK)),
            item_ids=ItemIds.load(folder) if ItemIds.saved(folder) else load_json(folder, "items"),
            item_price=load_array(folder, "item_price"),
            segment_names=meta["segments"],
            event_weights=meta["event_weights"],
            has_timestamps=meta["has_timestamps"],
            timings=meta.get("timings", {}),
            training_summary=meta.get("training", {}),
            exposure=ExposureIndex.from_arrays(
                {name: load_array(folder, name) for name in EXPOSURE_ARRAYS}, meta["exposure"]
            )
            if meta.get("exposure")
            else None,
        )


EXPOSURE_ARRAYS = ("exposure_item", "exposure_time", "exposure_taken")


def _exposure_training(dataset: Dataset, config: EngineConfig, as_of: float) -> ExposureTraining | None:
    """The impressions shown before ``as_of``, each with when it was taken (by the events before
    ``as_of``), and the position propensity; None without impressions or when switched off."""
    log = dataset.exposures
    if log is None or not config.exposure_learning or not dataset.has_timestamps:
        return None
    log = log.subset(log.time < as_of)
    if not len(log):
        return None
    events = dataset.events
    strongest = float(events.weight.max()) if len(events) else 1.0
    return ExposureTraining.prepare(
        log,
        events.user,
        events.item,
        events.time,
        events.weight >= strongest,
        click_window=config.exposure_click_window_hours * 3600.0,
        purchase_window=config.exposure_purchase_window_days * SECONDS_PER_DAY,
        as_of=as_of,
    )


def regime_config(config: EngineConfig, has_time: bool) -> EngineConfig:
    """The settings that depend on the kind of data: without a clock, ALS's factors and fits are
    ``als_factors_without_clock`` and ``als_fits_without_clock`` (the fitted engine stores the
    values it used)."""
    if has_time:
        return config
    if config.als_factors_without_clock is not None:
        config = replace(config, als_factors=int(config.als_factors_without_clock))
    if config.als_fits_without_clock is not None:
        config = replace(config, als_fits=int(config.als_fits_without_clock))
    return config


def _stages(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())


def _training_windows(dataset: Dataset, as_of: float, config: EngineConfig, rare_repeats: bool) -> list[ExampleWindow]:
    """Time windows where people re-consume and the clock is real (what they do next month is the
    question); otherwise a held-out share of each person (their last by time, or a random share
    without a clock), which gives every person a list instead of the few active in a window."""
    if dataset.has_timestamps and not rare_repeats:
        return temporal_windows(
            dataset, as_of, config.horizon_days, config.training_windows, config.training_window_step_days
        )
    if not len(dataset.events):
        return []
    return [holdout_window(dataset, config.holdout_share, seed=None if dataset.has_timestamps else config.seed)]
