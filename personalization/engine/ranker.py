"""The LightGBM LambdaRank ranker over the union of candidates.

When there is too little to learn from (a tiny catalogue, a fresh install), or when the trained
ranker orders the lists kept aside for validation worse than one of the sources' own orders does
(``choose_ranker``), the ranker falls back to that order, so that a fit never ships a ranker that
validated worse than its best candidate ordering.

Serving compiles the trees to native code with lleaves (LLVM) once per model and machine: the same
scores as LightGBM's own predictor (to 1e-12) in about a sixth of the time for one request's 500
candidates. The compiled object is kept beside the model, named after the machine's CPU, so the
next process loads it instead of compiling again; when compiling is not possible LightGBM predicts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from personalization.engine.config import EngineConfig
from personalization.engine.examples import TrainingExamples
from personalization.engine.features import CATEGORICAL_FEATURES, FEATURE_NAMES
from personalization.engine.metrics import ndcg_of_hits, paired_bootstrap_interval

logger = logging.getLogger(__name__)

MIN_TRAINING_GROUPS = 10
# The sources' own orders a fit compares its ranker with: a feature, and whether higher is better.
FALLBACK_ORDERS: dict[str, bool] = {
    "candidate_best_rank": False,
    "ease_score": True,
    "sequence_score": True,
    "als_score": True,
    "item_knn_score": True,
}
DEFAULT_FALLBACK = "candidate_best_rank"


def ranker_parameters(config: EngineConfig) -> dict[str, object]:
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [20],
        "lambdarank_truncation_level": 30,
        "learning_rate": config.ranker_learning_rate,
        "num_leaves": config.ranker_leaves,
        "min_child_samples": config.ranker_min_child_samples,
        "feature_fraction": config.ranker_feature_fraction,
        "bagging_fraction": config.ranker_bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": config.ranker_l2,
        "max_bin": config.ranker_max_bin,
        "num_threads": config.ranker_threads,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def training_data(examples: TrainingExamples) -> lgb.Dataset:
    """The examples as LightGBM's ranking dataset: one group per person and window."""
    return lgb.Dataset(
        examples.features,
        label=examples.labels,
        group=examples.group_sizes,
        weight=examples.weights,
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL_FEATURES),
        free_raw_data=True,
    )


@dataclass
class Ranker:
    booster: lgb.Booster | None
    model_file: Path | None = None
    compiled: Any = field(default=None, repr=False)  # a compiled lleaves model, once ``compile`` ran
    fallback: str = DEFAULT_FALLBACK  # the order used when there is no booster

    @classmethod
    def fit(
        cls,
        examples: TrainingExamples,
        config: EngineConfig,
        *,
        trees: int | None = None,
        stop_on: TrainingExamples | None = None,
    ) -> Ranker:
        """Train on ``examples``; with ``stop_on``, stop adding trees once its NDCG@20 stops rising."""
        if examples.n_groups < MIN_TRAINING_GROUPS:
            return cls(booster=None)
        train = training_data(examples)
        if stop_on is None or stop_on.n_groups == 0 or config.ranker_early_stopping_rounds <= 0:
            booster = lgb.train(ranker_parameters(config), train, num_boost_round=trees or config.ranker_trees)
        else:
            booster = lgb.train(
                ranker_parameters(config),
                train,
                num_boost_round=trees or config.ranker_trees,
                valid_sets=[
                    lgb.Dataset(
                        stop_on.features,
                        label=stop_on.labels,
                        group=stop_on.group_sizes,
                        weight=stop_on.weights,
                        reference=train,
                    )
                ],
                callbacks=[lgb.early_stopping(config.ranker_early_stopping_rounds, verbose=False)],
            )
        return cls(booster=booster)

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.booster is None:
            return fallback_scores(features, self.fallback)
        if self.compiled is not None:
            return np.asarray(self.compiled.predict(features.astype(np.float64), n_jobs=1), dtype=np.float32)
        # One thread: serving runs in web processes that share the box.
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float32)

    def compile(self) -> bool:
        """Compile the trees to native code for this machine (see the module's notes); False when
        that is not possible and LightGBM keeps predicting."""
        if self.booster is None or self.model_file is None or self.compiled is not None:
            return self.compiled is not None
        try:
            import lleaves
            from llvmlite import binding

            binding.initialize_native_target()
            binding.initialize_native_asmprinter()
            machine = f"{binding.get_host_cpu_name()}-{binding.get_host_cpu_features().flatten()}"
            tag = hashlib.sha1(machine.encode()).hexdigest()[:12]
            compiled = lleaves.Model(model_file=str(self.model_file))
            cached = self.model_file.with_name(f"{self.model_file.stem}.{tag}.o")
            if cached.exists():
                compiled.compile(cache=str(cached))
            elif os.access(cached.parent, os.W_OK):
                # Compile to a private file and move it into place, so two processes compiling at
                # once never read each other's half-written object.
                handle, scratch = tempfile.mkstemp(suffix=".o", dir=cached.parent)
                os.close(handle)
                os.unlink(scratch)
                compiled.compile(cache=scratch)
                os.replace(scratch, cached)
            else:  # a read-only model folder: compile in memory, in every process
                compiled.compile()
        except Exception as exc:  # no LLVM, a read-only folder, an unexpected model: LightGBM predicts
            logger.warning("Ranker not compiled (%s); LightGBM predicts.", exc)
            return False
        self.compiled = compiled
        return True

    def save(self, path: Path) -> None:
        if self.booster is not None:
            self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path, fallback: str = DEFAULT_FALLBACK) -> Ranker:
        if not path.exists():
            return cls(booster=None, fallback=fallback)
        return cls(booster=lgb.Booster(model_file=str(path)), model_file=path)

    def importance(self) -> dict[str, float]:
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(zip(FEATURE_NAMES, (float(g) for g in gains), strict=True))


