from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.interchange import InterchangeError, count_data_rows
from catalog.management.commands.import_catalog import print_report
from profiles.importing import import_events
from profiles.profiling import refresh_profiles


class Command(BaseCommand):
    help = "Load events.csv (and users.csv traits) from an interchange-format folder through the ingest path."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", help="Folder with events.csv (see docs/interchange.md).")
        parser.add_argument("--no-profiles", action="store_true", help="Skip recomputing the people's profiles.")

    def handle(self, *args: Any, folder: str, **options: Any) -> None:
        path = Path(folder) / "events.csv"
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        quiet = options["verbosity"] == 0
        with tqdm(total=count_data_rows(path), unit="event", disable=quiet) as bar:
            try:
                report = import_events(folder, progress=bar.update)
            except InterchangeError as exc:
                raise CommandError(str(exc)) from exc
        extra = f", {report.duplicates} already imported" if report.duplicates else ""
        print_report(self, "events", report.read, report.accepted, report.rejected, report.examples, extra)
        if report.people_with_traits:
            self.stdout.write(f"Traits set for {report.people_with_traits} people from users.csv.")
        if not options["no_profiles"] and report.person_ids:
            people = sorted(report.person_ids)
            with tqdm(total=len(people), unit="profile", disable=quiet) as bar:
                for start in range(0, len(people), 200):
                    refresh_profiles(people[start : start + 200])
                    bar.update(len(people[start : start + 200]))
            self.stdout.write(f"Profiles recomputed for {len(people)} people.")
