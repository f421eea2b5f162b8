"""Why an item is shown, in words a marketer believes: each reason names the evidence that produced it.

- co-visitation: "Often bought with *X*", X the person's item whose co-visitation neighbour it is;
- sequence: "Often chosen after *X*";
- collaborative and content neighbours (ALS, EASE, item kNN, content): "Similar to *Y* you viewed"
  (or bought, or put in the cart), Y the person's item that contributed most to its score —
  never the item itself;
- the person's own history: "You bought this before" / "You viewed this recently";
- popularity: "Popular in *Germany* this week", "Popular right now", "Trending this week";
- new items: "New in *Dresses*";
- exploration: "Something different — exploring".

``word`` is the one function that turns evidence into a sentence: the surface API, the plain
recommendations API, the console's preview and email product blocks all go through it. ``anchors``
finds, for each item, the person's item it was retrieved from, from the fitted sources' own
matrices (so the engine's candidate generation needs no change). Plain Python + numpy + scipy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from personalization.engine.similarity import row_entries

COUNTRY_NAMES = {
    "DE": "Germany",
    "FR": "France",
    "GB": "the United Kingdom",
    "UK": "the United Kingdom",
    "US": "the United States",
    "ES": "Spain",
    "IT": "Italy",
    "NL": "the Netherlands",
    "PL": "Poland",
    "SE": "Sweden",
    "CA": "Canada",
    "AU": "Australia",
    "JP": "Japan",
    "BR": "Brazil",
}
NEIGHBOUR_SOURCES = frozenset({"als", "ease", "item_knn", "content"})
ANCHORED_SOURCES = NEIGHBOUR_SOURCES | {"covisitation", "sequence"}
EXPLORING = "exploring"
_VERBS = {"purchase": "bought", "add_to_cart": "put in your cart", "view": "viewed"}
_KIND_STRENGTH = {"view": 1, "add_to_cart": 2, "purchase": 3}


class Titles(Protocol):
    """Item titles by catalogue index: a list, or the item table's compact column."""

    def __getitem__(self, i: int, /) -> str: ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """What produced an item: its source, and what that source found it through."""

    source: str
    anchor: str | None = None  # the title of the person's item it was retrieved from
    anchor_kind: str = "view"  # what the person did with that item
    purchased: bool = False  # the person bought the item itself
    country: str | None = None
    category: str = ""
    is_new: bool = False
    exploring: bool = False
    own_words: str = ""  # a marketer's own reason (a cold-start rule's)


def place(country: str | None) -> str | None:
    if not country:
        return None
    return COUNTRY_NAMES.get(country.upper(), country)


def category_name(category: str) -> str:
    """The most specific level of a category path ("Women > Dresses" → "Dresses")."""
    return category.split(">")[-1].strip() if category else ""


def word(evidence: Evidence) -> str:
    """The reason shown with an item."""
    source = evidence.source
    if evidence.own_words:
        return evidence.own_words
    if evidence.exploring or source == EXPLORING:
        return "Something different — exploring"
    if source == "history":
        return "You bought this before" if evidence.purchased else "You viewed this recently"
    if source == "covisitation":
        return f"Often bought with {evidence.anchor}" if evidence.anchor else "Often bought with what you chose lately"
    if source == "sequence":
        return f"Often chosen after {evidence.anchor}" if evidence.anchor else "Often chosen next by people like you"
    if source in NEIGHBOUR_SOURCES:
        if evidence.anchor:
            return f"Similar to {evidence.anchor} you {_VERBS.get(evidence.anchor_kind, 'viewed')}"
        return "Picked for your taste"
    if source in ("segment", "segment_trending"):
        where = place(evidence.country)
        if where:
            return f"Popular in {where} this week" if source == "segment_trending" else f"Popular in {where}"
        return "Popular this week" if source == "segment_trending" else "Popular right now"
    if source == "new":
        name = category_name(evidence.category)
        return f"New in {name}" if name else "New in the catalogue"
    if source == "trending":
        return "Trending this week"
    if source == "curated":
        return "Our pick for you"
    if source == "cold_start":
        return "Picked for visitors like you"
    if source == "co-visited":  # the baseline before any model: other people's sessions
        return f"Often bought with {evidence.anchor}" if evidence.anchor else "Often bought with what you viewed"
    return "Popular right now"


def strongest_kinds(
    events: Sequence[tuple[Any, ...]], item_index: Mapping[str, int], positions: Sequence[int] | None = None
) -> dict[int, str]:
    """For each of the person's items (engine index), the most telling thing they did with it.
    ``positions``: each event's engine index (-1 unknown) when the caller has looked them up."""
    if positions is None:
        positions = [item_index.get(e[0], -1) for e in events]
    found: dict[int, str] = {}
    for (_, _, kind, *_), i in zip(events, positions, strict=True):
        if i < 0:
            continue
        if _KIND_STRENGTH.get(kind, 0) > _KIND_STRENGTH.get(found.get(i, ""), 0):
            found[i] = kind
    return found


PersonItems = tuple[np.ndarray, np.ndarray]  # (catalogue indices, weights)


