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
