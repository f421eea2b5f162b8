"""Re-ranking latency: top-20 out of 500 candidates, per request, beside a plain numpy top-k.

Each row re-ranks the same 500 scored candidates (12 categories, 40 brands, a third of them new or
under-exposed) many times and reports the median and 99th percentile per request. The baseline is
the least any re-ranker must do: sort by relevance and take the first 20 (``np.argsort``). The
service's whole budget for a recommendation is 25 ms at p99.

    .venv/bin/python -m bench.rerank --requests 5000 --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from personalization.reranking import (
    CandidateFilters,
    CandidateSet,
    DiversityQuota,
    Exploration,
    RankingWeights,
    RerankConfig,
    rerank,
)


def candidates(n: int, rng: np.random.Generator, labels: bool) -> CandidateSet:
    category = rng.integers(0, 12, n)
    brand = rng.integers(0, 40, n)
    return CandidateSet.from_arrays(
        np.arange(n),
        rng.random(n),
        margin=rng.random(n),
        age_days=rng.integers(0, 365, n),
        stock=rng.integers(0, 200, n),
        popularity=rng.pareto(1.5, n) * 10,
        category=np.array([f"category-{c}" for c in category], dtype=object) if labels else category,
        brand=np.array([f"brand-{b}" for b in brand], dtype=object) if labels else brand,
        in_stock=rng.random(n) < 0.9,
        purchased_by_person=rng.random(n) < 0.05,
        is_new=rng.random(n) < 0.1,
        clicks=rng.integers(0, 5, n),
        impressions=rng.integers(0, 600, n),
        source=rng.choice(["embedding", "co_visitation", "trending", "history", "new_items"], n).astype(object),
    )


def measure(run: Callable[[], object], requests: int) -> tuple[float, float]:
    for _ in range(min(200, requests)):
        run()
    times = np.empty(requests)
    for i in range(requests):
        started = time.perf_counter()
        run()
        times[i] = time.perf_counter() - started
    return float(np.median(times) * 1e6), float(np.quantile(times, 0.99) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    coded = candidates(args.candidates, rng, labels=False)
    labelled = candidates(args.candidates, rng, labels=True)
    weights = RankingWeights(relevance=1.0, margin=0.3, freshness=0.2, stock=0.1, popularity=0.2)
    filters = CandidateFilters(in_stock_only=True, exclude_purchased=True, exclude_items=frozenset(range(0, 500, 7)))
    quota = DiversityQuota(max_share_per_category=0.25, max_share_per_brand=0.15, min_share_outside_top_categories=0.3)
    full = RerankConfig(weights, filters, quota, Exploration(share=0.1), size=args.size)
    draws = np.random.default_rng(args.seed + 1)

    def baseline() -> object:
        return np.argsort(-coded.relevance)[: args.size]

    rows: list[tuple[str, Callable[[], object]]] = [
        ("baseline: np.argsort by relevance, first k", baseline),
        ("relevance only", lambda: rerank(coded, RerankConfig(size=args.size), rng=draws)),
        ("five weights", lambda: rerank(coded, RerankConfig(weights, size=args.size), rng=draws)),
        ("weights + filters", lambda: rerank(coded, RerankConfig(weights, filters, size=args.size), rng=draws)),
        (
            "weights + filters + quota",
            lambda: rerank(
                coded, RerankConfig(weights, filters, quota, size=args.size), rng=draws, top_categories={0, 1}
            ),
        ),
        ("full (+ exploration 10%)", lambda: rerank(coded, full, rng=draws, top_categories={0, 1})),
        (
            "full, string categories and brands",
            lambda: rerank(labelled, full, rng=draws, top_categories={"category-0", "category-1"}),
        ),
    ]

    print(f"{args.candidates} candidates -> top {args.size}, {args.requests} requests each, seed {args.seed}")
    print()
    print("| configuration | median µs | p99 µs | median / baseline |")
    print("|---|---:|---:|---:|")
    base_median = None
    for name, run in rows:
        median, p99 = measure(run, args.requests)
        base_median = base_median or median
        print(f"| {name} | {median:.0f} | {p99:.0f} | {median / base_median:.1f}x |")


if __name__ == "__main__":
    main()
