"""The engine reads its data before it fits: no clock means no time, rare re-consumption means a
person's own items are never answers, and a ranker that validates worse than a source's own order
is not shipped."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from personalization.engine.candidates import SOURCES, TIMED_SOURCES
from personalization.engine.dataset import Dataset, EventLog, load_interchange
from personalization.engine.engine import Engine
from personalization.engine.examples import people_histories
from personalization.engine.features import FEATURE_NAMES, TIME_FEATURES, candidate_features
from personalization.engine.regime import read_regime
from personalization.engine.sequence import fit_transitions
from personalization.engine.timeline import ItemTimeline

from .conftest import small_config

START = datetime(2024, 1, 1, tzinfo=UTC)


def write_tastes(folder: Path, *, timestamps: bool, people: int = 200, groups: int = 20, per_group: int = 20) -> Path:
    """Ratings-like data: each person likes two of ``groups`` item groups and takes 12-20 distinct
    items, mostly from them, never the same item twice. Each group's items are taken in a fixed
    order (a "next" item exists), and the rows of late-comers and rarely taken items come last in
    the file, which is what made row numbers pass for time and rare items look new."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(people):
        liked = rng.choice(groups, 2, replace=False)
        start = float(rng.uniform(0, 200))
        taken: list[str] = []
        for n in range(int(rng.integers(12, 21))):
            group = int(liked[n % 2]) if rng.random() < 0.9 else int(rng.integers(groups))
            # popular items early in each group: a skewed pick, then the next not yet taken
            k = min(int(rng.geometric(0.12)) - 1, per_group - 1)
            while f"g{group}-{k}" in taken and k < per_group - 1:
                k += 1
            item = f"g{group}-{k}"
            if item in taken:
                continue
            taken.append(item)
            rows.append((f"p{p}", item, START + timedelta(days=start + n * 0.01)))
    for k in range(5):  # rarely taken items, last in the file: "new" if row numbers were time
        rows.append((f"p{k}", f"late-{k}", START + timedelta(days=400 + k)))
    rows.sort(key=lambda r: (r[2], r[0]))
    with open(folder / "events.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "event_type", "timestamp"))
        for user, item, when in rows:
            writer.writerow((user, item, "rating", when.isoformat() if timestamps else ""))
    return folder


def _fit(folder: Path, **overrides: object) -> tuple[Engine, Dataset]:
    dataset = load_interchange(folder)
    config = small_config(**{"ranker_trees": 60, "ranker_min_child_samples": 10, **overrides})
    return Engine.fit(dataset, config), dataset


def test_the_regime_is_read_from_the_history(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "t", timestamps=False))
    regime = read_regime(dataset)
    assert not regime.has_time
    assert regime.repeat_share == 0.0 and regime.rare_repeats
    assert regime.people == 200


def test_without_timestamps_no_time_source_no_time_feature_and_no_new_item_flood(tmp_path: Path) -> None:
    engine, dataset = _fit(write_tastes(tmp_path / "t", timestamps=False))
    assert engine.training_summary["regime"]["has_time"] is False  # type: ignore[index]
    assert engine.training_summary["lists"] == "held-out share of each person"
    people = np.arange(dataset.n_users)
    histories = people_histories(dataset.events, people, dataset.user_segment, engine.sources.as_of, 90.0)
    shown: Counter[int] = Counter()
    timed = {SOURCES.index(name) for name in TIMED_SOURCES}
    time_columns = [FEATURE_NAMES.index(name) for name in TIME_FEATURES]
    for person in people.tolist():
        history = histories[person]
        signals = engine.sources.signals(history, engine.config)
        candidates = engine.sources.generate(history, signals, engine.config, 50)
        assert not set(candidates.source.tolist()) & timed
        features = candidate_features(engine.sources, history, signals, candidates, engine.item_price)
        assert np.isnan(features[:, time_columns]).all()
        items, _, _ = engine.rank(history, 20)
        shown.update(items.tolist())
    # no item is pushed to everybody: at most a fifth of the lists hold any one item
    assert max(shown.values()) <= 0.2 * len(people)


def test_without_timestamps_als_has_its_own_number_of_factors(tmp_path: Path) -> None:
    no_clock, _ = _fit(write_tastes(tmp_path / "plain", timestamps=False), als_factors_without_clock=6)
    assert no_clock.config.als_factors == 6
    assert no_clock.sources.als.item_factors.shape[1] == 6
    timed, _ = _fit(write_tastes(tmp_path / "timed", timestamps=True), als_factors_without_clock=6)
    assert timed.config.als_factors == 8
    assert timed.sources.als.item_factors.shape[1] == 8


