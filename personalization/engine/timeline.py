"""When each item was interacted with, so that popularity can be counted before any moment.

Popularity relative to the fit time says what sells at the end of the history; a person whose
history ends months earlier (a training list, or a person served long after the fit) needs what
was popular just before *their* now. The timeline keeps one sorted int64 key per event, the item
in the high 32 bits and the seconds since the first event in the low ones, so counting the events
of 500 candidates in a window is two vectorised binary searches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personalization.engine.dataset import SECONDS_PER_DAY, EventLog

_LOW = (1 << 32) - 1


@dataclass
class ItemTimeline:
    keys: np.ndarray  # int64, sorted: item << 32 | seconds since ``origin``
    origin: float

    @classmethod
    def fit(cls, log: EventLog) -> ItemTimeline:
        if log.time.shape[0] == 0:
            return cls(keys=np.zeros(0, dtype=np.int64), origin=0.0)
        origin = float(log.time.min())
        keys = (log.item.astype(np.int64) << 32) | cls._offset(log.time, origin)
        keys.sort()
        return cls(keys=keys, origin=origin)

    @staticmethod
    def _offset(times: np.ndarray | float, origin: float) -> np.ndarray:
        return np.clip(np.floor(np.asarray(times, dtype=np.float64) - origin), 0, _LOW).astype(np.int64)

    def counts_before(self, items: np.ndarray, now: float, days: float | tuple[float, ...]) -> np.ndarray:
        """Events of each item in ``[now - days, now)``; with several spans, one row per span
        (the end of every window is searched once)."""
        spans = (days,) if isinstance(days, int | float) else days
        base = items.astype(np.int64) << 32
        end = np.searchsorted(self.keys, base | self._offset(now, self.origin), side="left")
        counts = np.empty((len(spans), items.shape[0]), dtype=np.float32)
        for row, span in enumerate(spans):
            start = base | self._offset(now - span * SECONDS_PER_DAY, self.origin)
            counts[row] = end - np.searchsorted(self.keys, start, side="left")
        return counts[0] if isinstance(days, int | float) else counts
