"""Offline ranking metrics over top-k lists, as the Online Retail protocol defines them.

Binary relevance throughout: an item is relevant when the person bought (touched) it in the test
period. Recall@k divides by min(|relevant|, k) so that a person with 50 test items can still
score 1; NDCG@k uses gain 1 and the ideal list of min(|relevant|, k) hits; MAP@k averages the
precision at each hit over min(|relevant|, k).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def _hits(recommended: Sequence[int] | np.ndarray, relevant: set[int] | np.ndarray, k: int) -> np.ndarray:
    top = np.asarray(recommended)[:k]
    relevant_array = np.fromiter(relevant, dtype=np.int64) if isinstance(relevant, set) else np.asarray(relevant)
    return np.isin(top, relevant_array)


def recall_at_k(recommended: Sequence[int] | np.ndarray, relevant: set[int] | np.ndarray, k: int) -> float:
    n_relevant = len(relevant)
    if n_relevant == 0:
        return 0.0
    return float(_hits(recommended, relevant, k).sum()) / min(n_relevant, k)


def ndcg_of_hits(hits: np.ndarray, n_relevant: int, k: int) -> float:
    """NDCG@k of one ranked list given as hit flags (or gains of 0/1) best first, against
    ``n_relevant`` relevant items in all: the one formula every ranking figure here uses."""
    if n_relevant <= 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    top = np.asarray(hits, dtype=np.float64)[:k]
    return float((top * discounts[: top.shape[0]]).sum()) / float(discounts[: min(n_relevant, k)].sum())


def ndcg_at_k(recommended: Sequence[int] | np.ndarray, relevant: set[int] | np.ndarray, k: int) -> float:
    return ndcg_of_hits(_hits(recommended, relevant, k), len(relevant), k)


def average_precision_at_k(recommended: Sequence[int] | np.ndarray, relevant: set[int] | np.ndarray, k: int) -> float:
    n_relevant = len(relevant)
    if n_relevant == 0:
        return 0.0
    hits = _hits(recommended, relevant, k)
    if not hits.any():
        return 0.0
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1.0)
    return float(precision_at_hit.sum()) / min(n_relevant, k)


def catalogue_coverage(lists: Sequence[Sequence[int] | np.ndarray], n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if n_items == 0:
        return 0.0
    shown = {int(i) for items in lists for i in np.asarray(items)[:k]}
    return len(shown) / n_items


def intra_list_diversity(items: Sequence[int] | np.ndarray, item_vectors: sp.csr_matrix) -> float:
    """Mean pairwise (1 − cosine similarity) within one list; ``item_vectors`` rows are unit length
    (rows of zeros count as unlike everything). Lists of fewer than two items have no pairs: 0."""
    items = np.asarray(items)
    n = items.shape[0]
    if n < 2:
        return 0.0
    vectors = item_vectors[items]
    similarity = (vectors @ vectors.T).toarray() if sp.issparse(vectors) else vectors @ vectors.T
    off_diagonal = float(similarity.sum() - np.trace(similarity))
    return 1.0 - off_diagonal / (n * (n - 1))


def unit_item_vectors(interactions: sp.csr_matrix) -> sp.csr_matrix:
    """Items as unit-length binary vectors over people: the item-kNN notion of similarity, which
    every dataset has (item text is optional)."""
    binary = sp.csr_matrix(interactions.T, dtype=np.float32, copy=True)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    norms = np.sqrt(np.asarray(binary.sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sp.diags(1.0 / norms) @ binary).tocsr()


def paired_bootstrap_interval(
    differences: np.ndarray, samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of per-person differences (model A − model B on the same
    people), resampling people with replacement ``samples`` times with a seeded generator."""
    n = differences.shape[0]
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(samples, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bounded memory on large test sets
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        means[start : start + size] = differences[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)
