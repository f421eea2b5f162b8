from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from personalization.due_jobs import run_due_jobs


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (django-celery-beat's rows) that are due, in this process, as beat and a "
        "worker would; with --every, keep doing it (the embedded default's scheduler, used by make demo)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Seconds between rounds; 0: one round.")
        parser.add_argument("--all", action="store_true", help="Run every enabled job once, due or not.")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # each job's line below says it
        while True:
            for ran in run_due_jobs(run_all=options["all"]):
                if not quiet:
                    outcome = "ok" if ran.error is None else f"failed: {ran.error}"
                    self.stdout.write(f"{ran.name}: {outcome} ({ran.seconds:.1f} s)")
            if options["every"] <= 0:
                return
            close_old_connections()
            time.sleep(options["every"])
