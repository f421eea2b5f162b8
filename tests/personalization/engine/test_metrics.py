"""Every metric on cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from personalization.engine.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
    unit_item_vectors,
)


def test_recall_divides_by_the_smaller_of_relevant_count_and_k() -> None:
    # hits at ranks 1 and 3 out of 4 relevant items, k = 3 → 2 / min(4, 3)
    assert recall_at_k([10, 11, 12, 13], {10, 12, 20, 21}, 3) == pytest.approx(2 / 3)
    # k larger than the relevant set: 1 hit of 2 relevant
    assert recall_at_k([1, 2, 3, 4, 5], {5, 9}, 5) == pytest.approx(1 / 2)
    assert recall_at_k([1, 2], set(), 2) == 0.0


def test_ndcg_with_binary_gain() -> None:
    # hits at ranks 1 and 3; two relevant items: DCG = 1 + 1/log2(4); IDCG = 1 + 1/log2(3)
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([7, 8, 9], {7, 9}, 3) == pytest.approx(expected)
    # one relevant item at rank 2
    assert ndcg_at_k([1, 2, 3], {2}, 3) == pytest.approx(1 / math.log2(3))
    # a perfect list scores 1, a list beyond k scores 0
    assert ndcg_at_k([4, 5], {4, 5}, 2) == pytest.approx(1.0)
    assert ndcg_at_k([1, 2, 3], {3}, 2) == 0.0


def test_map_averages_precision_at_each_hit() -> None:
    # hits at ranks 1 and 3: (1/1 + 2/3) / min(3 relevant, k=4)
    assert average_precision_at_k([1, 2, 3, 4], {1, 3, 99}, 4) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k([1, 2], {3}, 2) == 0.0


def test_coverage_counts_distinct_items_within_k() -> None:
    lists = [np.array([0, 1, 2]), np.array([1, 3, 9])]
    # k = 2: items {0, 1, 3} of a 10-item catalogue
    assert catalogue_coverage(lists, 10, 2) == pytest.approx(0.3)


def test_intra_list_diversity_is_mean_pairwise_cosine_distance() -> None:
    # people × items: items 0 and 1 bought by the same person, item 2 by another one
    interactions = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    vectors = unit_item_vectors(interactions)
    assert intra_list_diversity([0, 1], vectors) == pytest.approx(0.0)
    assert intra_list_diversity([0, 2], vectors) == pytest.approx(1.0)
    # pairs (0,1)=0, (0,2)=1, (1,2)=1 → 2/3
    assert intra_list_diversity([0, 1, 2], vectors) == pytest.approx(2 / 3)
    assert intra_list_diversity([0], vectors) == 0.0
