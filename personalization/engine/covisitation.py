"""Item-to-item co-visitation: items that people touch in the same session or within a few days.

Two counts add up: pairs in one session (an order where the data has order ids, else a run of
events with gaps under 30 minutes) and, at a lower weight, pairs within the same ``window_days``
bucket of one person's timeline, which catches "came back two days later for the matching
saucer". Pairs decay with age so that what sells together now counts more than last year's
bundles. Counts are normalised by both items' frequencies (cosine) so that best-sellers do not
become everybody's neighbour, and each item keeps its strongest ``neighbours``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personalization.engine.dataset import SECONDS_PER_DAY, EventLog
from personalization.engine.popularity import decay
from personalization.engine.similarity import keep_strongest


def _group_matrix(groups: np.ndarray, items: np.ndarray, group_weight: np.ndarray, n_items: int) -> sp.csr_matrix:
    codes, group_index = np.unique(groups, return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(items.shape[0], dtype=np.float32), (group_index, items)), shape=(codes.shape[0], n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    # sqrt on both sides of the product gives each pair its group's weight once.
    weight = np.zeros(codes.shape[0], dtype=np.float32)
    np.maximum.at(weight, group_index, group_weight)
    return (sp.diags(np.sqrt(weight)) @ matrix).tocsr()


def fit_covisitation(
    log: EventLog,
    *,
    n_items: int,
    as_of: float,
    window_days: float = 7.0,
    window_weight: float = 0.5,
    half_life_days: float = 180.0,
    neighbours: int = 200,
) -> sp.csr_matrix:
    if log.item.shape[0] == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    recency = decay((as_of - log.time) / SECONDS_PER_DAY, half_life_days)
    sessions = _group_matrix(log.session, log.item, recency, n_items)
    counts = (sessions.T @ sessions).tocsr()
    bucket = np.floor(log.time / (window_days * SECONDS_PER_DAY)).astype(np.int64)
    windows = _group_matrix(log.user.astype(np.int64) * (bucket.max() + 1) + bucket, log.item, recency, n_items)
    counts = counts + window_weight * (windows.T @ windows).tocsr()
    frequency = np.sqrt(np.maximum(counts.diagonal(), 1e-9)).astype(np.float32)
    counts = sp.csr_matrix(counts)
    counts.setdiag(0.0)
    counts.eliminate_zeros()
    normalised = (sp.diags(1.0 / frequency) @ counts @ sp.diags(1.0 / frequency)).tocsr()
    return keep_strongest(normalised, neighbours)
