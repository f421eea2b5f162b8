"""The catalogue as arrays aligned with an engine's item index, kept in process memory.

Serving needs margin, age, stock, category, brand and title for ~500 candidates per request; reading
them row by row would cost a query per request. The table is built once per engine version (one pass
over the catalogue) and refreshed with the rows changed since the last look, at most every
``REFRESH_SECONDS``, so stock and ``active`` are never more than a few seconds old.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from catalog.models import Item
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


@dataclass
class ItemTable:
    item_ids: Sequence[str]
    index: dict[str, int]
    known: np.ndarray  # bool: the item exists in the catalogue
    active: np.ndarray
    in_stock: np.ndarray
    stock: np.ndarray  # float64, NaN when not tracked
    margin: np.ndarray  # float64, NaN when unknown
    published: np.ndarray  # float64 epoch seconds, NaN when unknown
    kind: np.ndarray  # object
    category: np.ndarray  # object
    brand: np.ndarray  # object
    title: list[str]
    seen_until: datetime | None = None  # the refresh reads rows changed after this
    checked_at: float = 0.0

    def __post_init__(self) -> None:
        self.id_array = np.asarray(self.item_ids, dtype=object)
        self._kind_masks: dict[frozenset[str], np.ndarray] = {}

    def of_kinds(self, kinds: Iterable[str]) -> np.ndarray:
        """True for items of one of ``kinds`` (kept per set of kinds until the next change)."""
        wanted = frozenset(kinds)
        mask = self._kind_masks.get(wanted)
        if mask is None:
            mask = np.isin(self.kind, list(wanted))
            self._kind_masks[wanted] = mask
        return mask

    @classmethod
    def build(cls, item_ids: Sequence[str]) -> ItemTable:
        n = len(item_ids)
        table = cls(
            item_ids=item_ids,
            index={item_id: i for i, item_id in enumerate(item_ids)},
            known=np.zeros(n, dtype=bool),
            active=np.zeros(n, dtype=bool),
            in_stock=np.zeros(n, dtype=bool),
            stock=np.full(n, np.nan),
            margin=np.full(n, np.nan),
            published=np.full(n, np.nan),
            kind=np.full(n, "", dtype=object),
            category=np.full(n, "", dtype=object),
            brand=np.full(n, "", dtype=object),
            title=list(item_ids),
        )
        started = timezone.now()
        table._apply(Item.objects.values_list(*_FIELDS).iterator(chunk_size=20_000), started)
        table.checked_at = time.monotonic()
        return table

    def _apply(self, rows: Iterable[tuple], started: datetime) -> None:
        """Apply ``rows`` read from the catalogue from ``started`` on, and move the watermark."""
        index = self.index
        newest = self.seen_until
        applied = False
        for external_id, kind, title, category, brand, margin, stock, published_at, active, updated_at in rows:
            if newest is None or updated_at > newest:
                newest = updated_at
            i = index.get(external_id)
            if i is None:
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


def item_table(key: object, item_ids: Sequence[str]) -> ItemTable:
    """The table for an engine's item list (``key``: the engine version it belongs to)."""
    return _tables.for_engine(key, item_ids)


def forget_item_table() -> None:
    _tables.forget()
