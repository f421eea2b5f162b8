"""Sparse item × item similarity: cosine item-kNN and the pruning shared with co-visitation.

Both keep only each item's strongest neighbours so that the matrix stays linear in the catalogue
size (a 100,000-item catalogue with 200 neighbours each is 20M entries, not 10^10).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def keep_strongest(matrix: sp.csr_matrix, per_row: int) -> sp.csr_matrix:
    """Each row's ``per_row`` largest entries. Only rows longer than that are touched, each with
    one partial sort (a global sort of all entries was 7x slower on Online Retail)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.eliminate_zeros()
    indptr, data = matrix.indptr, matrix.data
    keep = np.ones(data.shape[0], dtype=bool)
    for row in np.flatnonzero(np.diff(indptr) > per_row).tolist():
        start, end = int(indptr[row]), int(indptr[row + 1])
        surplus = end - start - per_row
        keep[start + np.argpartition(data[start:end], surplus - 1)[:surplus]] = False
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
    pruned = sp.csr_matrix((data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape, dtype=np.float32)
    pruned.sort_indices()
    return pruned


def cosine_item_similarity(interactions: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Cosine between the items' binary buyer vectors, self-similarity removed, top neighbours kept."""
    binary = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    co_counts = (binary.T @ binary).tocsr()
    norms = np.sqrt(np.maximum(co_counts.diagonal(), 1e-12)).astype(np.float32)
    co_counts.setdiag(0.0)
    co_counts.eliminate_zeros()
    co_counts = sp.diags(1.0 / norms) @ co_counts @ sp.diags(1.0 / norms)
    return keep_strongest(co_counts.tocsr(), neighbours)


def score_from_neighbours(similarity: sp.csr_matrix, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Dense catalogue-length scores: the weighted sum of the given items' neighbour rows."""
    if items.shape[0] == 0:
        return np.zeros(similarity.shape[1], dtype=np.float32)
    rows = similarity[items]
    return np.asarray(rows.T @ weights.astype(np.float32), dtype=np.float32).ravel()
