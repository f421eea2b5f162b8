"""A new item that nobody has bought yet is found through its text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from personalization.engine.candidates import SOURCES
from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.history import PersonContext

from .conftest import small_config

NEW_ITEMS = [("NEWTEA", "porcelain tea cup with saucer"), ("NEWTOY", "plastic robot")]


def _tea_lover() -> PersonContext:
    return PersonContext(item_ids=["TEARE", "TEABL", "TEAGR"])


def _candidates(engine: Engine) -> list[str]:
    history = engine.history_for(_tea_lover())
    signals = engine.sources.signals(history, engine.config)
    candidates = engine.sources.generate(history, signals, engine.config, 50)
    assert set(SOURCES[s] for s in candidates.source) <= {"history", "content"}
    return [engine.item_ids[i] for i in candidates.items]


def test_new_item_is_retrieved_by_content_similarity(shop: Callable[..., Path]) -> None:
    dataset = load_interchange(shop(extra_items=NEW_ITEMS))
    assert not np.any(dataset.events.item == dataset.catalogue.index["NEWTEA"])
    # Only the person's own items and content similarity may propose: no popularity, no exploration.
    engine = Engine.fit(dataset, small_config(quotas={"history": 10, "content": 4}))
    proposed = _candidates(engine)
    assert "NEWTEA" in proposed
    assert "NEWTOY" not in proposed

    history = engine.history_for(_tea_lover())
    scores = engine.sources.signals(history, engine.config).content
    assert scores is not None
    untouched = np.setdiff1d(np.arange(len(engine.item_ids)), history.unique_items)
    closest = untouched[np.argsort(-scores[untouched])[:4]]
    assert engine.item_index["NEWTEA"] in closest
    assert scores[engine.item_index["NEWTOY"]] == 0.0


def test_without_content_similarity_the_new_item_is_not_proposed(shop: Callable[..., Path]) -> None:
    dataset = load_interchange(shop(extra_items=NEW_ITEMS))
    engine = Engine.fit(dataset, small_config(quotas={"history": 10, "content": 0}))
    assert "NEWTEA" not in _candidates(engine)


def test_similar_items_come_from_the_same_theme_and_reach_new_items(shop: Callable[..., Path]) -> None:
    engine = Engine.fit(load_interchange(shop(extra_items=NEW_ITEMS)), small_config())
    similar = engine.similar_items("TEARE", k=5)
    assert len(similar) == 5
    assert similar[0].source == "covisitation"
    assert all(r.item_id.startswith(("TEA", "NEWTEA")) for r in similar[:4])
    # A brand-new item has no co-visitation yet; its text still finds its neighbours.
    fresh = engine.similar_items("NEWTEA", k=3)
    assert fresh and all(r.source == "content" and r.item_id.startswith("TEA") for r in fresh)


def test_positions_the_caller_looked_up_give_the_same_history(shop: Callable[..., Path]) -> None:
    engine = Engine.fit(load_interchange(shop()), small_config(quotas={"history": 10, "content": 4}))
    ids = ["TEARE", "NOSUCH", "TEABL", "TEARE"]
    person = PersonContext(item_ids=ids, timestamps=[1.0, 2.0, 3.0, 4.0])
    looked_up = PersonContext(
        item_ids=ids, timestamps=[1.0, 2.0, 3.0, 4.0], item_positions=engine.item_index.positions(ids)
    )
    plain, given = engine.history_for(person), engine.history_for(looked_up)
    assert plain.items.tolist() == given.items.tolist() and plain.items.shape[0] == 3
    np.testing.assert_array_equal(plain.times, given.times)
    np.testing.assert_array_equal(plain.weights, given.weights)
