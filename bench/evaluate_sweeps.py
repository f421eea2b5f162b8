"""The hyperparameter sweeps behind docs/evaluation.md, on the validation window only.

History before 2011-10-09, validation on 2011-10-09..2011-11-08; events from 2011-11-09 on are
dropped before anything is fitted, so the test period is never seen.

    PYTHONPATH=. .venv/bin/python bench/evaluate_sweeps.py /tmp/or collaborative
    PYTHONPATH=. .venv/bin/python bench/evaluate_sweeps.py /tmp/or ranker

``collaborative`` scores the EASE and ALS baselines for several regularizations. ``ranker``
builds the point-in-time training examples and the validation candidates once (with the
engine's own code: ``build_examples``, ``CandidateSources``, ``candidate_features``) and then
fits LightGBM with each setting, so that every row differs from the default in one thing only.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np

from personalization.engine.baselines import ALSBaseline, Baseline, EASEBaseline
from personalization.engine.candidates import CandidateSources
from personalization.engine.config import EngineConfig
from personalization.engine.content import ContentIndex
from personalization.engine.dataset import load_interchange
from personalization.engine.evaluation import EvaluationSplit, split_by_cutoff
from personalization.engine.examples import TrainingExamples, build_examples, people_histories, temporal_windows
from personalization.engine.features import FEATURE_NAMES, candidate_features
from personalization.engine.metrics import ndcg_at_k, recall_at_k
from personalization.engine.ranker import ranker_parameters, training_data
from personalization.engine.threads import blas_threads
from personalization.engine.tuning import interactions

VALIDATION_CUTOFF = datetime(2011, 10, 9, tzinfo=UTC).timestamp()
TEST_CUTOFF = datetime(2011, 11, 9, tzinfo=UTC).timestamp()
K = 20


def baseline_ndcg(split: EvaluationSplit, baseline: Baseline, settings: dict[str, Any]) -> float:
    people = np.asarray(sorted(split.test))
    baseline.fit(interactions(split), settings)
    lists = baseline.recommend(people, K)
    return float(np.mean([ndcg_at_k(top, split.test[int(p)], K) for top, p in zip(lists, people, strict=True)]))


def collaborative(split: EvaluationSplit) -> None:
    for lam in (50.0, 100.0, 200.0, 400.0, 800.0):
        ndcg = baseline_ndcg(split, EASEBaseline(), {"lambda": lam})
        print(f"EASE lambda={lam:g}: NDCG@20 {ndcg:.4f}")
    settings = ((64, 20.0), (128, 0.05), (128, 0.5), (128, 5.0), (128, 10.0), (128, 20.0), (128, 50.0), (256, 20.0))
    for factors, reg in settings:
        ndcg = baseline_ndcg(split, ALSBaseline(), {"factors": factors, "regularization": reg})
        print(f"ALS factors={factors} regularization={reg:g}: NDCG@20 {ndcg:.4f}")


def _cut(examples: TrainingExamples, per_list: int) -> TrainingExamples:
    """Each training list's ``per_list`` best candidates by source rank (as a smaller
    ``train_candidates`` would have produced)."""
    column = FEATURE_NAMES.index("candidate_best_rank")
    keep, sizes, start = [], [], 0
    for size in examples.group_sizes.tolist():
        rows = np.arange(start, start + size)
        chosen = np.sort(rows[np.argsort(examples.features[rows, column], kind="stable")[:per_list]])
        keep.append(chosen)
        sizes.append(chosen.shape[0])
        start += size
    rows = np.concatenate(keep)
    return replace(
        examples, features=examples.features[rows], labels=examples.labels[rows], group_sizes=np.asarray(sizes)
    )


def ranker(split: EvaluationSplit) -> None:
    config = EngineConfig(train_candidates=300, training_windows=4)
    train = split.train
    content = ContentIndex.fit(train.catalogue.texts)
    windows = temporal_windows(train, split.as_of, config.horizon_days, config.training_windows)
    parts = [build_examples(train, w, config, content=content) for w in windows]
    sources = CandidateSources.fit(
        train.events,
        n_users=train.n_users,
        n_items=train.n_items,
        texts=train.catalogue.texts,
        user_segment=train.user_segment,
        n_segments=len(train.segment_names),
        as_of=split.as_of,
        config=config,
        content=content,
    )
    people = np.asarray(sorted(split.test))
    histories = people_histories(train.events, people, train.user_segment, split.as_of, config.half_life_days)
    lists = []
    for person in people.tolist():
        history = histories[person]
        signals = sources.signals(history, config)
        candidates = sources.generate(history, signals, config, config.n_candidates)
        lists.append(
            (candidates.items, candidate_features(sources, history, signals, candidates, train.catalogue.price))
        )

    def run(label: str, windows_used: int = 3, per_list: int = 100, **overrides: Any) -> None:
        chosen = replace(EngineConfig(), **{k: v for k, v in overrides.items() if hasattr(config, k)})
        params = ranker_parameters(chosen)
        params.update({k: v for k, v in overrides.items() if not hasattr(config, k)})
        examples = _cut(TrainingExamples.concatenate(parts[:windows_used], len(FEATURE_NAMES)), per_list)
        started = time.perf_counter()
        booster = lgb.train(params, training_data(examples), num_boost_round=chosen.ranker_trees)
        seconds = time.perf_counter() - started
        ndcg, recall = [], []
        for person, (items, features) in zip(people.tolist(), lists, strict=True):
            scores = np.asarray(booster.predict(features, num_threads=1))
            top = items[np.argsort(-scores, kind="stable")[:K]]
            ndcg.append(ndcg_at_k(top, split.test[person], K))
            recall.append(recall_at_k(top, split.test[person], K))
        print(f"{label:48} NDCG@20 {np.mean(ndcg):.4f}  Recall@20 {np.mean(recall):.4f}  ({seconds:.0f}s)", flush=True)

    run("default (15 leaves, min 200 rows, 3 windows, 100/list)")
    run("31 leaves, min 50 rows", ranker_leaves=31, ranker_min_child_samples=50)
    run("63 leaves, min 100 rows", ranker_leaves=63, ranker_min_child_samples=100)
    run("7 leaves, min 500 rows, 500 trees", ranker_leaves=7, ranker_min_child_samples=500, ranker_trees=500)
    run("learning rate 0.08, 200 trees", ranker_learning_rate=0.08, ranker_trees=200)
    run("objective rank_xendcg", objective="rank_xendcg")
    run("lambdarank truncation 20", lambdarank_truncation_level=20)
    run("2 training windows", windows_used=2)
    run("4 training windows", windows_used=4)
    run("150 candidates per training list", per_list=150)
    run("300 candidates per training list", per_list=300)


def main() -> None:
    folder, sweep = sys.argv[1], sys.argv[2]
    dataset = load_interchange(folder)
    split = split_by_cutoff(dataset, VALIDATION_CUTOFF, until=TEST_CUTOFF)
    print(f"validation: {split.description} until 2011-11-09, {len(split.test)} people, {split.train.n_items} items")
    with blas_threads(1):
        {"collaborative": collaborative, "ranker": ranker}[sweep](split)


if __name__ == "__main__":
    main()
