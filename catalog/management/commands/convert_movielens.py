from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.movielens import convert


class Command(BaseCommand):
    help = "Convert MovieLens 100K (u.data, u.item, u.genre, u.user) into the interchange format."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src", help="the ml-100k folder (u.data, u.item, u.genre, u.user)")
        parser.add_argument("out_dir", help="Folder to write events.csv, items.csv and users.csv into.")

    def handle(self, *args: Any, src: str, out_dir: str, **options: Any) -> None:
        if not Path(src).is_dir():
            raise CommandError(f"{src} is not a folder.")
        try:
            report = convert(src, out_dir)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{report.ratings} rating events, {report.people} people, {report.items} items written to {out_dir}."
        )
        for reason, count in report.dropped.items():
            self.stdout.write(f"  {count:>8} dropped: {reason}")
