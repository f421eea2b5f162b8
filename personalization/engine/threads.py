"""Thread budgets for the numerical libraries.

The box has two cores shared by web and worker processes. Serving computes one person at a time
and must use one thread: BLAS thread pools spinning up for a 128 × 128 solve cost more than the
solve (measured: 22 ms against 0.5 ms on a loaded machine). Training may use ``train_threads``
for implicit ALS and LightGBM, which manage their own threads; BLAS stays at one thread there
too, as implicit recommends, except around the EASE inversion, one big matrix operation, and
FAISS builds its HNSW graph on ``train_threads`` (insertions run in parallel with OpenMP).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss
from threadpoolctl import threadpool_limits


def serve_on_one_thread() -> None:
    """Pin BLAS and FAISS to one thread for the rest of the process (a web or worker process)."""
    threadpool_limits(limits=1, user_api="blas")
    faiss.omp_set_num_threads(1)


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    with threadpool_limits(limits=count, user_api="blas"):
        yield


@contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads for the duration (a fit), then back to what they were."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(int(count), 1))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
