"""Load ``events.csv`` (and ``users.csv`` traits) of the interchange format through the same
ingestion path as the API, so imported events are validated, stitched and deduplicated alike.

Each row gets a message id derived from its content and line number: importing the same file
twice stores nothing the second time, while two identical rows in one file both count.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from catalog.interchange import EventRow, InterchangeError, iter_events, read_users
from profiles.ingestion import ingest_messages

CHUNK = 5000


@dataclass
class EventImportReport:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, int] = field(default_factory=dict)
    people_with_traits: int = 0
    person_ids: set[int] = field(default_factory=set)

    def reject(self, reason: str, line: int) -> None:
        self.rejected[reason] += 1
        self.examples.setdefault(reason, line)


def row_message(row: EventRow, line: int, imported_at: datetime) -> dict[str, Any]:
    timestamp = row.timestamp or imported_at
    fingerprint = "|".join(
        (
            row.user_id,
            row.item_id,
            row.event_type,
            timestamp.isoformat() if row.timestamp else "",
            str(row.quantity),
            str(row.price),
            row.order_id,
            str(line),
        )
    )
    properties: dict[str, Any] = {"product_id": row.item_id}
    if row.quantity is not None:
        properties["quantity"] = row.quantity
    if row.price is not None:
        properties["price"] = str(row.price)
    if row.order_id:
        properties["order_id"] = row.order_id
    return {
        "type": "track",
        "messageId": "imp-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:32],
        "userId": row.user_id,
        "event": row.event_type,
        "properties": properties,
        "timestamp": timestamp.isoformat(),
        "context": {"source": "import"},
    }


def _flush(pending: list[tuple[int, dict[str, Any]]], report: EventImportReport) -> None:
    if not pending:
        return
    result = ingest_messages([message for _, message in pending], refresh=False)
    report.accepted += result.accepted
    report.duplicates += result.duplicates
    report.person_ids |= result.person_ids
    for rejection in result.rejected:
        report.reject(f"{rejection.attr}: {rejection.detail}", pending[rejection.index][0])
    pending.clear()


def import_events(
    folder: str | os.PathLike[str], progress: Callable[[int], object] = lambda n: None
) -> EventImportReport:
    report = EventImportReport()
    imported_at = timezone.now()
    users = read_users(folder)
    if users:
        identify = [
            {
                "type": "identify",
                "userId": user_id,
                "traits": traits,
                "messageId": "imp-traits-"
                + hashlib.sha1(f"{user_id}|{sorted(traits.items())}".encode()).hexdigest()[:24],
            }
            for user_id, traits in users.items()
        ]
        for start in range(0, len(identify), CHUNK):
            ingest_messages(identify[start : start + CHUNK], refresh=False)
        report.people_with_traits = len(users)
    pending: list[tuple[int, dict[str, Any]]] = []
    for line, row in iter_events(folder):
        report.read += 1
        progress(1)
        if isinstance(row, InterchangeError):
            report.reject(f"{row.column}: {row}", line)
            continue
        pending.append((line, row_message(row, line, imported_at)))
        if len(pending) >= CHUNK:
            _flush(pending, report)
    _flush(pending, report)
    return report
