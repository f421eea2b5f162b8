"""Re-ranking: turn a surface's scored candidates into the list a person sees.

The ranker orders candidates by relevance alone. A surface then applies what the marketer set on it:

1. **filters** drop candidates that must never be shown (out of stock, already bought, excluded
   categories or items);
2. **visible weights** blend relevance with margin, freshness, stock and popularity. Each signal is
   min-max normalised to [0, 1] over the candidates left after filtering, so a weight of 2 on margin
   means what it says whatever the currency or the catalogue's price range. Stock and popularity are
   counts with long tails and are compared on a ``log1p`` scale first; freshness is "younger is
   better";
3. a **diversity quota** caps the share of the list any one category or brand may take and reserves a
   share for categories outside the person's top categories;
4. an **exploration share** gives slots to new and under-exposed items by Thompson sampling.

Exploration policy: every slot is independently an exploration slot with probability ``share``
(a Bernoulli draw per slot). The expected fraction of exploration slots is exactly ``share`` for any
list length, including shares that ``round(share * k)`` would bias (0.07 of 20 slots is 1.4 slots on
average, not 1), and the count per answer is Binomial(k, share), which the tests check over many
requests. An exploration slot goes to the explorable candidate with the highest draw from
Beta(clicks + 1, impressions - clicks + 1); when no explorable candidate fits the quota the slot falls
back to the best-scored candidate and is not counted as exploring.

Quotas are enforced on every answer: slots are filled greedily in order, each pick checked against
the caps. In the rare case the greedy fill gets stuck although a list within the quota exists (caps on
category and brand can interlock), the selection is repaired by augmenting paths on a small flow
network, which finds a full list within the quota whenever one exists. Only when none exists are the
remaining slots backfilled with the best-scored leftovers; the answer then says ``backfilled`` and
names the ``relaxed`` constraints.

This module is plain Python + numpy, free of Django, so serving and benchmarks call it directly.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EXPLORING = "exploring"
"""Reason code of an item shown in an exploration slot."""

CATEGORY = "category"
BRAND = "brand"
OUTSIDE_TOP_CATEGORIES = "outside_top_categories"

_EPSILON = 1e-9


# --- input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One scored candidate, for callers that assemble candidates one by one.

    ``age_days`` is the item's age (now minus published time, in days); ``is_new`` marks items from
    the new-item pool; ``clicks`` and ``impressions`` are the item's exposure counts on this surface
    and feed both "under-exposed" and the Thompson draw. ``source`` is the candidate source that
    produced it (embedding, co_visitation, history, trending, new_items, ...) and becomes its reason.
    """

    item_id: Hashable
    relevance: float
    margin: float = 0.0
    age_days: float = 0.0
    stock: float = 0.0
    popularity: float = 0.0
    category: Hashable = ""
    brand: Hashable = ""
    in_stock: bool = True
    purchased_by_person: bool = False
    is_new: bool = False
    clicks: int = 0
    impressions: int = 0
    source: str = ""


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """Candidates as parallel arrays (one entry per candidate), the form serving works with.

    Build it with :meth:`from_arrays` (fills defaults and checks lengths) or :meth:`from_candidates`.
    ``category`` and ``brand`` may hold integer codes or any hashable values.
    """

    item_ids: np.ndarray
    relevance: np.ndarray
    margin: np.ndarray
    age_days: np.ndarray
    stock: np.ndarray
    popularity: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    in_stock: np.ndarray
    purchased_by_person: np.ndarray
    is_new: np.ndarray
    clicks: np.ndarray
    impressions: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return int(self.relevance.shape[0])

    @classmethod
    def from_arrays(
        cls,
        item_ids: Any,
        relevance: Any,
        *,
        margin: Any = None,
        age_days: Any = None,
        stock: Any = None,
        popularity: Any = None,
        category: Any = None,
        brand: Any = None,
        in_stock: Any = None,
        purchased_by_person: Any = None,
        is_new: Any = None,
        clicks: Any = None,
        impressions: Any = None,
        source: Any = None,
    ) -> CandidateSet:
        relevance_array = np.asarray(relevance, dtype=np.float64)
        n = relevance_array.shape[0]

        def column(values: Any, dtype: Any, default: Any, name: str) -> np.ndarray:
            if values is None:
                return np.full(n, default, dtype=dtype)
            array = np.asarray(values, dtype=dtype)
            if array.shape != (n,):
                raise ValueError(f"{name} has shape {array.shape}, expected ({n},) like relevance")
            return array

        impressions_array = column(impressions, np.int64, 0, "impressions")
        clicks_array = column(clicks, np.int64, 0, "clicks")
        if np.any(clicks_array < 0) or np.any(impressions_array < 0):
            raise ValueError("clicks and impressions must be non-negative")
        return cls(
            item_ids=column(item_ids, None, None, "item_ids"),
            relevance=relevance_array,
            margin=column(margin, np.float64, 0.0, "margin"),
            age_days=column(age_days, np.float64, 0.0, "age_days"),
            stock=column(stock, np.float64, 0.0, "stock"),
            popularity=column(popularity, np.float64, 0.0, "popularity"),
            category=column(category, None, "", "category"),
            brand=column(brand, None, "", "brand"),
            in_stock=column(in_stock, bool, True, "in_stock"),
            purchased_by_person=column(purchased_by_person, bool, False, "purchased_by_person"),
            is_new=column(is_new, bool, False, "is_new"),
            clicks=clicks_array,
            impressions=np.maximum(impressions_array, clicks_array),
            source=column(source, object, "", "source"),
        )

    @classmethod
    def from_candidates(cls, candidates: Sequence[Candidate]) -> CandidateSet:
        def objects(values: list[Any]) -> np.ndarray:
            # Built element by element so tuples or other sequences stay single values.
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array

        return cls.from_arrays(
            objects([c.item_id for c in candidates]),
            [c.relevance for c in candidates],
            margin=[c.margin for c in candidates],
            age_days=[c.age_days for c in candidates],
            stock=[c.stock for c in candidates],
            popularity=[c.popularity for c in candidates],
            category=objects([c.category for c in candidates]),
            brand=objects([c.brand for c in candidates]),
            in_stock=[c.in_stock for c in candidates],
            purchased_by_person=[c.purchased_by_person for c in candidates],
            is_new=[c.is_new for c in candidates],
            clicks=[c.clicks for c in candidates],
            impressions=[c.impressions for c in candidates],
            source=objects([c.source for c in candidates]),
        )


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingWeights:
    """The surface's visible weights. Non-negative; only their ratios matter."""

    relevance: float = 1.0
    margin: float = 0.0
    freshness: float = 0.0
    stock: float = 0.0
    popularity: float = 0.0

    def __post_init__(self) -> None:
        values = self.as_tuple()
        if any(not np.isfinite(w) or w < 0 for w in values):
            raise ValueError(f"ranking weights must be finite and non-negative, got {values}")
        if sum(values) <= 0:
            raise ValueError("at least one ranking weight must be positive")

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.relevance, self.margin, self.freshness, self.stock, self.popularity)


