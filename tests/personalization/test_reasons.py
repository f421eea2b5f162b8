"""Reasons a marketer believes: each names the evidence that produced the item (the person's item it was
retrieved from, their country, the item's category), never the item itself, in the same words on
every path (surface API, plain recommendations API, console preview, email product block)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from catalog.models import Item
from personalization import services
from personalization.reasons import Evidence, anchors, word
from personalization.surface_serving import ServeRequest, serve
from personalization.surfaces import create_surface
from profiles.models import Event
from profiles.services import find_person
from tests.personalization.test_surfaces_serving import engine, shared_storage  # noqa: F401  (fixtures)

ANCHORED = ("Similar to ", "Often bought with ", "Often chosen after ")


def _sources(n: int, pairs: dict[str, list[tuple[int, int, float]]]) -> Any:
    def matrix(name: str) -> sp.csr_matrix:
        rows = pairs.get(name, [])
        weights, starts, ends = [w for _, _, w in rows], [a for a, _, _ in rows], [b for _, b, _ in rows]
        return sp.csr_matrix((weights, (starts, ends)), shape=(n, n), dtype=np.float32)

    return SimpleNamespace(
        covisitation=matrix("covisitation"),
        sequence=matrix("sequence"),
        item_knn=matrix("item_knn"),
        content=SimpleNamespace(vectors=sp.csr_matrix((n, 3), dtype=np.float32)),
        als=SimpleNamespace(item_factors=np.eye(n, dtype=np.float32)),
        ease=None,
    )


def test_two_items_retrieved_from_different_anchors_name_different_anchors():
    # The person has items 0 and 1; 2 is co-visited with 0, 3 is a neighbour of 1, and 0 itself is a
    # neighbour of 1 (and of itself): its anchor is 1, never 0.
    sources = _sources(
        5,
        {
            "covisitation": [(0, 2, 0.9), (1, 2, 0.1)],
            "item_knn": [(1, 3, 0.8), (0, 3, 0.2), (1, 0, 0.5), (0, 0, 1.0)],
        },
    )
    found = anchors(
        sources,
        person={s: (np.array([0, 1]), np.array([1.0, 1.0])) for s in ("covisitation", "item_knn")},
        items=np.array([2, 3, 0, 4]),
        item_sources=["covisitation", "item_knn", "item_knn", "popular"],
    )
    assert found == [0, 1, 1, None]


def test_the_wording_names_the_evidence():
    assert word(Evidence("covisitation", anchor="Teal Dress")) == "Often bought with Teal Dress"
    assert word(Evidence("item_knn", anchor="Boots", anchor_kind="purchase")) == "Similar to Boots you bought"
    assert word(Evidence("content", anchor="Boots")) == "Similar to Boots you viewed"
    assert word(Evidence("history", purchased=True)) == "You bought this before"
    assert word(Evidence("segment_trending", country="DE")) == "Popular in Germany this week"
    assert word(Evidence("new", category="Women > Dresses")) == "New in Dresses"
    assert word(Evidence("item_knn", exploring=True)) == "Something different — exploring"
    assert word(Evidence("cold_start", own_words="Loved in Germany")) == "Loved in Germany"


def _answers(person_id: int) -> list[Any]:
    """The surface's answer and the plain API's answer for one person."""
    surface = serve(ServeRequest(surface="homepage", person_id=person_id, log=False)).items
    plain = services.recommend(person_id, limit=20).items
    return [*surface, *plain]


def test_no_reason_names_its_own_item_and_anchors_are_the_persons_items(engine):  # noqa: F811
    create_surface("homepage", "Homepage", {"size": 20}, by="tests")
    titles = dict(Item.objects.values_list("external_id", "title"))
    anchored_people = 0
    for user in ("user-00001", "user-00002", "user-00003", "user-00004", "user-00005", "user-00006"):
        person = find_person(user)
        assert person is not None
        touched = Event.objects.filter(person=person).values_list("item_id", flat=True)
        theirs = {titles[i] for i in touched if i in titles}
        items = _answers(person.pk)
        for item in items:
            assert item.title not in item.reason, (item.title, item.reason)
        named = set()
        for item in items:
            if item.reason.startswith(ANCHORED):
                anchor = next(t for t in theirs if t and t in item.reason)  # the anchor is one of theirs
                named.add(anchor)
        if len(named) >= 2:
            anchored_people += 1
    # Items retrieved from different items of a person's name different anchors.
    assert anchored_people >= 3


def test_the_same_item_gets_the_same_words_on_the_surface_and_the_plain_api(engine):  # noqa: F811
    create_surface("homepage", "Homepage", {"size": 20}, by="tests")
    person = find_person("user-00003")
    assert person is not None
    surface = {i.item_id: (i.source, i.reason) for i in serve(ServeRequest("homepage", person.pk, log=False)).items}
    plain = {i.item_id: (i.source, i.reason) for i in services.recommend(person.pk, limit=40).items}
    shared = [k for k in surface if k in plain and surface[k][0] == plain[k][0] and surface[k][0] != "exploring"]
    assert shared, "the two paths share some items from the same source"
    for item_id in shared:
        assert surface[item_id][1] == plain[item_id][1], item_id


def test_ease_and_als_anchors_come_from_their_own_weights():
    sources = _sources(5, {})
    # EASE knows items 0, 2 and 3 only: 3 is retrieved through 2's weight, 4 is outside the model.
    weights = np.array([[0.0, 0.1, 0.2], [0.3, 0.0, 0.9], [0.2, 0.4, 0.0]], dtype=np.float32)
    sources.ease = SimpleNamespace(items=np.array([0, 2, 3]), weights=weights, n_items=5)
    factors = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [1, 1]], dtype=np.float32)
    sources.als = SimpleNamespace(item_factors=factors)
    person = {s: (np.array([0, 2, 1]), np.ones(3)) for s in ("ease", "als")}
    found = anchors(sources, person, items=np.array([3, 4, 3, 2]), item_sources=["ease", "ease", "als", "als"])
    # 3 by EASE: from 2 (0.9 beats 0.2); 4: nothing in the model; by ALS 3 is nearest to 1 and 2 to 0.
    assert found == [2, None, 1, 0]


def test_the_sparse_blocks_read_what_scipy_indexing_reads():
    from personalization.reasons import _block, _rows

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        matrix = sp.random(n, n, density=rng.uniform(0, 0.3), format="csr", random_state=trial, dtype=np.float32)
        rows = rng.integers(0, n, size=int(rng.integers(1, 10))).astype(np.int64)
        columns = rng.choice(n, size=min(n, int(rng.integers(1, 10))), replace=False).astype(np.int64)
        assert np.allclose(_block(matrix, rows, columns), matrix[rows][:, columns].toarray()), trial
        assert np.allclose(_rows(matrix, rows).toarray(), matrix[rows].toarray()), trial


def test_a_variant_of_the_same_title_is_not_named_as_the_anchor():
    # Item 2 is another colourway of item 0 ("Sand Blouse"): the reason names 1, the next contributor.
    sources = _sources(3, {"item_knn": [(0, 2, 0.9), (1, 2, 0.2)]})
    person = {"item_knn": (np.array([0, 1]), np.array([1.0, 1.0]))}
    titles = ["Sand Blouse", "Teal Scarf", "Sand Blouse"]
    assert anchors(sources, person, np.array([2]), ["item_knn"]) == [0]
    assert anchors(sources, person, np.array([2]), ["item_knn"], titles) == [1]