def person_items(history: Any, config: Any) -> dict[str, PersonItems]:
    """The person's items and their weights as each source scores from them (``CandidateSources.signals``):
    co-visitation from the most recent items, the latest weighing most; sequence from the latest few;
    the others from every item, time-decayed."""
    seeds = np.asarray(history.recent_items[: config.covisitation_seed_items], dtype=np.int64)
    seed_weights = 1.0 / np.sqrt(1.0 + np.arange(seeds.shape[0]))
    latest = seeds[: config.sequence_seed_items]
    everything = (np.asarray(history.unique_items, dtype=np.int64), np.asarray(history.decayed, dtype=np.float64))
    return {
        "covisitation": (seeds, seed_weights),
        "sequence": (latest, seed_weights[: latest.shape[0]]),
        **{source: everything for source in NEIGHBOUR_SOURCES},
    }


def anchors(
    sources: Any,
    person: dict[str, PersonItems],
    items: np.ndarray,
    item_sources: Sequence[str],
    titles: Titles | None = None,
) -> list[int | None]:
    """For each item, the person's item (an index into the catalogue) that contributed most to the
    score its source gave it, or None (a source without an anchor, or nothing contributed).

    ``sources`` holds the fitted matrices (``covisitation``, ``sequence``, ``item_knn``: item × item;
    ``content.vectors``: item × term; ``als.item_factors``; ``ease`` with ``items`` and ``weights``);
    ``person`` the person's items and weights per source (``person_items``). An item is never its
    own anchor, nor (given ``titles``, by catalogue index) an item of the same title: a variant
    would read "Similar to Sand Blouse" on a Sand Blouse.
    """
    found: list[int | None] = [None] * len(items)
    wanted: dict[str, list[int]] = {}
    for n, source in enumerate(item_sources):
        if source in ANCHORED_SOURCES and source in person and person[source][0].shape[0]:
            wanted.setdefault(source, []).append(n)
    for source, rows in wanted.items():
        history_items = np.asarray(person[source][0], dtype=np.int64)
        weights = np.asarray(person[source][1], dtype=np.float64)
        columns = np.asarray(items, dtype=np.int64)[rows]
        contributions = _contributions(sources, source, history_items, columns)
        if contributions is None:
            continue
        contributions = contributions * weights[:, None]
        contributions[history_items[:, None] == columns[None, :]] = -np.inf  # never the item itself
        best = np.argmax(contributions, axis=0)
        for row, column, b in zip(rows, range(len(rows)), best.tolist(), strict=True):
            if titles is not None:
                b = _best_other_title(contributions[:, column], history_items, titles, titles[int(columns[column])], b)
            if contributions[b, column] > 0:
                found[row] = int(history_items[b])
    return found


def _best_other_title(column: np.ndarray, history_items: np.ndarray, titles: Titles, shown: str, best: int) -> int:
    """The row of the largest contribution whose item's title is not ``shown`` (the first such
    row among equals, as ``argmax`` breaks ties). Titles are read one at a time, best first: the
    first one usually differs, so a request decodes a title or two an item, not the whole history's."""
    column = column.copy()
    while column[best] > 0 and titles[int(history_items[best])] == shown:
        column[best] = -np.inf
        best = int(np.argmax(column))
    return best


def _contributions(sources: Any, source: str, history: np.ndarray, columns: np.ndarray) -> np.ndarray | None:
    """(len(history), len(columns)): how much each of the person's items adds to each item's score."""
    if source in ("covisitation", "sequence", "item_knn"):
        return _block(getattr(sources, source), history, columns)
    if source == "content":
        vectors = sources.content.vectors
        if vectors.shape[0] == 0:
            return None
        return np.asarray((_rows(vectors, history) @ _rows(vectors, columns).T).toarray(), dtype=np.float64)
    if source == "ease" and getattr(sources, "ease", None) is not None:
        ease = sources.ease
        rows, cols = _positions(ease.items, history), _positions(ease.items, columns)
        out = np.zeros((history.shape[0], columns.shape[0]), dtype=np.float64)
        known_rows, known_cols = np.nonzero(rows >= 0)[0], np.nonzero(cols >= 0)[0]
        if known_rows.shape[0] and known_cols.shape[0]:
            out[np.ix_(known_rows, known_cols)] = ease.weights[np.ix_(rows[known_rows], cols[known_cols])]
        return out
    if source in ("als", "ease"):  # EASE without its model in memory: the nearest item by buyers
        factors = sources.als.item_factors
        return _unit(factors[history]) @ _unit(factors[columns]).T
    return None


def _rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    owner, positions = row_entries(matrix, rows)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=rows.shape[0]))])
    return sp.csr_matrix(
        (matrix.data[positions], matrix.indices[positions], indptr), shape=(rows.shape[0], matrix.shape[1])
    )


def _block(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``matrix[rows][:, columns]`` as a dense array (``columns`` distinct)."""
    out = np.zeros((rows.shape[0], columns.shape[0]), dtype=np.float64)
    owner, positions = row_entries(matrix, rows)
    if positions.shape[0] == 0 or columns.shape[0] == 0:
        return out
    order = np.argsort(columns, kind="stable")
    sorted_columns = columns[order]
    found = matrix.indices[positions]
    at = np.minimum(np.searchsorted(sorted_columns, found), sorted_columns.shape[0] - 1)
    hit = sorted_columns[at] == found
    out[owner[hit], order[at[hit]]] = matrix.data[positions[hit]]
    return out


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1)
    norms[norms == 0] = 1.0
    return rows / norms[:, None]


def _positions(sorted_items: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each wanted catalogue index sits in ``sorted_items``, or -1."""
    if sorted_items.shape[0] == 0:
        return np.full(wanted.shape[0], -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_items, wanted), sorted_items.shape[0] - 1)
    return np.where(sorted_items[at] == wanted, at, -1).astype(np.int64)
