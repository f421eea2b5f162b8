"""What happens after an answer: impressions, attributed clicks and purchases, per-surface stats.

Impressions are written without slowing the answer: with Redis (a real deployment) each answer is
appended to an in-process buffer that a background thread bulk-inserts every ``FLUSH_SECONDS``;
on the embedded default (no Redis, tasks run in-process) they are written inline. Setting
``SURFACE_IMPRESSIONS_INLINE`` overrides the choice (tests).

Attribution (``compute_daily_stats``, run by a periodic task): a click is a view, add-to-cart or
email click of a shown item by the person it was shown to, either carrying the answer's
``recommendation_id`` in its properties or within ``CLICK_WINDOW`` of the answer; a purchase of a
shown item within ``PURCHASE_WINDOW`` is a conversion. The result is one row per surface and day
(click-through, conversion) and per-item exposure counts that exploration samples from; attributing a
day again replaces that day's share of the counts rather than adding to it. Clicks are
events in the log, so the next training sees them too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from personalization.models import Impression, SurfaceDailyStats, SurfaceItemExposure
from personalization.shared_db import server_bound_cursor
from profiles.models import Event

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
BUFFER_LIMIT = 5_000
CLICK_WINDOW = timedelta(hours=24)
PURCHASE_WINDOW = timedelta(days=7)
CLICK_KINDS = ("view", "add_to_cart", "email_click")
EXPOSURE_CHECK_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ImpressionRow:
    recommendation_id: str
    surface_id: int
    version_number: int | None
    model_version: int | None
    person_id: int | None
    item_ids: list[str]
    strategy: str
    experiment: str
    variant: str
    served_at: datetime
    degraded: bool = False
    explored: list[int] | None = None  # positions of the exploration slots


def _as_model(row: ImpressionRow) -> Impression:
    return Impression(
        recommendation_id=row.recommendation_id,
        surface_id=row.surface_id,
        version_number=row.version_number,
        model_version=row.model_version,
        person_id=row.person_id,
        item_ids=row.item_ids,
        strategy=row.strategy,
        experiment=row.experiment,
        variant=row.variant,
        served_at=row.served_at,
        degraded=row.degraded,
        explored=row.explored or [],
    )


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[ImpressionRow] = []
        self.thread: threading.Thread | None = None

    def add(self, row: ImpressionRow) -> None:
        with self.lock:
            if len(self.rows) < BUFFER_LIMIT:
                self.rows.append(row)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="impression-flusher", daemon=True)
                self.thread.start()

    def take(self) -> list[ImpressionRow]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            rows = self.take()
            if not rows:
                # Idle: hold no database connection (an idle web process would otherwise keep one
                # open, and ask the server whether it is usable, every second).
                connection.close()
                continue
            try:
                close_old_connections()
                write(rows)
            except Exception:  # a lost batch of impressions must not stop the flusher
                logger.exception("Could not write impressions")


_buffer = _Buffer()


def _inline() -> bool:
    return bool(getattr(settings, "SURFACE_IMPRESSIONS_INLINE", settings.CELERY_TASK_ALWAYS_EAGER))


IMPRESSION_COLUMNS = (
    "recommendation_id",
    "surface_id",
    "version_number",
    "model_version",
    "person_id",
    "item_ids",
    "strategy",
    "experiment",
    "variant",
    "served_at",
    "degraded",
    "explored",
)
# One statement with one array per column: the flusher shares the web process's interpreter, and
# building a model instance per row held it for ~10 ms a second at 100 answers a second.
_UNNEST_INSERT = (
    f"INSERT INTO {Impression._meta.db_table} ({', '.join(IMPRESSION_COLUMNS)}) "
    "SELECT r, s, v, m, p, i::jsonb, st, e, va, t, d, x::jsonb FROM unnest("
    "%b::varchar[], %b::bigint[], %b::integer[], %b::bigint[], %b::bigint[], %b::text[], %b::varchar[],"
    " %b::varchar[], %b::varchar[], %b::timestamptz[], %b::boolean[], %b::text[]"
    ") AS x(r, s, v, m, p, i, st, e, va, t, d, x) ON CONFLICT (recommendation_id) DO NOTHING"
)


def write(rows: list[ImpressionRow]) -> int:
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        columns = (
            [r.recommendation_id for r in rows],
            [r.surface_id for r in rows],
            [r.version_number for r in rows],
            [r.model_version for r in rows],
            [r.person_id for r in rows],
            [dumps(r.item_ids) for r in rows],
            [r.strategy for r in rows],
            [r.experiment for r in rows],
            [r.variant for r in rows],
            [r.served_at for r in rows],
            [r.degraded for r in rows],
            [dumps(r.explored or []) for r in rows],
        )
        with server_bound_cursor() as cursor:
            cursor.execute(_UNNEST_INSERT, columns, binary=True)
        return len(rows)
    Impression.objects.bulk_create([_as_model(r) for r in rows], ignore_conflicts=True)
    return len(rows)


def record_impression(row: ImpressionRow) -> None:
    """Log an answer; never raises (a failed log must not fail the answer)."""
    try:
        if _inline():
            write([row])
        else:
            _buffer.add(row)
    except Exception:
        logger.exception("Could not log impression %s", row.recommendation_id)


def recent_impressions(person_id: int, limit: int = 50) -> list[tuple[list[str], datetime]]:
    """The person's latest answers (items shown, when), newest first: exposure features read them."""
    rows = Impression.objects.filter(person_id=person_id).order_by("-served_at").values_list("item_ids", "served_at")
    return [(list(items), at) for items, at in rows[:limit]]


