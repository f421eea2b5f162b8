"""Collaborative scorers: implicit ALS (with fold-in) and EASE.

ALS item factors are the item embeddings that FAISS retrieval searches, and people are folded in
from their history at request time, the same way for training examples and for serving, so no
per-person state has to be stored or kept fresh. EASE is a closed-form item × item model: better
than ALS on small catalogues but quadratic in memory and cubic in time in the number of items,
so it is only fitted below ``ease_max_items`` (see docs/evaluation.md for where and why).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg import lapack

from personalization.engine.similarity import SparseScores


@dataclass
class BM25Weighting:
    """BM25 over person rows, as in ``implicit.nearest_neighbours.bm25_weight``, but kept as
    parameters so that one new person's row is weighed exactly like the training rows were."""

    idf: np.ndarray  # float32 per item
    average_length: float
    k1: float = 100.0
    b: float = 0.8

    @classmethod
    def fit(cls, matrix: sp.csr_matrix, k1: float = 100.0, b: float = 0.8) -> BM25Weighting:
        n_people = max(matrix.shape[0], 1)
        document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])
        idf = (np.log(n_people) - np.log1p(document_frequency)).astype(np.float32)
        lengths = np.asarray(matrix.sum(axis=1)).ravel()
        average = float(lengths[lengths > 0].mean()) if np.any(lengths > 0) else 1.0
        return cls(idf=idf, average_length=average, k1=k1, b=b)

    def weigh(self, items: np.ndarray, values: np.ndarray) -> np.ndarray:
        length_norm = (1.0 - self.b) + self.b * float(values.sum()) / self.average_length
        return (values * (self.k1 + 1.0) / (self.k1 * length_norm + values) * self.idf[items]).astype(np.float32)

    def weigh_matrix(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        weighted = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        lengths = np.asarray(weighted.sum(axis=1)).ravel()
        length_norm = (1.0 - self.b) + self.b * lengths / self.average_length
        row_norm = np.repeat(length_norm, np.diff(weighted.indptr))
        data = weighted.data
        weighted.data = (data * (self.k1 + 1.0) / (self.k1 * row_norm + data) * self.idf[weighted.indices]).astype(
            np.float32
        )
        return weighted


@dataclass
class ALSModel:
    item_factors: np.ndarray  # float32 (items, factors)
    weighting: BM25Weighting
    regularization: float
    alpha: float

    # YᵀY + λI, which every fold-in starts from: saved with the factors, so that loading a million
    # items' factors (memory-mapped, shared by the processes of a machine) reads no row of them.
    gram: np.ndarray | None = None
    # Several fits side by side (other seeds), their factors in consecutive column blocks: a person
    # is folded into each fit on its own (the systems are block-diagonal) and an item's score is
    # the sum of the fits' scores, which one inner product over the joined vectors gives.
    blocks: int = 1

    def __post_init__(self) -> None:
        self.mask = block_mask(self.item_factors.shape[1], self.blocks)
        if self.gram is None:
            self.gram = item_gram(self.item_factors, self.regularization)
            if self.mask is not None:
                self.gram *= self.mask

    @classmethod
    def fit(
        cls,
        matrix: sp.csr_matrix,
        *,
        factors: int,
        regularization: float,
        alpha: float,
        iterations: int,
        threads: int,
        seed: int,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        fits: int = 1,
    ) -> ALSModel:
        """``fits`` > 1: that many fits of ``factors`` each (seeds ``seed``, ``seed`` + 1, ...),
        joined side by side (see ``blocks``)."""
        from implicit.cpu.als import AlternatingLeastSquares

        weighting = BM25Weighting.fit(matrix, bm25_k1, bm25_b)
        weighted = weighting.weigh_matrix(matrix)
        parts = []
        for n in range(max(fits, 1)):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                iterations=iterations,
                num_threads=threads,
                random_state=seed + n,
                calculate_training_loss=False,
            )
            model.fit(weighted, show_progress=False)
            parts.append(np.asarray(model.item_factors, dtype=np.float32))
        item_factors = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
        # An item nobody touched keeps what is left of its random start after a few conjugate-gradient
        # steps: noise. Zero says "nothing known", scores 0 for everyone, and lets retrieval leave
        # such items out of its graph (most of a million-item catalogue).
        item_factors[np.diff(sp.csc_matrix(matrix).indptr) == 0] = 0.0
        return cls(
            item_factors=item_factors,
            weighting=weighting,
            regularization=regularization,
            alpha=alpha,
            blocks=len(parts),
        )

    def person_vector(self, items: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The ALS person step for one history: (YᵀCY + λI)⁻¹ YᵀCp with C = alpha·BM25(values)."""
        if items.shape[0] == 0:
            return np.zeros(self.item_factors.shape[1], dtype=np.float32)
        confidence = self.alpha * self.weighting.weigh(items, values).astype(np.float64)
        rows = self.item_factors[items].astype(np.float64)  # only the person's rows, never a catalogue copy
        assert self.gram is not None
        correction = rows.T @ ((confidence - 1.0)[:, None] * rows)
        if self.mask is not None:
            correction *= self.mask  # each fit's own system: no terms across fits
        system = self.gram + correction
        rhs = rows.T @ confidence
        # LAPACK's Cholesky solve straight away: scipy.linalg.solve's checks cost as much as the solve.
        _, vector, info = lapack.dposv(system, rhs)
        if info != 0:  # not positive definite (confidences under 1 can do that): a general solve
            vector = scipy.linalg.solve(system, rhs, check_finite=False)
        return np.asarray(vector, dtype=np.float32)


def block_mask(dimension: int, blocks: int) -> np.ndarray | None:
    """1 inside each of ``blocks`` equal diagonal blocks of a ``dimension`` square, 0 elsewhere;
    None for one block."""
    if blocks <= 1:
        return None
    if dimension % blocks:
        raise ValueError(f"{dimension} factors do not split into {blocks} equal fits")
    size = dimension // blocks
    return np.kron(np.eye(blocks), np.ones((size, size)))


def item_gram(factors: np.ndarray, regularization: float, block: int = 65_536) -> np.ndarray:
    """YᵀY + λI in float64, summed over blocks of rows (no float64 copy of a large catalogue)."""
    dimension = factors.shape[1]
    gram = regularization * np.eye(dimension)
    for start in range(0, factors.shape[0], block):
        rows = np.asarray(factors[start : start + block], dtype=np.float64)
        gram += rows.T @ rows
    return gram


def ease_weights(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE (Steck, 2019): B = I − P·diag(1/diag P) with P = (G + λI)⁻¹ and a zero diagonal, for a
    Gram matrix G = XᵀX. In float32 by Cholesky (LAPACK spotrf/spotri), which is about four times
    quicker than a float64 general inverse and exact enough for a ranking."""
    system = np.array(gram, dtype=np.float32, copy=True)
    system[np.diag_indices_from(system)] += np.float32(regularization)
    factor, info = lapack.spotrf(system, lower=1, overwrite_a=1)
    if info != 0:
        raise ArithmeticError(f"EASE: XᵀX + λI is not positive definite (LAPACK info {info})")
    del system
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise ArithmeticError(f"EASE: inversion failed (LAPACK info {info})")
    del factor
    lower = np.tril(inverse)  # spotri fills one triangle only
    del inverse
    precision = lower + np.tril(lower, -1).T
    del lower
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[None, :]
    precision[np.diag_indices_from(precision)] = 0.0
    return precision


@dataclass
class EASEModel:
    """EASE over the items with enough support: ``items`` (sorted catalogue indices) and their
    weights (``items`` × ``items``, zero diagonal). An item with fewer than ``min_support`` people
    has a column the model cannot learn from, and leaving such items out keeps the cubic inverse
    affordable: on Last.fm 2K, 3,300 items of 12,000 gave a better validation NDCG than all of them."""

    items: np.ndarray  # int64, sorted
    weights: np.ndarray  # float32 (len(items), len(items)), zero diagonal
    n_items: int

    def __post_init__(self) -> None:
        self._position = np.full(self.n_items, -1, dtype=np.int64)
        self._position[self.items] = np.arange(self.items.shape[0])

    @staticmethod
    def supported_items(matrix: sp.csr_matrix, min_support: int) -> np.ndarray:
        binary = sp.csr_matrix(matrix, copy=True)
        binary.data[:] = 1.0
        support = np.asarray(binary.sum(axis=0)).ravel()
        return np.flatnonzero(support >= min_support).astype(np.int64)

    @classmethod
    def fit(
        cls, matrix: sp.csr_matrix, regularization: float, *, min_support: int = 1, max_items: int | None = None
    ) -> EASEModel | None:
        """The model, or None when more than ``max_items`` items have the support."""
        models = cls.fit_grid(matrix, [regularization], min_support=min_support, max_items=max_items)
        return models[0] if models else None

    @classmethod
    def fit_grid(
        cls, matrix: sp.csr_matrix, regularizations: list[float], *, min_support: int = 1, max_items: int | None = None
    ) -> list[EASEModel]:
        """One model per regularization, sharing one Gram matrix; none when more than ``max_items``
        items have the support (the inverse is cubic in them: ALS serves such catalogues)."""
        n_items = matrix.shape[1]
        items = cls.supported_items(matrix, min_support)
        if items.shape[0] > (max_items or n_items) or items.shape[0] == 0:
            return []
        binary = sp.csr_matrix(matrix[:, items], dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        gram = (binary.T @ binary).toarray()
        return [
            cls(items=items, weights=ease_weights(gram, regularization), n_items=n_items)
            for regularization in regularizations
        ]

    def scores(self, items: np.ndarray, values: np.ndarray) -> SparseScores:
        """Scores over the model's own items only (at most ``ease_max_items``), zero elsewhere: the
        cost of a request does not grow with the catalogue."""
        empty = SparseScores(self.n_items, self.items[:0], np.zeros(0, dtype=np.float32))
        if items.shape[0] == 0:
            return empty
        position = self._position[items]
        known = position >= 0
        if not known.any():
            return empty
        # Gather-then-gemv: scipy's sparse row × dense matrix product was 40x slower here.
        scores = values[known].astype(np.float32) @ self.weights[position[known]]
        return SparseScores(self.n_items, self.items, np.asarray(scores, dtype=np.float32))
