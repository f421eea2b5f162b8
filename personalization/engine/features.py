"""Ranking features for (person, candidate) pairs: the one function training and serving share.

Training examples and ``Engine.recommend`` both call ``candidate_features`` with a ``History``,
the person's ``Signals`` and the fitted ``CandidateSources``; nothing else computes features, so
what the ranker learned on is what it sees when serving. Missing information (no timestamps, no
text, no segment, an item the person never touched) is NaN, which LightGBM treats as missing.
"""

from __future__ import annotations

import numpy as np

from personalization.engine.candidates import Candidates, CandidateSources, Signals
from personalization.engine.exposure import ExposureIndex, person_figures
from personalization.engine.history import History

# Each feature, and whether it only means something with real timestamps: without them those are
# missing (NaN), so that the order of rows in a file never passes for time.
_FEATURES: tuple[tuple[str, bool], ...] = (
    # the person and this item
    ("history_count", False),
    ("history_decayed", True),
    ("history_quantity", False),
    ("history_active_days", True),
    ("history_days_since_last", True),
    ("history_days_since_first", True),
    ("history_repeat_due", True),
    ("history_order_share", True),
    ("history_in_last_visit", True),
    ("history_gap_ratio", True),
    # collaborative and neighbourhood scores
    ("als_score", False),
    ("als_rank", False),
    ("als_gap_to_best", False),
    ("ease_score", False),
    ("ease_rank", False),
    ("item_knn_score", False),
    ("covisitation_recent", True),
    ("covisitation_all", False),
    ("covisitation_rank", True),
    ("content_score", False),
    ("candidate_best_rank", False),
    ("candidate_source", False),
    # the item
    ("item_count_7", True),
    ("item_count_14", True),
    ("item_count_30", True),
    ("item_count_90", True),
    ("item_count_all", False),
    ("item_people", False),
    ("item_trend", True),
    ("item_trending", True),
    ("item_segment_share", False),
    ("item_segment_trending", True),
    ("item_first_seen_days", True),
    ("item_last_seen_days", True),
    ("item_repurchase_rate", False),
    ("item_repeat_interval", True),
    ("item_price", False),
    # the person
    ("person_events", False),
    ("person_items", False),
    ("person_active_days", True),
    ("person_span_days", True),
    ("person_days_since_last", True),
    ("person_visit_rate", True),
    ("person_events_per_visit", True),
    ("person_repeat_share", False),
    # what people take next, and what was popular just before this person's now
    ("sequence_score", True),
    ("sequence_share", True),
    ("sequence_rank", True),
    ("item_recent_7", True),
    ("item_recent_30", True),
    ("item_recent_90", True),
    ("item_before_now", True),
    # what was shown (``exposure``): point-in-time, NaN when the fit had no impressions
    ("exposure_item_shown", True),
    ("exposure_item_click_through", True),
    ("exposure_person_shown", True),
    ("exposure_person_ignored", True),
)
FEATURE_NAMES = tuple(name for name, _ in _FEATURES)
TIME_FEATURES = frozenset(name for name, needs_time in _FEATURES if needs_time)
CATEGORICAL_FEATURES = ("candidate_source",)
_TIME_COLUMNS = np.asarray([name in TIME_FEATURES for name in FEATURE_NAMES])


