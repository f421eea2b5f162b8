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
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from personalization.engine.similarity import keep_strongest, weighted_row_sum

# Rows of the neighbour computation done in one sparse product: bounds its memory.
NEIGHBOUR_BLOCK_ROWS = 4096

TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased words of two or more characters, plus adjacent word pairs (``"tea cup"``)."""
    words = [w for w in TOKEN.findall(text.lower()) if len(w) > 1]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


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
        and at most ``max_share`` of them (near-universal words separate nothing)."""
        documents = [sorted(set(tokens(t))) for t in texts]
        counts: dict[str, int] = {}
        for doc in documents:
            for term in doc:
                counts[term] = counts.get(term, 0) + 1
        n = max(len(texts), 1)
        kept = sorted(t for t, c in counts.items() if c >= min_items and c <= max_share * n)
        vocabulary = {t: i for i, t in enumerate(kept)}
        document_frequency = np.asarray([counts[t] for t in kept], dtype=np.float64)
        idf = (np.log((1.0 + n) / (1.0 + document_frequency)) + 1.0).astype(np.float32)
        index = cls(vocabulary=vocabulary, idf=idf, vectors=sp.csr_matrix((0, len(kept)), dtype=np.float32))
        index.vectors = index.transform(texts)
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
        counts = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(self.vocabulary))
        )
        counts.sum_duplicates()
        counts.data = (1.0 + np.log(counts.data)).astype(np.float32)  # sublinear term frequency
        weighted = (counts @ sp.diags(self.idf)).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return (sp.diags((1.0 / norms).astype(np.float32)) @ weighted).tocsr().astype(np.float32)

    def with_neighbours(self, rows: np.ndarray, k: int, max_postings: int) -> ContentIndex:
        """Compute ``neighbours`` for ``rows`` (the items people have touched: the only ones a person's
        profile is made of), keeping ``k`` per item, and return self.

        A term's posting list is cut to its ``max_postings`` items where it weighs most: a word that
        half a million items share would otherwise make every one of them a candidate of every
        other; it adds the same small amount to each, and the neighbours that matter share rarer
        terms. The work is then bounded by (rows × terms per item × ``max_postings``), whatever
        the catalogue's size, and done in blocks of rows so that memory stays bounded too."""
        n_items = self.vectors.shape[0]
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < n_items)]
        stacked = self.neighbour_rows(rows, k, max_postings)
        # Spread the computed rows over the whole catalogue: items nobody touched have empty rows.
        lengths = np.zeros(n_items, dtype=np.int64)
        lengths[rows] = np.diff(stacked.indptr)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.neighbours = sp.csr_matrix(
            (stacked.data.astype(np.float32), stacked.indices.astype(np.int32), indptr), shape=(n_items, n_items)
        )
        return self

    def neighbour_rows(self, rows: np.ndarray, k: int, max_postings: int) -> sp.csr_matrix:
        """(len(rows), items): the ``k`` strongest content neighbours of each of ``rows``, itself included."""
        n_items = self.vectors.shape[0]
        rows = np.asarray(rows, dtype=np.int64)
        if not self.has_text or rows.shape[0] == 0:
            return sp.csr_matrix((rows.shape[0], n_items), dtype=np.float32)
        postings = self._cut_postings(max_postings)
        parts: list[sp.csr_matrix] = []
        for start in range(0, rows.shape[0], NEIGHBOUR_BLOCK_ROWS):
            block_rows = rows[start : start + NEIGHBOUR_BLOCK_ROWS]
            block = (self.vectors[block_rows] @ postings).tocsr()
            owner = np.repeat(np.arange(block_rows.shape[0]), np.diff(block.indptr))
            block.data[block.indices == block_rows[owner]] = 0.0  # itself: added below, exactly 1
            block.eliminate_zeros()
            parts.append(keep_strongest(block, max(k - 1, 0)))
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
            return np.asarray(self.vectors[items] @ profile, dtype=np.float32).ravel()
        terms = np.flatnonzero(profile)
        return weighted_row_sum(self.postings, terms, profile[terms])

    @cached_property
    def postings(self) -> sp.csr_matrix:
        """Terms × items: each term's items and weights."""
        return self.vectors.T.tocsr()
