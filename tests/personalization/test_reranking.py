from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.stats import binom

from personalization.reranking import (
    EXPLORING,
    Candidate,
    CandidateFilters,
    CandidateSet,
    DiversityQuota,
    Exploration,
    RankingWeights,
    RerankConfig,
    rerank,
)


def catalogue(n: int = 500, seed: int = 0, explorable_share: float = 0.3) -> CandidateSet:
    rng = np.random.default_rng(seed)
    return CandidateSet.from_arrays(
        np.arange(n),
        rng.random(n),
        margin=rng.random(n),
        age_days=rng.integers(0, 365, n),
        stock=rng.integers(0, 200, n),
        popularity=rng.pareto(1.5, n) * 10,
        category=rng.integers(0, 12, n),
        brand=rng.integers(0, 40, n),
        in_stock=rng.random(n) < 0.85,
        purchased_by_person=rng.random(n) < 0.1,
        is_new=rng.random(n) < explorable_share,
        clicks=rng.integers(0, 5, n),
        impressions=rng.integers(100, 1000, n),
        source=rng.choice(["embedding", "co_visitation", "trending", "history"], n),
    )


def quota_holds(result, candidates: CandidateSet, quota: DiversityQuota, top: set[int]) -> bool:
    k = len(result)
    categories = Counter(candidates.category[result.indices].tolist())
    brands = Counter(candidates.brand[result.indices].tolist())
    outside = sum(count for category, count in categories.items() if category not in top)
    return (
        max(categories.values()) <= quota.category_cap(k)
        and max(brands.values()) <= quota.brand_cap(k)
        and (not top or outside >= quota.outside_top_minimum(k))
    )


def quota_feasible(candidates: CandidateSet, rows: np.ndarray, k: int, quota: DiversityQuota, top: set[int]) -> bool:
    """Independent check by integer programming: is there any k-item list within the quota?"""
    categories = candidates.category[rows]
    brands = candidates.brand[rows]
    constraints = [LinearConstraint(np.ones((1, rows.size)), k, k)]
    for category in np.unique(categories):
        constraints.append(LinearConstraint((categories == category)[None, :].astype(float), 0, quota.category_cap(k)))
    for brand in np.unique(brands):
        constraints.append(LinearConstraint((brands == brand)[None, :].astype(float), 0, quota.brand_cap(k)))
    if top:
        outside = ~np.isin(categories, list(top))
        constraints.append(LinearConstraint(outside[None, :].astype(float), quota.outside_top_minimum(k), k))
    solution = milp(c=np.zeros(rows.size), constraints=constraints, integrality=np.ones(rows.size), bounds=Bounds(0, 1))
    return solution.status == 0


def test_raising_margin_weight_puts_the_high_margin_item_first():
    candidates = CandidateSet.from_candidates(
        [
            Candidate("relevant", relevance=0.9, margin=2.0),
            Candidate("profitable", relevance=0.7, margin=30.0),
            Candidate("neither", relevance=0.1, margin=1.0),
        ]
    )
    rng = np.random.default_rng(0)

    by_relevance = rerank(candidates, RerankConfig(weights=RankingWeights(relevance=1.0)), rng=rng)
    with_margin = rerank(candidates, RerankConfig(weights=RankingWeights(relevance=1.0, margin=1.0)), rng=rng)

    assert by_relevance.item_ids == ["relevant", "profitable", "neither"]
    assert with_margin.item_ids == ["profitable", "relevant", "neither"]


def test_raising_freshness_weight_moves_young_items_up():
    candidates = catalogue(seed=3)
    rng = np.random.default_rng(0)
    plain = rerank(candidates, RerankConfig(), rng=rng)
    fresh = rerank(candidates, RerankConfig(weights=RankingWeights(relevance=1.0, freshness=3.0)), rng=rng)

    assert np.mean(candidates.age_days[fresh.indices]) < np.mean(candidates.age_days[plain.indices]) - 50


def test_scores_are_normalised_so_weights_are_comparable_across_units():
    # Margin in cents spans thousands, relevance spans one: equal weights still mean equal say.
    candidates = CandidateSet.from_arrays(["a", "b"], [1.0, 0.0], margin=[0.0, 5000.0])
    result = rerank(candidates, RerankConfig(weights=RankingWeights(relevance=1.0, margin=1.0)))
    assert [item.score for item in result.items] == [0.5, 0.5]


def test_answer_carries_scores_in_order_and_source_reasons():
    candidates = catalogue(seed=1)
    result = rerank(candidates, RerankConfig(size=20), rng=np.random.default_rng(0))

    scores = [item.score for item in result.items]
    assert len(result) == 20
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert set(result.reasons) <= {"embedding", "co_visitation", "trending", "history"}
    assert not result.backfilled


