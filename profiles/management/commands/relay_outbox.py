"""``manage.py relay_outbox``: deliver the follow-up work that waits in the outbox."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from profiles import outbox


class Command(BaseCommand):
    help = (
        "Deliver the work that waits in the outbox (profile refreshes, hot profile changes) to the broker "
        "and Redis. Once by default; --loop SECONDS keeps doing it (instead of, or beside, the beat job)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", type=float, default=0, metavar="SECONDS", help="Run again every SECONDS.")
        parser.add_argument("--batch", type=int, default=200, help="Entries locked and delivered per transaction.")

    def handle(self, *args: Any, loop: float, batch: int, **options: Any) -> None:
        while True:
            report = outbox.relay(batch_size=batch)
            line = f"delivered {report.delivered}, failed {report.failed}, waiting {report.waiting}"
            if report.stopped_by:
                line += f" (stopped: {report.stopped_by})"
            self.stdout.write(line)
            if not loop:
                return
            time.sleep(loop)
