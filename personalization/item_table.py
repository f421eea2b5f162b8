"""The catalogue as arrays aligned with an engine's item index, kept in process memory.

Serving needs margin, age, stock, category, brand and title for ~500 candidates per request; reading
them row by row would cost a query per request. The arrays are compact (codes for kinds,
categories and brands, one blob for the titles, the engine's memory-mapped ids for the index):
about 70 bytes an item, not a Python string per field and item. The table is built once per engine version (one pass
over the catalogue) and refreshed with the rows changed since the last look, at most every
``REFRESH_SECONDS``, so stock and ``active`` are never more than a few seconds old.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from catalog.models import Item
from personalization.engine.item_ids import ItemIds
from personalization.registry import settle_heap

REFRESH_SECONDS = 5.0
# A change saved this long before the refresh that should see it is still found: a transaction that
# stamped ``updated_at`` and commits later than that would be missed. The watermark never passes
# ``now - COMMIT_LAG``, so a row is read again at most a couple of times, never on every refresh.
COMMIT_LAG = timedelta(seconds=10)
_FIELDS = (
    "external_id",
    "kind",
    "title",
    "category",
    "brand",
    "margin",
    "stock",
    "published_at",
    "active",
    "updated_at",
)


class CodedColumn:
    """A text column with few distinct values (kind, category, brand): one int32 code per item and
    the list of values, instead of a Python string per item."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int32)
        self.values: list[str] = [""]
        self.lookup: dict[str, int] = {"": 0}
        self.array = np.asarray(self.values, dtype=object)

    def code(self, value: str) -> int:
        found = self.lookup.get(value)
        if found is None:
            found = self.lookup[value] = len(self.values)
            self.values.append(value)
            self.array = np.asarray(self.values, dtype=object)
        return found

    def __setitem__(self, i: int, value: str) -> None:
        self.codes[i] = self.code(value or "")

    def __getitem__(self, index: Any) -> Any:
        """One item's value, or an object array of the values of an array of items."""
        return self.array[self.codes[index]]

    def isin(self, wanted: Iterable[str]) -> np.ndarray:
        codes = [self.lookup[w] for w in wanted if w in self.lookup]
        return np.isin(self.codes, codes)


class TextColumn:
    """A text per item (titles) as one UTF-8 blob with offsets; texts set after ``compact`` (a
    changed title) live in a small dict beside it until the next build."""

    def __init__(self, n: int, default: Sequence[str]) -> None:
        self.n = n
        self.default = default  # what an item without a row shows (its id)
        self.blob = np.zeros(0, dtype=np.uint8)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        self.has = np.zeros(n, dtype=bool)
        self.changed: dict[int, str] = {}

    def __setitem__(self, i: int, value: str) -> None:
        self.changed[i] = value

    def __getitem__(self, i: int) -> str:
        i = int(i)
        found = self.changed.get(i)
        if found is not None:
            return found
        if not self.has[i]:
            return self.default[i]
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]]).decode("utf-8")

    def __len__(self) -> int:
        return self.n

    def compact(self) -> None:
        """Move every text set so far into the blob (after a build: a million strings become one array)."""
        if not self.changed:
            return
        for i in range(self.n):
            if self.has[i] and i not in self.changed:
                self.changed[i] = self[i]
        encoded = [b""] * self.n
        for i, text in self.changed.items():
            encoded[i] = text.encode("utf-8")
            self.has[i] = True
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=self.n)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        self.changed = {}


