from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.lastfm import convert


class Command(BaseCommand):
    help = "Convert Last.fm 2K (user_artists.dat) into the interchange format: play events without timestamps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src", help="the lastfm-2k folder, or its user_artists.dat")
        parser.add_argument("out_dir", help="Folder to write events.csv into.")

    def handle(self, *args: Any, src: str, out_dir: str, **options: Any) -> None:
        if not Path(src).exists():
            raise CommandError(f"{src} does not exist.")
        try:
            report = convert(src, out_dir)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{report.pairs} play events (no timestamps), {report.people} people, {report.artists} artists"
            f" written to {out_dir}."
        )
        for reason, count in report.dropped.items():
            self.stdout.write(f"  {count:>8} dropped: {reason}")
