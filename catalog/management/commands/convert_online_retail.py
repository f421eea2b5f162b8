from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.online_retail import convert


class Command(BaseCommand):
    help = "Convert the UCI Online Retail CSV (.csv or .csv.gz) into the interchange format (events, items, users)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src", help="online_retail.csv or online_retail.csv.gz")
        parser.add_argument("out_dir", help="Folder to write events.csv, items.csv and users.csv into.")

    def handle(self, *args: Any, src: str, out_dir: str, **options: Any) -> None:
        if not Path(src).exists():
            raise CommandError(f"{src} does not exist.")
        report = convert(src, out_dir)
        self.stdout.write(
            f"{report.rows_read} rows read: {report.events} purchase events, {report.customers} customers, "
            f"{report.items} items written to {out_dir}."
        )
        for reason, count in (report.dropped or {}).items():
            self.stdout.write(f"  {count:>8} dropped: {reason}")
