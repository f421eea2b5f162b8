"""Offline evaluation: the engine and the baselines side by side on one split, in one run.

A split is a training dataset (catalogue = the items seen in its events, as the Online Retail
protocol ranks "the whole catalogue seen in history"), the time the models are fitted as of, and
for each test person with history the set of items they went on to buy. Three ways to get one:
a time cut-off, a given test file, or (without timestamps) each person's last events held out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp

from personalization.engine.baselines import Baseline, all_baselines
from personalization.engine.config import EngineConfig
from personalization.engine.dataset import SECONDS_PER_DAY, Dataset
from personalization.engine.engine import Engine
from personalization.engine.examples import holdout_window, people_histories, target_events
from personalization.engine.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
    unit_item_vectors,
)
from personalization.engine.threads import blas_threads

DEFAULT_TEST_DAYS = 30.0


@dataclass
class EvaluationSplit:
    train: Dataset
    as_of: float
    test: dict[int, np.ndarray]  # person index → relevant item indices (in the train catalogue)
    description: str


@dataclass
class ModelResult:
    model: str
    recall: float
    ndcg: float
    map: float
    coverage: float
    diversity: float
    fit_seconds: float
    recommend_seconds: float

    def as_row(self) -> dict[str, object]:
        return {
            "model": self.model,
            "recall": round(self.recall, 4),
            "ndcg": round(self.ndcg, 4),
            "map": round(self.map, 4),
            "coverage": round(self.coverage, 4),
            "diversity": round(self.diversity, 4),
            "fit_seconds": round(self.fit_seconds, 2),
            "recommend_seconds": round(self.recommend_seconds, 2),
        }


@dataclass
class EvaluationReport:
    k: int
    split: str
    test_people: int
    catalogue_items: int
    results: list[ModelResult]
    engine_timings: dict[str, float] = field(default_factory=dict)
    engine_training: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"k": self.k, "rows": [r.as_row() for r in self.results]}


def _relevant_sets(people: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    if people.shape[0] == 0:
        return {}
    pairs = np.unique(np.stack([people.astype(np.int64), items.astype(np.int64)], axis=1), axis=0)
    boundaries = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    return {int(chunk[0, 0]): chunk[:, 1] for chunk in np.split(pairs, boundaries)}


def _restrict(dataset: Dataset, past: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """The dataset with only ``past`` events and the catalogue they touch, plus the map from old
    item indices to new ones (-1 for items not in the new catalogue)."""
    train = dataset.with_events(dataset.events.subset(past)).restrict_catalogue_to_events()
    remap = np.full(dataset.n_items, -1, dtype=np.int64)
    kept = np.unique(dataset.events.item[past])
    remap[kept] = np.arange(kept.shape[0])
    return train, remap


def split_by_cutoff(dataset: Dataset, cutoff: float, until: float | None = None) -> EvaluationSplit:
    """History before ``cutoff``; test = items bought in [cutoff, until) that history knows, by people
    with history."""
    events = dataset.events
    past = events.time < cutoff
    future = (events.time >= cutoff) & target_events(dataset)
    if until is not None:
        future &= events.time < until
    train, remap = _restrict(dataset, past)
    has_history = np.zeros(dataset.n_users, dtype=bool)
    has_history[events.user[past]] = True
    people, items = events.user[future], remap[events.item[future]]
    keep = has_history[people] & (items >= 0)
    day = datetime.fromtimestamp(cutoff, tz=UTC).date().isoformat()
    return EvaluationSplit(
        train=train, as_of=cutoff, test=_relevant_sets(people[keep], items[keep]), description=f"cutoff {day}"
    )


def split_by_test_pairs(train_dataset: Dataset, pairs: list[tuple[str, str]]) -> EvaluationSplit:
    """A given train/test pair: ``train_dataset``'s events are history, ``pairs`` the test set."""
    events = train_dataset.events
    train, remap = _restrict(train_dataset, np.ones(len(events), dtype=bool))
    has_history = np.zeros(train_dataset.n_users, dtype=bool)
    has_history[events.user] = True
    people: list[int] = []
    items: list[int] = []
    for user_id, item_id in pairs:
        person = train_dataset.user_index.get(user_id)
        item = train_dataset.catalogue.index.get(item_id)
        if person is None or item is None or not has_history[person] or remap[item] < 0:
            continue
        people.append(person)
        items.append(int(remap[item]))
    as_of = float(events.time.max()) + 1.0 if len(events) else 0.0
    return EvaluationSplit(
        train=train,
        as_of=as_of,
        test=_relevant_sets(np.asarray(people, dtype=np.int64), np.asarray(items, dtype=np.int64)),
        description="given test file",
    )


