"""Training examples are point-in-time correct: nothing at or after a cut-off leaks into them."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from personalization.engine.dataset import SECONDS_PER_DAY, load_interchange
from personalization.engine.examples import build_examples, temporal_windows
from personalization.engine.features import FEATURE_NAMES

from .conftest import small_config


def test_examples_see_only_events_before_their_cutoff(shop: Callable[..., Path]) -> None:
    dataset = load_interchange(shop())
    config = small_config()
    as_of = float(dataset.events.time.max()) + 1.0
    windows = temporal_windows(dataset, as_of, config.horizon_days, 3)
    assert len(windows) == 3
    for window in windows:
        examples = build_examples(dataset, window, config)
        assert examples.n_groups > 0
        assert np.all(examples.group_latest_history < window.as_of)
        assert all(t < window.as_of for t in examples.sources_fitted_until)
        assert np.all(examples.group_as_of == window.as_of)


def test_windows_side_by_side_unless_a_shorter_step_overlaps_them(shop: Callable[..., Path]) -> None:
    dataset = load_interchange(shop())
    as_of = float(dataset.events.time.max()) + 1.0
    day = SECONDS_PER_DAY
    side_by_side = temporal_windows(dataset, as_of, 14.0, 3)
    assert [(w.as_of, w.ends) for w in side_by_side] == [
        (as_of - 14 * k * day, as_of - 14 * (k - 1) * day) for k in (1, 2, 3)
    ]
    assert [(w.as_of, w.ends) for w in temporal_windows(dataset, as_of, 14.0, 3, 14.0)] == [
        (w.as_of, w.ends) for w in side_by_side
    ]
    overlapping = temporal_windows(dataset, as_of, 14.0, 3, 7.0)
    assert [w.as_of for w in overlapping] == [as_of - 14 * day, as_of - 21 * day, as_of - 28 * day]
    assert all(w.ends - w.as_of == 14 * day for w in overlapping)


def test_an_item_first_sold_after_the_cutoff_is_invisible_to_its_examples(
    shop: Callable[..., Path], tmp_path: Path
) -> None:
    folder = shop()
    dataset = load_interchange(folder)
    config = small_config()
    as_of = float(dataset.events.time.max()) + 1.0
    window = temporal_windows(dataset, as_of, config.horizon_days, 1)[0]
    # Everybody buys a brand-new item exactly at the cut-off: the labels may contain it, the
    # features may not know it sold at all.
    with open(folder / "events.csv", "a", encoding="utf-8") as handle:
        for person in range(60):
            stamp = np.datetime64(math.ceil(window.as_of), "s").astype(str)
            handle.write(f"p{person},LATE1,purchase,{stamp}+00:00\n")
    dataset = load_interchange(folder)
    window = temporal_windows(dataset, as_of, config.horizon_days, 1)[0]
    late = dataset.catalogue.index["LATE1"]
    examples = build_examples(dataset, window, config)
    assert examples.n_groups > 0

    from personalization.engine.candidates import CandidateSources

    past = dataset.events.subset(window.past)
    assert not np.any(past.item == late)
    sources = CandidateSources.fit(
        past,
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        texts=dataset.catalogue.texts,
        user_segment=dataset.user_segment,
        n_segments=len(dataset.segment_names),
        as_of=window.as_of,
        config=config,
    )
    assert sources.popularity.count_all[late] == 0
    sold = FEATURE_NAMES.index("item_count_all")
    assert examples.features[:, sold].max() > 0  # other items did sell
    assert sources.fitted_until < window.as_of


def test_sources_refuse_events_at_or_after_as_of(shop: Callable[..., Path]) -> None:
    from personalization.engine.candidates import CandidateSources

    dataset = load_interchange(shop())
    last = float(dataset.events.time.max())
    with pytest.raises(ValueError, match="before as_of"):
        CandidateSources.fit(
            dataset.events,
            n_users=dataset.n_users,
            n_items=dataset.n_items,
            texts=dataset.catalogue.texts,
            user_segment=dataset.user_segment,
            n_segments=len(dataset.segment_names),
            as_of=last - SECONDS_PER_DAY,
            config=small_config(),
        )