@dataclass(frozen=True)
class CandidateFilters:
    """Candidates that are never served, whatever their score."""

    in_stock_only: bool = True
    exclude_purchased: bool = False
    exclude_categories: frozenset[Hashable] = frozenset()
    exclude_items: frozenset[Hashable] = frozenset()


@dataclass(frozen=True)
class DiversityQuota:
    """Shares of the list, each applied to the answer's own length ``k``.

    A category (or brand) may take at most ``floor(max_share * k)`` slots, and never fewer than one;
    at least ``ceil(min_share_outside_top_categories * k)`` slots go to categories outside the
    person's top categories (vacuous for a person without top categories).
    """

    max_share_per_category: float = 1.0
    max_share_per_brand: float = 1.0
    min_share_outside_top_categories: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_share_per_category", "max_share_per_brand", "min_share_outside_top_categories"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")

    def category_cap(self, k: int) -> int:
        return max(1, int(np.floor(self.max_share_per_category * k + _EPSILON)))

    def brand_cap(self, k: int) -> int:
        return max(1, int(np.floor(self.max_share_per_brand * k + _EPSILON)))

    def outside_top_minimum(self, k: int) -> int:
        return min(k, int(np.ceil(self.min_share_outside_top_categories * k - _EPSILON)))


@dataclass(frozen=True)
class Exploration:
    """Exploration over new and under-exposed items.

    ``share`` is the probability that any one slot is an exploration slot. An item is explorable when
    it is new or has had fewer than ``under_exposed_below`` impressions on the surface.
    """

    share: float = 0.0
    under_exposed_below: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"exploration share must be within [0, 1], got {self.share}")
        if self.under_exposed_below < 0:
            raise ValueError("under_exposed_below must be non-negative")


