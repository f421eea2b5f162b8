"""Content similarity from item text and attributes: TF-IDF over words and word pairs.

This is what lets an item nobody has touched yet be recommended: its vector exists as soon as its
text does. TF-IDF was chosen over all-MiniLM-L6-v2 sentence embeddings by measurement
(``bench/evaluate_content.py``, figures in docs/evaluation.md): on Online Retail's product
titles it ranked both the new-to-them items people went on to buy and never-sold new items
clearly better, embeds the catalogue in a fraction of a second instead of minutes, needs no
model download and keeps artifacts small.
"""

from __future__ import annotations

import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from personalization.engine.similarity import keep_strongest, row_entries, weighted_row_sum

# Rows of the neighbour computation done in one sparse product: bounds its memory.
NEIGHBOUR_BLOCK_ROWS = 4096

TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased words of two or more characters, plus adjacent word pairs (``"tea cup"``)."""
    words = [w for w in TOKEN.findall(text.lower()) if len(w) > 1]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _term_numbers(texts: list[str], seen: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(text, term number) of every term of every text, numbering new terms into ``seen``."""
    rows: list[int] = []
    columns: list[int] = []
    number = seen.setdefault
    for row, text in enumerate(texts):
        found = [number(term, len(seen)) for term in tokens(text)]
        columns.extend(found)
        rows.extend([row] * len(found))
    return np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64)


def _counts(rows: object, columns: object, shape: tuple[int, int]) -> sp.csr_matrix:
    rows, columns = np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64)
    counts = sp.csr_matrix((np.ones(rows.shape[0], dtype=np.float32), (rows, columns)), shape=shape)
    counts.sum_duplicates()
    return counts


