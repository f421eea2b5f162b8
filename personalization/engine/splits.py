"""Evaluation splits: which events are history, which are the test, and when each person is served.

Four protocols, each the one a shared data set's README prescribes (docs/evaluation.md says why):

* ``cutoff``: history before a time, test from it on (Online Retail);
* ``last``: each person's last share of events by time, ties broken by item id (MovieLens);
* ``random``: for people with at least five items, a seeded random share of them (Last.fm, no time);
* ``file``: a given test file beside the history.

A ``Protocol`` remembers how the test was cut, so that ``Protocol.validation`` can carve a
validation split out of the history alone by the same rule: that is where baselines are tuned,
and it never sees the test split. Plain Python + numpy, free of Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from personalization.engine import regime
from personalization.engine.dataset import SECONDS_PER_DAY, Dataset
from personalization.engine.examples import holdout_window, target_events

DEFAULT_TEST_DAYS = 30.0
DEFAULT_SHARE = 0.2
RANDOM_MIN_ITEMS = 5
# Derives the validation draw's seed from the test draw's, so the two never coincide.
VALIDATION_SEED_SALT = 1


@dataclass(frozen=True)
class Protocol:
    kind: str  # "cutoff", "last", "random" or "file"
    share: float = DEFAULT_SHARE
    seed: int = 0
    cutoff: float = 0.0
    span: float = 0.0  # cutoff: how long the test period lasts, in seconds

    def validation(self, history: Dataset) -> EvaluationSplit:
        """The same protocol applied inside ``history`` (the split's training data, nothing else)."""
        if self.kind == "cutoff" and len(history.events):
            earlier = self.cutoff - self.span
            if float(history.events.time.min()) < earlier:
                return split_by_cutoff(history, earlier, until=self.cutoff)
        if self.kind == "random" or (self.kind in ("cutoff", "file") and not history.has_timestamps):
            seed = int(np.random.SeedSequence([self.seed, VALIDATION_SEED_SALT]).generate_state(1)[0])
            return split_by_random_share(history, self.share, seed)
        return split_by_last_share(history, self.share)


@dataclass
class EvaluationSplit:
    train: Dataset
    as_of: float  # the engine and the baselines are fitted on events before this
    test: dict[int, np.ndarray]  # person with history → relevant item indices (in the train catalogue)
    description: str
    now: np.ndarray | None = None  # float64 per person: when each is served; ``as_of`` for all when None
    cold_test: dict[int, np.ndarray] = field(default_factory=dict)  # people without history → items
    unseen_test_items: int = 0  # test (person, item) pairs dropped: the history never saw the item
    protocol: Protocol = field(default_factory=lambda: Protocol("file"))

    def person_now(self, person: int) -> float:
        return self.as_of if self.now is None else float(self.now[person])


def _relevant_sets(people: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    if people.shape[0] == 0:
        return {}
    pairs = np.unique(np.stack([people.astype(np.int64), items.astype(np.int64)], axis=1), axis=0)
    boundaries = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    return {int(chunk[0, 0]): chunk[:, 1] for chunk in np.split(pairs, boundaries)}


def _restrict(dataset: Dataset, past: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """The dataset with only ``past`` events and the catalogue they touch (the protocols rank every
    item seen in history), plus the map from old item indices to new ones (-1: not in history)."""
    train = dataset.with_events(dataset.events.subset(past)).restrict_catalogue_to_events()
    remap = np.full(dataset.n_items, -1, dtype=np.int64)
    kept = np.unique(dataset.events.item[past])
    remap[kept] = np.arange(kept.shape[0])
    return train, remap


def _split(
    dataset: Dataset,
    past: np.ndarray,
    future: np.ndarray,
    *,
    as_of: float,
    description: str,
    protocol: Protocol,
    per_person_now: bool,
) -> EvaluationSplit:
    events = dataset.events
    train, remap = _restrict(dataset, past)
    has_history = np.zeros(dataset.n_users, dtype=bool)
    has_history[events.user[past]] = True
    future = future & target_events(dataset)
    people, items = events.user[future], remap[events.item[future]]
    known = items >= 0
    unseen = np.unique(np.stack([people[~known], events.item[future][~known]]), axis=1).shape[1] if len(people) else 0
    now = None
    if per_person_now and dataset.has_timestamps:
        # Each test person is served just after their own last history event, not at the data's end.
        now = np.full(dataset.n_users, as_of, dtype=np.float64)
        last = np.full(dataset.n_users, -np.inf)
        np.maximum.at(last, events.user[past], events.time[past])
        now[has_history] = last[has_history]
    with_history = known & has_history[people]
    without_history = known & ~has_history[people]
    return EvaluationSplit(
        train=train,
        as_of=as_of,
        test=_relevant_sets(people[with_history], items[with_history]),
        description=description,
        now=now,
        cold_test=_relevant_sets(people[without_history], items[without_history]),
        unseen_test_items=int(unseen),
        protocol=protocol,
    )


def split_by_cutoff(dataset: Dataset, cutoff: float, until: float | None = None) -> EvaluationSplit:
    """History before ``cutoff``; test = items of the strongest event type in [cutoff, until)."""
    time = dataset.events.time
    future = time >= cutoff
    if until is not None:
        future &= time < until
    end = until if until is not None else (float(time.max()) + 1.0 if len(time) else cutoff)
    day = datetime.fromtimestamp(cutoff, tz=UTC).date().isoformat()
    return _split(
        dataset,
        time < cutoff,
        future,
        as_of=cutoff,
        description=f"cutoff {day}",
        protocol=Protocol("cutoff", cutoff=cutoff, span=max(end - cutoff, 0.0)),
        per_person_now=False,
    )


def _item_order(dataset: Dataset) -> np.ndarray:
    """Rank of each item index by item id: numerically when every id is a number, else as text."""
    ids = dataset.catalogue.item_ids
    numeric = all(i.isdigit() for i in ids)
    order = sorted(range(len(ids)), key=(lambda j: (int(ids[j]), ids[j])) if numeric else (lambda j: (0, ids[j])))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(ids))
    return rank


def split_by_last_share(dataset: Dataset, share: float = DEFAULT_SHARE) -> EvaluationSplit:
    """Each person's last ``share`` of events by time (ties broken by item id), rounded to the
    nearest whole number and at least one, for everybody with two events or more; the rest is
    history."""
    events = dataset.events
    n = len(events)
    order = np.lexsort((_item_order(dataset)[events.item], events.time, events.user))
    users = events.user[order]
    starts = np.searchsorted(users, users, side="left")
    length = np.searchsorted(users, users, side="right") - starts
    position = np.arange(n) - starts
    held = np.where(length >= 2, np.maximum(1, np.floor(length * share + 0.5)), 0)
    future = np.zeros(n, dtype=bool)
    future[order] = position >= length - held
    as_of = float(events.time[~future].max()) + 1.0 if np.any(~future) else 0.0
    return _split(
        dataset,
        ~future,
        future,
        as_of=as_of,
        description=f"each person's last {share:.0%} by time",
        protocol=Protocol("last", share=share),
        per_person_now=True,
    )


def split_by_random_share(
    dataset: Dataset, share: float = DEFAULT_SHARE, seed: int = 0, min_items: int = RANDOM_MIN_ITEMS
) -> EvaluationSplit:
    """For each person with at least ``min_items`` distinct items, a random ``share`` of them (at
    least one; the share rounded to the nearest whole number) drawn with ``seed``, people taken
    in the order the file first names them; every event with a drawn item is test, the rest
    history."""
    events = dataset.events
    pairs = events.user.astype(np.int64) * dataset.n_items + events.item
    distinct = np.unique(pairs)
    owners = distinct // dataset.n_items
    starts = np.searchsorted(owners, np.arange(dataset.n_users), side="left")
    ends = np.searchsorted(owners, np.arange(dataset.n_users), side="right")
    rng = np.random.default_rng(seed)
    drawn: list[np.ndarray] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        count = end - start
        if count < min_items:
            continue
        take = max(1, int(np.floor(count * share + 0.5)))
        drawn.append(distinct[start:end][rng.choice(count, size=take, replace=False)])
    future = np.isin(pairs, np.concatenate(drawn)) if drawn else np.zeros(len(events), dtype=bool)
    as_of = float(events.time[~future].max()) + 1.0 if np.any(~future) else 0.0
    return _split(
        dataset,
        ~future,
        future,
        as_of=as_of,
        description=f"random {share:.0%} of each person's items (seed {seed}, people with {min_items}+ items)",
        protocol=Protocol("random", share=share, seed=seed),
        per_person_now=True,
    )


def split_by_test_pairs(train_dataset: Dataset, pairs: list[tuple[str, str]]) -> EvaluationSplit:
    """A given train/test pair: ``train_dataset``'s events are history, ``pairs`` the test set.
    People and items the history never names are counted, not silently dropped."""
    events = train_dataset.events
    train, remap = _restrict(train_dataset, np.ones(len(events), dtype=bool))
    has_history = np.zeros(train_dataset.n_users, dtype=bool)
    has_history[events.user] = True
    people: list[int] = []
    items: list[int] = []
    cold_people: list[int] = []
    cold_items: list[int] = []
    unseen: set[tuple[str, str]] = set()
    newcomers: dict[str, int] = {}
    for user_id, item_id in pairs:
        item = train_dataset.catalogue.index.get(item_id)
        if item is None or remap[item] < 0:
            unseen.add((user_id, item_id))
            continue
        person = train_dataset.user_index.get(user_id)
        if person is None or not has_history[person]:
            # Somebody the history has never seen: indexed after everyone it has.
            if person is None:
                person = newcomers.setdefault(user_id, train_dataset.n_users + len(newcomers))
            slot = person
            cold_people.append(slot)
            cold_items.append(int(remap[item]))
            continue
        people.append(person)
        items.append(int(remap[item]))
    as_of = float(events.time.max()) + 1.0 if len(events) else 0.0
    return EvaluationSplit(
        train=train,
        as_of=as_of,
        test=_relevant_sets(np.asarray(people, dtype=np.int64), np.asarray(items, dtype=np.int64)),
        description="given test file",
        cold_test=_relevant_sets(np.asarray(cold_people, dtype=np.int64), np.asarray(cold_items, dtype=np.int64)),
        unseen_test_items=len(unseen),
        protocol=Protocol("file"),
    )


def split_by_holdout(dataset: Dataset, share: float = DEFAULT_SHARE) -> EvaluationSplit:
    """Each person's last ``share`` of events in the log's order: the training gate's hold-out for
    data without time (``manage.py evaluate`` uses the seeded random protocol instead)."""
    window = holdout_window(dataset, share)
    return _split(
        dataset,
        window.past,
        window.future,
        as_of=window.as_of,
        description=f"last {share:.0%} of each person's events",
        protocol=Protocol("last", share=share),
        per_person_now=False,
    )


def default_split(dataset: Dataset) -> EvaluationSplit:
    """The last 30 days as test when the data has time (a tenth of its span if that is shorter),
    otherwise a seeded random fifth of each person's items."""
    if dataset.has_timestamps and len(dataset.events):
        start, end = float(dataset.events.time.min()), float(dataset.events.time.max())
        test_seconds = min(DEFAULT_TEST_DAYS * SECONDS_PER_DAY, (end - start) / 10.0)
        return split_by_cutoff(dataset, end - test_seconds)
    return split_by_random_share(dataset)


def repeat_share(dataset: Dataset) -> float:
    """Share of the history's interactions that are with an item the person already had (the
    engine's own reading, ``regime.repeat_share``). Needs no clock, so data without time has one too."""
    return regime.repeat_share(dataset.events.user, dataset.events.item)


def scored_people(split: EvaluationSplit, exclude_seen: bool) -> tuple[np.ndarray, list[np.ndarray], int]:
    """The test people in index order, their relevant items and how many people were left out.

    With seen items excluded, an item the person already has can never be listed, so it is not
    counted as relevant either; a person left with nothing to find is left out (and counted).
    """
    people = np.asarray(sorted(split.test), dtype=np.int64)
    relevant = [split.test[int(p)] for p in people]
    if not exclude_seen or people.shape[0] == 0:
        return people, relevant, 0
    events = split.train.events
    seen = set((events.user.astype(np.int64) * split.train.n_items + events.item).tolist())
    kept_people: list[int] = []
    kept: list[np.ndarray] = []
    for person, items in zip(people.tolist(), relevant, strict=True):
        new = np.asarray([i for i in items.tolist() if person * split.train.n_items + i not in seen], dtype=np.int64)
        if new.shape[0]:
            kept_people.append(person)
            kept.append(new)
    return np.asarray(kept_people, dtype=np.int64), kept, people.shape[0] - len(kept_people)