def flush_impressions() -> int:
    """Write what the buffer holds now (tests, shutdown)."""
    return write(_buffer.take())


# --- exposure counts for exploration -----------------------------------------------------------


class _Exposures:
    def __init__(self) -> None:
        self.by_surface: dict[int, tuple[float, dict[str, tuple[int, int]]]] = {}

    def get(self, surface_id: int) -> dict[str, tuple[int, int]]:
        now = time.monotonic()
        found = self.by_surface.get(surface_id)
        if found is None or now - found[0] > EXPOSURE_CHECK_SECONDS:
            rows = SurfaceItemExposure.objects.filter(surface_id=surface_id).values_list(
                "item_id", "impressions", "clicks"
            )
            found = (now, {item: (shown, clicked) for item, shown, clicked in rows})
            self.by_surface[surface_id] = found
        return found[1]

    def forget(self) -> None:
        self.by_surface.clear()


_exposures = _Exposures()


def item_exposures(surface_id: int) -> dict[str, tuple[int, int]]:
    """item id -> (impressions, clicks) on the surface, refreshed at most every minute."""
    return _exposures.get(surface_id)


def forget_exposures() -> None:
    _exposures.forget()


# --- attribution -------------------------------------------------------------------------------


def compute_daily_stats(day: date) -> list[SurfaceDailyStats]:
    """Attribute clicks and purchases to the answers served on ``day``; idempotent per day."""
    start = timezone.make_aware(datetime.combine(day, datetime.min.time()))
    end = start + timedelta(days=1)
    impressions = list(
        Impression.objects.filter(served_at__gte=start, served_at__lt=end).values_list(
            "recommendation_id", "surface_id", "person_id", "item_ids", "served_at"
        )
    )
    by_person: dict[int, list[tuple[str, int, set[str], datetime]]] = defaultdict(list)
    totals: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"impressions": 0, "items_shown": 0, "clicks": 0, "purchases": 0, "revenue": Decimal(0)}
    )
    shown: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for rec_id, surface_id, person_id, item_ids, served_at in impressions:
        totals[surface_id]["impressions"] += 1
        totals[surface_id]["items_shown"] += len(item_ids)
        for item in item_ids:
            shown[(surface_id, item)][0] += 1
        if person_id is not None:
            by_person[person_id].append((rec_id, surface_id, set(item_ids), served_at))

    events = Event.objects.filter(
        person_id__in=list(by_person),
        timestamp__gte=start,
        timestamp__lt=end + PURCHASE_WINDOW,
        kind__in=(*CLICK_KINDS, "purchase"),
    ).values_list("person_id", "kind", "item_id", "timestamp", "properties", "price", "quantity")
    counted: set[tuple[str, str, str]] = set()  # (recommendation, item, click|purchase): count each once
    for person_id, kind, item_id, at, properties, price, quantity in events.iterator(chunk_size=5000):
        carried = properties.get("recommendation_id") if isinstance(properties, dict) else None
        is_purchase = kind == "purchase"
        window = PURCHASE_WINDOW if is_purchase else CLICK_WINDOW
        for rec_id, surface_id, items, served_at in by_person[person_id]:
            if item_id not in items:
                continue
            if carried != rec_id and not (served_at <= at <= served_at + window):
                continue
            outcome = "purchase" if is_purchase else "click"
            if (rec_id, item_id, outcome) in counted:
                break
            counted.add((rec_id, item_id, outcome))
            if is_purchase:
                totals[surface_id]["purchases"] += 1
                totals[surface_id]["revenue"] += (price or Decimal(0)) * (quantity or 1)
            else:
                totals[surface_id]["clicks"] += 1
                shown[(surface_id, item_id)][1] += 1
            break

    with transaction.atomic():
        stats = []
        for surface_id, values in totals.items():
            row, first = SurfaceDailyStats.objects.select_for_update().get_or_create(surface_id=surface_id, day=day)
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
            stats.append(row)
            if first:
                _add_exposures({key: pair for key, pair in shown.items() if key[0] == surface_id})
    return stats


def _add_exposures(shown: dict[tuple[int, str], list[int]]) -> None:
    """Accumulate per-item counts. A day adds to them once, on its first attribution: the day's row
    is created in the same transaction, so a second run for the day (a retry, a manual re-run) finds
    it and leaves the counts alone, while the day's click-through and conversion are still refreshed.
    """
    existing = {
        (surface_id, item)
        for surface_id, item in SurfaceItemExposure.objects.filter(
            surface_id__in={s for s, _ in shown}, item_id__in={i for _, i in shown}
        ).values_list("surface_id", "item_id")
    }
    SurfaceItemExposure.objects.bulk_create(
        [
            SurfaceItemExposure(surface_id=surface_id, item_id=item, impressions=impressions, clicks=clicks)
            for (surface_id, item), (impressions, clicks) in shown.items()
            if (surface_id, item) not in existing
        ]
    )
    # One UPDATE per surface and pair of increments (most items of a day share a few), not one per
    # item: a day of a large catalogue had thousands of them.
    by_increment: dict[tuple[int, int, int], list[str]] = defaultdict(list)
    for (surface_id, item_id), (impressions, clicks) in shown.items():
        if (surface_id, item_id) in existing:
            by_increment[(surface_id, impressions, clicks)].append(item_id)
    for (surface_id, impressions, clicks), items in by_increment.items():
        for start in range(0, len(items), 1000):
            SurfaceItemExposure.objects.filter(surface_id=surface_id, item_id__in=items[start : start + 1000]).update(
                impressions=F("impressions") + impressions, clicks=F("clicks") + clicks
            )