def test_where_re_consumption_is_rare_no_answer_is_an_item_the_person_has(tmp_path: Path) -> None:
    engine, dataset = _fit(write_tastes(tmp_path / "t", timestamps=True))
    assert engine.sources.exclude_seen
    histories = people_histories(dataset.events, np.arange(30), dataset.user_segment, None, 90.0)
    for history in histories.values():
        items, _, _ = engine.rank(history, 20)
        assert not set(items.tolist()) & set(history.unique_items.tolist())


def test_excluding_items_only_filters_the_list(tmp_path: Path) -> None:
    engine, dataset = _fit(write_tastes(tmp_path / "t", timestamps=True))
    histories = people_histories(dataset.events, np.arange(20), dataset.user_segment, None, 90.0)
    for history in histories.values():
        full, full_scores, _ = engine.rank(history, 60)
        excluded = full[1:12:2]  # every other item near the top
        kept, kept_scores, _ = engine.rank(history, 20, excluded=excluded)
        expected = [i for i in full.tolist() if i not in set(excluded.tolist())][:20]
        assert kept.tolist() == expected
        assert np.allclose(kept_scores, full_scores[np.isin(full, kept)][: kept.shape[0]])


def test_a_ranker_that_validates_worse_than_a_source_order_is_not_shipped(tmp_path: Path) -> None:
    # A ranker that cannot split (every leaf needs more rows than there are) scores all
    # candidates alike: it can never beat the sources' own orders, so the fit falls back.
    engine, _ = _fit(write_tastes(tmp_path / "t", timestamps=True), ranker_min_child_samples=10**7)
    choice = engine.training_summary["ranker_choice"]
    assert choice["chosen"] != "lightgbm", choice  # type: ignore[index]
    assert engine.ranker.booster is None and engine.ranker.fallback == choice["chosen"]  # type: ignore[index]
    figures = choice["validation_ndcg"]  # type: ignore[index]
    assert figures[choice["chosen"]] >= figures["lightgbm"]  # type: ignore[index]
    engine.save(tmp_path / "saved")
    assert Engine.load(tmp_path / "saved").ranker.fallback == engine.ranker.fallback


def test_a_trained_ranker_is_shipped_when_it_validates_better(tmp_path: Path) -> None:
    engine, _ = _fit(write_tastes(tmp_path / "t", timestamps=True))
    choice = engine.training_summary["ranker_choice"]
    figures = choice["validation_ndcg"]  # type: ignore[index]
    if choice["chosen"] == "lightgbm":  # type: ignore[index]
        assert engine.ranker.booster is not None
        assert figures["lightgbm"] > max(v for k, v in figures.items() if k != "lightgbm")
    else:
        assert engine.ranker.booster is None


def test_serving_ranks_fewer_candidates_only_where_the_ranker_learned_on_time_windows(
    tmp_path: Path, shop: Callable[..., Path]
) -> None:
    windows = Engine.fit(load_interchange(shop()), small_config(n_candidates=200, n_candidates_time_windows=150))
    assert windows.training_summary["lists"] == "time windows"
    assert windows.config.n_candidates == 150 and windows.training_summary["candidates"] == 150
    windows.save(tmp_path / "saved")
    assert Engine.load(tmp_path / "saved").config.n_candidates == 150
    held_out, _ = _fit(write_tastes(tmp_path / "t", timestamps=False), n_candidates=200, n_candidates_time_windows=150)
    assert held_out.training_summary["lists"] == "held-out share of each person"
    assert held_out.config.n_candidates == 200
    # A smaller count asked for is kept, whatever the lists.
    assert Engine.fit(load_interchange(shop()), small_config(n_candidates=40)).config.n_candidates == 40


def test_transitions_point_from_an_item_to_what_follows_it() -> None:
    # three people take 0 then 1 then 2; one takes 1 then 0
    user = np.asarray([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3], np.int32)
    item = np.asarray([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 0], np.int32)
    matrix = fit_transitions(_log(user, item, np.arange(11.0)), n_items=3, window=2, neighbours=10)
    assert matrix[0, 1] == 3.0 and matrix[1, 0] == 1.0
    assert matrix[0, 2] == 1.5  # two steps away counts half
    assert matrix[2, 0] == 0.0 and matrix[0, 0] == 0.0


def _log(user: np.ndarray, item: np.ndarray, times: np.ndarray) -> EventLog:
    n = user.shape[0]
    return EventLog(
        user=user,
        item=item,
        time=times,
        weight=np.ones(n, np.float32),
        quantity=np.ones(n, np.float32),
        session=np.arange(n),
        event_type=np.zeros(n, np.int16),
    )


