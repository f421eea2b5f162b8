"""Offline evaluation: the engine and the tuned baselines side by side on one split, in one run.

The split (``personalization.engine.splits``) gives the history, the test and when each person is
served. Seen items are excluded from every model's lists when the split asks for it, or by
default when repeat consumption is rare in the history. Baselines are tuned on a validation split
carved out of the history (``personalization.engine.tuning``), then refitted on all of it. Test
people without history get their own rows (the engine's cold-start path and popularity), and the
engine is compared with the best baseline by a paired bootstrap interval of the NDCG difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from personalization.engine.baselines import Baseline, PopularityBaseline, all_baselines
from personalization.engine.config import EngineConfig
from personalization.engine.engine import Engine
from personalization.engine.examples import people_histories
from personalization.engine.history import History
from personalization.engine.metrics import catalogue_coverage, ndcg_at_k, paired_bootstrap_interval, recall_at_k
from personalization.engine.regime import RARE_REPEAT_SHARE
from personalization.engine.splits import (
    EvaluationSplit,
    default_split,
    repeat_share,
    scored_people,
    split_by_cutoff,
    split_by_holdout,
    split_by_last_share,
    split_by_random_share,
    split_by_test_pairs,
)
from personalization.engine.threads import blas_threads
from personalization.engine.tuning import interactions, tune_baselines

__all__ = [
    "EvaluationReport",
    "EvaluationSplit",
    "ModelResult",
    "default_split",
    "run_evaluation",
    "split_by_cutoff",
    "split_by_holdout",
    "split_by_last_share",
    "split_by_random_share",
    "split_by_test_pairs",
]

# Seen items are excluded by default when fewer than this share of the history's interactions are
# with an item the person already had: below it, re-consumption is too rare to be worth list slots.
REPEAT_SHARE_THRESHOLD = RARE_REPEAT_SHARE  # the engine's own line between the two regimes
BOOTSTRAP_SAMPLES = 2000


@dataclass
class ModelResult:
    model: str
    recall: float
    ndcg: float
    coverage: float
    fit_seconds: float
    recommend_seconds: float
    people: int
    settings: str = ""
    per_person_ndcg: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    person_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    lists: list[np.ndarray] = field(default_factory=list, repr=False)

    def as_row(self) -> dict[str, object]:
        return {
            "model": self.model,
            "settings": self.settings,
            "recall": round(self.recall, 4),
            "ndcg": round(self.ndcg, 4),
            "coverage": round(self.coverage, 4),
            "fit_seconds": round(self.fit_seconds, 2),
            "recommend_seconds": round(self.recommend_seconds, 2),
            "people": self.people,
        }


@dataclass
class Comparison:
    """The engine against the best baseline by NDCG on the same people."""

    best_baseline: str
    engine_ndcg: float
    best_ndcg: float
    ratio: float
    ci_low: float  # paired bootstrap 95 % interval of the mean per-person NDCG difference
    ci_high: float
    samples: int

    def as_json(self) -> dict[str, object]:
        return {
            "best_baseline": self.best_baseline,
            "engine_ndcg": round(self.engine_ndcg, 4),
            "best_ndcg": round(self.best_ndcg, 4),
            "ratio": round(self.ratio, 4) if np.isfinite(self.ratio) else None,  # None: the best scored 0
            "ci_low": round(self.ci_low, 4),
            "ci_high": round(self.ci_high, 4),
            "bootstrap_samples": self.samples,
        }


@dataclass
class EvaluationReport:
    k: int
    split: str
    test_people: int
    catalogue_items: int
    exclude_seen: bool
    exclusion_reason: str
    repeat_share: float
    results: list[ModelResult]
    cold_start: list[ModelResult] = field(default_factory=list)
    cold_people: int = 0
    unseen_test_items: int = 0
    people_without_new_items: int = 0
    validation: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    tuning: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    comparison: Comparison | None = None
    engine_timings: dict[str, float] = field(default_factory=dict)
    engine_training: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "k": self.k,
            "split": self.split,
            "test_people": self.test_people,
            "catalogue_items": self.catalogue_items,
            "exclude_seen": self.exclude_seen,
            "exclusion_reason": self.exclusion_reason,
            "repeat_share": round(self.repeat_share, 4),
            "unseen_test_items": self.unseen_test_items,
            "people_without_new_items": self.people_without_new_items,
            "rows": [r.as_row() for r in self.results],
            "cold_start": {"people": self.cold_people, "rows": [r.as_row() for r in self.cold_start]},
            "validation": self.validation,
            "tuning": self.tuning,
            "skipped": self.skipped,
            "comparison": self.comparison.as_json() if self.comparison else None,
            "engine_timings": {k: round(v, 2) for k, v in self.engine_timings.items()},
            "engine_training": self.engine_training,
        }


def exclusion_decision(split: EvaluationSplit, exclude_seen: bool | None) -> tuple[bool, float, str]:
    """Whether seen items are excluded, the history's repeat share and the reason, in words."""
    share = repeat_share(split.train)
    if exclude_seen is not None:
        return exclude_seen, share, f"{'excluded' if exclude_seen else 'allowed'} as asked"
    excluded = share < REPEAT_SHARE_THRESHOLD
    relation = "below" if excluded else "at or above"
    return (
        excluded,
        share,
        f"{'excluded' if excluded else 'allowed'}: {share:.1%} of the history's interactions repeat an item the"
        f" person already had, {relation} the {REPEAT_SHARE_THRESHOLD:.0%} threshold",
    )


