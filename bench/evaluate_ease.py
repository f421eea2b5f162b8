"""Where EASE stops being affordable: fit time and memory of its item × item model by catalogue size.

EASE inverts the (items × items) Gram matrix: O(n³) time and an n² matrix kept for serving (plus
the float64 copy while inverting). This times the fit on generated interactions (20 per person,
Zipf-popular items) with two BLAS threads, as training runs, and prints the serving matrix size.

    PYTHONPATH=. .venv/bin/python bench/evaluate_ease.py
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from personalization.engine.collaborative import EASEModel
from personalization.engine.threads import blas_threads


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'items':>7} {'fit_s':>7} {'model_MB':>9} {'peak_MB':>8}")
    for n_items in (2_000, 4_000, 8_000, 12_000):
        people = 2 * n_items
        rows = np.repeat(np.arange(people), 20)
        cols = np.minimum(rng.zipf(1.2, rows.shape[0]) - 1, n_items - 1)
        cols = (cols + rng.integers(0, n_items, people).repeat(20)) % n_items
        matrix = sp.csr_matrix((np.ones(rows.shape[0], dtype=np.float32), (rows, cols)), shape=(people, n_items))
        matrix.data[:] = 1.0
        with blas_threads(2):
            started = time.perf_counter()
            EASEModel.fit(matrix, 200.0)
            seconds = time.perf_counter() - started
        model_mb = n_items * n_items * 4 / 2**20
        print(f"{n_items:7d} {seconds:7.1f} {model_mb:9.0f} {model_mb * 3:8.0f}")


if __name__ == "__main__":
    main()
