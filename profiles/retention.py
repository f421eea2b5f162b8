"""Retention: events and impressions older than ``RETENTION_MONTHS`` (default 24) are deleted.

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
from dataclasses import dataclass
from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# (table, the time that ages it); by name, as impressions live in an app below this one.
RETAINED: tuple[tuple[str, str], ...] = (
    ("profiles.Event", "timestamp"),
    ("personalization.Impression", "served_at"),
)


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    deleted: dict[str, int]  # rows per table; with dry_run, the rows that would go
    batches: int
    dry_run: bool


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
    for label, time_field in RETAINED:
        model = apps.get_model(label)
        if dry_run:
            deleted[label] = model._default_manager.filter(**{f"{time_field}__lt": cutoff}).count()
            continue
        deleted[label], n = _delete_older(model, time_field, cutoff, batch_rows)
        batches += n
    if not dry_run:
        logger.info("Retention before %s deleted %s in %s batches", cutoff.isoformat(), deleted, batches)
    return RetentionReport(cutoff=cutoff, deleted=deleted, batches=batches, dry_run=dry_run)