def _score(
    name: str,
    people: np.ndarray,
    lists: list[np.ndarray],
    relevant: list[np.ndarray],
    k: int,
    n_items: int,
    fit_seconds: float,
    recommend_seconds: float,
    settings: str = "",
) -> ModelResult:
    ndcg = np.asarray([ndcg_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)], dtype=np.float64)
    recall = [recall_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)]
    return ModelResult(
        model=name,
        recall=float(np.mean(recall)) if recall else 0.0,
        ndcg=float(ndcg.mean()) if ndcg.shape[0] else 0.0,
        coverage=catalogue_coverage(lists, n_items, k),
        fit_seconds=fit_seconds,
        recommend_seconds=recommend_seconds,
        people=len(lists),
        settings=settings,
        per_person_ndcg=ndcg,
        person_ids=people,
        lists=lists,
    )


def served_histories(split: EvaluationSplit, people: np.ndarray, half_life_days: float) -> dict[int, History]:
    """Each test person's history as of their own ``now`` (people sharing a ``now`` in one call)."""
    train = split.train
    if split.now is None:
        return people_histories(train.events, people, train.user_segment, split.as_of, half_life_days)
    histories: dict[int, History] = {}
    nows = split.now[people]
    for now in np.unique(nows).tolist():
        group = people[nows == now]
        log = train.events.subset(np.isin(train.events.user, group)) if group.shape[0] < people.shape[0] else None
        log = train.events if log is None else log
        histories.update(people_histories(log, group, train.user_segment, float(now), half_life_days))
    return histories


def engine_lists(
    engine: Engine,
    histories: dict[int, History],
    people: np.ndarray,
    k: int,
    exclude_seen: bool,
    n_candidates: int | None = None,
) -> list[np.ndarray]:
    """The engine's top ``k`` for each of ``people``, their own items excluded after scoring when asked."""
    lists = []
    for person in people.tolist():
        history = histories[person]
        seen = history.unique_items.astype(np.int32) if exclude_seen else None
        lists.append(engine.rank(history, k, n_candidates, excluded=seen)[0])
    return lists


