from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.importing import import_items
from catalog.interchange import InterchangeError, count_data_rows


def print_report(
    command: BaseCommand, noun: str, read: int, accepted: int, rejected: Any, examples: Any, extra: str = ""
) -> None:
    command.stdout.write(f"{read} {noun} read: {accepted} accepted, {sum(rejected.values())} rejected{extra}.")
    for reason, count in rejected.most_common():
        command.stdout.write(f"  {count:>8}  {reason}  (first at line {examples[reason]})")


class Command(BaseCommand):
    help = "Load items.csv from an interchange-format folder into the catalogue (create or replace by item_id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", help="Folder with items.csv (see docs/interchange.md).")

    def handle(self, *args: Any, folder: str, **options: Any) -> None:
        path = Path(folder) / "items.csv"
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        with tqdm(total=count_data_rows(path), unit="item", disable=options["verbosity"] == 0) as bar:
            try:
                report = import_items(folder, progress=bar.update)
            except InterchangeError as exc:
                raise CommandError(str(exc)) from exc
        print_report(self, "items", report.read, report.accepted, report.rejected, report.examples)
