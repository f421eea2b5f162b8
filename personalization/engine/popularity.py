"""Item statistics as of a point in time: popular, trending, per segment, new, repurchase habits.

Fitted on the events before ``as_of`` only, so the same object serves as a candidate source
(popular overall and per segment, trending, a pool of new and under-exposed items) and as the
source of item features for training examples built at that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personalization.engine.dataset import SECONDS_PER_DAY, EventLog

TOP_LIST_LENGTH = 1000
SEGMENT_LIST_LENGTH = 300
NEW_ITEM_DAYS = 30.0
UNDER_EXPOSED_PEOPLE = 3


def decay(age_days: np.ndarray, half_life_days: float) -> np.ndarray:
    return np.exp2(-np.maximum(age_days, 0.0) / half_life_days).astype(np.float32)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    n = min(n, scores.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")].astype(np.int32)


@dataclass
class Popularity:
    as_of: float
    count_7: np.ndarray  # float32 weighted events in the last 7 days
    count_14: np.ndarray
    count_30: np.ndarray
    count_90: np.ndarray
    count_all: np.ndarray
    people: np.ndarray  # float32 distinct people who touched the item
    popular: np.ndarray  # float32 decayed weighted count, half-life ``popular_half_life``
    trending: np.ndarray  # float32 decayed weighted count, half-life ``trending_half_life``
    segment_popular: np.ndarray  # float32 (segments, items), shares of each segment's activity
    first_seen_days: np.ndarray  # float32 days before as_of of the first event (NaN: never)
    last_seen_days: np.ndarray
    repurchase_rate: np.ndarray  # float32 share of the item's people who came back for it
    repeat_interval_days: np.ndarray  # float32 mean days between one person's repeats (NaN: none)
    popular_top: np.ndarray  # int32 item indices, best first
    trending_top: np.ndarray
    segment_top: np.ndarray  # int32 (segments, SEGMENT_LIST_LENGTH), -1 padded
    segment_trending: np.ndarray  # float32 (segments, items), like segment_popular with the trending half-life
    segment_trending_top: np.ndarray
    new_pool: np.ndarray  # int32 new and under-exposed items, newest first

    @classmethod
    def fit(
        cls,
        log: EventLog,
        *,
        n_items: int,
        user_segment: np.ndarray,
        n_segments: int,
        as_of: float,
        popular_half_life: float = 60.0,
        trending_half_life: float = 7.0,
    ) -> Popularity:
        age = (as_of - log.time) / SECONDS_PER_DAY
        w = log.weight.astype(np.float64)

        def count(mask: np.ndarray | None = None, values: np.ndarray = w) -> np.ndarray:
            if mask is None:
                return np.bincount(log.item, weights=values, minlength=n_items).astype(np.float32)
            return np.bincount(log.item[mask], weights=values[mask], minlength=n_items).astype(np.float32)

        popular_weight = w * decay(age, popular_half_life)
        popular = count(values=popular_weight)
        trending = count(values=w * decay(age, trending_half_life))

        segment = user_segment[log.user] if log.user.shape[0] else np.zeros(0, dtype=np.int32)
        segment_popular, segment_top = _segment_lists(segment, log.item, popular_weight, n_segments, n_items)
        trending_weight = w * decay(age, trending_half_life)
        segment_trending, segment_trending_top = _segment_lists(segment, log.item, trending_weight, n_segments, n_items)

        first_seen = np.full(n_items, np.nan, dtype=np.float32)
        last_seen = np.full(n_items, np.nan, dtype=np.float32)
        if log.item.shape[0]:
            first = np.full(n_items, np.inf)
            last = np.full(n_items, -np.inf)
            np.minimum.at(first, log.item, log.time)
            np.maximum.at(last, log.item, log.time)
            seen = np.isfinite(first)
            first_seen[seen] = (as_of - first[seen]) / SECONDS_PER_DAY
            last_seen[seen] = (as_of - last[seen]) / SECONDS_PER_DAY

        people, rate, interval = _repeat_habits(log, n_items)

        # New (first seen recently) and under-exposed (few people) items, plus catalogue items with
        # no events at all: exploration needs somewhere to start.
        never = np.isnan(first_seen)
        fresh = ~never & (first_seen <= NEW_ITEM_DAYS)
        thin = ~never & (people <= UNDER_EXPOSED_PEOPLE)
        pool = np.flatnonzero(never | fresh | thin)
        pool_age = np.where(never[pool], -1.0, first_seen[pool])
        new_pool = pool[np.lexsort((-people[pool], pool_age))].astype(np.int32)

        return cls(
            as_of=as_of,
            count_7=count(age < 7),
            count_14=count(age < 14),
            count_30=count(age < 30),
            count_90=count(age < 90),
            count_all=count(),
            people=people,
            popular=popular,
            trending=trending,
            segment_popular=segment_popular,
            first_seen_days=first_seen,
            last_seen_days=last_seen,
            repurchase_rate=rate,
            repeat_interval_days=interval,
            popular_top=_top(popular, TOP_LIST_LENGTH),
            trending_top=_top(trending, TOP_LIST_LENGTH),
            segment_top=segment_top,
            segment_trending=segment_trending,
            segment_trending_top=segment_trending_top,
            new_pool=new_pool[:TOP_LIST_LENGTH],
        )


def _segment_lists(
    segment: np.ndarray, items: np.ndarray, weights: np.ndarray, n_segments: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: each item's share of the segment's (weighted) activity, and the top items."""
    shares = np.zeros((n_segments, n_items), dtype=np.float32)
    known = segment >= 0
    if n_segments and np.any(known):
        np.add.at(shares, (segment[known], items[known]), weights[known])
        shares /= np.maximum(shares.sum(axis=1, keepdims=True), 1e-9)
    top_lists = np.full((n_segments, SEGMENT_LIST_LENGTH), -1, dtype=np.int32)
    for s in range(n_segments):
        top = _top(shares[s], SEGMENT_LIST_LENGTH)
        top = top[shares[s, top] > 0]
        top_lists[s, : top.shape[0]] = top
    return shares, top_lists


def _repeat_habits(log: EventLog, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: distinct people, share of them who bought on two or more days, mean gap in days."""
    people = np.zeros(n_items, dtype=np.float32)
    rate = np.zeros(n_items, dtype=np.float32)
    interval = np.full(n_items, np.nan, dtype=np.float32)
    if log.item.shape[0] == 0:
        return people, rate, interval
    day = np.floor(log.time / SECONDS_PER_DAY).astype(np.int64)
    triples = np.unique(np.stack([log.user.astype(np.int64), log.item.astype(np.int64), day], axis=1), axis=0)
    pair_key = triples[:, 0] * n_items + triples[:, 1]
    pairs, days_per_pair = np.unique(pair_key, return_counts=True)
    pair_item = (pairs % n_items).astype(np.int64)
    people = np.bincount(pair_item, minlength=n_items).astype(np.float32)
    repeaters = np.bincount(pair_item[days_per_pair > 1], minlength=n_items).astype(np.float32)
    rate = (repeaters / np.maximum(people, 1.0)).astype(np.float32)
    same_pair = pair_key[1:] == pair_key[:-1]
    gaps = (triples[1:, 2] - triples[:-1, 2])[same_pair].astype(np.float64)
    gap_item = triples[1:, 1][same_pair]
    gap_sum = np.bincount(gap_item, weights=gaps, minlength=n_items)
    gap_count = np.bincount(gap_item, minlength=n_items)
    has_gap = gap_count > 0
    interval[has_gap] = (gap_sum[has_gap] / gap_count[has_gap]).astype(np.float32)
    return people, rate, interval