@dataclass(frozen=True)
class RerankConfig:
    """What a surface says about re-ranking; ``size`` is how many items it shows."""

    weights: RankingWeights = field(default_factory=RankingWeights)
    filters: CandidateFilters = field(default_factory=CandidateFilters)
    diversity: DiversityQuota = field(default_factory=DiversityQuota)
    exploration: Exploration = field(default_factory=Exploration)
    size: int = 20

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be non-negative, got {self.size}")


# --- output ------------------------------------------------------------------------------------


@dataclass(slots=True)
class RankedItem:
    """One item of the answer. ``score`` is its weighted score in [0, 1]; ``index`` points into the
    candidate set; ``reason`` is the candidate's source, or ``"exploring"`` in an exploration slot."""

    item_id: Any
    index: int
    score: float
    reason: str
    exploring: bool


@dataclass(frozen=True)
class RerankResult:
    """The answer, in display order.

    ``backfilled`` is True when no list of this length within the quota existed and some slots were
    filled regardless; ``relaxed`` names the constraints the answer breaks (``"category"``,
    ``"brand"``, ``"outside_top_categories"``). ``eligible`` counts the candidates left after filters.
    """

    items: tuple[RankedItem, ...]
    backfilled: bool = False
    relaxed: tuple[str, ...] = ()
    eligible: int = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def indices(self) -> np.ndarray:
        return np.fromiter((item.index for item in self.items), dtype=np.int64, count=len(self.items))

    @property
    def item_ids(self) -> list[Any]:
        return [item.item_id for item in self.items]

    @property
    def reasons(self) -> list[str]:
        return [item.reason for item in self.items]

    @property
    def exploring_count(self) -> int:
        return sum(item.exploring for item in self.items)


# --- scoring -----------------------------------------------------------------------------------


def weighted_scores(candidates: CandidateSet, weights: RankingWeights, among: np.ndarray | None = None) -> np.ndarray:
    """Final scores in [0, 1] of the candidates at ``among`` (all when None).

    Each weighted signal is min-max normalised over those candidates; a signal that is constant over
    them contributes nothing, and a missing (non-finite) value counts as the signal's worst.
    """
    rows = np.arange(len(candidates)) if among is None else among
    if rows.size == 0:
        return np.zeros(0)
    columns = {
        "relevance": lambda: candidates.relevance[rows],
        "margin": lambda: candidates.margin[rows],
        "freshness": lambda: -candidates.age_days[rows],
        "stock": lambda: np.log1p(np.maximum(candidates.stock[rows], 0.0)),
        "popularity": lambda: np.log1p(np.maximum(candidates.popularity[rows], 0.0)),
    }
    used = [(name, w) for name, w in zip(columns, weights.as_tuple(), strict=True) if w > 0]
    signals = np.empty((len(used), rows.size))
    for row, (name, _) in enumerate(used):
        signals[row] = columns[name]()
    missing = ~np.isfinite(signals)
    if missing.any():
        # An unknown value (NaN) counts as the worst known value of its signal.
        signals[missing] = np.inf
        worst = signals.min(axis=1)
        signals[missing] = np.broadcast_to(np.where(np.isfinite(worst), worst, 0.0)[:, None], signals.shape)[missing]
    low = signals.min(axis=1)
    spread = signals.max(axis=1) - low
    flat = ~(spread > 0)
    spread[flat] = 1.0
    scale = np.array([w for _, w in used]) / sum(weights.as_tuple()) / spread
    scale[flat] = 0.0
    return scale @ (signals - low[:, None])