def fallback_scores(features: np.ndarray, order: str) -> np.ndarray:
    """Scores that sort candidates in one source's own order; missing values go last."""
    column = features[:, FEATURE_NAMES.index(order)].astype(np.float32)
    scores = column if FALLBACK_ORDERS[order] else -column
    return np.where(np.isnan(scores), -np.inf, scores).astype(np.float32)


def list_ndcgs(scores: np.ndarray, labels: np.ndarray, group_sizes: np.ndarray, k: int = 20) -> np.ndarray:
    """NDCG@k (binary gain) of each list ordered by ``scores``, ties in list order; a list's ideal
    counts only the positives among its own candidates."""
    figures = np.zeros(group_sizes.shape[0], dtype=np.float64)
    start = 0
    for n, size in enumerate(group_sizes.tolist()):
        end = start + size
        relevant = labels[start:end]
        top = np.argsort(-scores[start:end], kind="stable")[:k]
        figures[n] = ndcg_of_hits(relevant[top], int(relevant.sum()), k)
        start = end
    return figures


def gain_interval(ranker_lists: np.ndarray, order_lists: np.ndarray, seed: int) -> tuple[float, float]:
    """Paired bootstrap 90 % interval of the ranker's NDCG gain over an order on the same lists.
    The ranker ships only when the lower end is above zero: a gain inside the noise of a few hundred
    lists is as likely a loss on the people it will serve."""
    return paired_bootstrap_interval(ranker_lists - order_lists, samples=1000, seed=seed, level=0.9)


def choose_ranker(examples: TrainingExamples, config: EngineConfig) -> tuple[Ranker, dict[str, object]]:
    """Train the ranker on most people's lists and compare it, on the others', with each source's
    own order; ship the better. When the ranker wins it is trained again on every list."""
    n_groups = examples.n_groups
    people = np.unique(examples.group_people)
    rng = np.random.default_rng(config.seed)
    shuffled = rng.permutation(people)
    n_aside = round(people.shape[0] * config.ranker_validation_share)
    # Three parts of the people: the trial ranker learns on one, stops adding trees on another
    # (a sixth of the rest), and is compared with the sources' orders on lists it never touched.
    aside = set(shuffled[:n_aside].tolist())
    stopping = set(shuffled[n_aside : n_aside + (people.shape[0] - n_aside) // 6].tolist())
    group_people = examples.group_people.tolist()
    is_aside = np.asarray([p in aside for p in group_people], dtype=bool)
    is_stopping = np.asarray([p in stopping for p in group_people], dtype=bool)
    train, valid = examples.take_groups(~is_aside & ~is_stopping), examples.take_groups(is_aside)
    if train.n_groups < MIN_TRAINING_GROUPS or valid.n_groups < MIN_TRAINING_GROUPS:
        ranker = Ranker.fit(examples, config)
        chosen = "lightgbm" if ranker.booster else DEFAULT_FALLBACK
        return ranker, {"lists": n_groups, "validation_lists": 0, "chosen": chosen}
    per_order = {
        order: list_ndcgs(fallback_scores(valid.features, order), valid.labels, valid.group_sizes)
        for order in FALLBACK_ORDERS
        if not np.isnan(valid.features[:, FEATURE_NAMES.index(order)]).all()
    }
    orders = {order: round(float(figures.mean()), 4) for order, figures in per_order.items()}
    trial = Ranker.fit(train, config, stop_on=examples.take_groups(is_stopping))
    best = max(orders, key=lambda name: orders[name])
    trees = (trial.booster.best_iteration or config.ranker_trees) if trial.booster is not None else 0
    summary: dict[str, object] = {"lists": n_groups, "validation_lists": valid.n_groups, "trees": trees}
    if trial.booster is None:
        summary["validation_ndcg"] = orders
        summary["why"] = "no ranker could be trained on these lists"
    else:
        ranker_lists = list_ndcgs(trial.score(valid.features), valid.labels, valid.group_sizes)
        summary["validation_ndcg"] = {"lightgbm": round(float(ranker_lists.mean()), 4), **orders}
        low, high = gain_interval(ranker_lists, per_order[best], config.seed)
        summary["lightgbm_minus_best"] = [round(low, 4), round(high, 4)]
        if low > 0:
            summary["chosen"] = "lightgbm"
            return Ranker.fit(examples, config, trees=max(trees, 1)), summary
        summary["why"] = (
            f"the ranker validated at {ranker_lists.mean():.4f}, the {best} order at {orders[best]:.4f}"
            f" (difference {low:+.4f} to {high:+.4f}, 90 % interval): not better beyond noise"
        )
    summary["chosen"] = best
    return Ranker(booster=None, fallback=best), summary