def _rank_share(scores: np.ndarray) -> np.ndarray:
    """Rank within this person's candidates, 0 = best: comparable across people whose raw score
    scales differ, and the same for the best items whether 100 candidates are ranked (training
    lists) or 500 (serving), since the shorter list is the head of the longer."""
    n = scores.shape[0]
    if n == 0:
        return scores.astype(np.float32)
    ranks = np.empty(n, dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(n, dtype=np.float32)
    return ranks


def candidate_features(
    sources: CandidateSources,
    history: History,
    signals: Signals,
    candidates: Candidates,
    item_price: np.ndarray,
    exposure: ExposureIndex | None = None,
) -> np.ndarray:
    """One row per candidate, ``FEATURE_NAMES`` in order. ``exposure`` (the fit's impressions) adds
    how often each item was shown and taken before ``history.now``, and how often to this person
    (``history.shown_items``): known at the row's own time, never later."""
    items = candidates.items
    n = items.shape[0]
    nan = np.full(n, np.nan, dtype=np.float32)
    position = history.lookup(items)
    touched = position >= 0
    at = np.where(touched, position, 0)

    def from_history(values: np.ndarray, missing: float = 0.0) -> np.ndarray:
        if values.shape[0] == 0:
            return np.full(n, missing, dtype=np.float32)
        return np.where(touched, values[at], missing).astype(np.float32)

    popularity = sources.popularity
    days_since_last = from_history(history.days_since_last, np.nan)
    interval = popularity.repeat_interval_days[items]
    als = sources.als.item_factors[items] @ signals.als_vector
    ease = signals.ease[items] if signals.ease is not None else nan
    covisitation_recent = signals.covisitation_recent[items]
    if history.segment >= 0 and history.segment < popularity.segment_popular.shape[0]:
        segment_share = popularity.segment_popular[history.segment, items]
        segment_trending = popularity.segment_trending[history.segment, items]
    else:
        segment_share = segment_trending = nan
    count_7, count_30 = popularity.count_7[items], popularity.count_30[items]
    content = signals.content_scores(sources.content, items)
    active_days = from_history(history.active_days)
    # The person's typical gap between visits: "due again" is relative to how often they come.
    mean_gap = history.span_days / (history.n_days - 1.0) if history.n_days > 1 else np.nan
    # How much of what this person buys they buy again: a wholesaler restocking vs a browser.
    n_unique = history.unique_items.shape[0]
    repeat_share = float((history.active_days > 1).sum()) / n_unique if n_unique else np.nan

    columns = [
        from_history(history.counts),
        from_history(history.decayed),
        from_history(history.quantity_sum),
        from_history(history.active_days),
        days_since_last,
        from_history(history.days_since_first, np.nan),
        days_since_last / np.where(interval > 0, interval, np.nan),
        active_days / max(history.n_days, 1.0),
        (days_since_last <= history.days_since_any + 1.0).astype(np.float32),
        days_since_last / mean_gap,
        als,
        _rank_share(als),
        als - (als.max() if n else 0.0),
        ease,
        _rank_share(ease) if signals.ease is not None else nan,
        signals.item_knn[items],
        covisitation_recent,
        signals.covisitation_all[items],
        _rank_share(covisitation_recent),
        content if content is not None else nan,
        candidates.best_rank,
        candidates.source.astype(np.float32),
        count_7,
        popularity.count_14[items],
        count_30,
        popularity.count_90[items],
        popularity.count_all[items],
        popularity.people[items],
        (count_7 + 1.0) / (count_30 * (7.0 / 30.0) + 1.0),
        popularity.trending[items],
        segment_share,
        segment_trending,
        popularity.first_seen_days[items],
        popularity.last_seen_days[items],
        popularity.repurchase_rate[items],
        interval,
        item_price[items],
        np.full(n, history.n_events, dtype=np.float32),
        np.full(n, history.unique_items.shape[0], dtype=np.float32),
        np.full(n, history.n_days, dtype=np.float32),
        np.full(n, history.span_days, dtype=np.float32),
        np.full(n, history.days_since_any, dtype=np.float32),
        np.full(n, history.n_days / max(history.span_days, 1.0), dtype=np.float32),
        np.full(n, history.n_events / max(history.n_days, 1.0), dtype=np.float32),
        np.full(n, repeat_share, dtype=np.float32),
    ]
    if sources.has_time:
        sequence = signals.sequence[items]
        recent_7, recent_30, recent_90, before_now = sources.timeline.counts_before(
            items, history.now, (7.0, 30.0, 90.0, 1e5), by_minute=True
        )
        columns += [
            sequence,
            sequence / (popularity.people[items] + 1.0),
            _rank_share(sequence),
            recent_7,
            recent_30,
            recent_90,
            before_now,
        ]
    else:
        columns += [nan] * 7
    if exposure is not None and sources.has_time:
        shown, click_through = exposure.item_figures(items, history.now)
        person_shown, person_ignored = person_figures(
            items,
            history.shown_items,
            history.shown_times,
            history.items,
            history.times,
            history.now,
            exposure.click_window,
        )
        columns += [shown, click_through, person_shown, person_ignored]
    else:
        columns += [nan] * 4
    features = np.column_stack(columns).astype(np.float32, copy=False)
    if not sources.has_time:
        features[:, _TIME_COLUMNS] = np.nan
    return features