quota_shares = st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 1.0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 30),
    k=st.integers(1, 12),
    n_categories=st.integers(1, 6),
    n_brands=st.integers(1, 6),
    max_category=quota_shares,
    max_brand=quota_shares,
    min_outside=st.sampled_from([0.0, 0.1, 0.3, 0.5]),
    top_count=st.integers(0, 3),
    exploration=st.sampled_from([0.0, 0.2, 0.5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_diversity_quota_holds_on_every_answer_that_can_meet_it(
    n, k, n_categories, n_brands, max_category, max_brand, min_outside, top_count, exploration, seed
):
    rng = np.random.default_rng(seed)
    candidates = CandidateSet.from_arrays(
        np.arange(n),
        rng.random(n),
        category=rng.integers(0, n_categories, n),
        brand=rng.integers(0, n_brands, n),
        in_stock=rng.random(n) < 0.9,
        is_new=rng.random(n) < 0.5,
        impressions=rng.integers(0, 300, n),
    )
    quota = DiversityQuota(max_category, max_brand, min_outside)
    config = RerankConfig(diversity=quota, exploration=Exploration(share=exploration), size=k)
    top = set(range(top_count))

    result = rerank(candidates, config, top_categories=top, rng=rng)

    rows = np.flatnonzero(candidates.in_stock)
    expected_length = min(k, rows.size)
    assert len(result) == expected_length
    assert len(set(result.indices.tolist())) == expected_length
    assert set(result.indices.tolist()) <= set(rows.tolist())
    if expected_length == 0:
        return
    if quota_feasible(candidates, rows, expected_length, quota, top):
        assert not result.backfilled
        assert quota_holds(result, candidates, quota, top)
    else:
        assert result.backfilled
        assert result.relaxed
    if not result.backfilled:
        assert quota_holds(result, candidates, quota, top)


def test_quota_holds_on_every_answer_for_a_realistic_surface():
    candidates = catalogue()
    quota = DiversityQuota(max_share_per_category=0.2, max_share_per_brand=0.1, min_share_outside_top_categories=0.3)
    config = RerankConfig(diversity=quota, exploration=Exploration(share=0.15), size=20)
    rng = np.random.default_rng(7)
    for _ in range(300):
        result = rerank(candidates, config, top_categories={0, 1, 2}, rng=rng)
        assert len(result) == 20
        assert not result.backfilled
        assert quota_holds(result, candidates, quota, {0, 1, 2})


def test_interlocking_caps_are_repaired_instead_of_backfilled():
    # Greedy takes "best" (cat a, brand x) and is then stuck: the only full list is the other two.
    candidates = CandidateSet.from_candidates(
        [
            Candidate("best", relevance=1.0, category="a", brand="x"),
            Candidate("same-category", relevance=0.5, category="a", brand="y"),
            Candidate("same-brand", relevance=0.4, category="b", brand="x"),
        ]
    )
    quota = DiversityQuota(max_share_per_category=0.5, max_share_per_brand=0.5)
    result = rerank(candidates, RerankConfig(diversity=quota, size=2), rng=np.random.default_rng(0))

    assert sorted(result.item_ids) == ["same-brand", "same-category"]
    assert not result.backfilled


def test_an_unmeetable_quota_is_backfilled_and_says_so():
    candidates = CandidateSet.from_arrays(np.arange(30), np.linspace(0, 1, 30), category=["shoes"] * 30)
    quota = DiversityQuota(max_share_per_category=0.25)
    result = rerank(candidates, RerankConfig(diversity=quota, size=8), rng=np.random.default_rng(0))

    assert len(result) == 8
    assert result.backfilled
    assert result.relaxed == ("category",)
    assert result.item_ids == list(range(29, 21, -1))


def test_outside_top_categories_share_is_reserved():
    # The person's top category has all the best-scored items.
    n = 40
    relevance = np.r_[np.linspace(0.6, 1.0, 30), np.linspace(0.0, 0.4, 10)]
    categories = ["favourite"] * 30 + [f"other-{i}" for i in range(10)]
    candidates = CandidateSet.from_arrays(np.arange(n), relevance, category=categories)
    quota = DiversityQuota(min_share_outside_top_categories=0.3)
    result = rerank(candidates, RerankConfig(diversity=quota, size=10), top_categories={"favourite"})

    outside = [i for i in result.item_ids if i >= 30]
    assert len(outside) == 3
    assert not result.backfilled


def test_exploration_share_stays_within_binomial_bounds_over_1000_requests():
    candidates = catalogue(explorable_share=0.3)
    share, k, requests = 0.07, 20, 1000
    config = RerankConfig(exploration=Exploration(share=share), size=k)
    rng = np.random.default_rng(11)

    explored = 0
    for _ in range(requests):
        result = rerank(candidates, config, rng=rng)
        explored += result.exploring_count
        for item in result.items:
            if item.exploring:
                assert item.reason == EXPLORING
                assert candidates.is_new[item.index] or candidates.impressions[item.index] < 100

    # Two-sided bound with a one-in-a-million false alarm rate. round(0.07 * 20) = 1 slot would
    # give 1,000 and fail: the policy must be unbiased, not just bounded.
    slots = requests * k
    low, high = binom.ppf(5e-7, slots, share), binom.isf(5e-7, slots, share)
    assert low <= explored <= high


def test_no_exploration_without_a_share():
    candidates = catalogue(explorable_share=0.5)
    rng = np.random.default_rng(0)
    assert sum(rerank(candidates, RerankConfig(), rng=rng).exploring_count for _ in range(50)) == 0


def test_thompson_sampling_explores_the_item_that_earns_clicks_more_often():
    candidates = CandidateSet.from_candidates(
        [Candidate(f"known-{i}", relevance=1.0 - i / 100) for i in range(20)]
        + [
            Candidate("promising", relevance=0.0, is_new=True, clicks=8, impressions=10),
            Candidate("dud", relevance=0.0, is_new=True, clicks=0, impressions=10),
        ]
    )
    config = RerankConfig(exploration=Exploration(share=0.05), size=5)
    rng = np.random.default_rng(5)
    first_explored: Counter[str] = Counter()
    for _ in range(500):
        result = rerank(candidates, config, rng=rng)
        explored = [item.item_id for item in result.items if item.exploring]
        if explored:
            first_explored[explored[0]] += 1

    assert first_explored["promising"] > 5 * first_explored["dud"]


def test_out_of_stock_is_never_served_when_filtered():
    candidates = catalogue(seed=2)
    rng = np.random.default_rng(0)
    filtered = RerankConfig(filters=CandidateFilters(in_stock_only=True), exploration=Exploration(share=0.3))
    unfiltered = RerankConfig(filters=CandidateFilters(in_stock_only=False), size=100)

    for _ in range(200):
        assert candidates.in_stock[rerank(candidates, filtered, rng=rng).indices].all()
    assert not candidates.in_stock[rerank(candidates, unfiltered, rng=rng).indices].all()


def test_purchased_items_are_excluded_when_configured():
    candidates = catalogue(seed=4)
    rng = np.random.default_rng(0)
    excluding = RerankConfig(filters=CandidateFilters(exclude_purchased=True), size=100)
    keeping = RerankConfig(filters=CandidateFilters(exclude_purchased=False), size=100)

    assert not candidates.purchased_by_person[rerank(candidates, excluding, rng=rng).indices].any()
    assert candidates.purchased_by_person[rerank(candidates, keeping, rng=rng).indices].any()


@pytest.mark.parametrize("many", [False, True])
def test_excluded_categories_and_items_are_never_served(many):
    candidates = catalogue(seed=5)
    excluded_items = frozenset(range(0, 500, 2) if many else range(0, 20, 2))
    filters = CandidateFilters(exclude_categories=frozenset({1, 4}), exclude_items=excluded_items)
    config = RerankConfig(filters=filters, exploration=Exploration(share=0.5), size=100)
    rng = np.random.default_rng(0)

    for _ in range(50):
        result = rerank(candidates, config, rng=rng)
        assert not set(candidates.category[result.indices].tolist()) & {1, 4}
        assert not set(result.item_ids) & excluded_items
        assert len(result) == 100


def test_string_ids_and_categories_are_filtered_by_value():
    candidates = CandidateSet.from_candidates(
        [
            Candidate("sku-1", relevance=0.9, category="toys"),
            Candidate("sku-12", relevance=0.8, category="garden"),
            Candidate("sku-123", relevance=0.7, category="garden"),
        ]
    )
    filters = CandidateFilters(exclude_items=frozenset({"sku-12"}), exclude_categories=frozenset({"toys"}))
    assert rerank(candidates, RerankConfig(filters=filters)).item_ids == ["sku-123"]


def test_seeded_rng_makes_answers_reproducible():
    candidates = catalogue(seed=6)
    config = RerankConfig(
        diversity=DiversityQuota(max_share_per_category=0.2, max_share_per_brand=0.2),
        exploration=Exploration(share=0.3),
    )

    def answers(seed: int) -> list[list[tuple[int, str]]]:
        rng = np.random.default_rng(seed)
        return [[(item.item_id, item.reason) for item in rerank(candidates, config, rng=rng).items] for _ in range(20)]

    assert answers(42) == answers(42)
    assert answers(42) != answers(43)


def test_no_eligible_candidates_gives_an_empty_answer():
    candidates = CandidateSet.from_arrays([1, 2], [0.5, 0.4], in_stock=[False, False])
    result = rerank(candidates, RerankConfig())
    assert len(result) == 0
    assert result.eligible == 0
    assert not result.backfilled


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError):
        RankingWeights(relevance=0.0)
    with pytest.raises(ValueError):
        RankingWeights(margin=-1.0)
    with pytest.raises(ValueError):
        DiversityQuota(max_share_per_category=1.5)
    with pytest.raises(ValueError):
        Exploration(share=-0.1)
    with pytest.raises(ValueError):
        CandidateSet.from_arrays([1, 2], [0.5, 0.4], margin=[1.0])
