"""``manage.py repair_events``: find and repair events stored with a timestamp out of range.

Earlier versions stored what a client sent without checking its range, e.g.
``"0001-01-01T00:00:00+14:00"``, which PostgreSQL keeps as a date in 1 BC and psycopg cannot read
back: training, the interchange export and the admin's event pages then fail on that one row. The
rows are found in SQL (their timestamps are never read into Python) and, in batches:

* by default each gets the time it was received as its timestamp (the best that is known of when
  it happened); one whose receive time is out of range as well is deleted;
* with ``--delete`` they are deleted;
* with ``--dry-run`` they are counted and the first ones listed, and nothing changes.

The people concerned have their profiles recomputed afterwards (through the outbox).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from profiles import outbox
from profiles.models import Event, Profile
from profiles.segment import EARLIEST, MAX_FUTURE

BATCH = 5_000


def _outside(field: str, now: datetime) -> Q:
    return Q(**{f"{field}__lt": EARLIEST}) | Q(**{f"{field}__gt": now + MAX_FUTURE})


class Command(BaseCommand):
    help = (
        f"Find events whose timestamp is before {EARLIEST:%Y-%m-%d} or more than a day ahead, and give them "
        "their receive time (or delete them with --delete). --dry-run only reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")
        parser.add_argument("--delete", action="store_true", help="Delete the rows instead of fixing them.")

    def handle(self, *args: Any, dry_run: bool, delete: bool, **options: Any) -> None:
        now = timezone.now()
        bad = Event.objects.filter(_outside("timestamp", now))
        stale_profiles = Profile.objects.filter(_outside("last_seen_at", now))
        found, profiles = bad.count(), stale_profiles.count()
        self.stdout.write(
            f"{found} event(s) with a timestamp out of range; {profiles} profile(s) last seen out of range."
        )
        if dry_run:
            self._list(bad)
            self.stdout.write("Dry run: nothing changed.")
            return
        fixed = deleted = 0
        while True:
            with transaction.atomic():
                rows = list(bad.order_by("pk").values_list("pk", "person_id", "received_at")[:BATCH])
                if not rows:
                    break
                keep = {pk for pk, _, received in rows if not delete and EARLIEST <= received <= now + MAX_FUTURE}
                fixed += Event.objects.filter(pk__in=keep).update(timestamp=F("received_at"))
                deleted += Event.objects.filter(pk__in=[pk for pk, _, _ in rows if pk not in keep]).delete()[0]
                people = sorted({person for _, person, _ in rows})
                outbox.record(outbox.AFTER_INGEST, {"refresh": people})
        with transaction.atomic():
            people = sorted(stale_profiles.values_list("person_id", flat=True))
            if people:
                outbox.record(outbox.AFTER_INGEST, {"refresh": people})
        self.stdout.write(
            f"Gave {fixed} event(s) their receive time, deleted {deleted}; "
            f"profiles of the people concerned are recomputed."
        )

    def _list(self, bad: QuerySet[Event]) -> None:
        shown = bad.order_by("pk").annotate(as_text=Cast("timestamp", TextField()))
        for pk, message_id, person_id, as_text in shown.values_list("pk", "message_id", "person_id", "as_text")[:20]:
            self.stdout.write(f"  event {pk}: message {message_id!r}, person {person_id}, timestamp {as_text}")