@dataclass
class ItemTable:
    item_ids: ItemIds
    known: np.ndarray  # bool: the item exists in the catalogue
    active: np.ndarray
    in_stock: np.ndarray
    stock: np.ndarray  # float32, NaN when not tracked
    margin: np.ndarray  # float32, NaN when unknown
    published: np.ndarray  # float64 epoch seconds, NaN when unknown
    kind: CodedColumn
    category: CodedColumn
    brand: CodedColumn
    title: TextColumn
    seen_until: datetime | None = None  # the refresh reads rows changed after this
    checked_at: float = 0.0

    def __post_init__(self) -> None:
        self._kind_masks: dict[frozenset[str], np.ndarray] = {}

    def ids(self, index: np.ndarray) -> np.ndarray:
        """The item ids of ``index`` (engine indices), as an object array."""
        return np.asarray(self.item_ids.take(index), dtype=object)

    def of_kinds(self, kinds: Iterable[str]) -> np.ndarray:
        """True for items of one of ``kinds`` (kept per set of kinds until the next change)."""
        wanted = frozenset(kinds)
        mask = self._kind_masks.get(wanted)
        if mask is None:
            mask = self.kind.isin(wanted)
            self._kind_masks[wanted] = mask
        return mask

    @classmethod
    def build(cls, item_ids: Sequence[str]) -> ItemTable:
        ids = item_ids if isinstance(item_ids, ItemIds) else ItemIds.of(list(item_ids))
        n = len(ids)
        table = cls(
            item_ids=ids,
            known=np.zeros(n, dtype=bool),
            active=np.zeros(n, dtype=bool),
            in_stock=np.zeros(n, dtype=bool),
            stock=np.full(n, np.nan, dtype=np.float32),
            margin=np.full(n, np.nan, dtype=np.float32),
            published=np.full(n, np.nan),
            kind=CodedColumn(n),
            category=CodedColumn(n),
            brand=CodedColumn(n),
            title=TextColumn(n, ids),
        )
        started = timezone.now()
        table._apply(Item.objects.values_list(*_FIELDS).iterator(chunk_size=20_000), started)
        table.title.compact()
        table.checked_at = time.monotonic()
        return table

    def _apply(self, rows: Iterable[tuple], started: datetime) -> None:
        """Apply ``rows`` read from the catalogue from ``started`` on, and move the watermark."""
        newest = self.seen_until
        applied = False
        for chunk in _chunks(rows, 10_000):
            positions = self.item_ids.positions([row[0] for row in chunk]).tolist()
            for i, row in zip(positions, chunk, strict=True):
                external_id, kind, title, category, brand, margin, stock, published_at, active, updated_at = row
                if newest is None or updated_at > newest:
                    newest = updated_at
                if i < 0:
                    continue
                applied = True
                self.known[i] = True
                self.active[i] = active
                self.in_stock[i] = stock is None or stock > 0
                self.stock[i] = np.nan if stock is None else float(stock)
                self.margin[i] = np.nan if margin is None else float(margin)
                self.published[i] = np.nan if published_at is None else published_at.timestamp()
                self.kind[i] = kind
                self.category[i] = category
                self.brand[i] = brand
                self.title[i] = title or external_id
        if applied:  # a kind may have changed: masks are rebuilt on next use
            self._kind_masks = {}
        # Not past ``started - COMMIT_LAG``: rows stamped before that may still be committing. Rows
        # sharing one timestamp (a bulk import) are read once more at most, not on every refresh.
        floor = started - COMMIT_LAG
        self.seen_until = floor if newest is None or newest > floor else newest

    def refresh(self) -> None:
        """Apply the catalogue rows changed since the last look (stock, active, titles)."""
        now = time.monotonic()
        if now - self.checked_at < REFRESH_SECONDS:
            return
        self.checked_at = now
        started = timezone.now()
        since = self.seen_until or started - COMMIT_LAG
        self._apply(Item.objects.filter(updated_at__gt=since).values_list(*_FIELDS), started)


class _Tables:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: object = None
        self.table: ItemTable | None = None

    def for_engine(self, key: object, item_ids: Sequence[str]) -> ItemTable:
        table = self.table
        if table is None or self.key != key:
            with self.lock:
                if self.table is None or self.key != key:
                    self.table, self.key = ItemTable.build(item_ids), key
                    settle_heap()
                table = self.table
        table.refresh()
        return table

    def forget(self) -> None:
        with self.lock:
            self.key, self.table = None, None


_tables = _Tables()


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def item_table(key: object, item_ids: Sequence[str]) -> ItemTable:
    """The table for an engine's item list (``key``: the engine version it belongs to)."""
    return _tables.for_engine(key, item_ids)


def forget_item_table() -> None:
    _tables.forget()
