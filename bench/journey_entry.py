"""Journey entry latency: from the ingest API's answer to the journey entry being recorded, while
events come in through the API at a steady rate and a share of them match a live journey's trigger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/journey_entry.py [--rate 1000] [--seconds 30] [--match 0.1]

It creates (and afterwards drops) its own database, ``pe_bench_journeys``, migrates it, and runs the
production processes on loopback: gunicorn (``--workers``), a Celery worker on the ingestion queue
(the outbox relay's queue) and beat. Clients send ``track`` messages in batches of ``--batch`` at
``--rate`` events per second, paced by the clock (a late batch is sent at once, never skipped), each
from a person of its own; a share ``--match`` of them are ``Product Added`` (the trigger of a live
abandoned-cart journey), the rest ``Product Viewed``.

Two phases, side by side in one run: first with no journey live (the baseline: what ingestion costs
alone), then with the journey live. For each phase the table gives the API's answer time; for the
second, per matching event, the time from the API's answer to its entry's ``entered_at`` (negative
when the entry was recorded before the answer: the request performs it right after its commit) and
how many matching events had no entry. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import drop_database, recreate_database, wait_for  # noqa: E402

BENCH_DB = "pe_bench_journeys"
SETUP = """
from journeys.lifecycle import create_journey, launch
from personalization.models import ApiKey, KeyScope
journey = create_journey("cart-bench", "Abandoned cart (bench)", {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [{"id": "wait", "type": "wait", "hours": 4}, {"id": "exit", "type": "exit"}],
    "exit_on": [{"event": "Order Completed"}],
    "reentry": {"mode": "every_time"},
    "holdout_share": 0,
}, actor="bench")
print(ApiKey.issue("bench", KeyScope.INGEST)[1])
"""
LAUNCH = (
    "from journeys.models import Journey; from journeys.lifecycle import launch; "
    "launch(Journey.objects.get(key='cart-bench'))"
)


def manage(env: dict[str, str], code: str) -> str:
    command = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def run_phase(
    port: int, key: str, rate: float, seconds: float, batch: int, match: float, clients: int, phase: str
) -> tuple[list[float], dict[str, float], int]:
    """Send for ``seconds`` at ``rate`` events/s. Returns the answer times (s), {matching person:
    wall-clock time of the answer}, and the number of failed batches."""
    batches_per_second = rate / batch
    total = int(seconds * batches_per_second)
    start = time.time() + 0.5
    rng = np.random.default_rng(0 if phase == "baseline" else 1)
    plans: list[tuple[float, bytes, list[str]]] = []
    for n in range(total):
        messages, matching = [], []
        for _ in range(batch):
            user = f"{phase}-{uuid.uuid4().hex[:12]}"
            added = bool(rng.random() < match)
            if added:
                matching.append(user)
            messages.append(
                {
                    "type": "track",
                    "event": "Product Added" if added else "Product Viewed",
                    "messageId": uuid.uuid4().hex,
                    "anonymousId": user,
                    "properties": {"product_id": f"sku-{int(rng.integers(0, 5000))}", "price": 19.5},
                }
            )
        plans.append((start + n / batches_per_second, json.dumps({"batch": messages}).encode(), matching))
    answers: list[float] = []
    answered_at: dict[str, float] = {}
    failed = [0]
    lock = threading.Lock()
    cursor = [0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                if cursor[0] >= len(plans):
                    return
                due, body, matching = plans[cursor[0]]
                cursor[0] += 1
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            sent = time.time()
            try:
                conn.request("POST", "/api/v1/batch", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            answered = time.time()
            with lock:
                if ok:
                    answers.append(answered - sent)
                    for user in matching:
                        answered_at[user] = answered
                else:
                    failed[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = len(answers) * batch / max(time.time() - start, 1e-9)
    print(f"  {phase}: {len(answers)} batches answered, {failed[0]} failed, {achieved:,.0f} events/s achieved")
    return answers, answered_at, failed[0]


def entry_times(db_url: str, users: list[str]) -> dict[str, float]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT i.value, extract(epoch FROM e.entered_at) FROM journeys_entry e "
            "JOIN profiles_identity i ON i.person_id = e.person_id AND i.kind = 'anonymous_id' "
            "WHERE i.value = ANY(%s)",
            [users],
        ).fetchall()
    return {user: float(at) for user, at in rows}


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="Events per second through the API.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of each phase.")
    parser.add_argument("--match", type=float, default=0.1, help="Share of events that match the trigger.")
    parser.add_argument("--batch", type=int, default=20, help="Events per API request.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client connections.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    parser.add_argument("--database", default=BENCH_DB)
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL")
    if not base_url or not base_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (any database; the bench makes its own).")
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: the production processes talk through Redis (use a database number of its own).")

    db_url = recreate_database(base_url, args.database)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CACHE_URL": os.environ.get("CACHE_URL", os.environ["REDIS_URL"]),
        "DEBUG": "False",
        "SECRET_KEY": "bench-only-secret",
        "TRACKING_SECRET_KEY": "bench-only-tracking-secret",
        "HTTPS": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "INGEST_RATE_LIMIT": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    key = manage(env, SETUP)

    gunicorn = [python, "-m", "gunicorn", "personalization.wsgi", "--bind", f"127.0.0.1:{args.port}"]
    celery = [python, "-m", "celery", "-A", "personalization"]
    processes = [
        subprocess.Popen(
            [*gunicorn, "--workers", str(args.workers), "--timeout", "300", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [
                *celery,
                "worker",
                "-Q",
                "ingestion",
                "-n",
                "bench-ingestion@%h",
                "--concurrency",
                "1",
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [
                *celery,
                "beat",
                "--loglevel",
                "warning",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            cwd=ROOT,
            env=env,
        ),
    ]
    try:
        wait_for(args.port)
        shape = (args.port, key, args.rate, args.seconds, args.batch, args.match, args.clients)
        print(f"sending {args.rate:,.0f} events/s for {args.seconds:.0f} s per phase, {args.match:.0%} matching")
        base_answers, _, base_failed = run_phase(*shape, phase="baseline")
        manage(env, LAUNCH)
        time.sleep(2)  # every web process sees the live journey (watched names are cached briefly)
        live_answers, answered_at, live_failed = run_phase(*shape, phase="journey")
        deadline = time.time() + 30
        entered = entry_times(db_url, list(answered_at))
        while len(entered) < len(answered_at) and time.time() < deadline:
            time.sleep(1)  # what the relay still delivers
            entered = entry_times(db_url, list(answered_at))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            drop_database(base_url, args.database)

    latencies = [entered[user] - answered_at[user] for user in answered_at if user in entered]
    missing = len(answered_at) - len(latencies)
    base, live, entry = percentiles(base_answers), percentiles(live_answers), percentiles(latencies)
    print()
    print(f"{'what (ms)':<52} {'p50':>8} {'p95':>8} {'p99':>8} {'p99 ratio':>10}")
    print(f"{'API answer, no journey live (baseline)':<52} {base[0]:>8.1f} {base[1]:>8.1f} {base[2]:>8.1f} {1:>10.2f}")
    print(
        f"{'API answer, abandoned-cart journey live':<52} {live[0]:>8.1f} {live[1]:>8.1f} {live[2]:>8.1f} "
        f"{live[2] / base[2]:>10.2f}"
    )
    print(f"{'answer -> entry recorded (matching events)':<52} {entry[0]:>8.1f} {entry[1]:>8.1f} {entry[2]:>8.1f}")
    print(
        f"\nmatching events answered {len(answered_at)}, entered {len(latencies)}, without entry {missing}; "
        f"failed batches {base_failed + live_failed}"
    )
    print(
        json.dumps(
            {
                "rate": args.rate,
                "match": args.match,
                "baseline_answer_p99_ms": round(base[2], 1),
                "journey_answer_p99_ms": round(live[2], 1),
                "entry_p99_ms": round(entry[2], 1),
                "entry_p50_ms": round(entry[0], 1),
                "matching": len(answered_at),
                "without_entry": missing,
                "failed_batches": base_failed + live_failed,
            }
        )
    )
    if missing or base_failed or live_failed:
        sys.exit("Some matching events have no entry, or some batches failed.")


if __name__ == "__main__":
    main()
