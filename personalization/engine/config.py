"""Every knob of the engine in one dataclass, stored with each fitted engine.

Defaults are the values chosen on the validation window (history before 2011-10-09, validated on
2011-10-09..2011-11-08 of Online Retail); docs/evaluation.md says how.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_QUOTAS: dict[str, int] = {
    "history": 200,
    "als": 200,
    "ease": 200,
    "item_knn": 100,
    "covisitation": 150,
    "content": 50,
    "popular": 60,
    "segment": 60,
    "trending": 60,
    "segment_trending": 40,
    "new": 20,
    "sequence": 150,
}


@dataclass
class EngineConfig:
    # People's histories: how fast old interest fades in history features and profiles.
    half_life_days: float = 90.0
    # Implicit ALS (always fitted: its item factors are the embeddings FAISS searches).
    als_factors: int = 128
    # Without real timestamps (Last.fm 2K's plays): chosen on that set's validation carve, where
    # 64 factors served the carve's people 1.4 % better than 128 (docs/evaluation.md). None: as above.
    als_factors_without_clock: int | None = 64
    # How many ALS fits (other seeds) are joined side by side, each of ``als_factors``; their
    # scores add up (collaborative.ALSModel.blocks). Without a clock: ``als_fits_without_clock``.
    als_fits: int = 1
    als_fits_without_clock: int | None = 2
    als_regularization: float = 20.0
    als_alpha: float = 1.0
    als_iterations: int = 15
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    # EASE over the items with at least ``ease_min_support`` people, at most ``ease_max_items`` of
    # them (the most supported); the regularization is chosen from ``ease_lambdas`` on the
    # validation lists of each fit (``ease_lambda`` when there are none).
    ease_lambda: float = 200.0
    ease_lambdas: tuple[float, ...] = (25.0, 75.0, 200.0, 500.0, 1500.0)
    ease_min_support: int = 3
    ease_max_items: int = 10_000
    # What people take next (real timestamps only): followers within this many positions.
    sequence_window: int = 10
    sequence_neighbours: int = 200
    sequence_seed_items: int = 10
    # Neighbourhoods.
    knn_neighbours: int = 200
    covisitation_neighbours: int = 200
    covisitation_window_days: float = 7.0
    covisitation_seed_items: int = 20
    # Content neighbours kept per item (the content source proposes from them), and how many items
    # of one term's posting list are looked at when finding them (the rest share only a common word).
    content_neighbours: int = 200
    content_max_postings: int = 2000
    # Retrieval: exact inner-product search up to this many items, HNSW above (built this wide).
    exact_search_max_items: int = 50_000
    hnsw_neighbours: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 256
    # Candidates: how many each source may propose before the union is cut to n_candidates, the
    # list the ranker orders when serving. 200 was chosen on the validation carves of the three
    # shared data sets: no lower than 500 on any (Online Retail +0.0003, MovieLens 100K +0.0006,
    # Last.fm 2K equal), 100 was lower on Online Retail, and 200 costs a quarter less to rank
    # (docs/evaluation.md, "How many candidates the ranker orders").
    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    n_candidates: int = 200
    # Where the ranker learns on time windows (lists of ``train_candidates``), serving ranks at most
    # this many: on Online Retail's validation carve 150 ranked as well as 200 (0.3260 against
    # 0.3257, interval −0.0008 to +0.0015) for a sixth less work a request; with
    # held-out lists (200 deep) MovieLens 100K lost 0.0025 at 150, so those keep ``n_candidates``
    # (docs/evaluation.md, "How many candidates the ranker orders"). None: ``n_candidates`` always.
    n_candidates_time_windows: int | None = 150
    # Candidates in each training list: where the lists hold out a share of each person (rare
    # re-consumption, or no clock) ``train_candidates_held_out``, as deep as serving ranks; time
    # windows keep ``train_candidates``. Chosen on the validation carves (docs/evaluation.md,
    # "How many candidates the ranker learns on"): 200 for held-out lists gained +0.0072 on
    # MovieLens 100K and changed nothing on Last.fm 2K; on Online Retail's windows it lost 0.0023.
    train_candidates: int = 100
    train_candidates_held_out: int | None = 200
    # Training examples: label windows of ``horizon_days`` ending at the fit time, going back.
    horizon_days: float = 30.0
    training_windows: int = 3
    # Days between the starts of two windows (None: ``horizon_days``, windows side by side; fewer
    # days overlap them, so more lists come from the same history).
    training_window_step_days: float | None = None
    # Where re-consumption is rare or there is no clock, training lists hold out a share of each
    # person's history (their last events by time, or a random share without time).
    holdout_share: float = 0.2
    # Learning from exposure (engine/exposure.py): with impressions in the data, the training lists
    # hold what was shown and not taken as negatives and what was taken (weighted by inverse
    # position propensity) as positives, and exposure counts become features. The windows are the
    # attribution windows of the surfaces (personalization/feedback.py).
    exposure_learning: bool = True
    exposure_click_window_hours: float = 24.0
    exposure_purchase_window_days: float = 7.0
    # Share of the training lists kept aside to check the ranker against the sources' own order.
    ranker_validation_share: float = 0.33
    # LightGBM LambdaRank.
    ranker_trees: int = 300
    # Training stops adding trees once NDCG@20 on a sixth of the training people has not risen for
    # this many trees (0: always ``ranker_trees``).
    ranker_early_stopping_rounds: int = 0
    ranker_learning_rate: float = 0.05
    ranker_leaves: int = 15
    ranker_min_child_samples: int = 200
    ranker_feature_fraction: float = 0.8
    ranker_bagging_fraction: float = 0.8
    ranker_l2: float = 1.0
    ranker_max_bin: int = 63
    # Threads: ALS, the EASE inversion, the HNSW graph, the content neighbours and the training
    # lists' batched ALS search may use the machine's cores; serving stays on one. The
    # ranker trains on one: two threads gained 15% alone but lost 10x beside a busy neighbour.
    train_threads: int = 2
    ranker_threads: int = 1
    seed: int = 0

    def training_candidates(self, held_out: bool) -> int:
        """How many candidates a training list holds (``held_out``: a share of each person held out)."""
        if held_out and self.train_candidates_held_out:
            return self.train_candidates_held_out
        return self.train_candidates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EngineConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if isinstance(values.get("ease_lambdas"), list):
            values["ease_lambdas"] = tuple(values["ease_lambdas"])
        return cls(**values)
