from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from profiles.erasure import allow_return


class Command(BaseCommand):
    help = (
        "Accept events again for a key that was erased (a customer who comes back with the same email or "
        "user id). The erasure receipt stays; only the key's salted hash leaves it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The user id, anonymous id or email to accept again.")

    def handle(self, *args: Any, key: str, **options: Any) -> None:
        if not allow_return(key):
            raise CommandError(f"{key!r} is not among the erased keys.")
        self.stdout.write(f"Events for {key!r} are accepted again.")
