"""The catalogue's item ids as two compact arrays, looked up in batches: a million ids, not a million
Python strings in every process.

``ids`` holds each item's id as UTF-8 bytes in the engine's item order, ``sorted_ids`` the same
sorted and ``order`` the engine index of each sorted one, so a batch of ids is found with one
binary search (``positions``). Both are saved with the engine and read
memory-mapped, shared by the web processes of a machine. A dict of a million ids cost about 150 MB
in each process; these arrays cost a few MB once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from personalization.engine.artifacts import mapped


def _encoded(ids: Iterable[str]) -> np.ndarray:
    encoded = [str(i).encode("utf-8") for i in ids]
    if not encoded:
        return np.zeros(0, dtype="S1")
    return np.asarray(encoded, dtype=f"S{max(1, max(len(e) for e in encoded))}")


@dataclass(eq=False)
class ItemIds(Sequence[str]):
    ids: np.ndarray  # bytes (S), engine order
    sorted_ids: np.ndarray  # the same, sorted
    order: np.ndarray  # int64: the engine index of each of sorted_ids

    @classmethod
    def of(cls, ids: Sequence[str]) -> ItemIds:
        encoded = _encoded(ids)
        order = np.argsort(encoded, kind="stable").astype(np.int64)
        return cls(ids=encoded, sorted_ids=encoded[order], order=order)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [b.decode("utf-8") for b in self.ids[i].tolist()]
        return bytes(self.ids[int(i)]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), 65_536):
            yield from (b.decode("utf-8") for b in self.ids[start : start + 65_536].tolist())

    def take(self, positions: np.ndarray) -> list[str]:
        """The ids at ``positions`` (engine indices)."""
        return [b.decode("utf-8") for b in self.ids[np.asarray(positions, dtype=np.int64)].tolist()]

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Each id's engine index, -1 for an id the engine does not know; one search for the batch."""
        if not len(ids) or self.ids.shape[0] == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        wanted = _encoded(ids)
        width = self.ids.dtype.itemsize
        if wanted.dtype.itemsize > width:  # longer than any known id: never found, but must not match a prefix
            too_long = np.char.str_len(wanted) > width
            wanted = wanted.astype(self.ids.dtype)
        else:
            too_long = None
            wanted = wanted.astype(self.ids.dtype)
        sorted_ids = self.sorted_ids
        at = np.minimum(np.searchsorted(sorted_ids, wanted), self.ids.shape[0] - 1)
        found = sorted_ids[at] == wanted
        if too_long is not None:
            found &= ~too_long
        return np.where(found, self.order[at], -1).astype(np.int64)

    def save(self, folder: Path) -> None:
        for name in _FILES:
            np.save(folder / f"item_{name}.npy", getattr(self, name), allow_pickle=False)

    @staticmethod
    def saved(folder: Path) -> bool:
        return all((folder / f"item_{name}.npy").exists() for name in _FILES)

    @classmethod
    def load(cls, folder: Path) -> ItemIds:
        arrays = {name: mapped(folder / f"item_{name}.npy") for name in _FILES}
        return cls(ids=arrays["ids"], sorted_ids=arrays["sorted_ids"], order=arrays["order"])


_FILES = ("ids", "sorted_ids", "order")


class ItemIndex(Mapping[str, int]):
    """id → engine index, read-only, over ``ItemIds`` (what a dict of every id used to answer)."""

    def __init__(self, ids: ItemIds) -> None:
        self.ids = ids

    def __getitem__(self, item_id: str) -> int:
        found = int(self.ids.positions([item_id])[0])
        if found < 0:
            raise KeyError(item_id)
        return found

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and int(self.ids.positions([item_id])[0]) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        return self.ids.positions(ids)
