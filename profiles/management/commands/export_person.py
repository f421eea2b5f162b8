from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from profiles.export import export_person
from profiles.identity import find_person


class Command(BaseCommand):
    help = (
        "Write everything held about a person and everyone merged into them as JSON "
        "(the same document as GET /api/v1/people/<key>/export)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="A user id, an anonymous id or an email.")
        parser.add_argument("--out", help="The file to write; standard output when left out.")

    def handle(self, *args: Any, key: str, out: str | None = None, **options: Any) -> None:
        person = find_person(key)
        if person is None:
            raise CommandError(f"No person is known by {key!r}.")
        if out is None:
            for piece in export_person(person):
                sys.stdout.write(piece)
            sys.stdout.write("\n")
            return
        with open(out, "w", encoding="utf-8") as handle:
            for piece in export_person(person):
                handle.write(piece)
        self.stderr.write(f"Wrote the export of person {person.pk} to {out}.")