def split_by_holdout(dataset: Dataset, share: float = 0.2) -> EvaluationSplit:
    """Each person's last ``share`` of events (file order) as the test set: for data without time."""
    window = holdout_window(dataset, share)
    train, remap = _restrict(dataset, window.past)
    events = dataset.events
    future = window.future & target_events(dataset)
    people, items = events.user[future], remap[events.item[future]]
    keep = items >= 0
    return EvaluationSplit(
        train=train,
        as_of=window.as_of,
        test=_relevant_sets(people[keep], items[keep]),
        description=f"last {share:.0%} of each person's events",
    )


def default_split(dataset: Dataset) -> EvaluationSplit:
    """The last 30 days as test when the data has time (a tenth of its span if that is shorter),
    otherwise each person's last events."""
    if dataset.has_timestamps and len(dataset.events):
        start, end = float(dataset.events.time.min()), float(dataset.events.time.max())
        test_seconds = min(DEFAULT_TEST_DAYS * SECONDS_PER_DAY, (end - start) / 10.0)
        return split_by_cutoff(dataset, end - test_seconds)
    return split_by_holdout(dataset)


def _score_lists(
    name: str,
    lists: list[np.ndarray],
    relevant: list[np.ndarray],
    k: int,
    n_items: int,
    item_vectors: sp.csr_matrix,
    fit_seconds: float,
    recommend_seconds: float,
) -> ModelResult:
    n = max(len(lists), 1)
    return ModelResult(
        model=name,
        recall=sum(recall_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)) / n,
        ndcg=sum(ndcg_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)) / n,
        map=sum(average_precision_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)) / n,
        coverage=catalogue_coverage(lists, n_items, k),
        diversity=sum(intra_list_diversity(r[:k], item_vectors) for r in lists) / n,
        fit_seconds=fit_seconds,
        recommend_seconds=recommend_seconds,
    )


def run_evaluation(
    split: EvaluationSplit,
    *,
    k: int = 20,
    config: EngineConfig | None = None,
    baselines: list[Baseline] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationReport:
    # Per-person work (fold-in solves, scoring) is many small BLAS calls: one thread is fastest.
    with blas_threads(1):
        return _run_evaluation(split, k, config, baselines, progress)


def _run_evaluation(
    split: EvaluationSplit,
    k: int,
    config: EngineConfig | None,
    baselines: list[Baseline] | None,
    progress: Callable[[str], None] | None,
) -> EvaluationReport:
    config = config or EngineConfig()
    train = split.train
    people = np.asarray(sorted(split.test), dtype=np.int64)
    relevant = [split.test[int(p)] for p in people]
    item_vectors = unit_item_vectors(train.events.matrix(train.n_users, train.n_items))
    results: list[ModelResult] = []

    started = time.perf_counter()
    engine = Engine.fit(train, config, as_of=split.as_of, progress=progress)
    fit_seconds = time.perf_counter() - started
    if progress:
        progress(f"engine fitted in {fit_seconds:.1f}s: {engine.training_summary}")
    started = time.perf_counter()
    histories = people_histories(train.events, people, train.user_segment, split.as_of, config.half_life_days)
    lists = [engine.rank(histories[int(p)], k)[0] for p in people]
    results.append(
        _score_lists(
            "engine", lists, relevant, k, train.n_items, item_vectors, fit_seconds, time.perf_counter() - started
        )
    )

    for baseline in baselines if baselines is not None else all_baselines():
        if baseline.name == "ease" and train.n_items > config.ease_max_items:
            if progress:
                progress(f"ease skipped: {train.n_items} items is above ease_max_items={config.ease_max_items}")
            continue
        started = time.perf_counter()
        baseline.fit(train, config)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        top = baseline.recommend(people, k)
        results.append(
            _score_lists(
                baseline.name,
                list(top),
                relevant,
                k,
                train.n_items,
                item_vectors,
                fit_seconds,
                time.perf_counter() - started,
            )
        )
        if progress:
            progress(f"{baseline.name} done")
    return EvaluationReport(
        k=k,
        split=split.description,
        test_people=int(people.shape[0]),
        catalogue_items=train.n_items,
        results=results,
        engine_timings=engine.timings,
        engine_training=engine.training_summary,
    )
