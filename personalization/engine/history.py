"""One person's past as the engine sees it, built the same way for training and for serving.

``PersonContext`` is what a caller hands to ``Engine.recommend``: item ids with optional times,
event types and quantities, plus the person's segment and the current time. ``History`` is its
indexed, aggregated form; training examples build ``History`` objects from slices of the event
log through the same constructor, which is what keeps features free of training/serving skew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from personalization.engine.dataset import SECONDS_PER_DAY
from personalization.engine.popularity import decay


@dataclass(frozen=True)
class PersonContext:
    """What serving needs about one person.

    ``item_ids`` are the items the person interacted with, oldest first; ``timestamps`` (epoch
    seconds) may be omitted, and then the events count as having happened just before the fit
    time, in list order. ``event_types`` (default: purchases) and ``quantities`` (default: 1) are
    optional too. ``segment`` is the value of the segment attribute (e.g. the country) and ``now``
    the time of the request (default: the later of the last event and the fit time). Items in
    ``exclude`` are never recommended; unknown item ids are ignored.
    """

    item_ids: Sequence[str]
    timestamps: Sequence[float] | None = None
    event_types: Sequence[str] | None = None
    quantities: Sequence[float] | None = None
    segment: str | None = None
    now: float | None = None
    exclude: Sequence[str] = field(default_factory=tuple)
    # What the surfaces showed this person (item ids, epoch seconds): exposure features.
    shown_item_ids: Sequence[str] = field(default_factory=tuple)
    shown_timestamps: Sequence[float] = field(default_factory=tuple)
    # The engine's index of each of ``item_ids`` (-1: unknown), when the caller has looked them up
    # already (serving does, for the request's other needs): the engine then does not again.
    item_positions: np.ndarray | None = field(default=None, compare=False)


@dataclass
class History:
    """Indexed events of one person (oldest first) and their per-item aggregates."""

    items: np.ndarray  # int32
    times: np.ndarray  # float64
    weights: np.ndarray  # float32
    quantities: np.ndarray  # float32
    segment: int
    now: float
    half_life_days: float
    # Items shown to the person (indices) and when, for exposure features; none by default.
    shown_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    shown_times: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        order = np.argsort(self.times, kind="stable")
        self.items, self.times = self.items[order], self.times[order]
        self.weights, self.quantities = self.weights[order], self.quantities[order]
        unique, inverse = np.unique(self.items, return_inverse=True)
        n = unique.shape[0]
        self.unique_items = unique.astype(np.int32)
        self.counts = np.bincount(inverse, minlength=n).astype(np.float32)
        self.weight_sum = np.bincount(inverse, weights=self.weights, minlength=n).astype(np.float32)
        age_days = (self.now - self.times) / SECONDS_PER_DAY
        self.decayed = np.bincount(
            inverse, weights=self.weights * decay(age_days, self.half_life_days), minlength=n
        ).astype(np.float32)
        self.quantity_sum = np.bincount(inverse, weights=self.quantities, minlength=n).astype(np.float32)
        last = np.full(n, -np.inf)
        first = np.full(n, np.inf)
        np.maximum.at(last, inverse, self.times)
        np.minimum.at(first, inverse, self.times)
        self.days_since_last = ((self.now - last) / SECONDS_PER_DAY).astype(np.float32)
        self.days_since_first = ((self.now - first) / SECONDS_PER_DAY).astype(np.float32)
        day = np.floor(self.times / SECONDS_PER_DAY).astype(np.int64)
        pairs = np.unique(inverse.astype(np.int64) * (1 << 32) + (day - (day.min() if n else 0)))
        self.active_days = np.bincount((pairs >> 32).astype(np.int64), minlength=n).astype(np.float32)
        # Most recent distinct items first: the seeds for "people who bought this also bought".
        self.recent_items = self.unique_items[np.argsort(-last, kind="stable")]
        self.n_days = float(np.unique(day).shape[0])
        self.span_days = float((self.times[-1] - self.times[0]) / SECONDS_PER_DAY) if n else 0.0
        self.days_since_any = float((self.now - self.times[-1]) / SECONDS_PER_DAY) if n else np.nan

    @property
    def n_events(self) -> int:
        return int(self.items.shape[0])

    def lookup(self, candidates: np.ndarray) -> np.ndarray:
        """Position of each candidate in ``unique_items``, -1 where the person never touched it."""
        if self.unique_items.shape[0] == 0:
            return np.full(candidates.shape[0], -1, dtype=np.int64)
        position = np.searchsorted(self.unique_items, candidates)
        position = np.minimum(position, self.unique_items.shape[0] - 1)
        return np.where(self.unique_items[position] == candidates, position, -1)
