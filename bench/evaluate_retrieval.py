"""FAISS retrieval: exact inner-product search against HNSW, recall and single-query latency.

Item vectors are 128-dimensional, like the engine's ALS factors. Synthetic catalogues of 5k to
100k items are drawn as a mixture of taste clusters whose vector norms follow a long-tailed
popularity (what ALS factors look like); queries are people folded in from a few items of one or
two clusters. Recall@k is the share of the exact top-k that HNSW returns. One thread, as serving.

    PYTHONPATH=. .venv/bin/python bench/evaluate_retrieval.py
    PYTHONPATH=. .venv/bin/python bench/evaluate_retrieval.py --ef-construction 200,100,64 --engine /tmp/m1

``--ef-construction`` measures instead how wide the graph is searched while it is built (what a
fit pays for the graph) against recall at the serving walk (``hnsw_ef_search``) and at 800: on the
synthetic 100,000 items, and with ``--engine`` on the touched items of a saved engine's ALS factors
(the million-item shop of ``bench/fit_scale.py --keep``), queries folded from five of them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from personalization.engine.retrieval import VectorIndex

DIMENSION = 128
K = 200
QUERIES = 300


def catalogue(n_items: int, rng: np.random.Generator) -> np.ndarray:
    clusters = rng.normal(size=(64, DIMENSION)).astype(np.float32)
    membership = rng.integers(0, clusters.shape[0], n_items)
    vectors = clusters[membership] + 0.8 * rng.normal(size=(n_items, DIMENSION)).astype(np.float32)
    popularity = rng.pareto(1.5, n_items).astype(np.float32) + 1.0
    vectors *= (np.log1p(popularity) / np.linalg.norm(vectors, axis=1))[:, None]
    return np.ascontiguousarray(vectors, dtype=np.float32)


def queries(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, vectors.shape[0], (QUERIES, 5))
    return np.ascontiguousarray(vectors[picks].sum(1) + 0.3 * rng.normal(size=(QUERIES, DIMENSION)), dtype=np.float32)


def timed_search(index: VectorIndex, batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    found, seconds = [], []
    for q in batch:
        started = time.perf_counter()
        items, _ = index.search(q, K)
        seconds.append(time.perf_counter() - started)
        found.append(items)
    return found, np.asarray(seconds) * 1000


def alternative_recalls(vectors: np.ndarray, batch: np.ndarray, truth: list[np.ndarray]) -> list[tuple[str, float]]:
    """Two designs measured and rejected: IVF-Flat, and HNSW over the usual inner-product-to-L2
    reduction (each item gets sqrt(R² − |y|²) as an extra coordinate, queries get 0)."""
    results = []
    lists = int(4 * np.sqrt(vectors.shape[0]))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIMENSION), DIMENSION, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    ivf.nprobe = 64
    _, found = ivf.search(batch, K)
    results.append((f"ivf {lists} lists nprobe=64", _recall(list(found), truth)))
    norms = np.linalg.norm(vectors, axis=1)
    extra = np.sqrt(np.maximum(float(norms.max()) ** 2 - norms**2, 0.0))
    reduced = faiss.IndexHNSWFlat(DIMENSION + 1, 32)
    reduced.hnsw.efConstruction = 200
    reduced.add(np.ascontiguousarray(np.column_stack([vectors, extra]), dtype=np.float32))
    reduced.hnsw.efSearch = 2 * K
    padded = np.ascontiguousarray(np.column_stack([batch, np.zeros(batch.shape[0])]), dtype=np.float32)
    _, found = reduced.search(padded, K)
    results.append((f"hnsw on L2 reduction ef={2 * K}", _recall(list(found), truth)))
    return results


def _recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(np.mean([np.isin(f, t).sum() / len(t) for f, t in zip(found, truth, strict=True)]))


def ef_construction_table(vectors: np.ndarray, name: str, widths: list[int], rng: np.random.Generator) -> None:
    """Build time (one thread) and recall@K of graphs built ``widths`` wide, against exact search."""
    batch = queries(vectors, rng)
    exact = VectorIndex.build(vectors, exact_max_items=vectors.shape[0])
    truth, _ = timed_search(exact, batch)
    for width in widths:
        started, cpu = time.perf_counter(), time.process_time()
        hnsw = VectorIndex.build(vectors, exact_max_items=0, hnsw_ef_construction=width)
        build, build_cpu = time.perf_counter() - started, time.process_time() - cpu
        graph: Any = faiss.downcast_index(hnsw.index)
        cells = []
        for ef in (256, 4 * K):
            graph.hnsw.efSearch = ef
            found, ms = timed_search(hnsw, batch)
            cells.append(f"{_recall(found, truth):.4f} ({np.median(ms):.2f} ms)")
        print(f"| {name} | {width} | {build:.1f} | {build_cpu:.1f} | {' | '.join(cells)} |", flush=True)


def touched_factors(folder: Path) -> np.ndarray:
    factors = np.load(folder / "als_item_factors.npy", mmap_mode="r")
    touched = np.flatnonzero(np.any(np.asarray(factors) != 0, axis=1))
    return np.ascontiguousarray(factors[touched], dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ef-construction", help="Comma-separated graph build widths to compare.")
    parser.add_argument("--engine", type=Path, help="A saved engine folder whose ALS factors to use as well.")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    if args.ef_construction:
        widths = [int(w) for w in args.ef_construction.split(",")]
        print(f"k={K}, {QUERIES} queries, one thread; recall@{K} (median ms a query) at efSearch 256 and {4 * K}")
        print(f"| vectors | efConstruction | build s | build CPU s | efSearch 256 | efSearch {4 * K} |")
        print("|---|---:|---:|---:|---:|---:|")
        ef_construction_table(catalogue(100_000, rng), "synthetic, 100,000 items", widths, rng)
        if args.engine:
            vectors = touched_factors(args.engine)
            ef_construction_table(vectors, f"{args.engine.name}: {vectors.shape[0]:,} touched items", widths, rng)
        return
    print(f"k={K}, {QUERIES} queries, one thread")
    print(f"{'items':>7} {'index':>12} {'build_s':>8} {'p50_ms':>7} {'p99_ms':>7} {'recall@k':>9}")
    for n_items in (5_000, 20_000, 50_000, 100_000):
        vectors = catalogue(n_items, rng)
        batch = queries(vectors, rng)
        exact = VectorIndex.build(vectors, exact_max_items=n_items)
        truth, exact_ms = timed_search(exact, batch)
        print(
            f"{n_items:7d} {'exact':>12} {'':>8} {np.median(exact_ms):7.2f} {np.percentile(exact_ms, 99):7.2f} {1:9.4f}"
        )
        started = time.perf_counter()
        hnsw = VectorIndex.build(vectors, exact_max_items=0, hnsw_ef_search=K)
        build = time.perf_counter() - started
        graph: Any = faiss.downcast_index(hnsw.index)
        for ef in (K, 2 * K, 4 * K):
            graph.hnsw.efSearch = ef
            found, ms = timed_search(hnsw, batch)
            recall = np.mean([np.isin(f, t).sum() / len(t) for f, t in zip(found, truth, strict=True)])
            print(
                f"{n_items:7d} {f'hnsw ef={ef}':>12} {build:8.1f} {np.median(ms):7.2f} {np.percentile(ms, 99):7.2f}"
                f" {recall:9.4f}"
            )
        if n_items == 100_000:
            for name, alternative_recall in alternative_recalls(vectors, batch, truth):
                print(f"{n_items:7d} {name} recall@k {alternative_recall:.4f}")


if __name__ == "__main__":
    main()
