"""A saved and reloaded engine recommends exactly what the fitted one did."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.history import PersonContext

from .conftest import START, small_config


def test_round_trip_gives_identical_recommendations(shop: Callable[..., Path], tmp_path: Path) -> None:
    dataset = load_interchange(shop())
    engine = Engine.fit(dataset, small_config())
    assert engine.ranker.booster is not None  # the LightGBM path, not the fallback
    folder = engine.save(tmp_path / "model")
    assert (folder / "ranker.txt").exists() and (folder / "retrieval.faiss").exists()
    loaded = Engine.load(folder)

    day = 86_400.0
    people = [
        PersonContext(
            item_ids=["TEARE", "TEABL"], timestamps=[START.timestamp() + 90 * day, START.timestamp() + 95 * day]
        ),
        PersonContext(item_ids=["GARBL", "WOOPI", "GARBL"], segment="Spain"),
        PersonContext(item_ids=[], segment="Norway"),
        PersonContext(item_ids=["unknown-item"]),
    ]
    for person in people:
        before = engine.recommend(person, k=10)
        after = loaded.recommend(person, k=10)
        assert [r.item_id for r in before] == [r.item_id for r in after]
        assert [r.score for r in before] == pytest.approx([r.score for r in after], abs=1e-6)
        assert len(before) == 10


def test_loading_rejects_an_artifact_from_other_features(shop: Callable[..., Path], tmp_path: Path) -> None:
    import json

    folder = Engine.fit(load_interchange(shop()), small_config()).save(tmp_path / "model")
    meta = json.loads((folder / "engine.json").read_text())
    meta["features"] = meta["features"][:-1]
    (folder / "engine.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="retrain"):
        Engine.load(folder)


def test_the_compiled_ranker_scores_as_lightgbm_and_is_kept_for_the_next_process(
    shop: Callable[..., Path], tmp_path: Path
) -> None:
    import numpy as np

    from personalization.engine.features import candidate_features

    folder = Engine.fit(load_interchange(shop()), small_config()).save(tmp_path / "model")
    engine = Engine.load(folder)
    person = PersonContext(item_ids=["GARBL", "WOOPI", "TEARE"], segment="Spain")
    history = engine.history_for(person)
    signals = engine.sources.signals(history, engine.config)
    candidates = engine.sources.generate(history, signals, engine.config, 200)
    features = candidate_features(engine.sources, history, signals, candidates, engine.item_price)
    by_lightgbm = engine.ranker.score(features)

    assert engine.ranker.compile()
    assert engine.ranker.compiled is not None
    np.testing.assert_allclose(engine.ranker.score(features), by_lightgbm, rtol=1e-6, atol=1e-6)
    objects = list(folder.glob("ranker.*.o"))
    assert len(objects) == 1 and objects[0].stat().st_size > 0

    # The next process loads the object instead of compiling again.
    stamp = objects[0].stat().st_mtime_ns
    again = Engine.load(folder)
    assert again.ranker.compile()
    np.testing.assert_allclose(again.ranker.score(features), by_lightgbm, rtol=1e-6, atol=1e-6)
    assert objects[0].stat().st_mtime_ns == stamp
    assert [r.item_id for r in again.recommend(person, k=10)] == [r.item_id for r in engine.recommend(person, k=10)]
