"""When each item was interacted with, so that popularity can be counted before any moment.

Popularity relative to the fit time says what sells at the end of the history; a person whose
history ends months earlier (a training list, or a person served long after the fit) needs what
was popular just before *their* now. The timeline keeps one sorted int64 key per event, the item
in the high 32 bits and the seconds since the first event in the low ones, so counting the events
of 500 candidates in a window is two vectorised binary searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from personalization.engine.dataset import SECONDS_PER_DAY, EventLog

_LOW = (1 << 32) - 1


@dataclass
class ItemTimeline:
    keys: np.ndarray  # int64, sorted: item << 32 | seconds since ``origin``
    origin: float
    # Where each item's keys start (one more entry: where the last one's end) and the latest offset:
    # made on first use, so that windows reaching past either end of the log need no search.
    _bounds: tuple[np.ndarray, int] | None = field(default=None, init=False, repr=False, compare=False)
    # Every item's counts for one minute after the log's end: (minute, spans, counts[span, item]).
    _after_log: tuple[int, tuple[float, ...], np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

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

    def counts_before(
        self, items: np.ndarray, now: float, days: float | tuple[float, ...], *, by_minute: bool = False
    ) -> np.ndarray:
        """Events of each item in ``[now - days, now)``; with several spans, one row per span
        (the end of every window is searched once).

        ``by_minute``: a moment after the log's last key (serving, after the fit) is counted at the
        start of its minute, from a table of every item's counts made once a minute, instead of
        searched per request; a window of days moves by a minute's events at most."""
        spans = (days,) if isinstance(days, int | float) else days
        starts, latest = self._item_bounds()
        if by_minute and self._offset(now, self.origin) > latest:
            table = self._minute_table(now, tuple(spans))
            counts = table[:, np.minimum(items.astype(np.int64), table.shape[1] - 1)]
            return counts[0] if isinstance(days, int | float) else counts
        # Searched in ascending order: each search starts where the last one ended, so the walk
        # stays in the few pages of the keys near it (on a serving request's cold caches, a
        # third of the time of searching in the candidates' order).
        order = np.argsort(items, kind="stable")
        ordered = np.minimum(items[order].astype(np.int64), starts.shape[0] - 1)
        base = ordered << 32
        first, after = starts[ordered], starts[np.minimum(ordered + 1, starts.shape[0] - 1)]
        at_now = self._offset(now, self.origin)
        # Served after the fit, ``now`` is past every key: the window ends where the item's keys do.
        end = after if at_now > latest else np.searchsorted(self.keys, base | at_now, side="left")
        counts = np.empty((len(spans), items.shape[0]), dtype=np.float32)
        for row, span in enumerate(spans):
            since = self._offset(now - span * SECONDS_PER_DAY, self.origin)
            start = first if since == 0 else np.searchsorted(self.keys, base | since, side="left")
            counts[row, order] = end - start
        return counts[0] if isinstance(days, int | float) else counts

    def _minute_table(self, now: float, spans: tuple[float, ...]) -> np.ndarray:
        """counts[span, item] at the start of ``now``'s minute, for every item of the log and one
        more column of zeros (items the log never saw). After the log's end a window holds every
        key of an item from its start on: one count over the keys per span, whatever the
        catalogue's size (searching every item's window took 0.2–0.4 s at a million items and
        300,000 keys; counting, 18 ms)."""
        minute = int(now // 60)
        if self._after_log is None or self._after_log[:2] != (minute, spans):
            starts, latest = self._item_bounds()
            # Searching each item's window costs about three times what counting a key does: a
            # catalogue much smaller than its log (100,000 items, 1.5 million keys) is searched.
            if self._offset(minute * 60.0, self.origin) <= latest or 3 * starts.shape[0] < self.keys.shape[0]:
                every = np.arange(starts.shape[0], dtype=np.int64)
                table = self.counts_before(every, minute * 60.0, spans).reshape(len(spans), -1)
            else:
                owners = self.keys >> 32
                offsets = self.keys & _LOW
                table = np.empty((len(spans), starts.shape[0]), dtype=np.float32)
                for row, span in enumerate(spans):
                    since = self._offset(minute * 60.0 - span * SECONDS_PER_DAY, self.origin)
                    if since == 0:  # the whole log
                        table[row, :-1], table[row, -1] = np.diff(starts), 0
                    else:
                        table[row] = np.bincount(owners[offsets >= since], minlength=starts.shape[0])
            self._after_log = (minute, spans, table)
        return self._after_log[2]

    def _item_bounds(self) -> tuple[np.ndarray, int]:
        if self._bounds is None:
            n = int(self.keys[-1] >> 32) + 1 if self.keys.shape[0] else 0
            # starts[i]: the first key of item i; starts[n]: the end of the keys (every later item too).
            starts = np.searchsorted(self.keys, np.arange(n + 1, dtype=np.int64) << 32, side="left")
            latest = int(np.max(np.asarray(self.keys) & _LOW)) if self.keys.shape[0] else -1
            self._bounds = (starts, latest)
        return self._bounds
