"""Erasure, export and retention on a large event log, in a throwaway PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/erasure.py --events 1000000

Builds ``--events`` events over ``--people`` people (half of them older than the retention cutoff) and as
many impressions as half the events; one person has ``--own`` events and a merged-away device. Then it
times: the export of that person (streamed to nowhere), their erasure (which also scans other people's
event properties for their email), and the retention job. The baseline is a plain ``DELETE`` of the
person's events by the covering index in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_database import drop_database, recreate_database

NAME = "bench_erasure"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--own", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    os.environ["DATABASE_URL"] = recreate_database(base, NAME)
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CACHE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(base, NAME)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from profiles.erasure import erase_person
    from profiles.export import export_person
    from profiles.identity import find_person
    from profiles.retention import apply_retention

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO profiles_person (traits, created_at, updated_at) "
            "SELECT jsonb_build_object('email', 'p' || g || '@example.org'), now(), now() "
            "FROM generate_series(1, %s) g",
            [args.people],
        )
        cursor.execute(
            "INSERT INTO profiles_identity (person_id, kind, value, created_at) "
            "SELECT id, 'user_id', 'user-' || id, now() FROM profiles_person"
        )
        cursor.execute("SELECT min(id) FROM profiles_person")
        first = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO profiles_event (message_id, position, person_id, kind, name, item_id, order_id, properties, "
            "context, timestamp, received_at) "
            "SELECT 'm-' || g, 0, %s + (g %% %s), 'view', 'Product Viewed', 'sku-' || (g %% 5000), '', "
            "jsonb_build_object('product_id', 'sku-' || (g %% 5000)), '{}'::jsonb, "
            "now() - (g %% 1400) * interval '1 day', now() FROM generate_series(1, %s) g",
            [first, args.people, args.events],
        )
        # The person to erase: their own events, a merged-away device, and a mention in someone else's event.
        target = first
        cursor.execute(
            "INSERT INTO profiles_event (message_id, position, person_id, kind, name, item_id, order_id, properties, "
            "context, timestamp, received_at) "
            "SELECT 'own-' || g, 0, %s, 'view', 'Product Viewed', 'sku-1', '', '{}'::jsonb, '{}'::jsonb, now(), now() "
            "FROM generate_series(1, %s) g",
            [target, args.own],
        )
        cursor.execute(
            "INSERT INTO profiles_person (traits, merged_into_id, created_at, updated_at) "
            "VALUES ('{}', %s, now(), now())",
            [target],
        )
        cursor.execute(
            "INSERT INTO profiles_identity (person_id, kind, value, created_at) "
            "SELECT %s, 'email', 'p1@example.org', now()",
            [target],
        )
        cursor.execute(
            "INSERT INTO profiles_event (message_id, position, person_id, kind, name, item_id, order_id, properties, "
            "context, timestamp, received_at) VALUES ('invite', 0, %s, 'other', 'Friend Invited', '', '', "
            "'{\"invitee\": \"p1@example.org\"}'::jsonb, '{}'::jsonb, now(), now())",
            [first + 1],
        )
        cursor.execute(
            "INSERT INTO personalization_surface (key, name, kind, item_kinds, created_at) "
            "VALUES ('homepage', 'Homepage', 'grid', '[]', now()) RETURNING id"
        )
        surface = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO personalization_impression (recommendation_id, surface_id, person_id, item_ids, strategy, "
            "experiment, variant, served_at) SELECT 'r-' || g, %s, %s + (g %% %s), '[]', '', '', '', "
            "now() - (g %% 1400) * interval '1 day' FROM generate_series(1, %s) g",
            [surface, first, args.people, args.events // 2],
        )
        cursor.execute("ANALYZE")
    print(f"built {args.events:,} events, {args.events // 2:,} impressions in {time.perf_counter() - started:.1f} s")

    person = find_person("p1@example.org")
    assert person is not None
    started = time.perf_counter()
    size = sum(len(piece) for piece in export_person(person))
    export_s = time.perf_counter() - started

    started = time.perf_counter()
    receipt = erase_person("p1@example.org", requested_by="bench")
    erase_s = time.perf_counter() - started

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("DELETE FROM profiles_event WHERE person_id = %s", [first + 2])
        baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    report = apply_retention()
    retention_s = time.perf_counter() - started

    own = receipt.counts.get("profiles.Event", 0)
    rows = sum(v for k, v in receipt.counts.items() if k.count(".") == 1)
    print("| step | rows | seconds |\n|---|---:|---:|")
    print(f"| export of the person (streamed, {size / 1e6:.1f} MB) | {own:,} events | {export_s:.2f} |")
    print(f"| erasure, receipt {str(receipt.pk)[:8]} | {rows:,} | {erase_s:.2f} |")
    print(f"| baseline: DELETE one other person's events by index | — | {baseline_s:.3f} |")
    print(f"| retention, {report.batches} batches | {sum(report.deleted.values()):,} | {retention_s:.1f} |")
    print(f"receipt counts: {receipt.counts}")


if __name__ == "__main__":
    main()
