from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from personalization import registry
from personalization.models import ModelVersion, VersionStatus
from personalization.training import train_version


class Command(BaseCommand):
    help = "Train a new engine version from the event log; it serves only if not worse than the active one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--activate", type=int, metavar="VERSION", help="Activate (roll back to) this version.")
        parser.add_argument("--if-none-active", action="store_true", help="Train only when no version serves yet.")
        parser.add_argument(
            "--watch-days",
            type=int,
            default=0,
            metavar="N",
            help="Once a version is active, store the daily watch of the last N days (the model page's charts); "
            "the demo's first run uses it so the page is not empty until the nightly job runs.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["activate"]:
            version = registry.activate(ModelVersion.objects.get(pk=options["activate"]), by="manage.py")
            self.stdout.write(f"Version {version.pk} is active.")
            return
        if options["if_none_active"] and registry.active_version() is not None:
            self.stdout.write("A version is active already; not training.")
            return
        version = ModelVersion.objects.create(requested_by="manage.py")
        with tqdm(total=100, unit="%", disable=options["verbosity"] == 0) as bar:

            def progress(percent: int, stage: str) -> None:
                bar.set_description(stage)
                bar.update(percent - bar.n)

            version = train_version(version, progress)
        metrics = version.metrics
        self.stdout.write(
            f"Version {version.pk}: {version.get_status_display()}; hold-out {metrics['holdout']}"
            f" ({metrics['split']}); active before: {metrics['active']}"
        )
        if version.status == VersionStatus.REJECTED:
            self.stdout.write("It was worse than the active version on the hold-out and does not serve.")
        if options["watch_days"] > 0 and version.status == VersionStatus.ACTIVE:
            self._watch(options["watch_days"])

    def _watch(self, days: int) -> None:
        """The figures the nightly watch would have stored for each of the last ``days`` days (the
        drift rule is not applied to them: it judges the day after, when the job runs)."""
        from datetime import timedelta

        from django.utils import timezone

        from personalization import watch

        today = timezone.localdate()
        for back in range(days, 0, -1):
            watch.compute_snapshot(today - timedelta(days=back))
        self.stdout.write(f"Daily watch stored for the last {days} days (the model page's charts).")
