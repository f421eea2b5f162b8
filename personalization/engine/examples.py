"""Point-in-time training examples for the ranker.

A window has a cut-off ``as_of``: candidate sources are fitted on events strictly before it,
every person's history is cut there too, and the labels are what the person did in the window
that follows. Features are computed by ``features.candidate_features``, the serving code, on
those past-only inputs, so an example at time t never sees an event at or after t.

Where re-consumption is rare, or without timestamps, lists come from each person instead: a share
of their events (their last by time, or a random share when there is no clock) becomes their labels
and the rest their history, and each person is served as of their own last event.

With impressions (``exposure``), a list also holds the items shown to the person after their
cut-off: taken within the attribution window (a positive, weighted by the inverse propensity of its
position) or not (an exposure negative); and people who only clicked what they were shown get lists
too. Exposure features of a row count only impressions and clicks before the row's own time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from personalization.engine.candidates import Candidates, CandidateSources
from personalization.engine.collaborative import EASEModel
from personalization.engine.config import EngineConfig
from personalization.engine.content import ContentIndex
from personalization.engine.dataset import SECONDS_PER_DAY, Dataset, EventLog
from personalization.engine.exposure import ExposureTraining, take_weights
from personalization.engine.features import FEATURE_NAMES, candidate_features
from personalization.engine.history import History
from personalization.engine.threads import faiss_threads

# A window with fewer labelled people than this teaches the ranker noise; it is skipped.
MIN_GROUPS_PER_WINDOW = 5


@dataclass
class ExampleWindow:
    as_of: float
    past: np.ndarray  # bool mask over the event log: what sources and histories may see
    future: np.ndarray  # bool mask: the events that become labels
    per_person_now: bool = False  # each person is served as of their own latest past event
    ends: float = np.inf  # impressions shown before this (and after the cut-off) join the lists


@dataclass
class TrainingExamples:
    features: np.ndarray  # float32 (rows, features)
    labels: np.ndarray  # float32 (rows,)
    group_sizes: np.ndarray  # int32, one group per (window, person), rows in order
    group_people: np.ndarray  # int32 person index of each group
    group_as_of: np.ndarray  # float64 cut-off of each group
    group_latest_history: np.ndarray  # float64 time of the latest history event of each group
    sources_fitted_until: list[float] = field(default_factory=list)  # one per window
    weights: np.ndarray | None = None  # float32 per row (inverse propensity of taken impressions)
    items: np.ndarray | None = None  # int32 item index of each row
    exposure_rows: int = 0  # rows that are impressions (shown after the cut-off)
    exposure_negatives: int = 0  # of which shown and not taken

    def row_weights(self) -> np.ndarray:
        return self.weights if self.weights is not None else np.ones(self.labels.shape[0], dtype=np.float32)

    @classmethod
    def empty(cls, n_features: int) -> TrainingExamples:
        return cls(
            features=np.zeros((0, n_features), dtype=np.float32),
            labels=np.zeros(0, dtype=np.float32),
            group_sizes=np.zeros(0, dtype=np.int32),
            group_people=np.zeros(0, dtype=np.int32),
            group_as_of=np.zeros(0),
            group_latest_history=np.zeros(0),
            items=np.zeros(0, dtype=np.int32),
        )

    @classmethod
    def concatenate(cls, parts: list[TrainingExamples], n_features: int) -> TrainingExamples:
        if not parts:
            return cls.empty(n_features)
        return cls(
            features=np.concatenate([p.features for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            group_sizes=np.concatenate([p.group_sizes for p in parts]),
            group_people=np.concatenate([p.group_people for p in parts]),
            group_as_of=np.concatenate([p.group_as_of for p in parts]),
            group_latest_history=np.concatenate([p.group_latest_history for p in parts]),
            sources_fitted_until=[t for p in parts for t in p.sources_fitted_until],
            weights=np.concatenate([p.row_weights() for p in parts])
            if any(p.weights is not None for p in parts)
            else None,
            items=np.concatenate([p.items for p in parts if p.items is not None])
            if all(p.items is not None for p in parts)
            else None,
            exposure_rows=sum(p.exposure_rows for p in parts),
            exposure_negatives=sum(p.exposure_negatives for p in parts),
        )

    @property
    def n_groups(self) -> int:
        return int(self.group_sizes.shape[0])

    def take_groups(self, keep: np.ndarray) -> TrainingExamples:
        """The examples of the groups where ``keep`` (one bool per group) is true."""
        rows = np.repeat(keep, self.group_sizes)
        return TrainingExamples(
            features=self.features[rows],
            labels=self.labels[rows],
            group_sizes=self.group_sizes[keep],
            group_people=self.group_people[keep],
            group_as_of=self.group_as_of[keep],
            group_latest_history=self.group_latest_history[keep],
            sources_fitted_until=list(self.sources_fitted_until),
            weights=self.weights[rows] if self.weights is not None else None,
            items=self.items[rows] if self.items is not None else None,
        )


def target_events(dataset: Dataset) -> np.ndarray:
    """The events worth predicting: those of the strongest event type present (purchases when
    there are any), so that a view does not count as success when purchases are known."""
    events = dataset.events
    if len(events) == 0:
        return np.zeros(0, dtype=bool)
    return events.weight >= float(events.weight.max())


def temporal_windows(
    dataset: Dataset, as_of: float, horizon_days: float, count: int, step_days: float | None = None
) -> list[ExampleWindow]:
    """Windows of ``horizon_days``, the newest ending at ``as_of``, each starting ``step_days``
    (``horizon_days`` unless given; less overlaps them) before the next, newest first."""
    time = dataset.events.time
    horizon = horizon_days * SECONDS_PER_DAY
    step = (step_days or horizon_days) * SECONDS_PER_DAY
    windows = []
    for k in range(1, count + 1):
        cutoff = as_of - horizon - (k - 1) * step
        past = time < cutoff
        if not np.any(past):
            break
        future = (time >= cutoff) & (time < cutoff + horizon)
        windows.append(ExampleWindow(as_of=cutoff, past=past, future=future, ends=cutoff + horizon))
    return windows


def holdout_window(dataset: Dataset, share: float, *, seed: int | None = None) -> ExampleWindow:
    """Each person's last ``share`` of events by time, ties by item (at least one, if they have two
    or more) as labels; with ``seed``, a random share of each person's events instead."""
    events = dataset.events
    n = len(events)
    if seed is None:
        order = np.lexsort((events.item, events.time, events.user))
    else:
        order = np.lexsort((np.random.default_rng(seed).random(n), events.user))
    sorted_users = events.user[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    position = np.arange(n) - starts
    length = ends - starts
    held = np.where(length >= 2, np.maximum(1, np.floor(length * share)), 0)
    future_sorted = position >= length - held
    future = np.zeros(n, dtype=bool)
    future[order] = future_sorted
    as_of = float(events.time.max()) + 1.0 if n else 0.0
    return ExampleWindow(as_of=as_of, past=~future, future=future, per_person_now=True)


def people_histories(
    log: EventLog, people: np.ndarray, user_segment: np.ndarray, now: float | None, half_life_days: float
) -> dict[int, History]:
    """``History`` of each of ``people`` from ``log``, one sort for all of them, as of ``now`` (or,
    when it is None, just after each person's own latest event)."""
    order = np.argsort(log.user, kind="stable")  # stable: each person's events stay in time order
    sorted_users = log.user[order]
    starts = np.searchsorted(sorted_users, people, side="left")
    ends = np.searchsorted(sorted_users, people, side="right")
    histories = {}
    for person, start, end in zip(people.tolist(), starts.tolist(), ends.tolist(), strict=True):
        rows = order[start:end]
        histories[person] = History(
            items=log.item[rows],
            times=log.time[rows],
            weights=log.weight[rows],
            quantities=log.quantity[rows],
            segment=int(user_segment[person]),
            now=now if now is not None else (float(log.time[rows[-1]]) + 1.0 if end > start else 0.0),
            half_life_days=half_life_days,
        )
    return histories


def fit_window_sources(
    dataset: Dataset,
    window: ExampleWindow,
    config: EngineConfig,
    *,
    content: ContentIndex | None = None,
    has_time: bool | None = None,
    exclude_seen: bool = False,
    ease: EASEModel | None = None,
) -> CandidateSources:
    """The candidate sources as they stood at the window's cut-off: fitted on its past only. They
    serve the window's training lists and are then dropped, so ALS is searched exactly there (no
    HNSW graph to build; retrieval.py)."""
    return CandidateSources.fit(
        dataset.events.subset(window.past),
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        texts=dataset.catalogue.texts,
        user_segment=dataset.user_segment,
        n_segments=len(dataset.segment_names),
        as_of=window.as_of,
        config=config,
        content=content,
        has_time=dataset.has_timestamps if has_time is None else has_time,
        exclude_seen=exclude_seen,
        ease=ease,
        approximate_retrieval=False,
    )


def build_examples(
    dataset: Dataset,
    window: ExampleWindow,
    config: EngineConfig,
    *,
    content: ContentIndex | None = None,
    n_candidates: int | None = None,
    progress: Callable[[str], None] | None = None,
    sources: CandidateSources | None = None,
    exposure: ExposureTraining | None = None,
) -> TrainingExamples:
    n_features = len(FEATURE_NAMES)
    past = dataset.events.subset(window.past)
    sources = sources or fit_window_sources(dataset, window, config, content=content)
    labelled = window.future & target_events(dataset)
    future_users = dataset.events.user[labelled]
    future_items = dataset.events.item[labelled]
    wanted = np.unique(future_users)
    shown_rows: dict[int, np.ndarray] = {}
    if exposure is not None:
        shown_rows = exposure.of_person()
        # People who took something they were shown after the cut-off have a list too.
        log = exposure.log
        after = (log.time >= window.as_of if not window.per_person_now else np.ones(len(log), bool)) & (
            log.time < window.ends
        )
        wanted = np.union1d(wanted, np.unique(log.user[after & np.isfinite(exposure.taken)]))
    people = np.intersect1d(wanted, np.unique(past.user))
    if people.shape[0] < MIN_GROUPS_PER_WINDOW:
        return TrainingExamples.empty(n_features)
    label_order = np.lexsort((future_items, future_users))
    label_users, label_items = future_users[label_order], future_items[label_order]
    now = None if window.per_person_now and sources.has_time else window.as_of
    histories = people_histories(past, people, dataset.user_segment, now, config.half_life_days)
    als_found = _als_answers(sources, [histories[p] for p in people.tolist()], config)

    feature_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    weight_parts: list[np.ndarray] = []
    item_parts: list[np.ndarray] = []
    sizes: list[int] = []
    kept_people: list[int] = []
    latest: list[float] = []
    exposure_rows = exposure_negatives = 0
    for n, person in enumerate(people.tolist()):
        history = histories[person]
        shown = shown_rows.get(person)
        later = None
        if exposure is not None and shown is not None:
            times = exposure.log.time[shown]
            # Features see what was shown before the row's time; the lists get what was shown after.
            history.shown_items, history.shown_times = (
                exposure.log.item[shown[times < history.now]],
                times[times < history.now],
            )
            later = shown[(times >= history.now) & (times < window.ends)]
        signals = sources.signals(history, config)
        candidates = sources.generate(
            history,
            signals,
            config,
            n_candidates or config.training_candidates(window.per_person_now),
            als_found=als_found[n],
        )
        start, end = np.searchsorted(label_users, [person, person + 1])
        labels = np.isin(candidates.items, label_items[start:end]).astype(np.float32)
        weights = np.ones(labels.shape[0], dtype=np.float32)
        if later is not None and later.shape[0]:
            assert exposure is not None
            candidates, labels, weights, added, negatives = _with_impressions(
                candidates, labels, weights, later, exposure, label_items[start:end]
            )
            exposure_rows += added
            exposure_negatives += negatives
        if not labels.any():
            continue  # LambdaRank learns nothing from a list without a single relevant item
        feature_parts.append(
            candidate_features(
                sources,
                history,
                signals,
                candidates,
                dataset.catalogue.price,
                exposure.index if exposure is not None else None,
            )
        )
        label_parts.append(labels)
        weight_parts.append(weights)
        item_parts.append(candidates.items.astype(np.int32))
        sizes.append(candidates.items.shape[0])
        kept_people.append(person)
        latest.append(float(history.times[-1]))
    if progress:
        progress(f"window before {window.as_of:.0f}: {len(sizes)} people, {sum(sizes)} rows")
    if not sizes:
        return TrainingExamples.empty(n_features)
    return TrainingExamples(
        features=np.concatenate(feature_parts),
        labels=np.concatenate(label_parts),
        group_sizes=np.asarray(sizes, dtype=np.int32),
        group_people=np.asarray(kept_people, dtype=np.int32),
        group_as_of=np.full(len(sizes), window.as_of),
        group_latest_history=np.asarray(latest),
        sources_fitted_until=[sources.fitted_until],
        weights=np.concatenate(weight_parts) if exposure is not None else None,
        items=np.concatenate(item_parts),
        exposure_rows=exposure_rows,
        exposure_negatives=exposure_negatives,
    )


def _als_answers(sources: CandidateSources, histories: list[History], config: EngineConfig) -> list[np.ndarray | None]:
    """ALS retrieval for every person of a window's lists in one batched search (each person's
    folded-in vector, as ``signals`` computes it), or None each where ALS proposes nothing."""
    quota = config.quotas.get("als", 0)
    if not quota or not histories:
        return [None] * len(histories)
    vectors = np.stack([sources.als.person_vector(h.unique_items, h.weight_sum) for h in histories])
    with faiss_threads(config.train_threads):
        return list(sources.retrieval.search_many(vectors, quota))


def _with_impressions(
    candidates: Candidates,
    labels: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    exposure: ExposureTraining,
    purchased: np.ndarray,
) -> tuple[Candidates, np.ndarray, np.ndarray, int, int]:
    """The list with the items shown in ``rows`` (impressions after the cut-off): a taken one is a
    positive weighing the inverse propensity of its position, one never taken a negative; an item
    shown more than once counts by its first taken impression, else its first."""
    log = exposure.log
    took = np.isfinite(exposure.taken[rows])
    # Not taken yet while its click window is still open at the fit time: neither kind, left out.
    settled = took | (log.time[rows] < exposure.settled_before)
    rows, took = rows[settled], took[settled]
    items, positions = log.item[rows], log.position[rows]
    # One entry per item: taken impressions first, then in time order (rows are in time order).
    order = np.lexsort((np.arange(rows.shape[0]), ~took, items))
    items, positions, took = items[order], positions[order], took[order]
    first = np.concatenate([[True], items[1:] != items[:-1]]) if items.shape[0] else np.zeros(0, bool)
    items, positions, took = items[first], positions[first], took[first]
    weight = np.where(took, take_weights(positions, exposure.propensity), 1.0).astype(np.float32)
    at = {int(item): n for n, item in enumerate(candidates.items.tolist())}
    labels, weights = labels.copy(), weights.copy()
    extra_items: list[int] = []
    extra_labels: list[float] = []
    extra_weights: list[float] = []
    for item, taken, w in zip(items.tolist(), took.tolist(), weight.tolist(), strict=True):
        n = at.get(item)
        positive = taken or bool(np.isin(item, purchased))
        if n is None:
            extra_items.append(item)
            extra_labels.append(1.0 if positive else 0.0)
            extra_weights.append(w if taken else 1.0)
        else:
            labels[n] = 1.0 if positive else labels[n]
            weights[n] = w if taken else weights[n]
    if extra_items:
        candidates = Candidates(
            items=np.concatenate([candidates.items, np.asarray(extra_items, dtype=candidates.items.dtype)]),
            best_rank=np.concatenate(
                [candidates.best_rank, np.full(len(extra_items), np.nan, dtype=candidates.best_rank.dtype)]
            ),
            source=np.concatenate([candidates.source, np.full(len(extra_items), -1, dtype=candidates.source.dtype)]),
        )
        labels = np.concatenate([labels, np.asarray(extra_labels, dtype=np.float32)])
        weights = np.concatenate([weights, np.asarray(extra_weights, dtype=np.float32)])
    return candidates, labels, weights, int(items.shape[0]), int((~took).sum())
