"""A request's work does not grow with the catalogue: neighbours precomputed at fit time, scores over
candidates only, catalogue-wide arrays memory-mapped from the saved files."""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import faiss
import numpy as np
import pytest

from personalization.engine.candidates import Signals
from personalization.engine.content import ContentIndex
from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine
from personalization.engine.examples import fit_window_sources, temporal_windows
from personalization.engine.history import PersonContext
from personalization.engine.item_ids import ItemIds
from personalization.engine.retrieval import VectorIndex
from personalization.engine.similarity import SparseScores
from personalization.engine.threads import faiss_threads

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


def test_training_windows_search_als_exactly_and_only_the_final_sources_build_a_graph(
    shop: Callable[..., Path],
) -> None:
    # A catalogue "above" the exact-search limit: the served sources get an HNSW graph of the
    # touched items, a training window's sources exact search over its touched items.
    config = small_config(exact_search_max_items=5)
    dataset = load_interchange(shop(extra_items=[(f"NEW{n:03d}", f"plain box {n}") for n in range(30)]))
    built: list[str] = []
    original = VectorIndex.build.__func__  # type: ignore[attr-defined]

    def recording(cls: type[VectorIndex], vectors: np.ndarray, **options: object) -> VectorIndex:
        index = original(cls, vectors, **options)
        built.append(index.kind)
        return index

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VectorIndex, "build", classmethod(recording))
        engine = Engine.fit(dataset, config)

    assert built[-1] == "hnsw" and engine.sources.retrieval.kind == "hnsw"
    assert built[:-1] and set(built[:-1]) == {"exact"}  # one per training window, no graph
    window = fit_window_sources(dataset, temporal_windows(dataset, engine.sources.as_of, 14.0, 1)[0], config)
    retrieval = window.retrieval
    assert retrieval.kind == "exact" and retrieval.items is not None
    assert retrieval.items.shape[0] < len(engine.item_ids)  # touched items only: untouched ones are zero
    factors = window.als.item_factors
    query = factors[retrieval.items].sum(axis=0)
    found, scores = retrieval.search(query, 5)
    expected = np.argsort(-(factors @ query), kind="stable")[:5]
    assert sorted(found.tolist()) == sorted(expected.tolist())
    np.testing.assert_allclose(scores, (factors @ query)[found], rtol=1e-4)


def test_faiss_threads_are_given_back_after_a_fit() -> None:
    faiss.omp_set_num_threads(1)
    with faiss_threads(2):
        assert faiss.omp_get_max_threads() == 2
    assert faiss.omp_get_max_threads() == 1


@pytest.mark.parametrize("approximate", [False, True])
def test_a_batch_of_searches_finds_what_searching_one_by_one_finds(approximate: bool) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors[::3] = 0.0  # untouched items: in neither index
    index = VectorIndex.build(vectors, exact_max_items=10, approximate=approximate, hnsw_ef_search=400)
    queries = rng.normal(size=(25, 16)).astype(np.float32)

    together = index.search_many(queries, 20)

    assert len(together) == 25
    for query, found in zip(queries, together, strict=True):
        alone, _ = index.search(query, 20)
        assert found.tolist() == alone.tolist()
        assert not np.isin(found, np.arange(0, 400, 3)).any()
