"""Interactions, catalogue and people loaded from an interchange folder into arrays.

Everything downstream works on integer indices: people and items get dense ids in the order they
are first met, events become parallel numpy arrays sorted by time. Timestamps, ``items.csv`` and
``users.csv`` are all optional in the format, so each has a fallback here rather than an assumption
about retail: without timestamps the row order stands in for time (``has_timestamps`` says so),
without ``items.csv`` items have no text, without ``users.csv`` nobody has a segment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from catalog.interchange import (
    REQUIRED_EVENT_COLUMNS,
    InterchangeError,
    iter_events,
    iter_items,
    parse_event,
    parse_timestamp,
    read_rows,
    read_users,
)
from personalization.engine.exposure import ExposureLog

SECONDS_PER_DAY = 86_400.0

# How much one event of a type says about interest, relative to a purchase. Types not listed
# count as a light signal; the ranker learns the rest from the features.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "purchase": 1.0,
    "order": 1.0,
    "transaction": 1.0,
    "conversion": 1.0,
    "add_to_cart": 0.5,
    "addtocart": 0.5,
    "cart": 0.5,
    "wishlist": 0.4,
    "like": 0.4,
    "rating": 0.4,
    "click": 0.25,
    "view": 0.15,
    "impression": 0.0,
}
UNKNOWN_EVENT_WEIGHT = 0.3

# A gap longer than this between two events of one person starts a new session when the data
# carries no order id; 30 minutes is the web-analytics convention.
SESSION_GAP_SECONDS = 30 * 60.0


def event_weight(event_type: str, weights: dict[str, float] | None = None) -> float:
    table = DEFAULT_EVENT_WEIGHTS if weights is None else weights
    return table.get(event_type.strip().lower(), UNKNOWN_EVENT_WEIGHT)


@dataclass
class EventLog:
    """Parallel arrays, one entry per event, sorted by time (stable, so file order breaks ties)."""

    user: np.ndarray  # int32 person index
    item: np.ndarray  # int32 item index
    time: np.ndarray  # float64 epoch seconds, or the row number when the data has no timestamps
    weight: np.ndarray  # float32 interest weight of the event type
    quantity: np.ndarray  # float32, 1 where the data says nothing
    session: np.ndarray  # int64 order or session id, unique across people
    event_type: np.ndarray  # int16 index into Dataset.event_types

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def subset(self, mask: np.ndarray) -> EventLog:
        return EventLog(
            user=self.user[mask],
            item=self.item[mask],
            time=self.time[mask],
            weight=self.weight[mask],
            quantity=self.quantity[mask],
            session=self.session[mask],
            event_type=self.event_type[mask],
        )

    def matrix(self, n_users: int, n_items: int, values: np.ndarray | None = None) -> sp.csr_matrix:
        """person × item sums of ``values`` (the event weights by default); duplicates add up."""
        data = self.weight if values is None else values
        return sp.csr_matrix(
            (data.astype(np.float32), (self.user, self.item)), shape=(n_users, n_items), dtype=np.float32
        )


@dataclass
class Catalogue:
    item_ids: list[str]
    texts: list[str]  # title, description, category, brand and attributes; "" without items.csv
    price: np.ndarray  # float32, NaN where unknown
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)

    def take(self, keep: np.ndarray) -> Catalogue:
        return Catalogue(
            item_ids=[self.item_ids[i] for i in keep],
            texts=[self.texts[i] for i in keep],
            price=self.price[keep],
        )


@dataclass
class Dataset:
    user_ids: list[str]
    catalogue: Catalogue
    events: EventLog
    event_types: list[str]
    has_timestamps: bool
    segment_names: list[str]  # values of the segment attribute (e.g. country), index = segment id
    user_segment: np.ndarray  # int32 per person, -1 when unknown
    bad_rows: int = 0
    user_index: dict[str, int] = field(default_factory=dict)
    exposures: ExposureLog | None = None  # impressions (``impressions.csv``), when the folder has them

    def __post_init__(self) -> None:
        if not self.user_index:
            self.user_index = {user_id: i for i, user_id in enumerate(self.user_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.catalogue)

    def with_events(self, events: EventLog) -> Dataset:
        """The same people and catalogue with another slice of the event log."""
        return Dataset(
            user_ids=self.user_ids,
            catalogue=self.catalogue,
            events=events,
            event_types=self.event_types,
            has_timestamps=self.has_timestamps,
            segment_names=self.segment_names,
            user_segment=self.user_segment,
            bad_rows=self.bad_rows,
            user_index=self.user_index,
            exposures=self.exposures,
        )

    def restrict_catalogue_to_events(self) -> Dataset:
        """Only the items that occur in the event log, re-indexed (the evaluation protocol ranks
        the catalogue seen in history, and an item known only from items.csv would leak that it
        exists later)."""
        keep = np.unique(self.events.item)
        remap = np.full(self.n_items, -1, dtype=np.int32)
        remap[keep] = np.arange(keep.shape[0], dtype=np.int32)
        events = EventLog(
            user=self.events.user,
            item=remap[self.events.item],
            time=self.events.time,
            weight=self.events.weight,
            quantity=self.events.quantity,
            session=self.events.session,
            event_type=self.events.event_type,
        )
        restricted = self.with_events(events)
        restricted.catalogue = self.catalogue.take(keep)
        if self.exposures is not None:  # impressions of items no longer in the catalogue go too
            shown = self.exposures.subset(remap[self.exposures.item] >= 0)
            shown.item = remap[shown.item]
            restricted.exposures = shown
        return restricted


def _item_text(title: str, description: str, category: str, brand: str, attributes: dict[str, str]) -> str:
    # Description repeats the title in many feeds; keeping both weighs the title words up, which
    # is what we want from the most specific field.
    parts = [title, description, category, brand, *attributes.values()]
    return " ".join(p for p in parts if p)


def _sessions(user: np.ndarray, time: np.ndarray, orders: list[str], has_timestamps: bool) -> np.ndarray:
    """An order id where the data gives one, else a new session after a 30-minute gap (or, without
    timestamps, whenever the file moves on to another person)."""
    n = user.shape[0]
    session = np.empty(n, dtype=np.int64)
    order_codes: dict[str, int] = {}
    next_id = 0
    # Events arrive time-sorted; per person, the previous event decides whether a session goes on.
    last_time: dict[int, float] = {}
    last_session: dict[int, int] = {}
    previous_user = -1
    for k in range(n):
        u = int(user[k])
        order = orders[k]
        if order:
            key = f"{u}\x00{order}"
            if key not in order_codes:
                order_codes[key] = next_id
                next_id += 1
            session[k] = order_codes[key]
            continue
        if has_timestamps:
            continues = u in last_time and time[k] - last_time[u] <= SESSION_GAP_SECONDS
        else:
            continues = u == previous_user
        if not continues:
            last_session[u] = next_id
            next_id += 1
        session[k] = last_session[u]
        last_time[u] = float(time[k])
        previous_user = u
    return session


def load_interchange(
    folder: str | os.PathLike[str],
    *,
    segment_attribute: str | None = "country",
    event_weights: dict[str, float] | None = None,
    strict: bool = False,
) -> Dataset:
    """Read ``events.csv`` (+ optional ``items.csv``, ``users.csv``) from ``folder``.

    Rows the format rejects are counted in ``bad_rows`` and skipped, unless ``strict``. Items
    listed in ``items.csv`` without any event stay in the catalogue: content similarity is how
    they get recommended.
    """
    folder = Path(folder)
    user_ids: list[str] = []
    user_index: dict[str, int] = {}
    item_ids: list[str] = []
    texts: list[str] = []
    prices: list[float] = []
    item_index: dict[str, int] = {}

    def item_slot(item_id: str) -> int:
        slot = item_index.get(item_id)
        if slot is None:
            slot = item_index[item_id] = len(item_ids)
            item_ids.append(item_id)
            texts.append("")
            prices.append(float("nan"))
        return slot

    bad = 0
    for _, item_row in iter_items(folder):
        if isinstance(item_row, InterchangeError):
            if strict:
                raise item_row
            bad += 1
            continue
        slot = item_slot(item_row.item_id)
        texts[slot] = _item_text(
            item_row.title, item_row.description, item_row.category, item_row.brand, item_row.attributes
        )
        prices[slot] = float(item_row.price) if item_row.price is not None else float("nan")

    type_index: dict[str, int] = {}
    users: list[int] = []
    items: list[int] = []
    times: list[float] = []
    types: list[int] = []
    quantities: list[float] = []
    orders: list[str] = []
    missing_time = 0
    for _, row in iter_events(folder):
        if isinstance(row, InterchangeError):
            if strict:
                raise row
            bad += 1
            continue
        u = user_index.get(row.user_id)
        if u is None:
            u = user_index[row.user_id] = len(user_ids)
            user_ids.append(row.user_id)
        users.append(u)
        items.append(item_slot(row.item_id))
        if row.timestamp is None:
            missing_time += 1
            times.append(float("nan"))
        else:
            times.append(row.timestamp.timestamp())
        types.append(type_index.setdefault(row.event_type, len(type_index)))
        quantities.append(float(row.quantity) if row.quantity and row.quantity > 0 else 1.0)
        orders.append(row.order_id)

    n = len(users)
    time = np.asarray(times, dtype=np.float64)
    # A file where some rows lack a time cannot be ordered by time; the row order is then the
    # only clock we have, for every row alike.
    has_timestamps = n > 0 and missing_time == 0
    if not has_timestamps:
        time = np.arange(n, dtype=np.float64)
    order = np.argsort(time, kind="stable")
    user = np.asarray(users, dtype=np.int32)[order]
    time = time[order]
    event_types = list(type_index)
    type_weight = np.asarray([event_weight(t, event_weights) for t in event_types], dtype=np.float32)
    event_type = np.asarray(types, dtype=np.int16)[order] if n else np.zeros(0, dtype=np.int16)
    log = EventLog(
        user=user,
        item=np.asarray(items, dtype=np.int32)[order],
        time=time,
        weight=type_weight[event_type] if n else np.zeros(0, dtype=np.float32),
        quantity=np.asarray(quantities, dtype=np.float32)[order],
        session=_sessions(user, time, [orders[k] for k in order], has_timestamps),
        event_type=event_type,
    )

    segment_names: list[str] = []
    user_segment = np.full(len(user_ids), -1, dtype=np.int32)
    if segment_attribute:
        attributes = read_users(folder) if user_ids else {}
        segment_index: dict[str, int] = {}
        for user_id, attrs in attributes.items():
            value = attrs.get(segment_attribute, "").strip()
            if value and user_id in user_index:
                user_segment[user_index[user_id]] = segment_index.setdefault(value, len(segment_index))
        segment_names = list(segment_index)

    return Dataset(
        user_ids=user_ids,
        catalogue=Catalogue(item_ids=item_ids, texts=texts, price=np.asarray(prices, dtype=np.float32)),
        events=log,
        event_types=event_types,
        has_timestamps=has_timestamps,
        segment_names=segment_names,
        user_segment=user_segment,
        bad_rows=bad,
        exposures=read_impressions(folder, user_index, item_index) if has_timestamps else None,
    )


IMPRESSION_COLUMNS = ("user_id", "item_id", "timestamp", "position", "explored")


def read_impressions(folder: Path, user_index: dict[str, int], item_index: dict[str, int]) -> ExposureLog | None:
    """``impressions.csv`` (one row per item shown: person, item, when, position from 0, whether in
    an exploration slot) as an ``ExposureLog``; people and items the events do not know are left out.
    None without the file."""
    path = folder / "impressions.csv"
    if not path.exists():
        return None
    users: list[int] = []
    items: list[int] = []
    times: list[float] = []
    positions: list[int] = []
    explored: list[bool] = []
    for _, raw in read_rows(path, IMPRESSION_COLUMNS):
        u, i = user_index.get(raw["user_id"]), item_index.get(raw["item_id"])
        if u is None or i is None:
            continue
        try:
            at = parse_timestamp(raw["timestamp"])
            position = int(raw["position"])
        except (InterchangeError, ValueError) as exc:
            column = "timestamp" if "time" in str(exc) else "position"
            raise InterchangeError(f"impressions.csv: {exc}", column) from exc
        if at is None:
            continue
        users.append(u)
        items.append(i)
        times.append(at.timestamp())
        positions.append(position)
        explored.append(raw["explored"].strip().lower() in ("1", "true", "yes"))
    return ExposureLog(
        user=np.asarray(users, dtype=np.int32),
        item=np.asarray(items, dtype=np.int32),
        time=np.asarray(times, dtype=np.float64),
        position=np.asarray(positions, dtype=np.int16),
        explored=np.asarray(explored, dtype=bool),
    )


def read_event_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(person, item) of every usable row of a file in the ``events.csv`` layout (a test set)."""
    pairs: list[tuple[str, str]] = []
    for _, raw in read_rows(Path(path), REQUIRED_EVENT_COLUMNS):
        try:
            row = parse_event(raw)
        except InterchangeError:
            continue
        pairs.append((row.user_id, row.item_id))
    return pairs
