"""The event log by month: on PostgreSQL ``profiles_event`` is partitioned by RANGE on ``timestamp``.

One partition per calendar month (UTC), named ``profiles_event_YYYY_MM``, plus a default partition
``profiles_event_default`` that takes any event no month partition covers: an event dated years
back or ahead is still stored, never refused. The daily job (``profiles.tasks.create_event_partitions``,
a django-celery-beat row) creates the partitions of the current month and ``EVENT_PARTITIONS_AHEAD``
months after it, so that the default partition stays nearly empty. A month created while the
default partition holds some of its events takes them over in the same transaction.

Retention (``profiles.retention``) drops whole month partitions older than the cutoff: one
statement, whatever their size, instead of deleting row by row.

The indexes serving reads (``event_person_recent`` and the others) are partitioned indexes: defined
once on the parent, each partition gets its own. The primary key is ``(id, timestamp)`` and the
unique key ``(message_id, position, timestamp)``, as PostgreSQL requires the partition key in both;
that a message is stored once whatever its timestamp is kept by ``profiles.EventMessage``.

On SQLite (the embedded default) the table stays a plain table and everything here does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import truncate_name

TABLE = "profiles_event"
DEFAULT_PARTITION = f"{TABLE}_default"
_MONTH_NAME = re.compile(rf"^{TABLE}_(\d{{4}})_(\d{{2}})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.plus(1).start

    @property
    def table(self) -> str:
        return truncate_name(f"{TABLE}_{self.year:04d}_{self.month:02d}")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def is_partitioned() -> bool:
    """Whether the event table is a partitioned one (PostgreSQL after the conversion migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = to_regnamespace(current_schema())",
            [TABLE],
        )
        return cursor.fetchone() is not None


def month_partitions() -> list[Month]:
    """The month partitions that exist, oldest first (the default partition is not one)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        found = _MONTH_NAME.match(name)
        if found:
            months.append(Month(int(found[1]), int(found[2])))
    return sorted(months)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def create_month(month: Month) -> bool:
    """Create ``month``'s partition if it does not exist; False when it did.

    Events of that month already in the default partition move into it in the same transaction, so
    that none is ever missing and none is counted twice."""
    if month in month_partitions():
        return False
    table, parent, default = _quote(month.table), _quote(TABLE), _quote(DEFAULT_PARTITION)
    bounds = [month.start, month.end]
    # DDL takes no parameters: the bounds are literals, made from two integers.
    values = f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM {default} WHERE "timestamp" >= %s AND "timestamp" < %s LIMIT 1', bounds)
        if cursor.fetchone() is None:
            # PostgreSQL checks the default partition again under its lock: should an event of this
            # month have landed there meanwhile, this fails, and the next run moves it.
            cursor.execute(f"CREATE TABLE {table} PARTITION OF {parent} {values}")
            return True
        # No event may land in the default partition between the move and the attach (the lock
        # lets reads go on; the parent is locked after it only in modes that never wait on inserts).
        cursor.execute(f"LOCK TABLE {default} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS)")
        cursor.execute(
            f'WITH moved AS (DELETE FROM {default} WHERE "timestamp" >= %s AND "timestamp" < %s RETURNING *) '
            f"INSERT INTO {table} SELECT * FROM moved",
            bounds,
        )
        # The check lets the attach skip scanning the new partition; it goes once attached.
        check = _quote(truncate_name(f"{month.table}_bounds"))
        cursor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {check} "
            f"CHECK (\"timestamp\" >= '{month.start.isoformat()}' AND \"timestamp\" < '{month.end.isoformat()}')"
        )
        cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {table} {values}")
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {check}")
    return True


def create_ahead(now: datetime | None = None, ahead: int | None = None) -> list[Month]:
    """Create the partitions of this month and the ``ahead`` next ones that are missing."""
    if not is_partitioned():
        return []
    ahead = settings.EVENT_PARTITIONS_AHEAD if ahead is None else ahead
    this_month = Month.of(now or datetime.now(UTC))
    return [month for month in (this_month.plus(n) for n in range(ahead + 1)) if create_month(month)]


@dataclass(frozen=True)
class DroppedMonth:
    month: Month
    rows: int


def drop_before(cutoff: datetime, dry_run: bool = False) -> list[DroppedMonth]:
    """Drop every month partition that ends at or before ``cutoff``; its rows go with it."""
    dropped = []
    for month in month_partitions():
        if month.end > cutoff:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            # Checks deferred to a commit (the foreign key) must not be pending on rows that go: in an
            # enclosing transaction that inserted some, they are checked now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"SELECT count(*) FROM {_quote(month.table)}")
            rows = cursor.fetchone()[0]
            if not dry_run:
                cursor.execute(f"DROP TABLE {_quote(month.table)}")
        dropped.append(DroppedMonth(month, rows))
    return dropped


def first_kept(cutoff: datetime) -> datetime:
    """Where retention by whole months stops: the start of the month that holds ``cutoff``. Events
    from there to the cutoff stay until their month is entirely older than it."""
    return Month.of(cutoff).start
