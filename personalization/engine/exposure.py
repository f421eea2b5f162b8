"""Learning from what was shown: impressions, their outcome, position bias, point-in-time counts.

An impression is one item shown to one person at one position of an answer, at a time. It was
*taken* when the person clicked it (any event on the item) within ``click_window`` after it was
shown, or bought it within ``purchase_window``; otherwise it is an exposure negative: shown and
not taken. An outcome becomes known only when the taking event happened, so counts "as of t" count
a click at the time of the click, never at the time of the impression.

Position bias: a slot further down is looked at less, so an item not taken there says less against
it, and one taken there says more for it. The surfaces already serve exploration slots (a Bernoulli
draw per slot, filled by an under-exposed item regardless of its relevance), so among explored
impressions the position is independent of relevance and the take rate by position, relative to the
first slot, estimates the examination propensity. A taken impression at position p then weighs
1 / propensity(p) in the ranker's lists (clipped at 1 / ``MIN_PROPENSITY``). The propensity curve is
one figure per position fitted on the fit's explored impressions, like a setting; the features stay
plain counts as of the row's time (an estimate over later impressions inside a feature would let a
row see them).

Nothing here reads the database: the Django side exports impressions as arrays (``impressions.csv``
in the interchange folder) and serving hands a person's recent impressions in ``PersonContext``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Fewer explored impressions than this estimate nothing: every position then counts alike.
MIN_EXPLORED = 200
# A propensity never goes below this (a weight never above its inverse): a slot almost nobody looks
# at would otherwise make one click weigh as much as a whole list.
MIN_PROPENSITY = 0.1
# Prior strength (in impressions) that pulls each position's explored take rate to the overall one.
PROPENSITY_PRIOR = 20.0
# Laplace prior of an item's click-through: (clicks + 1) / (impressions + 2).
CLICK_THROUGH_PRIOR = (1.0, 2.0)
_NEVER = np.inf


@dataclass
class ExposureLog:
    """Parallel arrays, one entry per item shown, sorted by time."""

    user: np.ndarray  # int32 person index (of the Dataset)
    item: np.ndarray  # int32 item index
    time: np.ndarray  # float64 epoch seconds when the answer was served
    position: np.ndarray  # int16, 0 = first slot
    explored: np.ndarray  # bool: shown in an exploration slot

    def __post_init__(self) -> None:
        order = np.argsort(self.time, kind="stable")
        if order.shape[0] and np.any(order != np.arange(order.shape[0])):
            self.user, self.item, self.time = self.user[order], self.item[order], self.time[order]
            self.position, self.explored = self.position[order], self.explored[order]

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def subset(self, mask: np.ndarray) -> ExposureLog:
        return ExposureLog(self.user[mask], self.item[mask], self.time[mask], self.position[mask], self.explored[mask])

    @classmethod
    def empty(cls) -> ExposureLog:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int16), np.zeros(0, bool))


def taken_at(
    exposures: ExposureLog,
    event_user: np.ndarray,
    event_item: np.ndarray,
    event_time: np.ndarray,
    event_is_purchase: np.ndarray,
    *,
    click_window: float,
    purchase_window: float,
) -> np.ndarray:
    """For each impression, the time of the first event that took it: any event of the same person
    on the same item within ``click_window`` seconds after it was shown, or a purchase within
    ``purchase_window``; ``inf`` when nothing did (an exposure negative)."""
    n = len(exposures)
    found = np.full(n, _NEVER)
    if n == 0 or event_user.shape[0] == 0:
        return found
    for is_purchase, window in ((False, click_window), (True, purchase_window)):
        pick = event_is_purchase if is_purchase else np.ones(event_user.shape[0], dtype=bool)
        if not np.any(pick):
            continue
        first = _first_event_after(
            exposures.user, exposures.item, exposures.time, event_user[pick], event_item[pick], event_time[pick]
        )
        within = first - exposures.time <= window
        found = np.where(within & (first < found), first, found)
    return found


def _first_event_after(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    event_user: np.ndarray,
    event_item: np.ndarray,
    event_time: np.ndarray,
) -> np.ndarray:
    """Time of the first event of (user, item) at or after each query's time; inf when none.

    Queries and events are sorted together by (pair, time), a query ahead of an event at the same
    time; each query's answer is then the next event in that order, if it is of the same pair."""
    n, m = user.shape[0], event_user.shape[0]
    result = np.full(n, _NEVER)
    if n == 0 or m == 0:
        return result
    rows = np.stack(
        [np.concatenate([user, event_user]).astype(np.int64), np.concatenate([item, event_item]).astype(np.int64)],
        axis=1,
    )
    _, pair = np.unique(rows, axis=0, return_inverse=True)
    pair = pair.ravel()
    times = np.concatenate([time, event_time]).astype(np.float64)
    is_event = np.concatenate([np.zeros(n, dtype=bool), np.ones(m, dtype=bool)])
    order = np.lexsort((is_event, times, pair))
    sorted_pair, sorted_event = pair[order], is_event[order]
    total = n + m
    index = np.where(sorted_event, np.arange(total), total)
    next_event = np.minimum.accumulate(index[::-1])[::-1]  # the first event at or after each place
    found = next_event < total
    safe = np.minimum(next_event, total - 1)
    same = found & (sorted_pair[safe] == sorted_pair)
    answer = np.where(same, times[order][safe], _NEVER)
    queries = ~sorted_event
    result[order[queries]] = answer[queries]
    return result


