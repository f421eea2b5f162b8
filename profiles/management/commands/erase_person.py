from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from profiles.erasure import AlreadyErased, PersonNotFound, erase_person


class Command(BaseCommand):
    help = (
        "Erase a person and everyone merged into them from every table, cache and future training input; "
        "print the receipt (the same as DELETE /api/v1/people/<key>)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="A user id, an anonymous id or an email.")
        parser.add_argument("--requested-by", required=True, help="Who asked for it, as the receipt will say.")

    def handle(self, *args: Any, key: str, requested_by: str, **options: Any) -> None:
        try:
            receipt = erase_person(key, requested_by=requested_by)
        except (AlreadyErased, PersonNotFound, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            json.dumps(
                {
                    "receipt": str(receipt.pk),
                    "requested_by": receipt.requested_by,
                    "requested_at": receipt.requested_at.isoformat(),
                    "people": receipt.people,
                    "counts": receipt.counts,
                },
                indent=2,
            )
        )
