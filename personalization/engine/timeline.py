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

    def counts_before(self, items: np.ndarray, now: float, days: float) -> np.ndarray:
        """Events of each item in ``[now - days, now)``."""
        base = items.astype(np.int64) << 32
        start = base | self._offset(now - days * SECONDS_PER_DAY, self.origin)
        end = base | self._offset(now, self.origin)
        counts = np.searchsorted(self.keys, end, side="left") - np.searchsorted(self.keys, start, side="left")
        return counts.astype(np.float32)
