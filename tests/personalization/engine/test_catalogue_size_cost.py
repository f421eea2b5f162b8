"""A request's work does not grow with the catalogue: neighbours precomputed at fit time, scores over
candidates only, catalogue-wide arrays memory-mapped from the saved files."""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from personalization.engine.candidates import Signals
from personalization.engine.content import ContentIndex
from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.history import PersonContext
from personalization.engine.item_ids import ItemIds
from personalization.engine.similarity import SparseScores

from .conftest import START, small_config

DAY = 86_400.0


def test_a_persons_signals_hold_no_array_as_long_as_the_catalogue(shop: Callable[..., Path]) -> None:
    dataset = load_interchange(shop(extra_items=[(f"NEW{n:03d}", f"plain box {n}") for n in range(300)]))
    engine = Engine.fit(dataset, small_config())
    n_items = len(engine.item_ids)
    history = engine.history_for(PersonContext(item_ids=["TEARE", "TEABL", "GARBL"], segment="Spain"))

    signals = engine.sources.signals(history, engine.config)

    for f in fields(Signals):
        value = getattr(signals, f.name)
        if isinstance(value, SparseScores):
            assert value.items.shape[0] < n_items / 2, f.name  # only the neighbours of three items
        elif isinstance(value, np.ndarray):
            assert value.shape[0] != n_items, f.name


def test_the_content_source_proposes_an_item_nobody_touched_from_its_precomputed_neighbours(
    shop: Callable[..., Path],
) -> None:
    dataset = load_interchange(shop(extra_items=[("NEWTEA", "red tea cup with saucer")]))
    engine = Engine.fit(dataset, small_config())
    neighbours = engine.sources.content.neighbours
    new, red_tea = engine.item_index["NEWTEA"], engine.item_index["TEARE"]

    assert neighbours is not None and neighbours[red_tea, new] > 0  # found at fit time, by text alone
    assert neighbours[red_tea, red_tea] == pytest.approx(1.0)  # itself, so sums are the profile's cosine
    assert neighbours.getrow(new).nnz == 0  # nobody touched it: no row, nothing computed for it
    history = engine.history_for(PersonContext(item_ids=["TEARE"]))
    signals = engine.sources.signals(history, engine.config)
    assert signals.content is not None and new in signals.content.best(50).tolist()
    # The ranking feature is the exact cosine with the person's profile, for the candidates only.
    exact = engine.sources.content.scores(signals.content_profile, np.asarray([new]))  # type: ignore[arg-type]
    assert signals.content_scores(engine.sources.content, np.asarray([new]))[0] == pytest.approx(exact[0])  # type: ignore[index]


def test_content_neighbours_cut_a_common_terms_postings_but_keep_rare_terms_whole() -> None:
    texts = [f"common word {n}" for n in range(50)] + ["rare gem common", "rare gem stone"]
    content = ContentIndex.fit(texts, max_share=1.0)

    content.with_neighbours(np.asarray([50]), k=5, max_postings=3)

    assert content.neighbours is not None
    row = content.neighbours.getrow(50)
    assert 51 in row.indices.tolist()  # shares the rare terms: always found
    assert row.nnz <= 5


def test_a_loaded_engine_maps_its_arrays_instead_of_copying_them(shop: Callable[..., Path], tmp_path: Path) -> None:
    engine = Engine.fit(load_interchange(shop()), small_config())
    loaded = Engine.load(engine.save(tmp_path / "model"))

    for array in (
        loaded.sources.als.item_factors,
        loaded.sources.popularity.popular,
        loaded.sources.covisitation.data,
        loaded.sources.timeline.keys,
    ):
        assert _mapped(array)
    assert isinstance(loaded.item_ids, ItemIds) and _mapped(loaded.item_ids.ids)
    person = PersonContext(item_ids=["TEARE", "GARBL"], timestamps=[START.timestamp() + 90 * DAY] * 2)
    assert [r.item_id for r in loaded.recommend(person, k=5)] == [r.item_id for r in engine.recommend(person, k=5)]


def _mapped(array: object) -> bool:
    """Whether the array's memory is a mapping of a file (through any chain of views)."""
    while array is not None:
        if isinstance(array, np.memmap | mmap.mmap):
            return True
        array = getattr(array, "base", None)
    return False


def test_item_ids_are_found_in_one_search_and_unknown_ones_are_not() -> None:
    ids = ItemIds.of(["b-2", "a-1", "café", "a-10"])

    found = ids.positions(["a-1", "café", "nope", "a-10", "a-1-but-longer-than-any", "b-2"])

    assert found.tolist() == [1, 2, -1, 3, -1, 0]
    assert ids[2] == "café" and ids.take(np.asarray([3, 0])) == ["a-10", "b-2"]
    assert ids.positions([]).shape == (0,)