def eligible_mask(candidates: CandidateSet, filters: CandidateFilters) -> np.ndarray:
    """True for candidates that may be served under ``filters``."""
    mask = np.isfinite(candidates.relevance)
    if filters.in_stock_only:
        mask &= candidates.in_stock
    if filters.exclude_purchased:
        mask &= ~candidates.purchased_by_person
    if filters.exclude_categories:
        mask &= ~_member_of(candidates.category, filters.exclude_categories)
    if filters.exclude_items:
        mask &= ~_member_of(candidates.item_ids, filters.exclude_items)
    return mask


def _member_of(values: np.ndarray, wanted: Collection[Hashable]) -> np.ndarray:
    if len(wanted) <= 16:
        # A few exclusions (the usual case): one vectorised comparison each.
        found = np.zeros(values.shape[0], dtype=bool)
        for value in wanted:
            found |= values == value
        return found
    if values.dtype.kind in "iu":
        # Vectorised only when both sides are integers, so no value is cast (and matched) wrongly.
        wanted_array = np.array(list(wanted))
        if wanted_array.dtype.kind in "iu":
            return np.isin(values, wanted_array)
    return np.fromiter((value in wanted for value in values.tolist()), dtype=bool, count=values.shape[0])


# --- selection ---------------------------------------------------------------------------------


@dataclass
class _Quota:
    """Running counts of a partial answer against the caps."""

    category_cap: int
    brand_cap: int
    top_cap: int
    top_categories: frozenset[Hashable]
    categories: list[Any]
    brands: list[Any]
    per_category: dict[Any, int] = field(default_factory=dict)
    per_brand: dict[Any, int] = field(default_factory=dict)
    in_top: int = 0

    def fits(self, i: int) -> bool:
        category = self.categories[i]
        if self.per_category.get(category, 0) >= self.category_cap:
            return False
        if self.per_brand.get(self.brands[i], 0) >= self.brand_cap:
            return False
        return not (category in self.top_categories and self.in_top >= self.top_cap)

    def add(self, i: int) -> None:
        self.place(self.categories[i], self.brands[i])

    def place(self, category: Hashable, brand: Hashable) -> None:
        """Count one item of the answer: a candidate, or one placed ahead of the candidates."""
        self.per_category[category] = self.per_category.get(category, 0) + 1
        self.per_brand[brand] = self.per_brand.get(brand, 0) + 1
        if category in self.top_categories:
            self.in_top += 1

    def broken(self) -> tuple[str, ...]:
        broken = []
        if any(count > self.category_cap for count in self.per_category.values()):
            broken.append(CATEGORY)
        if any(count > self.brand_cap for count in self.per_brand.values()):
            broken.append(BRAND)
        if self.in_top > self.top_cap:
            broken.append(OUTSIDE_TOP_CATEGORIES)
        return tuple(broken)


