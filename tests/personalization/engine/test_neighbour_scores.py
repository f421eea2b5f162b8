"""A person's neighbourhood scores, kept sparse, equal the dense sum over the catalogue."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personalization.engine.content import ContentIndex
from personalization.engine.similarity import row_entries, score_from_neighbours


def test_sparse_neighbour_scores_equal_the_dense_product_and_rank_the_same() -> None:
    rng = np.random.default_rng(0)
    similarity = sp.random(800, 800, density=0.03, format="csr", random_state=1, dtype=np.float32)
    for _ in range(40):
        items = rng.choice(800, int(rng.integers(0, 25)), replace=False)
        weights = np.asarray(rng.random(items.shape[0]), dtype=np.float32)
        dense = np.zeros(800)
        if items.shape[0]:
            dense = np.asarray(similarity[items].T @ weights).ravel()
        scores = score_from_neighbours(similarity, items, weights)

        np.testing.assert_allclose(scores.dense(), dense, atol=1e-5)
        asked = rng.integers(0, 800, 300)
        np.testing.assert_allclose(scores[asked], dense[asked], atol=1e-5)
        best = scores.best(15)
        expected = np.sort(dense[dense > 0])[::-1][:15]
        np.testing.assert_allclose(dense[best], expected, atol=1e-5)
        assert len(set(best.tolist())) == best.shape[0]


def test_row_entries_and_candidate_content_scores_read_what_scipy_reads() -> None:
    rng = np.random.default_rng(3)
    for trial in range(100):
        n, terms = int(rng.integers(1, 80)), int(rng.integers(1, 40))
        vectors = sp.random(n, terms, density=rng.uniform(0, 0.4), format="csr", random_state=trial, dtype=np.float32)
        rows = rng.integers(0, n, size=int(rng.integers(0, 30))).astype(np.int64)  # repeats allowed
        owner, positions = row_entries(vectors, rows)
        rebuilt = sp.csr_matrix(
            (vectors.data[positions], (owner, vectors.indices[positions])), shape=(rows.shape[0], terms)
        )
        np.testing.assert_array_equal(rebuilt.toarray(), vectors[rows].toarray())
        profile = rng.random(terms)
        content = ContentIndex(vocabulary={}, idf=np.ones(terms, dtype=np.float32), vectors=vectors)
        np.testing.assert_allclose(content.scores(profile, rows), vectors[rows] @ profile, rtol=1e-5, atol=1e-6)


def test_ties_are_broken_by_item_index_and_zeros_are_never_proposed() -> None:
    similarity = sp.csr_matrix(
        np.array([[0, 0.5, 0.5, 0, 0.5], [0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0]], dtype=np.float32)[:, :5]
    )
    scores = score_from_neighbours(similarity, np.array([0, 1]), np.array([1.0, 1.0], dtype=np.float32))
    assert scores.best(2).tolist() == [1, 2]
    assert scores.best(10).tolist() == [1, 2, 4]
    assert score_from_neighbours(similarity, np.array([1]), np.ones(1, np.float32)).best(5).tolist() == []


def test_ease_by_float32_cholesky_equals_the_float64_inverse() -> None:
    from personalization.engine.collaborative import ease_weights

    interactions = sp.random(400, 120, density=0.08, random_state=1, format="csr")
    interactions.data[:] = 1.0
    gram = (interactions.T @ interactions).toarray()
    for regularization in (5.0, 200.0):
        precision = np.linalg.inv(gram + regularization * np.eye(gram.shape[0]))
        expected = precision / -np.diag(precision)[None, :]
        np.fill_diagonal(expected, 0.0)
        weights = ease_weights(gram.astype(np.float32), regularization)
        assert weights.dtype == np.float32
        assert np.abs(weights - expected).max() < 1e-4 * max(np.abs(expected).max(), 1.0)
        # the same ranking of every row
        assert (np.argsort(-weights, axis=1)[:, :10] == np.argsort(-expected, axis=1)[:, :10]).mean() > 0.99
