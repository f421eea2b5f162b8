"""Several ALS fits joined side by side: a person is folded into each fit on its own, and an item's
score is the sum of the fits' scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from personalization.engine.collaborative import ALSModel, BM25Weighting
from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.history import PersonContext

from .conftest import small_config
from .test_regime import write_tastes


def _weighting(items: int) -> BM25Weighting:
    rng = np.random.default_rng(1)
    matrix = sp.random(40, items, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    return BM25Weighting.fit(matrix)


def test_joined_fits_fold_a_person_into_each_fit_on_its_own() -> None:
    rng = np.random.default_rng(0)
    items = 30
    weighting = _weighting(items)
    first = ALSModel(rng.normal(size=(items, 4)).astype(np.float32), weighting, regularization=2.0, alpha=1.0)
    second = ALSModel(rng.normal(size=(items, 4)).astype(np.float32), weighting, regularization=2.0, alpha=1.0)
    joined = ALSModel(
        np.concatenate([first.item_factors, second.item_factors], axis=1),
        weighting,
        regularization=2.0,
        alpha=1.0,
        blocks=2,
    )
    taken = np.asarray([1, 5, 7, 12], dtype=np.int32)
    values = np.asarray([1.0, 3.0, 1.0, 2.0], dtype=np.float32)
    vector = joined.person_vector(taken, values)
    apart = np.concatenate([first.person_vector(taken, values), second.person_vector(taken, values)])
    np.testing.assert_allclose(vector, apart, rtol=1e-4, atol=1e-5)
    scores = joined.item_factors @ vector
    added = first.item_factors @ apart[:4] + second.item_factors @ apart[4:]
    np.testing.assert_allclose(scores, added, rtol=1e-4, atol=1e-4)
    # One fit of the joined width is a different model: its fold-in mixes the columns.
    single = ALSModel(joined.item_factors, weighting, regularization=2.0, alpha=1.0)
    assert not np.allclose(single.person_vector(taken, values), apart, atol=1e-3)


def test_without_a_clock_the_engine_joins_its_fits_and_keeps_them_when_saved(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "plain", timestamps=False))
    config = small_config(ranker_trees=30, als_factors_without_clock=4, als_fits_without_clock=2)
    engine = Engine.fit(dataset, config)
    assert engine.config.als_fits == 2
    assert engine.sources.als.blocks == 2
    assert engine.sources.als.item_factors.shape[1] == 8
    loaded = Engine.load(engine.save(tmp_path / "model"))
    assert loaded.sources.als.blocks == 2
    person = PersonContext(item_ids=["g1-0", "g1-1", "g2-0", "g2-3"], exclude=["g1-0", "g1-1", "g2-0", "g2-3"])
    assert [r.item_id for r in loaded.recommend(person, k=10)] == [r.item_id for r in engine.recommend(person, k=10)]
