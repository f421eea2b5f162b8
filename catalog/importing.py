"""Load ``items.csv`` of the interchange format into the catalogue, validated like the API."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from catalog.api.serializers import ItemSerializer, first_field_error
from catalog.interchange import InterchangeError, ItemRow, iter_items
from catalog.services import upsert_items

CHUNK = 1000


@dataclass
class ImportReport:
    read: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, int] = field(default_factory=dict)  # reason → first line number

    def reject(self, reason: str, line: int) -> None:
        self.rejected[reason] += 1
        self.examples.setdefault(reason, line)


def _as_payload(row: ItemRow) -> dict[str, object]:
    attributes = dict(row.attributes)
    payload: dict[str, object] = {
        "external_id": row.item_id,
        "title": row.title,
        "description": row.description,
        "category": row.category,
        "brand": row.brand,
        "price": row.price,
    }
    for column in ("kind", "margin", "stock", "published_at", "active"):  # columns the model knows
        if column in attributes:
            payload[column] = attributes.pop(column)
    payload["attributes"] = attributes
    return payload


def import_items(folder: str | os.PathLike[str], progress: Callable[[int], object] = lambda n: None) -> ImportReport:
    report = ImportReport()
    if not (Path(folder) / "items.csv").exists():
        return report
    pending: dict[str, dict] = {}  # by external id: a later row for the same item wins
    for line, row in iter_items(folder):
        report.read += 1
        progress(1)
        if isinstance(row, InterchangeError):
            report.reject(f"{row.column}: {row}", line)
            continue
        serializer = ItemSerializer(data=_as_payload(row))
        if not serializer.is_valid():
            attr, _, detail = first_field_error(serializer.errors)
            report.reject(f"{attr}: {detail}", line)
            continue
        pending[row.item_id] = serializer.validated_data
        if len(pending) >= CHUNK:
            report.accepted += upsert_items(list(pending.values()))
            pending = {}
    report.accepted += upsert_items(list(pending.values()))
    return report