# --- position bias -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Propensity:
    """Examination propensity by position, 1 at the first slot, estimated from explored impressions."""

    by_position: np.ndarray  # float64
    explored: int  # how many explored impressions it was estimated from (0: not estimated)

    def at(self, position: np.ndarray) -> np.ndarray:
        last = self.by_position.shape[0] - 1
        return self.by_position[np.clip(position.astype(np.int64), 0, last)]

    def as_dict(self) -> dict[str, object]:
        return {"by_position": [round(float(p), 4) for p in self.by_position], "explored_impressions": self.explored}


def estimate_propensity(exposures: ExposureLog, taken: np.ndarray, n_positions: int | None = None) -> Propensity:
    """Take rate by position among explored impressions relative to the first slot, smoothed toward
    the overall rate, made non-increasing down the list and kept above ``MIN_PROPENSITY``."""
    width = n_positions or (int(exposures.position.max()) + 1 if len(exposures) else 1)
    explored = exposures.explored
    if int(explored.sum()) < MIN_EXPLORED:
        return Propensity(np.ones(width), 0)
    position = np.clip(exposures.position[explored].astype(np.int64), 0, width - 1)
    hits = np.bincount(position, weights=taken[explored].astype(np.float64), minlength=width)
    shown = np.bincount(position, minlength=width).astype(np.float64)
    overall = hits.sum() / shown.sum()
    if overall <= 0:
        return Propensity(np.ones(width), int(explored.sum()))
    rate = (hits + PROPENSITY_PRIOR * overall) / (shown + PROPENSITY_PRIOR)
    relative = np.minimum.accumulate(rate / rate[0])
    return Propensity(np.clip(relative, MIN_PROPENSITY, 1.0), int(explored.sum()))


def take_weights(position: np.ndarray, propensity: Propensity) -> np.ndarray:
    """Inverse-propensity weight of a taken impression at each position."""
    return (1.0 / propensity.at(position)).astype(np.float32)


@dataclass
class ExposureTraining:
    """What a fit knows of its impressions: the log (before the fit time), each one's taking time,
    the propensity and the index features read."""

    log: ExposureLog
    taken: np.ndarray  # float64 time of the taking event, inf for an exposure negative
    propensity: Propensity
    index: ExposureIndex
    # An impression not taken is a negative only once its click window closed before this time.
    settled_before: float = np.inf

    @classmethod
    def prepare(
        cls,
        log: ExposureLog,
        event_user: np.ndarray,
        event_item: np.ndarray,
        event_time: np.ndarray,
        event_is_purchase: np.ndarray,
        *,
        click_window: float,
        purchase_window: float,
        as_of: float,
    ) -> ExposureTraining:
        taken = taken_at(
            log,
            event_user,
            event_item,
            event_time,
            event_is_purchase,
            click_window=click_window,
            purchase_window=purchase_window,
        )
        propensity = estimate_propensity(log, np.isfinite(taken))
        index = ExposureIndex.build(log, taken, propensity, click_window)
        return cls(log, taken, propensity, index, settled_before=as_of - click_window)

    def of_person(self) -> dict[int, np.ndarray]:
        """Row numbers of each person's impressions, in time order."""
        if not len(self.log):
            return {}
        order = np.argsort(self.log.user, kind="stable")
        users = self.log.user[order]
        bounds = np.flatnonzero(np.diff(users)) + 1
        blocks = zip(np.split(users, bounds), np.split(order, bounds), strict=True)
        return {int(block[0]): rows for block, rows in blocks}


