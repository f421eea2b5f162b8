"""The LightGBM LambdaRank ranker over the union of candidates.

When there is too little to learn from (a tiny catalogue, a fresh install), the ranker falls back
to the candidates' best source rank, so that a small dataset still gets sensible lists instead of
an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from personalization.engine.config import EngineConfig
from personalization.engine.examples import TrainingExamples
from personalization.engine.features import CATEGORICAL_FEATURES, FEATURE_NAMES

MIN_TRAINING_GROUPS = 10
FALLBACK_FEATURE = FEATURE_NAMES.index("candidate_best_rank")


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


@dataclass
class Ranker:
    booster: lgb.Booster | None

    @classmethod
    def fit(cls, examples: TrainingExamples, config: EngineConfig) -> Ranker:
        if examples.n_groups < MIN_TRAINING_GROUPS:
            return cls(booster=None)
        data = lgb.Dataset(
            examples.features,
            label=examples.labels,
            group=examples.group_sizes,
            feature_name=list(FEATURE_NAMES),
            categorical_feature=list(CATEGORICAL_FEATURES),
            free_raw_data=True,
        )
        booster = lgb.train(ranker_parameters(config), data, num_boost_round=config.ranker_trees)
        return cls(booster=booster)

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.booster is None:
            return -features[:, FALLBACK_FEATURE]
        # One thread: serving runs in web processes that share the box.
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float32)

    def save(self, path: Path) -> None:
        if self.booster is not None:
            self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path) -> Ranker:
        return cls(booster=lgb.Booster(model_file=str(path)) if path.exists() else None)

    def importance(self) -> dict[str, float]:
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(zip(FEATURE_NAMES, (float(g) for g in gains), strict=True))