def rerank(
    candidates: CandidateSet,
    config: RerankConfig,
    *,
    top_categories: Collection[Hashable] = (),
    rng: np.random.Generator | None = None,
    size: int | None = None,
    placed: Sequence[tuple[Hashable, Hashable]] = (),
) -> RerankResult:
    """Pick and order the items a surface shows.

    ``top_categories`` are the person's favourite categories (for the "outside top categories" share);
    ``rng`` drives exploration and makes the answer reproducible when seeded; ``size`` overrides
    ``config.size``. ``placed`` holds the (category, brand) of items the answer shows ahead of this
    list (a cold-start rule's picks): they count against the caps, which then apply to the whole
    answer of ``len(placed) + size`` items, and this list fills the remaining ``size`` slots.
    """
    wanted = config.size if size is None else size
    rows = np.flatnonzero(eligible_mask(candidates, config.filters))
    k = min(wanted, rows.size)
    if k <= 0:
        return RerankResult(items=(), eligible=int(rows.size))
    if rng is None:
        rng = _thread_rng()

    scores = np.zeros(len(candidates))
    scores[rows] = weighted_scores(candidates, config.weights, rows)
    by_score = rows[np.argsort(-scores[rows], kind="stable")].tolist()

    # Exploration: one Bernoulli draw per slot, one Thompson draw per explorable candidate.
    exploration = config.exploration
    explore_slots: list[bool] = [False] * k
    by_draw: list[int] = []
    if exploration.share > 0:
        explorable = rows[candidates.is_new[rows] | (candidates.impressions[rows] < exploration.under_exposed_below)]
        if explorable.size:
            explore_slots = (rng.random(k) < exploration.share).tolist()
            clicks = candidates.clicks[explorable]
            draws = rng.beta(clicks + 1.0, candidates.impressions[explorable] - clicks + 1.0)
            by_draw = explorable[np.argsort(-draws, kind="stable")].tolist()

    whole = k + len(placed)  # the caps are shares of the whole answer
    quota = _Quota(
        category_cap=config.diversity.category_cap(whole),
        brand_cap=config.diversity.brand_cap(whole),
        top_cap=whole - config.diversity.outside_top_minimum(whole),
        top_categories=frozenset(top_categories),
        categories=candidates.category.tolist(),
        brands=candidates.brand.tolist(),
    )
    for category, brand in placed:
        quota.place(category, brand)
    # Without binding caps every candidate fits; skip the bookkeeping.
    constrained = (
        bool(placed)
        or min(quota.category_cap, quota.brand_cap, quota.top_cap if quota.top_categories else whole) < whole
    )

    # Greedy fill. Counts only grow, so a candidate that does not fit now never fits later and each
    # pointer moves forward only: the loop visits each candidate at most once per order.
    chosen: list[int] = []
    exploring: set[int] = set()
    taken: set[int] = set()
    score_at, draw_at = 0, 0
    for slot in range(k):
        pick = -1
        if explore_slots[slot]:
            while draw_at < len(by_draw):
                i = by_draw[draw_at]
                draw_at += 1
                if i not in taken and (not constrained or quota.fits(i)):
                    pick = i
                    exploring.add(i)
                    break
        if pick < 0:
            while score_at < len(by_score):
                i = by_score[score_at]
                score_at += 1
                if i not in taken and (not constrained or quota.fits(i)):
                    pick = i
                    break
        if pick < 0:
            break
        chosen.append(pick)
        taken.add(pick)
        if constrained:
            quota.add(pick)

    backfilled = False
    relaxed: tuple[str, ...] = ()
    if len(chosen) < k:
        chosen = _repair(chosen, by_score, k, quota, placed)
        exploring &= set(chosen)
        if len(chosen) < k:
            backfilled = True
            quota = _recount(quota, chosen, placed)
            in_list = set(chosen)
            for i in by_score:
                if len(chosen) == k:
                    break
                if i not in in_list:
                    chosen.append(i)
                    in_list.add(i)
                    quota.add(i)
            relaxed = quota.broken()

    ids = candidates.item_ids[chosen].tolist()
    sources = candidates.source[chosen].tolist()
    final = scores[chosen].tolist()
    items = tuple(
        RankedItem(ids[n], i, final[n], EXPLORING if i in exploring else str(sources[n]), i in exploring)
        for n, i in enumerate(chosen)
    )
    return RerankResult(items=items, backfilled=backfilled, relaxed=relaxed, eligible=int(rows.size))


_local = threading.local()


def _thread_rng() -> np.random.Generator:
    """One generator per thread, seeded once from the OS: seeding a new one per answer cost more
    than the draws it made."""
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = np.random.default_rng()
    return rng


def _recount(quota: _Quota, chosen: list[int], placed: Sequence[tuple[Hashable, Hashable]]) -> _Quota:
    fresh = _Quota(
        category_cap=quota.category_cap,
        brand_cap=quota.brand_cap,
        top_cap=quota.top_cap,
        top_categories=quota.top_categories,
        categories=quota.categories,
        brands=quota.brands,
    )
    for category, brand in placed:
        fresh.place(category, brand)
    for i in chosen:
        fresh.add(i)
    return fresh


