from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from tqdm import tqdm

from catalog.api.serializers import ItemSerializer
from catalog.models import Item
from catalog.services import upsert_items
from personalization.demo_store import build_store
from personalization.models import ApiKey, KeyScope, SurfaceKind
from personalization.surfaces import create_surface
from profiles import services as profiles
from profiles.profiling import refresh_profiles

CHUNK = 2000


class Command(BaseCommand):
    help = "Fill the database with a generated demo store: catalogue, people, months of behaviour, consent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--people", type=int, default=3000)
        parser.add_argument("--days", type=int, default=180, help="How many days of history to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalogue has items.")
        parser.add_argument("--login", default="demo", help="Demo staff login (password: the same word).")
        parser.add_argument("--with-surfaces", action="store_true", help="Also create a homepage and an email surface.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Item.objects.exists():
            self.stdout.write("The catalogue already has items; leaving the data as it is.")
            self._ensure_login(options["login"])
            return
        quiet = options["verbosity"] == 0
        store = build_store(options["people"], options["days"], options["seed"])

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
        self._ensure_login(options["login"])

    def _surfaces(self, rows: list[dict[str, Any]]) -> None:
        """A homepage grid and an email product block, so the surfaces page has something to show."""
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
            "email-products",
            "Email product block",
            {**shared, "size": 4, "exclude_purchased": True, "weights": {"relevance": 1.0, "margin": 0.3}},
            kind=SurfaceKind.EMAIL_BLOCK,
            by="demo",
            note="Demo default",
        )
        self.stdout.write("Surfaces: homepage, email-products.")

    def _ensure_login(self, login: str) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(username=login, defaults={"is_staff": True, "is_superuser": True})
        if created:
            user.set_password(login)
            user.save()
        if not ApiKey.objects.filter(name="demo secret key", revoked_at__isnull=True).exists():
            _, secret = ApiKey.issue("demo secret key", KeyScope.SECRET, created_by=user)
            ingest_key, ingest = ApiKey.issue("demo ingest key", KeyScope.INGEST, created_by=user)
            self.stdout.write(f"API keys (shown once): secret {secret}  ingest {ingest}")
            self.stdout.write(f"Identity-verification secret of the ingest key: {ingest_key.identity_secret}")
        self.stdout.write(f"Demo login: {login} / {login}")