@dataclass
class ContentIndex:
    vocabulary: dict[str, int]
    idf: np.ndarray  # float32 per term
    vectors: sp.csr_matrix  # items × terms, rows L2-normalised (all-zero for items without text)
    # items × items: each item's strongest content neighbours by cosine, itself included (1.0), so
    # that a person's content score summed over their items' rows is the cosine with their profile
    # restricted to those neighbours. Rows only for the items given to ``with_neighbours``.
    neighbours: sp.csr_matrix | None = None

    @classmethod
    def fit(cls, texts: list[str], min_items: int = 2, max_share: float = 0.5) -> ContentIndex:
        """Terms in at least ``min_items`` items (a term only one item has links it to nothing)
        and at most ``max_share`` of them (near-universal words separate nothing).

        Each text is split into terms once: every term gets a provisional number as it is met,
        the counts and document frequencies come from that one pass, and the kept terms are then
        renumbered in alphabetical order (a million titles were tokenised twice before)."""
        seen: dict[str, int] = {}
        rows, columns = _term_numbers(texts, seen)
        counts = _counts(rows, columns, (len(texts), len(seen)))
        document_frequency = np.bincount(counts.indices, minlength=len(seen))
        n = max(len(texts), 1)
        terms = list(seen)
        kept = sorted(
            (i for i in range(len(terms)) if min_items <= document_frequency[i] <= max_share * n),
            key=terms.__getitem__,
        )
        column = np.full(len(terms), -1, dtype=np.int64)
        column[kept] = np.arange(len(kept))
        vocabulary = {terms[i]: c for c, i in enumerate(kept)}
        idf = (np.log((1.0 + n) / (1.0 + document_frequency[kept].astype(np.float64))) + 1.0).astype(np.float32)
        index = cls(vocabulary=vocabulary, idf=idf, vectors=sp.csr_matrix((0, len(kept)), dtype=np.float32))
        renumbered = column[counts.indices]
        keep = renumbered >= 0
        owner = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))[keep]
        kept_counts = sp.csr_matrix(
            (counts.data[keep], (owner, renumbered[keep])), shape=(len(texts), len(kept)), dtype=np.float32
        )
        index.vectors = index._weighted(kept_counts)
        return index

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            for term in tokens(text):
                col = self.vocabulary.get(term)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        return self._weighted(_counts(rows, cols, (len(texts), len(self.vocabulary))))

    def _weighted(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Term counts (duplicates summed) to unit-length TF-IDF rows."""
        counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        counts.data = (1.0 + np.log(counts.data)).astype(np.float32)  # sublinear term frequency
        weighted = (counts @ sp.diags(self.idf)).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return (sp.diags((1.0 / norms).astype(np.float32)) @ weighted).tocsr().astype(np.float32)

    def with_neighbours(self, rows: np.ndarray, k: int, max_postings: int, threads: int = 1) -> ContentIndex:
        """Compute ``neighbours`` for ``rows`` (the items people have touched: the only ones a person's
        profile is made of), keeping ``k`` per item, and return self.

        A term's posting list is cut to its ``max_postings`` items where it weighs most: a word that
        half a million items share would otherwise make every one of them a candidate of every
        other; it adds the same small amount to each, and the neighbours that matter share rarer
        terms. The work is then bounded by (rows × terms per item × ``max_postings``), whatever
        the catalogue's size, and done in blocks of rows so that memory stays bounded too; a fit
        runs ``threads`` blocks at a time (the sparse products release the interpreter's lock)."""
        n_items = self.vectors.shape[0]
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < n_items)]
        stacked = self.neighbour_rows(rows, k, max_postings, threads)
        # Spread the computed rows over the whole catalogue: items nobody touched have empty rows.
        lengths = np.zeros(n_items, dtype=np.int64)
        lengths[rows] = np.diff(stacked.indptr)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.neighbours = sp.csr_matrix(
            (stacked.data.astype(np.float32), stacked.indices.astype(np.int32), indptr), shape=(n_items, n_items)
        )
        return self

    def neighbour_rows(self, rows: np.ndarray, k: int, max_postings: int, threads: int = 1) -> sp.csr_matrix:
        """(len(rows), items): the ``k`` strongest content neighbours of each of ``rows``, itself included."""
        n_items = self.vectors.shape[0]
        rows = np.asarray(rows, dtype=np.int64)
        if not self.has_text or rows.shape[0] == 0:
            return sp.csr_matrix((rows.shape[0], n_items), dtype=np.float32)
        postings = self._cut_postings(max_postings)

        def strongest(block_rows: np.ndarray) -> sp.csr_matrix:
            block = (self.vectors[block_rows] @ postings).tocsr()
            owner = np.repeat(np.arange(block_rows.shape[0]), np.diff(block.indptr))
            block.data[block.indices == block_rows[owner]] = 0.0  # itself: added below, exactly 1
            block.eliminate_zeros()
            return keep_strongest(block, max(k - 1, 0))

        blocks = [rows[start : start + NEIGHBOUR_BLOCK_ROWS] for start in range(0, rows.shape[0], NEIGHBOUR_BLOCK_ROWS)]
        if threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                parts = list(pool.map(strongest, blocks))
        else:
            parts = [strongest(block_rows) for block_rows in blocks]
        stacked = sp.vstack(parts).tocsr() if len(parts) > 1 else parts[0]
        own = (np.diff(self.vectors.indptr) > 0)[rows]
        itself = sp.csr_matrix(
            (np.ones(int(own.sum()), dtype=np.float32), (np.flatnonzero(own), rows[own])),
            shape=(rows.shape[0], n_items),
        )
        return (stacked + itself).tocsr()

    def _cut_postings(self, max_postings: int) -> sp.csr_matrix:
        cut = self.__dict__.get("_cut")
        if cut is None or cut[0] != max_postings:
            cut = (max_postings, keep_strongest(self.postings, max_postings))
            self.__dict__["_cut"] = cut
        return cut[1]

    @property
    def has_text(self) -> bool:
        return self.vectors.nnz > 0

    def profile(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A person's taste in terms: the weighted mean of their items' vectors, dense and unit length."""
        if items.shape[0] == 0 or not self.has_text:
            return np.zeros(self.vectors.shape[1], dtype=np.float32)
        summed = weighted_row_sum(self.vectors, items, weights)
        norm = float(np.linalg.norm(summed))
        return (summed / norm).astype(np.float32) if norm > 0 else summed

    def scores(self, profile: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Cosine of ``profile`` with every item's vector (or with ``items`` only).

        Over the whole catalogue it walks the posting lists of the profile's terms only (an inverted
        index, built on first use), not every item's vector: a tenth of the work on a catalogue whose
        items share few terms with any one person."""
        if items is not None:
            owner, entries = row_entries(self.vectors, np.asarray(items, dtype=np.int64))
            products = self.vectors.data[entries] * profile[self.vectors.indices[entries]]
            return np.bincount(owner, weights=products, minlength=len(items)).astype(np.float32)
        terms = np.flatnonzero(profile)
        return weighted_row_sum(self.postings, terms, profile[terms])

    @cached_property
    def postings(self) -> sp.csr_matrix:
        """Terms × items: each term's items and weights."""
        return self.vectors.T.tocsr()
