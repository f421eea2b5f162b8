"""What kind of data the engine is fitting on, read from the history alone before anything is fitted.

Three facts decide how the engine learns (docs/evaluation.md, "How the engine reads its data"):

- whether the events carry real timestamps: without them there is no clock, so no source or
  feature may use time, and the order of rows means nothing;
- how often people consume an item again: in retail they re-buy (a person's own items are the
  best candidates), in films, reviews or music catalogues they do not (an item the person already
  has can never be right, so it is neither a training candidate nor an answer);
- how much history there is per person and in all: how training lists are made and which
  collaborative models are affordable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from personalization.engine.dataset import Dataset

# Below this share of events that repeat an earlier (person, item) pair, re-consumption is rare:
# seen items are excluded. Online Retail is at 0.38, a grocery log higher; ratings and
# playlists of distinct artists are at 0.
RARE_REPEAT_SHARE = 0.05


@dataclass(frozen=True)
class Regime:
    has_time: bool
    repeat_share: float  # share of events that repeat an earlier (person, item) pair
    people: int
    items: int
    events: int
    events_per_person: float  # median over people with at least one event

    @property
    def rare_repeats(self) -> bool:
        return self.repeat_share < RARE_REPEAT_SHARE

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "rare_repeats": self.rare_repeats}

    def describe(self) -> str:
        clock = "real timestamps" if self.has_time else "no timestamps"
        repeats = "re-consumption rare" if self.rare_repeats else "people re-consume"
        return (
            f"{clock}; {repeats} ({self.repeat_share:.1%} of events repeat a pair); {self.people} people,"
            f" {self.items} items, {self.events} events, median {self.events_per_person:g} a person"
        )


def repeat_share(user: np.ndarray, item: np.ndarray) -> float:
    """Share of events whose (person, item) pair occurred before: 1 - distinct pairs / events."""
    n = int(user.shape[0])
    if n == 0:
        return 0.0
    pairs = np.unique(user.astype(np.int64) * (1 << 32) + item.astype(np.int64))
    return 1.0 - pairs.shape[0] / n


def read_regime(dataset: Dataset) -> Regime:
    events = dataset.events
    per_person = np.bincount(events.user, minlength=dataset.n_users) if len(events) else np.zeros(0, dtype=np.int64)
    active = per_person[per_person > 0]
    return Regime(
        has_time=bool(dataset.has_timestamps),
        repeat_share=round(repeat_share(events.user, events.item), 4),
        people=int(active.shape[0]),
        items=int(np.unique(events.item).shape[0]) if len(events) else 0,
        events=len(events),
        events_per_person=float(np.median(active)) if active.shape[0] else 0.0,
    )