def _repair(
    chosen: list[int], by_score: list[int], k: int, quota: _Quota, placed: Sequence[tuple[Hashable, Hashable]]
) -> list[int]:
    """Grow a within-quota selection towards ``k`` items by augmenting paths.

    A list within the quota is a flow of one unit per item on the network
    source -> [top-categories group, capacity k - outside minimum] -> category [category cap]
    -> (item, capacity 1) -> brand -> [brand cap] -> sink. The greedy selection is a valid flow; each
    augmenting path adds one item, possibly swapping others, so the flow reaches ``k`` exactly when
    some list of ``k`` items meets every cap. Candidates are offered in score order, which keeps the
    swaps close to the greedy answer. Items ``placed`` ahead of the list use up their share of each
    capacity before the search starts.
    """
    ahead_category: Counter[Hashable] = Counter(category for category, _ in placed)
    ahead_brand: Counter[Hashable] = Counter(brand for _, brand in placed)
    ahead_top = sum(n for category, n in ahead_category.items() if category in quota.top_categories)
    network = _FlowNetwork()
    source, group, sink = network.node(), network.node(), network.node()
    network.edge(source, group, max(0, quota.top_cap - ahead_top))
    category_node: dict[Any, int] = {}
    brand_node: dict[Any, int] = {}
    item_edge: dict[int, int] = {}
    for i in by_score:
        category, brand = quota.categories[i], quota.brands[i]
        if category not in category_node:
            category_node[category] = network.node()
            parent = group if category in quota.top_categories else source
            network.edge(parent, category_node[category], max(0, quota.category_cap - ahead_category[category]))
        if brand not in brand_node:
            brand_node[brand] = network.node()
            network.edge(brand_node[brand], sink, max(0, quota.brand_cap - ahead_brand[brand]))
        item_edge[i] = network.edge(category_node[category], brand_node[brand], 1)

    for i in chosen:
        category = quota.categories[i]
        path = [item_edge[i], network.out_edge(brand_node[quota.brands[i]], sink)]
        if category in quota.top_categories:
            path += [network.out_edge(source, group), network.out_edge(group, category_node[category])]
        else:
            path.append(network.out_edge(source, category_node[category]))
        for edge in path:
            network.push(edge, 1)

    flow = len(chosen)
    while flow < k and network.augment(source, sink):
        flow += 1

    selected = {i for i, edge in item_edge.items() if network.flow[edge] > 0}
    kept = [i for i in chosen if i in selected]
    kept_set = set(kept)
    return kept + [i for i in by_score if i in selected and i not in kept_set]


class _FlowNetwork:
    """A small residual graph for unit augmentations (Edmonds-Karp style, one unit per path)."""

    def __init__(self) -> None:
        self.adjacency: list[list[int]] = []
        self.head: list[int] = []
        self.capacity: list[int] = []
        self.flow: list[int] = []

    def node(self) -> int:
        self.adjacency.append([])
        return len(self.adjacency) - 1

    def edge(self, tail: int, head: int, capacity: int) -> int:
        forward = len(self.head)
        for a, b, c in ((tail, head, capacity), (head, tail, 0)):
            self.adjacency[a].append(len(self.head))
            self.head.append(b)
            self.capacity.append(c)
            self.flow.append(0)
        return forward

    def out_edge(self, tail: int, head: int) -> int:
        for edge in self.adjacency[tail]:
            if self.head[edge] == head and edge % 2 == 0:
                return edge
        raise KeyError((tail, head))

    def push(self, edge: int, amount: int) -> None:
        self.flow[edge] += amount
        self.flow[edge ^ 1] -= amount

    def augment(self, source: int, sink: int) -> bool:
        came_by: list[int] = [-1] * len(self.adjacency)
        seen = [False] * len(self.adjacency)
        seen[source] = True
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for edge in self.adjacency[node]:
                nxt = self.head[edge]
                if not seen[nxt] and self.capacity[edge] - self.flow[edge] > 0:
                    seen[nxt] = True
                    came_by[nxt] = edge
                    if nxt == sink:
                        while nxt != source:
                            edge = came_by[nxt]
                            self.push(edge, 1)
                            nxt = self.head[edge ^ 1]
                        return True
                    queue.append(nxt)
        return False