# --- point-in-time counts ------------------------------------------------------------------------


class ExposureIndex:
    """Per item: impressions and clicks, countable as of any time.

    ``item_figures(items, now)`` counts only impressions shown before ``now`` and clicks whose taking
    event happened before ``now``: a training row at time t sees what was known at t.
    """

    def __init__(
        self,
        item: np.ndarray,
        time: np.ndarray,
        taken: np.ndarray,
        propensity: Propensity,
        click_window: float,
    ) -> None:
        self.propensity, self.click_window = propensity, click_window
        self.item, self.time, self.taken = item, time, taken
        took = np.isfinite(taken)
        # Times become ranks on one grid, so that (item, time) is one exact int64 key.
        self._grid = np.unique(np.concatenate([time, taken[took]]))
        self._width = np.int64(self._grid.shape[0] + 1)
        shown_keys = item.astype(np.int64) * self._width + np.searchsorted(self._grid, time)
        self._shown_keys = np.sort(shown_keys)
        self._taken_keys = np.sort(item[took].astype(np.int64) * self._width + np.searchsorted(self._grid, taken[took]))

    def _counts(self, keys: np.ndarray, items: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(first, one past the last) place in ``keys`` of each item's entries before ``now``."""
        base = items.astype(np.int64) * self._width
        rank = np.int64(np.searchsorted(self._grid, now, side="left"))  # grid times before now
        return np.searchsorted(keys, base, side="left"), np.searchsorted(keys, base + rank, side="left")

    @classmethod
    def build(
        cls, exposures: ExposureLog, taken: np.ndarray, propensity: Propensity, click_window: float
    ) -> ExposureIndex:
        return cls(exposures.item, exposures.time, taken, propensity, click_window)

    def item_figures(self, items: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(impressions, click-through) of each item as of ``now``: impressions shown before ``now``,
        clicks whose taking event came before ``now``."""
        start, upto = self._counts(self._shown_keys, items, now)
        t_start, t_upto = self._counts(self._taken_keys, items, now)
        shown = (upto - start).astype(np.float64)
        prior_clicks, prior_shown = CLICK_THROUGH_PRIOR
        ratio = (t_upto - t_start + prior_clicks) / (shown + prior_shown)
        return shown.astype(np.float32), ratio.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "exposure_item": self.item.astype(np.int32),
            "exposure_time": self.time,
            "exposure_taken": self.taken,
        }

    def meta(self) -> dict[str, object]:
        return {"click_window": self.click_window, "propensity": self.propensity.as_dict()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ExposureIndex:
        propensity = Propensity(
            np.asarray(meta["propensity"]["by_position"], dtype=np.float64),
            int(meta["propensity"]["explored_impressions"]),
        )
        return cls(
            arrays["exposure_item"],
            arrays["exposure_time"],
            arrays["exposure_taken"],
            propensity,
            float(meta["click_window"]),
        )


def person_figures(
    candidates: np.ndarray,
    shown_items: np.ndarray,
    shown_times: np.ndarray,
    history_items: np.ndarray,
    history_times: np.ndarray,
    now: float,
    click_window: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(times shown, times shown and not taken) of each candidate to this person, as of ``now``.

    Only impressions before ``now`` count, and one counts as not taken only when no event of the
    person on the item followed it before ``now`` (within ``click_window``): the same reading in a
    training row, which sees the history before its cut-off, and at serving."""
    n = candidates.shape[0]
    before = shown_times < now
    if not np.any(before):
        return np.zeros(n, np.float32), np.zeros(n, np.float32)
    items, times = shown_items[before], shown_times[before]
    taken = np.zeros(items.shape[0], dtype=bool)
    if history_items.shape[0]:
        known = history_times < now
        first = _first_event_after(
            np.zeros(items.shape[0], np.int32),
            items,
            times,
            np.zeros(int(known.sum()), np.int32),
            history_items[known],
            history_times[known],
        )
        taken = first - times <= click_window
    unique, inverse = np.unique(items, return_inverse=True)
    shown_count = np.bincount(inverse, minlength=unique.shape[0])
    ignored_count = np.bincount(inverse, weights=(~taken).astype(np.float64), minlength=unique.shape[0])
    position = np.minimum(np.searchsorted(unique, candidates), unique.shape[0] - 1)
    hit = unique[position] == candidates
    return (
        np.where(hit, shown_count[position], 0).astype(np.float32),
        np.where(hit, ignored_count[position], 0).astype(np.float32),
    )