def test_the_timeline_counts_events_before_a_moment() -> None:
    times = np.asarray([0.0, 86_400.0, 2 * 86_400.0, 10 * 86_400.0])
    log = _log(np.zeros(4, np.int32), np.asarray([1, 1, 2, 1], np.int32), times)
    timeline = ItemTimeline.fit(log)
    now = 3 * 86_400.0
    assert timeline.counts_before(np.asarray([1, 2, 0]), now, 7.0).tolist() == [2.0, 1.0, 0.0]
    assert timeline.counts_before(np.asarray([1]), now, 1.5).tolist() == [0.0]
    assert timeline.counts_before(np.asarray([1]), 11 * 86_400.0, 30.0).tolist() == [3.0]


def test_the_strongest_kind_of_event_in_the_data_counts_one(tmp_path: Path) -> None:
    # ratings alone are as strong as purchases: ALS's confidences do not shrink with the type's weight
    engine, _ = _fit(write_tastes(tmp_path / "t", timestamps=True))
    assert engine.event_weights["rating"] == 1.0
    assert engine.event_weights["view"] < 1.0 and engine.event_weights["purchase"] > 1.0
    from personalization.engine.history import PersonContext

    history = engine.history_for(PersonContext(item_ids=["g0-1", "g1-1"], event_types=["rating", "something else"]))
    assert history.weights.tolist() == [1.0, engine.event_weights["*"]]


def test_counting_several_spans_at_once_gives_each_span_its_own_row() -> None:
    day = 86_400.0
    times = np.asarray([1.0, 2.0, 5.0, 9.0, 9.5]) * day
    timeline = ItemTimeline.fit(_log(np.zeros(5, np.int32), np.asarray([1, 2, 1, 1, 2], np.int32), times))
    items, now = np.asarray([1, 2, 3]), 10 * day
    together = timeline.counts_before(items, now, (2.0, 6.0, 1e5))
    for row, span in enumerate((2.0, 6.0, 1e5)):
        assert together[row].tolist() == timeline.counts_before(items, now, span).tolist()
    assert together.tolist() == [[1.0, 1.0, 0.0], [2.0, 1.0, 0.0], [3.0, 2.0, 0.0]]


def test_the_timeline_counts_as_a_plain_count_would_before_inside_and_after_the_log() -> None:
    day = 86_400.0
    rng = np.random.default_rng(4)
    items = rng.integers(0, 40, 3_000).astype(np.int32)
    times = 1_000.0 + rng.random(3_000) * 200 * day
    timeline = ItemTimeline.fit(_log(np.zeros(3_000, np.int32), items, times))
    asked = np.asarray([39, 0, 7, 7, 55, 12, 3])  # unsorted, a repeat, one item the log never saw
    spans = (7.0, 30.0, 90.0, 1e5)
    for now in (500.0, 50 * day, 150 * day, 201 * day + 1_000.0, 400 * day):  # before, inside, after
        counts = timeline.counts_before(asked, now, spans)
        for row, span in enumerate(spans):
            plain = [((items == i) & (times >= now - span * day) & (times < now)).sum() for i in asked.tolist()]
            assert counts[row].tolist() == [float(c) for c in plain], (now, span)


@pytest.mark.parametrize("catalogue", [30, 5_000], ids=["searched per item", "counted over the keys"])
def test_after_the_log_the_counts_of_a_minute_come_from_one_table_of_every_item(catalogue: int) -> None:
    day = 86_400.0
    rng = np.random.default_rng(5)
    items = rng.integers(0, catalogue, 2_000).astype(np.int32)
    times = rng.random(2_000) * 100 * day
    timeline = ItemTimeline.fit(_log(np.zeros(2_000, np.int32), items, times))
    asked, spans = np.asarray([29, 3, 3, 0, 70, int(items.max()), 9_999]), (7.0, 30.0, 1e5)
    for now in (100 * day + 3_599.0, 103 * day + 30.0, 140 * day):
        minute = now // 60 * 60
        assert timeline.counts_before(asked, now, spans, by_minute=True).tolist() == (
            timeline.counts_before(asked, minute, spans).tolist()
        )
    table = timeline._after_log
    timeline.counts_before(asked[:2], 140 * day + 59.0, spans, by_minute=True)
    assert timeline._after_log is table  # the same minute: no new table
    inside = 50 * day + 17.0  # inside the log: searched exactly, never rounded
    assert timeline.counts_before(asked, inside, spans, by_minute=True).tolist() == (
        timeline.counts_before(asked, inside, spans).tolist()
    )


def test_a_ranker_gain_inside_the_noise_of_the_lists_is_not_a_gain() -> None:
    from personalization.engine.ranker import gain_interval

    rng = np.random.default_rng(3)
    order = rng.uniform(0.0, 1.0, 500)
    noisy = np.clip(order + rng.normal(0.002, 0.2, 500), 0.0, 1.0)  # a mean gain far below its noise
    low, high = gain_interval(noisy, order, seed=0)
    assert low < 0 < high
    better = np.clip(order + rng.normal(0.05, 0.05, 500), 0.0, 1.0)
    assert gain_interval(better, order, seed=0)[0] > 0