def run_evaluation(
    split: EvaluationSplit,
    *,
    k: int = 20,
    config: EngineConfig | None = None,
    exclude_seen: bool | None = None,
    baselines: list[Baseline] | None = None,
    progress: Callable[[str], None] | None = None,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> EvaluationReport:
    # Per-person work (fold-in solves, scoring) is many small BLAS calls: one thread is fastest.
    with blas_threads(1):
        return _run_evaluation(
            split, k, config or EngineConfig(), exclude_seen, baselines, progress, bootstrap_samples, seed
        )


def _run_evaluation(
    split: EvaluationSplit,
    k: int,
    config: EngineConfig,
    exclude_seen: bool | None,
    baselines: list[Baseline] | None,
    progress: Callable[[str], None] | None,
    bootstrap_samples: int,
    seed: int,
) -> EvaluationReport:
    say = progress or (lambda message: None)
    train = split.train
    excluded, share, reason = exclusion_decision(split, exclude_seen)
    people, relevant, emptied = scored_people(split, excluded)
    results: list[ModelResult] = []

    started = time.perf_counter()
    engine = Engine.fit(train, config, as_of=split.as_of, progress=progress)
    engine_fit = time.perf_counter() - started
    say(f"engine fitted in {engine_fit:.1f}s: {engine.training_summary}")
    started = time.perf_counter()
    lists = engine_lists(engine, served_histories(split, people, config.half_life_days), people, k, excluded)
    results.append(
        _score("engine", people, lists, relevant, k, train.n_items, engine_fit, time.perf_counter() - started)
    )

    wanted = baselines if baselines is not None else all_baselines()
    tuned, validation = tune_baselines(train, split.protocol, wanted, exclude_seen=excluded, k=k, progress=progress)
    data = interactions(split)
    seen_matrix: sp.csr_matrix | None = data.binary if excluded else None
    skipped: dict[str, str] = {}
    tuning: dict[str, list[dict[str, object]]] = {}
    popularity: Baseline | None = None
    for entry in tuned:
        if entry.skipped:
            skipped[entry.name] = entry.skipped
            say(f"{entry.name} skipped: {entry.skipped}")
            continue
        tuning[entry.name] = [{"settings": s, "ndcg": round(v, 4)} for s, v in entry.validation]
        started = time.perf_counter()
        entry.baseline.fit(data, entry.settings)
        fit_seconds = entry.seconds + time.perf_counter() - started
        started = time.perf_counter()
        top = entry.baseline.recommend(people, k, seen_matrix)
        described = ", ".join(f"{key}={value}" for key, value in entry.settings.items())
        results.append(
            _score(
                entry.name,
                people,
                top,
                relevant,
                k,
                train.n_items,
                fit_seconds,
                time.perf_counter() - started,
                described,
            )
        )
        say(f"{entry.name} ({described or 'nothing to tune'}) done in {fit_seconds:.1f}s")
        if isinstance(entry.baseline, PopularityBaseline) and type(entry.baseline) is PopularityBaseline:
            popularity = entry.baseline

    cold_rows: list[ModelResult] = []
    if split.cold_test:
        cold_people = np.asarray(sorted(split.cold_test), dtype=np.int64)
        cold_relevant = [split.cold_test[p] for p in cold_people.tolist()]
        empty = History(
            items=np.zeros(0, dtype=np.int32),
            times=np.zeros(0),
            weights=np.zeros(0, dtype=np.float32),
            quantities=np.zeros(0, dtype=np.float32),
            segment=-1,
            now=split.as_of,
            half_life_days=config.half_life_days,
        )
        started = time.perf_counter()
        cold_list = engine.rank(empty, k)[0]
        cold_rows.append(
            _score(
                "engine, no history",
                cold_people,
                [cold_list] * len(cold_people),
                cold_relevant,
                k,
                train.n_items,
                engine_fit,
                time.perf_counter() - started,
            )
        )
        if popularity is not None:
            popular = popularity.recommend(np.zeros(1, dtype=np.int64), k)[0]
            cold_rows.append(
                _score(
                    "popularity, no history",
                    cold_people,
                    [popular] * len(cold_people),
                    cold_relevant,
                    k,
                    train.n_items,
                    0,
                    0,
                )
            )

    comparison = None
    others = [r for r in results[1:] if r.people]
    if others and results[0].people:
        best = max(others, key=lambda r: r.ndcg)
        low, high = paired_bootstrap_interval(
            results[0].per_person_ndcg - best.per_person_ndcg, samples=bootstrap_samples, seed=seed
        )
        comparison = Comparison(
            best_baseline=best.model,
            engine_ndcg=results[0].ndcg,
            best_ndcg=best.ndcg,
            ratio=results[0].ndcg / best.ndcg if best.ndcg > 0 else float("inf"),
            ci_low=low,
            ci_high=high,
            samples=bootstrap_samples,
        )
    return EvaluationReport(
        k=k,
        split=split.description,
        test_people=int(people.shape[0]),
        catalogue_items=train.n_items,
        exclude_seen=excluded,
        exclusion_reason=reason,
        repeat_share=share,
        results=results,
        cold_start=cold_rows,
        cold_people=len(split.cold_test),
        unseen_test_items=split.unseen_test_items,
        people_without_new_items=emptied,
        validation=f"{validation.description}: {len(validation.test)} people, {validation.train.n_items} items",
        skipped=skipped,
        tuning=tuning,
        comparison=comparison,
        engine_timings=engine.timings,
        engine_training=engine.training_summary,
    )
