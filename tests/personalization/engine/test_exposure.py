"""Learning from exposure: what was shown and not taken within the attribution window is a negative,
what was taken a positive weighed by its position's propensity, and exposure features of a training
row count only impressions (and clicks) from before the row's own time."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from personalization.engine.dataset import Dataset, load_interchange
from personalization.engine.engine import Engine, _exposure_training
from personalization.engine.examples import ExampleWindow, TrainingExamples, build_examples, temporal_windows
from personalization.engine.exposure import (
    ExposureIndex,
    ExposureLog,
    Propensity,
    estimate_propensity,
    taken_at,
)
from personalization.engine.features import FEATURE_NAMES
from personalization.engine.history import PersonContext

from .conftest import small_config

HOUR = 3600.0
DAY = 86400.0


def _log(rows: list[tuple[int, int, float, int, bool]]) -> ExposureLog:
    user, item, time, position, explored = zip(*rows, strict=True)
    return ExposureLog(
        np.asarray(user, np.int32),
        np.asarray(item, np.int32),
        np.asarray(time, np.float64),
        np.asarray(position, np.int16),
        np.asarray(explored, bool),
    )


def test_an_impression_is_taken_only_by_an_event_within_the_attribution_window() -> None:
    shown = _log(
        [(0, 5, 1000.0, 0, False), (1, 5, 1000.0, 1, False), (2, 5, 1000.0, 2, False), (3, 5, 1000.0, 0, False)]
    )
    # person 0 views after 2 h (taken); person 1 after 30 h (too late for a click);
    # person 2 viewed before it was shown (not taken); person 3 buys after 3 days (a purchase's window).
    user = np.asarray([0, 1, 2, 3], np.int32)
    item = np.asarray([5, 5, 5, 5], np.int32)
    time = np.asarray([1000.0 + 2 * HOUR, 1000.0 + 30 * HOUR, 900.0, 1000.0 + 3 * DAY])
    purchase = np.asarray([False, False, False, True])
    taken = taken_at(shown, user, item, time, purchase, click_window=24 * HOUR, purchase_window=7 * DAY)
    assert taken[0] == 1000.0 + 2 * HOUR
    assert np.isinf(taken[1])
    assert np.isinf(taken[2])
    assert taken[3] == 1000.0 + 3 * DAY
    # The same purchase after 8 days is outside the purchase window too.
    late = taken_at(
        shown,
        user,
        item,
        time + np.asarray([0, 0, 0, 5 * DAY]),
        purchase,
        click_window=24 * HOUR,
        purchase_window=7 * DAY,
    )
    assert np.isinf(late[3])


def test_item_counts_as_of_a_time_see_no_later_impression_nor_a_later_click() -> None:
    log = _log([(0, 1, 100.0, 0, False), (1, 1, 200.0, 0, False), (2, 1, 300.0, 0, False), (0, 2, 150.0, 0, False)])
    taken = np.asarray([250.0, np.inf, np.inf, np.inf])  # the first impression was clicked at 250
    index = ExposureIndex.build(log, taken, Propensity(np.ones(1), 0), 24 * HOUR)
    items = np.asarray([1, 2, 3], np.int32)
    shown_at_210, ratio_at_210 = index.item_figures(items, 210.0)
    assert shown_at_210.tolist() == [2.0, 1.0, 0.0]
    shown_at_260, ratio_at_260 = index.item_figures(items, 260.0)
    assert shown_at_260.tolist() == [2.0, 1.0, 0.0]
    # The click happened at 250: known at 260, not at 210, though its impression was at 100.
    assert ratio_at_260[0] > ratio_at_210[0]
    shown_at_100, _ = index.item_figures(items, 100.0)
    assert shown_at_100.tolist() == [0.0, 0.0, 0.0]  # strictly before: an impression at t is not known at t


def test_propensity_comes_from_explored_slots_only() -> None:
    rng = np.random.default_rng(3)
    n = 40_000
    position = rng.integers(0, 8, n)
    examined = 1.0 / (1.0 + position)  # the truth the estimate should find
    explored = rng.random(n) < 0.5
    clicked = rng.random(n) < 0.3 * examined
    # Outside exploration the ranking puts good items on top: a biased picture of position.
    clicked = np.where(explored, clicked, rng.random(n) < np.where(position == 0, 0.9, 0.01))
    log = ExposureLog(
        np.zeros(n, np.int32), np.zeros(n, np.int32), np.arange(n, dtype=float), position.astype(np.int16), explored
    )
    propensity = estimate_propensity(log, clicked, 8)
    assert propensity.explored == int(explored.sum())
    np.testing.assert_allclose(propensity.by_position, np.maximum(1.0 / (1.0 + np.arange(8)), 0.1), atol=0.06)
    # Without exploration traffic nothing is estimated: every position counts alike.
    none = estimate_propensity(log.subset(~explored), clicked[~explored], 8)
    assert none.explored == 0 and np.all(none.by_position == 1.0)


def _write_impressions(folder: Path, rows: list[tuple[str, str, datetime, int, bool]]) -> None:
    with open(folder / "impressions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "timestamp", "position", "explored"))
        for user_id, item_id, at, position, explored in rows:
            writer.writerow((user_id, item_id, at.isoformat(), position, int(explored)))


def _append_views(folder: Path, rows: list[tuple[str, str, datetime]]) -> None:
    with open(folder / "events.csv", "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for user_id, item_id, at in rows:
            writer.writerow((user_id, item_id, "view", at.isoformat()))


def _cutoff(folder: Path) -> datetime:
    dataset = load_interchange(folder)
    as_of = float(dataset.events.time.max()) + 1.0
    window = temporal_windows(dataset, as_of, small_config().horizon_days, 1)[0]
    return datetime.fromtimestamp(window.as_of, tz=UTC)


def _examples(folder: Path) -> tuple[Dataset, ExampleWindow, TrainingExamples]:
    dataset = load_interchange(folder)
    config = small_config()
    as_of = float(dataset.events.time.max()) + 1.0
    window = temporal_windows(dataset, as_of, config.horizon_days, 1)[0]
    exposure = _exposure_training(dataset, config, as_of)
    return dataset, window, build_examples(dataset, window, config, exposure=exposure)


def test_exposure_negatives_respect_the_attribution_window(shop: Callable[..., Path]) -> None:
    folder = shop(extra_items=[("NEWA", "brass lantern"), ("NEWB", "linen napkin")])
    cut = _cutoff(folder)
    shown_at = cut + timedelta(hours=1)
    quick = [f"p{p}" for p in range(0, 10)]
    slow = [f"p{p}" for p in range(10, 20)]
    _write_impressions(
        folder,
        [(person, "NEWA", shown_at, 0, False) for person in quick]
        + [(person, "NEWB", shown_at, 0, False) for person in slow],
    )
    # The quick ones view what they were shown within the day, the slow ones 30 hours later.
    _append_views(folder, [(p, "NEWA", shown_at + timedelta(hours=2)) for p in quick])
    _append_views(folder, [(p, "NEWB", shown_at + timedelta(hours=30)) for p in slow])
    dataset, _, examples = _examples(folder)
    new_a, new_b = dataset.catalogue.index["NEWA"], dataset.catalogue.index["NEWB"]
    rows_of = np.repeat(examples.group_people, examples.group_sizes)
    people = [dataset.user_index[p] for p in quick]
    a_rows = (examples.items == new_a) & np.isin(rows_of, people)
    b_rows = (examples.items == new_b) & np.isin(rows_of, [dataset.user_index[p] for p in slow])
    assert int(a_rows.sum()) == len(quick)  # everyone who took it has a list with it
    assert np.all(examples.labels[a_rows] == 1.0)
    assert b_rows.any() and np.all(examples.labels[b_rows] == 0.0)  # shown, taken too late: a negative
    assert examples.exposure_negatives >= int(b_rows.sum())


def test_a_training_row_never_sees_a_later_impression(shop: Callable[..., Path]) -> None:
    folder = shop()
    cut = _cutoff(folder)
    dataset = load_interchange(folder)
    items = dataset.catalogue.item_ids[:6]
    early = [
        (f"p{p}", item, cut - timedelta(days=3, hours=p), k, False) for p in range(30) for k, item in enumerate(items)
    ]
    _write_impressions(folder, early)
    _, _, before = _examples(folder)
    # The same impressions plus many more after the cut-off (and after each person's rows' time),
    # some of them clicked at once: none of this may change a feature of the window's rows.
    later = [
        (f"p{p}", item, cut + timedelta(hours=1 + p), k, True)
        for p in range(60)
        for k, item in enumerate(dataset.catalogue.item_ids)
    ]
    _write_impressions(folder, early + later)
    _append_views(folder, [(f"p{p}", dataset.catalogue.item_ids[0], cut + timedelta(hours=2 + p)) for p in range(60)])
    _, _, after = _examples(folder)
    columns = [FEATURE_NAMES.index(n) for n in FEATURE_NAMES if n.startswith("exposure_")]
    assert before.items is not None and after.items is not None
    assert np.nanmax(before.features[:, columns[0]]) > 0  # the early impressions are seen
    # Compare the rows the two share (the later impressions only add rows to the lists).
    for group, person in enumerate(before.group_people.tolist()):
        b_start = int(before.group_sizes[:group].sum())
        b_rows = slice(b_start, b_start + int(before.group_sizes[group]))
        match = np.flatnonzero(after.group_people == person)
        assert match.shape[0] == 1
        a_start = int(after.group_sizes[: match[0]].sum())
        a_items = after.items[a_start : a_start + int(after.group_sizes[match[0]])]
        a_features = after.features[a_start : a_start + int(after.group_sizes[match[0]])]
        where = {int(i): n for n, i in enumerate(a_items.tolist())}
        for n, item in enumerate(before.items[b_rows].tolist()):
            np.testing.assert_array_equal(before.features[b_start + n, columns], a_features[where[item], columns])


def test_a_fit_with_impressions_learns_from_them_and_serves_the_same_after_loading(
    shop: Callable[..., Path], tmp_path: Path
) -> None:
    folder = shop()
    dataset = load_interchange(folder)
    end = datetime.fromtimestamp(float(dataset.events.time.max()), tz=UTC)
    rng = np.random.default_rng(1)
    rows = []
    for day in range(40):
        for p in range(60):
            for k, item in enumerate(rng.choice(dataset.catalogue.item_ids, 4, replace=False).tolist()):
                rows.append((f"p{p}", item, end - timedelta(days=day, hours=3), k, bool(rng.random() < 0.3)))
    _write_impressions(folder, rows)
    engine = Engine.fit(load_interchange(folder), small_config())
    summary = engine.training_summary["exposure"]
    assert isinstance(summary, dict) and summary["impressions"] == len(rows)
    assert summary["negatives"] > 0
    assert engine.exposure is not None
    loaded = Engine.load(engine.save(tmp_path / "model"))
    assert loaded.exposure is not None
    person = PersonContext(
        item_ids=[dataset.catalogue.item_ids[0]],
        timestamps=[end.timestamp()],
        shown_item_ids=dataset.catalogue.item_ids[1:4],
        shown_timestamps=[end.timestamp() - 100.0] * 3,
        now=end.timestamp() + 10.0,
    )
    assert [r.item_id for r in engine.recommend(person, k=5)] == [r.item_id for r in loaded.recommend(person, k=5)]


def test_an_impression_whose_click_window_is_still_open_at_the_fit_is_no_negative() -> None:
    from personalization.engine.candidates import Candidates
    from personalization.engine.examples import _with_impressions
    from personalization.engine.exposure import ExposureTraining

    as_of = 100 * DAY
    # Item 3 shown two days before the fit and never taken: a negative. Item 4 shown an hour
    # before the fit: it may still be clicked tomorrow, so it is left out of the list.
    log = _log([(0, 3, as_of - 2 * DAY, 0, False), (0, 4, as_of - HOUR, 1, False)])
    none = np.zeros(0, np.int32)
    exposure = ExposureTraining.prepare(
        log, none, none, np.zeros(0), np.zeros(0, bool), click_window=24 * HOUR, purchase_window=7 * DAY, as_of=as_of
    )
    candidates = Candidates(np.asarray([1, 2], np.int32), np.zeros(2, np.float32), np.zeros(2, np.int8))
    listed, labels, _, added, negatives = _with_impressions(
        candidates, np.asarray([1.0, 0.0], np.float32), np.ones(2, np.float32), np.arange(2), exposure, none
    )
    assert listed.items.tolist() == [1, 2, 3]
    assert labels.tolist() == [1.0, 0.0, 0.0]
    assert (added, negatives) == (1, 1)


def test_impressions_follow_the_catalogue_when_a_split_keeps_only_items_with_events(shop: Callable[..., Path]) -> None:
    folder = shop(extra_items=[("NEVER", "copper kettle")])
    dataset = load_interchange(folder)
    first, last = dataset.catalogue.item_ids[0], dataset.catalogue.item_ids[-2]
    when = datetime.fromtimestamp(float(dataset.events.time.max()), tz=UTC)
    _write_impressions(
        folder, [("p1", "NEVER", when, 0, False), ("p1", first, when, 1, False), ("p2", last, when, 0, True)]
    )
    restricted = load_interchange(folder).restrict_catalogue_to_events()
    assert "NEVER" not in restricted.catalogue.index
    assert restricted.exposures is not None and len(restricted.exposures) == 2
    shown = [restricted.catalogue.item_ids[i] for i in restricted.exposures.item.tolist()]
    assert shown == [first, last]


def test_a_history_shorter_than_one_time_window_still_gives_the_ranker_lists(shop: Callable[..., Path]) -> None:
    # People re-buy (time windows are the lists), but no window's cut-off has any past yet.
    engine = Engine.fit(load_interchange(shop(days=40)), small_config(horizon_days=60.0))
    assert engine.training_summary["lists"] == "held-out share of each person"
    assert int(engine.training_summary["groups"]) > 0  # type: ignore[call-overload]
