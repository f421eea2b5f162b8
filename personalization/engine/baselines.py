"""The baselines the engine must beat, scored over the whole catalogue in batches of people.

Each reuses the engine's own model code (ALS with fold-in, EASE, cosine item-kNN), so a gap
between a baseline and the engine is the ranker's and the other sources' doing, not a different
implementation's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from personalization.engine.collaborative import ALSModel, EASEModel
from personalization.engine.config import EngineConfig
from personalization.engine.dataset import Dataset
from personalization.engine.similarity import cosine_item_similarity

BATCH = 512


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the k highest scores, best first."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


@dataclass
class Baseline:
    name: str
    matrix: sp.csr_matrix = field(init=False)

    def fit(self, train: Dataset, config: EngineConfig) -> None:
        self.matrix = train.events.matrix(train.n_users, train.n_items)
        self._fit(train, config)

    def _fit(self, train: Dataset, config: EngineConfig) -> None:
        raise NotImplementedError

    def scores(self, people: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, people: np.ndarray, k: int) -> np.ndarray:
        lists = [top_k(self.scores(people[s : s + BATCH]), k) for s in range(0, people.shape[0], BATCH)]
        return np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)


class PopularityBaseline(Baseline):
    """Everyone gets the items most people bought."""

    def _fit(self, train: Dataset, config: EngineConfig) -> None:
        binary = self.matrix.copy()
        binary.data[:] = 1.0
        self.popularity = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity, (people.shape[0], 1))


class HistoryPopularityBaseline(PopularityBaseline):
    """The person's own items, most often bought first, then the popular items."""

    def scores(self, people: np.ndarray) -> np.ndarray:
        own = self.matrix[people].toarray()
        return own * (self.popularity.max() + 1.0) + self.popularity


class ItemKNNBaseline(Baseline):
    """Sum of cosine similarities to the person's items."""

    def _fit(self, train: Dataset, config: EngineConfig) -> None:
        self.similarity = cosine_item_similarity(self.matrix, config.knn_neighbours)
        self.binary = self.matrix.copy()
        self.binary.data[:] = 1.0

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.asarray((self.binary[people] @ self.similarity).toarray(), dtype=np.float32)


class EASEBaseline(Baseline):
    def _fit(self, train: Dataset, config: EngineConfig) -> None:
        self.binary = self.matrix.copy()
        self.binary.data[:] = 1.0
        model = EASEModel.fit(self.binary, config.ease_lambda)
        assert model is not None  # every item of the training catalogue has a buyer
        self.model = model

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.asarray(self.binary[people] @ self.model.weights, dtype=np.float32)


class ALSBaseline(Baseline):
    def _fit(self, train: Dataset, config: EngineConfig) -> None:
        self.model = ALSModel.fit(
            self.matrix,
            factors=config.als_factors,
            regularization=config.als_regularization,
            alpha=config.als_alpha,
            iterations=config.als_iterations,
            threads=config.train_threads,
            seed=config.seed,
            bm25_k1=config.bm25_k1,
            bm25_b=config.bm25_b,
        )

    def scores(self, people: np.ndarray) -> np.ndarray:
        vectors = (
            np.stack([self.model.person_vector(row.indices, row.data) for row in (self.matrix[int(p)] for p in people)])
            if people.shape[0]
            else np.zeros((0, self.model.item_factors.shape[1]), dtype=np.float32)
        )
        return vectors @ self.model.item_factors.T


def all_baselines() -> list[Baseline]:
    return [
        PopularityBaseline("popularity"),
        HistoryPopularityBaseline("history+popularity"),
        ItemKNNBaseline("item-knn"),
        EASEBaseline("ease"),
        ALSBaseline("als"),
    ]
