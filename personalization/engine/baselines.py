"""The baselines the engine must beat, each with the small grid of settings it is tuned over.

A baseline learns from ``Interactions`` (a history and the time each person is served at, never a
test split) with one setting of its grid, then scores people over the whole catalogue.
``personalization.engine.tuning`` chooses the setting on a validation split carved out of the
history. Written here in plain numpy/scipy (and ``implicit`` for ALS), independent of the engine's
own models, so that a baseline is a fixed reference while the engine changes. Free of Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personalization.engine.collaborative import ease_weights
from personalization.engine.dataset import SECONDS_PER_DAY, Dataset

BATCH = 512
EASE_MAX_ITEMS = 30_000
Settings = dict[str, Any]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the k highest scores, best first (ties by item index)."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((top, -np.take_along_axis(scores, top, axis=1)), axis=1)
    return np.take_along_axis(top, order, axis=1)


@dataclass
class Interactions:
    """What a baseline may learn from: the history's events, and when each person is served."""

    counts: sp.csr_matrix  # person × item number of events, float32
    binary: sp.csr_matrix  # 1 where the person has the item
    time: np.ndarray  # float64 per event, sorted
    item: np.ndarray  # int32 per event, in the same order
    has_timestamps: bool
    now: np.ndarray  # float64 per person

    @classmethod
    def from_dataset(cls, dataset: Dataset, now: np.ndarray | float) -> Interactions:
        events = dataset.events
        ones = np.ones(len(events), dtype=np.float32)
        counts = events.matrix(dataset.n_users, dataset.n_items, ones)
        counts.sum_duplicates()
        binary = counts.copy()
        binary.data[:] = 1.0
        person_now = np.broadcast_to(np.asarray(now, dtype=np.float64), (dataset.n_users,)).copy()
        return cls(counts, binary, events.time, events.item, dataset.has_timestamps, person_now)

    @property
    def n_items(self) -> int:
        return int(self.counts.shape[1])


class Baseline:
    name: ClassVar[str]
    default_grid: ClassVar[list[Settings]] = [{}]

    def __init__(self, grid: list[Settings] | None = None) -> None:
        self.grid = list(grid if grid is not None else self.default_grid)

    def applicable(self, data: Interactions) -> str | None:
        """None when the baseline can run on ``data``, else why not."""
        return None

    def settings_grid(self, data: Interactions) -> list[Settings]:
        return list(self.grid)

    def fit(self, data: Interactions, settings: Settings) -> None:
        self.data, self.settings = data, settings
        self._fit(data, settings)

    def _fit(self, data: Interactions, settings: Settings) -> None:
        pass

    def scores(self, people: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, people: np.ndarray, k: int, excluded: sp.csr_matrix | None = None) -> list[np.ndarray]:
        """Top ``k`` per person; items in the person's row of ``excluded`` are never listed."""
        lists: list[np.ndarray] = []
        for start in range(0, people.shape[0], BATCH):
            batch = people[start : start + BATCH]
            scores = np.array(self.scores(batch), dtype=np.float32)
            if excluded is not None:
                rows = excluded[batch].tocoo()
                scores[rows.row, rows.col] = -np.inf
            top = top_k(scores, k)
            kept = np.take_along_axis(scores, top, axis=1) > -np.inf
            lists.extend(row[keep] for row, keep in zip(top, kept, strict=True))
        return lists


class PopularityBaseline(Baseline):
    """Everyone gets the items most people have."""

    name = "popularity"

    def _fit(self, data: Interactions, settings: Settings) -> None:
        self.popularity = np.asarray(data.binary.sum(axis=0)).ravel().astype(np.float32)

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity, (people.shape[0], 1))


class RecentPopularityBaseline(PopularityBaseline):
    """The items with the most events in the ``window_days`` before each person's own ``now``
    (all-time popularity breaks ties). Only for data with real time."""

    name = "recent popularity"
    default_grid: ClassVar[list[Settings]] = [{"window_days": d} for d in (1, 3, 7, 14, 30, 90, 365)]

    def applicable(self, data: Interactions) -> str | None:
        return None if data.has_timestamps else "the data has no timestamps"

    def scores(self, people: np.ndarray) -> np.ndarray:
        window = float(self.settings["window_days"]) * SECONDS_PER_DAY
        tie_break = self.popularity / (float(self.popularity.max()) + 1.0) if self.popularity.size else self.popularity
        out = np.empty((people.shape[0], self.data.n_items), dtype=np.float32)
        cache: dict[float, np.ndarray] = {}
        for row, person in enumerate(people.tolist()):
            now = float(self.data.now[person])
            if now not in cache:
                start, end = np.searchsorted(self.data.time, [now - window, now], side="left")
                recent = np.bincount(self.data.item[start:end], minlength=self.data.n_items).astype(np.float32)
                cache[now] = recent + tie_break
            out[row] = cache[now]
        return out


