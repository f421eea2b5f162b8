"""What people take next: directed item → item transitions along each person's timeline.

Where events carry real timestamps, the order in which one person meets items says more than
the fact that they met both: the films rated after *Star Wars* in one sitting, the album played
after another. For each person's events in time order, every item that follows another within
``window`` positions adds ``1 / distance`` to the pair (a → b); each item keeps its strongest
``neighbours`` followers. A person's sequence score for an item sums the transitions from their
latest distinct items, the most recent weighing most. Without real timestamps there is no order
to learn from and the matrix stays empty.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personalization.engine.dataset import EventLog
from personalization.engine.similarity import keep_strongest


def fit_transitions(log: EventLog, *, n_items: int, window: int, neighbours: int) -> sp.csr_matrix:
    if log.item.shape[0] < 2 or window <= 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    # Each person's events in time order; the log is sorted by time, so a stable sort by person keeps it.
    order = np.argsort(log.user, kind="stable")
    user, item = log.user[order], log.item[order].astype(np.int64)
    rows, cols, values = [], [], []
    for distance in range(1, window + 1):
        same = (user[:-distance] == user[distance:]) & (item[:-distance] != item[distance:])
        rows.append(item[:-distance][same])
        cols.append(item[distance:][same])
        values.append(np.full(int(same.sum()), 1.0 / distance, dtype=np.float32))
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    )
    matrix.sum_duplicates()
    return keep_strongest(matrix, neighbours)
