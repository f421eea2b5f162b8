"""Advancing due journey steps: entries advanced per second per worker process, with 1 and 2 workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/journeys.py \\
        --people 100000 --seconds 20

Makes a scratch database, migrates it, and puts ``--people`` people (an email, a plan, a time zone)
into one live journey, all due at once (100,000 waiting by default):

    branch on the trait plan = pro → wait 1 day (pro) | wait 2 days (everyone else)

so each advance runs a branch and a wait: reads the person's traits, records two steps, moves the
entry's next step and due time. That is the engine's own work per entry; sending is the campaign
sender's (``bench/campaign.py`` measures rendering). Each worker is a process calling
``journeys.advancing.advance_due`` (what the beat task runs) in a loop for ``--seconds``; the
entries are put back as they were between rows. Each row reports entries advanced per second per
process over wall time and over the process's own CPU time (the database's CPU is not in it), and
checks that no entry was advanced twice (one row per entry and step).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import drop_database, recreate_database  # noqa: E402

NAME = "bench_journeys_advancing"
DEFINITION = {
    "trigger": {"type": "event", "event": "Signed Up"},
    "steps": [
        {"id": "plan", "type": "branch", "if": {"trait": "plan", "equals": "pro"}, "then": "pro-wait", "else": "wait"},
        {"id": "pro-wait", "type": "wait", "days": 1},
        {"id": "wait", "type": "wait", "days": 2},
    ],
    "reentry": {"mode": "once"},
}


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("TRACKING_SECRET_KEY", "bench-only-tracking-secret")
    import django

    django.setup()


def seed(people: int) -> int:
    from django.core.management import call_command
    from django.db import connection

    from journeys import lifecycle

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO profiles_person (traits, created_at, updated_at) "
            "SELECT jsonb_build_object('email', 'p' || g || '@example.org', "
            "'plan', CASE WHEN g %% 3 = 0 THEN 'pro' ELSE 'free' END, 'timezone', 'Europe/Berlin'), now(), now() "
            "FROM generate_series(1, %s) g",
            [people],
        )
    journey = lifecycle.launch(lifecycle.create_journey("bench", "Bench", DEFINITION))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journeys_entry (journey_id, version_id, person_id, occurrence, state, step, due_at, "
            "waiting_for, context, exit_reason, entered_at, updated_at) "
            "SELECT %s, %s, id, 'bench', 'active', 'plan', now() - interval '1 minute', '', '{}'::jsonb, '', "
            "now(), now() FROM profiles_person",
            [journey.pk, journey.current_version_id],
        )
        cursor.execute("ANALYZE")
    return journey.pk


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE journeys_steprun")
        cursor.execute(
            "UPDATE journeys_entry SET state = 'active', step = 'plan', due_at = now() - interval '1 minute', "
            "waiting_for = '', exit_reason = ''"
        )
        cursor.execute("VACUUM ANALYZE journeys_entry")


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) the PostgreSQL backend ``pid`` has used, from /proc (0 when unreadable:
    the database runs elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def work(seconds: float, batch: int, out: Any) -> None:
    from django.db import connection, connections

    from journeys.advancing import advance_due

    connections.close_all()  # a forked process opens its own connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    waits = {"statements": 0, "seconds": 0.0}

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            waits["statements"] += 1
            waits["seconds"] += time.perf_counter() - began

    advanced, batches = 0, 0
    started, cpu, db_cpu = time.perf_counter(), time.process_time(), _backend_cpu(backend)
    with connection.execute_wrapper(timed):
        while time.perf_counter() - started < seconds:
            report = advance_due(batch_size=batch, budget_seconds=min(5.0, seconds - (time.perf_counter() - started)))
            advanced += report.advanced
            batches += report.batches
            if report.advanced == 0:
                break
    out.put(
        {
            "advanced": advanced,
            "batches": batches,
            "wall": time.perf_counter() - started,
            "cpu": time.process_time() - cpu,
            "db_cpu": _backend_cpu(backend) - db_cpu,
            "statements": waits["statements"],
            "db_wait": waits["seconds"],
        }
    )


def run_row(workers: int, seconds: float, batch: int) -> dict[str, float]:
    from django.db import connections

    from journeys.models import StepRun

    connections.close_all()
    queue: Any = multiprocessing.get_context("fork").Queue()
    processes = [
        multiprocessing.get_context("fork").Process(target=work, args=(seconds, batch, queue)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    advanced = sum(r["advanced"] for r in results)
    batches = sum(r["batches"] for r in results)
    runs = StepRun.objects.count()
    distinct = StepRun.objects.values("entry_id", "step").distinct().count()
    assert runs == distinct == 2 * advanced, (runs, distinct, advanced)
    return {
        "workers": workers,
        "advanced": advanced,
        "per_process": sum(r["advanced"] / r["wall"] for r in results) / workers,
        "total": sum(r["advanced"] / r["wall"] for r in results),
        # microseconds of CPU per entry: the worker's own, and its PostgreSQL backend's
        "worker_us": 1e6 * sum(r["cpu"] for r in results) / max(advanced, 1),
        "db_us": 1e6 * sum(r["db_cpu"] for r in results) / max(advanced, 1),
        "statements": sum(r["statements"] for r in results) / max(batches, 1),
        "db_wait_ms": 1000 * sum(r["db_wait"] for r in results) / max(batches, 1),
        "batches": batches,
    }


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    os.environ["DATABASE_URL"] = recreate_database(base, NAME)
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CACHE_URL", None)
    _setup()
    try:
        started = time.perf_counter()
        seed(args.people)
        print(f"seeded {args.people:,} people waiting in one journey in {time.perf_counter() - started:.1f} s")
        print(f"batches of {args.batch}; load average before: {_load()}")
        print(
            "workers | advanced | entries/s per process (wall) | entries/s in all | ratio to 1 worker | "
            "worker CPU µs/entry | PostgreSQL CPU µs/entry | statements/batch | database wait ms/batch"
        )
        rows: list[dict[str, float]] = []
        for workers in (int(w) for w in args.workers.split(",")):
            reset()
            row = run_row(workers, args.seconds, args.batch)
            rows.append(row)
            ratio = row["total"] / rows[0]["total"] * rows[0]["workers"]
            print(
                f"{row['workers']:7d} | {row['advanced']:8,d} | {row['per_process']:28,.0f} | {row['total']:16,.0f} | "
                f"{ratio:17.2f} | {row['worker_us']:19.0f} | {row['db_us']:23.0f} | {row['statements']:16.1f} | "
                f"{row['db_wait_ms']:22.1f}"
            )
        cpu_per_entry = (rows[0]["worker_us"] + rows[0]["db_us"]) / 1e6
        if cpu_per_entry > 0:
            print(
                f"CPU per entry (worker + PostgreSQL, 1 worker) {cpu_per_entry * 1e6:.0f} µs: "
                f"one core's worth is {1 / cpu_per_entry:,.0f} entries/s"
            )
        print(f"load average after: {_load()}")
        print(json.dumps({"people": args.people, "batch": args.batch, "load_average": _load(), "rows": rows}))
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(base, NAME)


if __name__ == "__main__":
    main()