class HistoryPopularityBaseline(PopularityBaseline):
    """The person's own items, most often had first, then the popular items."""

    name = "history+popularity"

    def scores(self, people: np.ndarray) -> np.ndarray:
        own = self.data.counts[people].toarray()
        return own * (float(self.popularity.max()) + 1.0) + self.popularity


class ItemKNNBaseline(Baseline):
    """Sum of cosine similarities between the person's items and each item, keeping each item's
    ``neighbours`` most similar items."""

    name = "item-knn"
    default_grid: ClassVar[list[Settings]] = [{"neighbours": n} for n in (10, 25, 50, 100, 200, 400, 800)]

    def __init__(self, grid: list[Settings] | None = None) -> None:
        super().__init__(grid)
        self._cosine_of: Interactions | None = None
        self._cosine = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions, settings: Settings) -> None:
        if self._cosine_of is not data:  # once per history, whatever the grid
            norms = np.sqrt(np.asarray(data.binary.sum(axis=0)).ravel())
            norms[norms == 0] = 1.0
            unit = (data.binary @ sp.diags((1.0 / norms).astype(np.float32))).tocsr()
            cosine = (unit.T @ unit).tocsr().astype(np.float32)
            cosine.setdiag(0.0)
            cosine.eliminate_zeros()
            self._cosine, self._cosine_of = cosine, data
        # Row i: item i's most similar items, which it lends its score to.
        self.similarity = _keep_strongest(self._cosine, int(settings["neighbours"]))

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.asarray((self.data.binary[people] @ self.similarity).toarray(), dtype=np.float32)


def _keep_strongest(matrix: sp.csr_matrix, per_row: int) -> sp.csr_matrix:
    """Each row's ``per_row`` largest entries (ties by column)."""
    rows, cols, values = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        data, index = matrix.data[start:end], matrix.indices[start:end]
        if end - start > per_row:
            keep = np.lexsort((index, -data))[:per_row]
            data, index = data[keep], index[keep]
        rows.append(np.full(index.shape[0], r, dtype=np.int64))
        cols.append(index)
        values.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape, dtype=np.float32
    )


class EASEBaseline(Baseline):
    """EASE (Steck, 2019): B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, in float32. XᵀX is computed
    once per history and reused across the λ grid; catalogues above 30,000 items are skipped."""

    name = "ease"
    default_grid: ClassVar[list[Settings]] = [{"lambda": v} for v in (10, 50, 200, 500, 1000)]
    large_grid: ClassVar[list[Settings]] = [{"lambda": v} for v in (50, 200, 1000)]
    large_items: ClassVar[int] = 5_000

    def __init__(self, grid: list[Settings] | None = None) -> None:
        super().__init__(grid)
        self._gram_of: Interactions | None = None
        self._gram = np.zeros((0, 0), dtype=np.float32)

    def applicable(self, data: Interactions) -> str | None:
        if data.n_items > EASE_MAX_ITEMS:
            return f"{data.n_items} items is above {EASE_MAX_ITEMS}"
        return None

    def settings_grid(self, data: Interactions) -> list[Settings]:
        # Each λ is one dense inversion (cubic in the items: about 2 minutes at 15,000 items here).
        if self.grid != self.default_grid or data.n_items <= self.large_items:
            return list(self.grid)
        return list(self.large_grid)

    def _fit(self, data: Interactions, settings: Settings) -> None:
        if self._gram_of is not data:
            self._gram = np.asarray((data.binary.T @ data.binary).toarray(), dtype=np.float32)
            self._gram_of = data
        self.weights = ease_weights(self._gram, float(settings["lambda"]))

    def scores(self, people: np.ndarray) -> np.ndarray:
        return np.asarray(self.data.binary[people] @ self.weights, dtype=np.float32)


class ALSBaseline(Baseline):
    """Implicit ALS (``implicit``) on BM25-weighted counts; people are the rows it was fitted on."""

    name = "als"
    default_grid: ClassVar[list[Settings]] = [
        {"factors": f, "regularization": r} for f in (64, 128) for r in (0.05, 1.0, 20.0, 50.0)
    ]
    iterations: ClassVar[int] = 15
    threads: ClassVar[int] = 2
    seed: ClassVar[int] = 0

    def _fit(self, data: Interactions, settings: Settings) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight

        weighted = bm25_weight(data.counts, K1=100, B=0.8).tocsr().astype(np.float32)
        model = AlternatingLeastSquares(
            factors=int(settings["factors"]),
            regularization=float(settings["regularization"]),
            iterations=self.iterations,
            num_threads=self.threads,
            random_state=self.seed,
            calculate_training_loss=False,
        )
        model.fit(weighted, show_progress=False)
        self.people = np.asarray(model.user_factors, dtype=np.float32)
        self.items = np.asarray(model.item_factors, dtype=np.float32)

    def scores(self, people: np.ndarray) -> np.ndarray:
        return self.people[people] @ self.items.T


def all_baselines() -> list[Baseline]:
    return [
        PopularityBaseline(),
        RecentPopularityBaseline(),
        HistoryPopularityBaseline(),
        ItemKNNBaseline(),
        EASEBaseline(),
        ALSBaseline(),
    ]
