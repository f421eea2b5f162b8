"""The interchange format: a folder with ``events.csv`` and optional ``items.csv``/``users.csv``.

Plain Python, free of Django, so that evaluation, benchmarks and importers share one reader.
See ``docs/interchange.md`` for the format itself.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "quantity", "price", "order_id")
ITEM_COLUMNS = ("item_id", "title", "description", "category", "brand", "price")
REQUIRED_EVENT_COLUMNS = ("user_id", "item_id", "event_type")
REQUIRED_ITEM_COLUMNS = ("item_id",)


class InterchangeError(ValueError):
    """A row or file that does not follow the format; ``column`` names the offending field."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class EventRow:
    user_id: str
    item_id: str
    event_type: str
    timestamp: datetime | None
    quantity: int | None = None
    price: Decimal | None = None
    order_id: str = ""


@dataclass(frozen=True, slots=True)
class ItemRow:
    item_id: str
    title: str = ""
    description: str = ""
    category: str = ""
    brand: str = ""
    price: Decimal | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def parse_timestamp(value: str) -> datetime | None:
    """ISO 8601 (``2011-11-09 08:26:00``, ``...T...Z``, offsets) or a Unix epoch in seconds.

    Naive times are taken as UTC. An empty value means "no timestamp" (allowed by the format).
    """
    value = value.strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InterchangeError(f"not an ISO 8601 time or Unix epoch: {value!r}", "timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_int(value: str, column: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError as exc:
        raise InterchangeError(f"not a number: {value!r}", column) from exc


def _parse_decimal(value: str, column: str) -> Decimal | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise InterchangeError(f"not a number: {value!r}", column) from exc
    if not number.is_finite():
        raise InterchangeError(f"not a finite number: {value!r}", column)
    return number


def _check_header(path: Path, header: list[str] | None, required: tuple[str, ...]) -> list[str]:
    if not header:
        raise InterchangeError(f"{path.name} is empty")
    missing = [c for c in required if c not in header]
    if missing:
        raise InterchangeError(f"{path.name} lacks column(s): {', '.join(missing)}", missing[0])
    return header


def parse_event(raw: dict[str, str]) -> EventRow:
    for column in REQUIRED_EVENT_COLUMNS:
        if not (raw.get(column) or "").strip():
            raise InterchangeError(f"{column} is empty", column)
    return EventRow(
        user_id=raw["user_id"].strip(),
        item_id=raw["item_id"].strip(),
        event_type=raw["event_type"].strip(),
        timestamp=parse_timestamp(raw.get("timestamp") or ""),
        quantity=_parse_int(raw.get("quantity") or "", "quantity"),
        price=_parse_decimal(raw.get("price") or "", "price"),
        order_id=(raw.get("order_id") or "").strip(),
    )


def parse_item(raw: dict[str, str]) -> ItemRow:
    item_id = (raw.get("item_id") or "").strip()
    if not item_id:
        raise InterchangeError("item_id is empty", "item_id")
    known = set(ITEM_COLUMNS)
    return ItemRow(
        item_id=item_id,
        title=(raw.get("title") or "").strip(),
        description=(raw.get("description") or "").strip(),
        category=(raw.get("category") or "").strip(),
        brand=(raw.get("brand") or "").strip(),
        price=_parse_decimal(raw.get("price") or "", "price"),
        attributes={k: v for k, v in raw.items() if k and k not in known and v not in (None, "")},
    )


def read_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV with a header (line 1)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _check_header(path, list(reader.fieldnames or []), required)
        for row in reader:
            yield reader.line_num, row


def iter_events(folder: str | os.PathLike[str]) -> Iterator[tuple[int, EventRow | InterchangeError]]:
    """Each event row, or the error that makes it unusable, with its line number."""
    for line, raw in read_rows(Path(folder) / "events.csv", REQUIRED_EVENT_COLUMNS):
        try:
            yield line, parse_event(raw)
        except InterchangeError as exc:
            yield line, exc


def iter_items(folder: str | os.PathLike[str]) -> Iterator[tuple[int, ItemRow | InterchangeError]]:
    path = Path(folder) / "items.csv"
    if not path.exists():
        return
    for line, raw in read_rows(path, REQUIRED_ITEM_COLUMNS):
        try:
            yield line, parse_item(raw)
        except InterchangeError as exc:
            yield line, exc


def read_users(folder: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Optional ``users.csv``: ``user_id`` plus free attributes (e.g. ``country``)."""
    path = Path(folder) / "users.csv"
    if not path.exists():
        return {}
    users: dict[str, dict[str, str]] = {}
    for _, raw in read_rows(path, ("user_id",)):
        user_id = (raw.pop("user_id") or "").strip()
        if user_id:
            users[user_id] = {k: v for k, v in raw.items() if k and v}
    return users


def count_data_rows(path: Path) -> int:
    """Rows after the header, for progress bars (counts physical lines; fine for our writers)."""
    with open(path, "rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)
