from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from profiles.retention import apply_retention


class Command(BaseCommand):
    help = "Delete events and impressions older than RETENTION_MONTHS (default 24), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")
        parser.add_argument("--months", type=int, help="Override RETENTION_MONTHS for this run.")

    def handle(self, *args: Any, dry_run: bool = False, months: int | None = None, **options: Any) -> None:
        report = apply_retention(dry_run=dry_run, months=months)
        verb = "would delete" if dry_run else "deleted"
        for month in report.dropped:
            self.stdout.write(f"profiles.Event: {'would drop' if dry_run else 'dropped'} the partition of {month}")
        for label, count in report.deleted.items():
            self.stdout.write(f"{label}: {verb} {count} rows older than {report.cutoff:%Y-%m-%d %H:%M %Z}")
        if not dry_run:
            self.stdout.write(f"{report.batches} batches")
