from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from tqdm import tqdm

from catalog.api.serializers import ItemSerializer
from catalog.models import Item
from catalog.services import upsert_items
from personalization import demo_showcase as showcase
from personalization.demo_store import build_store
from personalization.models import SurfaceKind
from personalization.surfaces import create_surface
from profiles import services as profiles
from profiles.profiling import refresh_profiles

CHUNK = 2000


class Command(BaseCommand):
    help = (
        "Fill the database with a generated demo store: catalogue, accounts, people, months of behaviour and "
        "consent; with --with-surfaces also surfaces with attributed answers, role logins, a campaign in each "
        "state, an experiment with a verdict and journeys with people moving through them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--people", type=int, default=3000)
        parser.add_argument("--days", type=int, default=90, help="How many days of history to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalogue has items.")
        parser.add_argument("--login", default="demo", help="Demo staff login (password: the same word).")
        parser.add_argument(
            "--keys-file",
            default="",
            help="Write the demo API keys to this file (mode 600) instead of printing them; make demo: "
            "var/demo-api-keys.txt.",
        )
        parser.add_argument(
            "--with-surfaces",
            action="store_true",
            help="Also the surfaces and what the console shows: answers, campaigns, an experiment, role logins.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Item.objects.exists():
            self.stdout.write("The catalogue already has items; leaving the data as it is.")
            self._logins(options["login"], options["keys_file"])
            return
        quiet = options["verbosity"] == 0
        # Tasks run in-process here; one log line per task would bury the summary.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        store = build_store(options["people"], options["days"], options["seed"])
        logins = self._logins(options["login"], options["keys_file"])
        showcase.ensure_accounts()

        rows = []
        for raw in store.items:
            serializer = ItemSerializer(data=raw)
            serializer.is_valid(raise_exception=True)
            rows.append(serializer.validated_data)
        upsert_items(rows)
        self.stdout.write(f"Catalogue: {len(rows)} items.")
        if options["with_surfaces"]:
            self._surfaces(rows)

        person_ids: set[int] = set()
        accepted = 0
        with tqdm(total=len(store.messages), unit="event", disable=quiet, desc="Behaviour") as bar:
            for start in range(0, len(store.messages), CHUNK):
                chunk = store.messages[start : start + CHUNK]
                result = profiles.ingest_messages(chunk, refresh=False)
                accepted += result.accepted
                person_ids |= result.person_ids
                bar.update(len(chunk))
        self.stdout.write(f"Behaviour: {accepted} messages from {len(store.people)} people.")

        with transaction.atomic():
            for person in store.people:
                found = profiles.find_person(person.user_id)
                if found is None:
                    continue
                for purpose, granted in person.consents.items():
                    profiles.record_consent(found.pk, purpose, granted, source="demo signup form")

        people = sorted(person_ids)
        with tqdm(total=len(people), unit="profile", disable=quiet, desc="Profiles") as bar:
            for start in range(0, len(people), 200):
                refresh_profiles(people[start : start + 200])
                bar.update(len(people[start : start + 200]))

        if options["with_surfaces"]:
            # The campaigns' answers are logged inline (not by the flusher thread), so the attribution
            # run right after them sees them.
            with override_settings(SURFACE_IMPRESSIONS_INLINE=True):
                self._showcase(store, options["days"], options["seed"])
        self._report(logins)

    def _surfaces(self, rows: list[dict[str, Any]]) -> None:
        """A homepage grid and the email product block campaigns use by default (``content_surface``)."""
        in_stock = [r["external_id"] for r in rows if r.get("kind") == "product" and (r.get("stock") or 0) > 0]
        curated = in_stock[:: max(len(in_stock) // 20, 1)][:20]
        shared = {"curated_items": curated, "in_stock_only": True, "max_share_per_category": 0.4}
        create_surface(
            "homepage",
            "Homepage grid",
            {
                **shared,
                "weights": {"relevance": 1.0, "margin": 0.2, "popularity": 0.1},
                "exploration_share": 0.1,
                "min_share_outside_top_categories": 0.2,
            },
            kind=SurfaceKind.GRID,
            by="demo",
            note="Demo default",
        )
        create_surface(
            showcase.EMAIL_SURFACE,
            "Email product block",
            {**shared, "size": 4, "exclude_purchased": True, "weights": {"relevance": 1.0, "margin": 0.3}},
            kind=SurfaceKind.EMAIL_BLOCK,
            by="demo",
            note="Demo default",
        )
        self.stdout.write(f"Surfaces: homepage, {showcase.EMAIL_SURFACE}.")

    def _showcase(self, store: Any, days: int, seed: int) -> None:
        written = showcase.load_impressions(store)
        today = timezone.localdate()
        first = timezone.localdate(store.impressions[0].served_at) if store.impressions else today
        attributed = showcase.attribute_days(first, today - timedelta(days=1))
        showcase.date_first_versions(first)
        self.stdout.write(f"Homepage answers: {written}, attributed over {attributed} days.")
        marketer = showcase._user("marketer")
        seeded = showcase.seed_campaigns(marketer, seed)
        self.stdout.write(
            "Campaigns: "
            + ", ".join(
                f"{c.key} ({c.status})" for c in (seeded.draft, seeded.awaiting_approval, seeded.scheduled, seeded.sent)
            )
            + "."
        )
        experiment = showcase.seed_experiment(marketer, seed)
        self.stdout.write(f"Experiment: {experiment.key}.")
        journeys = showcase.seed_journeys(marketer, seed)
        self.stdout.write(
            "Journeys: "
            + ", ".join([f"{j.key} (live)" for j in journeys.live] + [f"{j.key} (draft)" for j in journeys.drafts])
            + (f"; {journeys.restocked} back in stock." if journeys.restocked else ".")
        )
        # Today so far, as the nightly job will count it tomorrow: the email block's answers of the
        # campaign sent above, with its clicks and orders, and today's homepage answers.
        showcase.attribute_days(today, today)

    def _logins(self, login: str, keys_file: str) -> list[tuple[str, str]]:
        logins = showcase.ensure_logins(login)
        keys = showcase.issue_keys(showcase._user(login))
        if keys is not None and keys_file:
            self.stdout.write(f"API keys written to {showcase.write_keys(keys, Path(keys_file))} (mode 600).")
        elif keys is not None:
            self.stdout.write(f"API keys (shown once): secret {keys.secret}  ingest {keys.ingest}")
            self.stdout.write(f"Identity-verification secret of the ingest key: {keys.identity_secret}")
        return logins

    def _report(self, logins: list[tuple[str, str]]) -> None:
        for login, role in logins:
            self.stdout.write(f"Demo login: {login} / {login} ({role})")
