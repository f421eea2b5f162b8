"""Retention: events and impressions older than ``RETENTION_MONTHS`` (default 24) are deleted.

On PostgreSQL the event log is partitioned by month (``profiles.partitions``): every month partition
entirely older than the cutoff is dropped whole, one statement whatever its size, and the month that
holds the cutoff stays until all of it is older. Only the default partition (events dated outside
every month partition) is then deleted from row by row, as below. On SQLite events go row by row.

Profiles already ignore events older than 24 months (``profiles.affinity``); this removes them. The
daily job (a django-celery-beat row, editable in the admin) deletes in batches of
``RETENTION_BATCH_ROWS`` rows, walking the primary key upwards: each batch is one short
``DELETE … WHERE id BETWEEN lo AND hi AND <time> < cutoff`` in its own transaction, so ingestion and
serving never wait on a long lock, and a job interrupted half-way loses nothing but the rest of its
work, which the next run does.

Consent and its history are kept whatever their age: they are the record of what a person agreed to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from profiles import partitions

logger = logging.getLogger(__name__)

# (table, the time that ages it); by name, as impressions live in an app below this one.
RETAINED: tuple[tuple[str, str], ...] = (
    ("profiles.Event", "timestamp"),
    ("profiles.EventMessage", "timestamp"),  # the ids that recognise replays, aged as their events
    ("personalization.Impression", "served_at"),
)
EVENT_TABLES = ("profiles.Event", "profiles.EventMessage")


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    deleted: dict[str, int]  # rows per table; with dry_run, the rows that would go
    batches: int
    dry_run: bool
    dropped: list[str] = field(default_factory=list)  # month partitions dropped (or that would be), "2024-10"


def retention_cutoff(now: datetime | None = None, months: int | None = None) -> datetime:
    months = settings.RETENTION_MONTHS if months is None else months
    if months < 1:
        raise ImproperlyConfigured(f"RETENTION_MONTHS must be at least 1, not {months}")
    return (now or timezone.now()) - relativedelta(months=months)


def _delete_older(model: type[models.Model], time_field: str, cutoff: datetime, batch_rows: int) -> tuple[int, int]:
    old = model._default_manager.filter(**{f"{time_field}__lt": cutoff})
    deleted = batches = 0
    after: int | None = None
    while True:
        window = old if after is None else old.filter(pk__gt=after)
        ids = list(window.order_by("pk").values_list("pk", flat=True)[:batch_rows])
        if not ids:
            return deleted, batches
        with transaction.atomic():
            count, _ = old.filter(pk__gte=ids[0], pk__lte=ids[-1]).delete()
        deleted += count
        batches += 1
        after = ids[-1]


def apply_retention(
    now: datetime | None = None, dry_run: bool = False, months: int | None = None, batch_rows: int | None = None
) -> RetentionReport:
    cutoff = retention_cutoff(now, months)
    batch_rows = batch_rows or settings.RETENTION_BATCH_ROWS
    deleted: dict[str, int] = {}
    batches = 0
    dropped: list[partitions.DroppedMonth] = []
    event_cutoff = cutoff
    if partitions.is_partitioned():
        # Whole months: what is older than the cutoff's month goes with its partition; what is left
        # below that month's start is in the default partition, deleted in batches below.
        event_cutoff = partitions.first_kept(cutoff)
        dropped = partitions.drop_before(cutoff, dry_run=dry_run)
    for label, time_field in RETAINED:
        model = apps.get_model(label)
        older = event_cutoff if label in EVENT_TABLES else cutoff
        if dry_run:  # the partitions are still there: their rows are counted with the others
            deleted[label] = model._default_manager.filter(**{f"{time_field}__lt": older}).count()
            continue
        already = sum(d.rows for d in dropped) if label == "profiles.Event" else 0
        count, n = _delete_older(model, time_field, older, batch_rows)
        deleted[label] = already + count
        batches += n
    if not dry_run:
        logger.info(
            "Retention before %s dropped %s, deleted %s in %s batches",
            cutoff.isoformat(),
            [str(d.month) for d in dropped] or "no partition",
            deleted,
            batches,
        )
    return RetentionReport(
        cutoff=cutoff, deleted=deleted, batches=batches, dry_run=dry_run, dropped=[str(d.month) for d in dropped]
    )
