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

from personalization.engine.similarity import weighted_row_sum

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
