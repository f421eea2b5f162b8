"""Nearest items by inner product over item embeddings, with FAISS.

Exact search (a flat index) costs one pass over the catalogue per query: on one core that stays
well under a millisecond for small catalogues, and it is the reference that approximate search is
measured against. Above ``exact_max_items`` an HNSW graph answers in a fraction of the time at a
measured loss of recall (``bench/evaluate_retrieval.py``; figures in docs/evaluation.md).

The graph holds only items with a non-zero embedding: an item nobody has touched has a zero ALS
vector, scores 0 for everyone and is never worth a neighbour in the graph (in a million-item shop
most items are such), so the graph is built and kept for the touched items alone. Its vectors are
memory-mapped from the index file when loaded, shared by the processes of a machine.

Training lists need the sources as they stood at a past cut-off, searched once per person in the
lists (a few thousand) and then thrown away: for them (``approximate=False``) a large catalogue
gets exact search over its touched items instead of a graph, a few milliseconds a person against
a graph build that costs minutes at a million items. The graph is built once, for serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from personalization.engine.artifacts import mapped

DEFAULT_EXACT_MAX_ITEMS = 50_000


@dataclass
class VectorIndex:
    index: faiss.Index
    kind: str  # "exact" or "hnsw"
    # Catalogue index of each vector of the index, when it holds only some items (None: all, in order).
    items: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        exact_max_items: int = DEFAULT_EXACT_MAX_ITEMS,
        approximate: bool = True,
        hnsw_neighbours: int = 32,
        hnsw_ef_construction: int = 200,
        hnsw_ef_search: int = 800,
    ) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        items: np.ndarray | None = None
        if vectors.shape[0] <= exact_max_items:
            index: faiss.Index = faiss.IndexFlatIP(dimension)
            kind = "exact"
        else:
            items = np.flatnonzero(np.any(vectors != 0, axis=1)).astype(np.int64)
            vectors = np.ascontiguousarray(vectors[items])
            if approximate:
                index = faiss.IndexHNSWFlat(dimension, hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = hnsw_ef_construction
                index.hnsw.efSearch = hnsw_ef_search
                kind = "hnsw"
            else:
                index = faiss.IndexFlatIP(dimension)
                kind = "exact"
        index.add(vectors)
        return cls(index=index, kind=kind, items=items)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` (item indices, inner products), best first."""
        k = min(k, self.index.ntotal)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.kind == "hnsw":
            # A graph walk cannot return more items than it keeps on its frontier.
            graph: Any = faiss.downcast_index(self.index)
            graph.hnsw.efSearch = max(graph.hnsw.efSearch, k)
        scores, items = self.index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k)
        found = items[0] >= 0
        positions = items[0][found]
        return (self.items[positions] if self.items is not None else positions), scores[0][found]

    def search_many(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """The item indices ``search`` finds for each row of ``queries``, in one call: FAISS
        answers a batch of exact queries with one matrix product (and on its OpenMP threads),
        a few times faster than query by query. What training lists use; serving asks one by one."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.index.d)
        k = min(k, self.index.ntotal)
        if k <= 0 or queries.shape[0] == 0:
            return [np.zeros(0, dtype=np.int64) for _ in range(queries.shape[0])]
        if self.kind == "hnsw":
            graph: Any = faiss.downcast_index(self.index)
            graph.hnsw.efSearch = max(graph.hnsw.efSearch, k)
        _, items = self.index.search(queries, k)
        answers = []
        for row in items:
            positions = row[row >= 0]
            answers.append(self.items[positions] if self.items is not None else positions)
        return answers

    def set_ef_search(self, ef_search: int) -> None:
        """How wide the HNSW graph walk is (no effect on exact search)."""
        if self.kind == "hnsw":
            graph: Any = faiss.downcast_index(self.index)
            graph.hnsw.efSearch = ef_search

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))
        if self.items is not None:
            np.save(_items_path(path), self.items, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        # The vectors stay in the file, mapped (IO_FLAG_MMAP_IFC); only the graph is read into memory.
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        items_path = _items_path(path)
        items = mapped(items_path) if items_path.exists() else None
        return cls(index=index, kind="hnsw" if isinstance(index, faiss.IndexHNSW) else "exact", items=items)


def _items_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_items.npy")
