"""Journey entry latency: from the ingest API's answer to the journey entry being recorded, while
events come in through the API at a steady rate and a share of them match a live journey's trigger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/journey_entry.py [--rate 1000] [--seconds 30] [--match 0.1]

It creates (and afterwards drops) its own database, ``pe_bench_journeys``, migrates it, and runs the
production shape on loopback, the processes ``make up`` starts (``deploy/up.py``): gunicorn
(``--workers``), a Celery worker on every queue, beat and the outbox relay (every ``--relay``
seconds); their output goes to a log file. Clients send ``track`` messages in batches of ``--batch``
(as a shop's backend sends them) at ``--rate`` events per second, paced by the clock (a late batch
is sent at once, never skipped), each from a person of its own; a share ``--match`` of them are
``Product Added`` (the trigger of a live abandoned-cart journey), the rest ``Product Viewed``.

Two phases, one after the other in one run: first with no journey live (the baseline: what
ingestion costs alone), then with the journey live. For each phase the table gives the API's answer
time; for the second, per matching event, the time from the API's answer (the client's clock when
the response arrived) to the moment its entry row was written: the bench adds a column to its own
database's entry table, ``DEFAULT clock_timestamp()``, which PostgreSQL fills at the row's insert
(the transaction commits right after). Negative when the entry was written before the answer: the
request performs the journey's outbox entry right after its commit; the relay does when that did
not happen. It also counts matching events that got no entry. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import drop_database, recreate_database  # noqa: E402
from deploy.up import shape  # noqa: E402

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
) -> tuple[list[float], dict[str, float], int, float]:
    """Send for ``seconds`` at ``rate`` events/s. Returns the answer times (s), {matching person:
    wall-clock time of the answer}, the number of failed batches and the events/s achieved."""
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
    return answers, answered_at, failed[0], achieved


RECORDED = "ALTER TABLE journeys_entry ADD COLUMN bench_recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()"


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a process, 0 when it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """A process and its descendants (gunicorn's and Celery's worker processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            todo.extend(int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split())
        except OSError:
            continue
    return found


def cpu_snapshot(roots: list[int], db_url: str, database: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the production shape's processes and of the database's backends (by pid,
    so that a process that appears or goes is counted from its first sight)."""
    with psycopg.connect(db_url) as conn:
        backends = [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])]
    return {
        "app": {pid: _cpu_of(pid) for root in roots for pid in _tree(root)},
        "database": {pid: _cpu_of(pid) for pid in backends},
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    return {
        side: sum(seconds - before[side].get(pid, 0.0) for pid, seconds in after[side].items())
        for side in ("app", "database")
    }


def _wait_up(port: int, seconds: float = 300) -> None:
    """Return once every web process answers (any status: the first request of a process is slow on a
    loaded machine, so a short timeout would never see it)."""
    deadline = time.monotonic() + seconds
    answered = 0
    while time.monotonic() < deadline and answered < 4:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/v1/")
            conn.getresponse().read()
            answered += 1
        except OSError:
            time.sleep(0.5)
    if answered < 4:
        raise RuntimeError("gunicorn did not come up")


def entry_times(db_url: str, users: list[str]) -> dict[str, float]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT i.value, extract(epoch FROM e.bench_recorded_at) FROM journeys_entry e "
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
    parser.add_argument("--batch", type=int, default=100, help="Events per API request (a shop backend's batch).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client connections.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--relay", default="1", help="Seconds between the outbox relay's rounds (RELAY_SECONDS).")
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
        "WEB_PROCESSES": str(args.workers),
        "RELAY_SECONDS": args.relay,
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    key = manage(env, SETUP)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RECORDED)

    log_path = Path(tempfile.gettempdir()) / f"journey_entry_{args.port}.log"
    log = log_path.open("wb")
    print(f"production shape's output: {log_path}")
    processes = [
        subprocess.Popen(process.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for process in shape(python, "127.0.0.1", args.port)
    ]
    try:
        _wait_up(args.port)
        plan = (args.port, key, args.rate, args.seconds, args.batch, args.match, args.clients)
        print(f"sending {args.rate:,.0f} events/s for {args.seconds:.0f} s per phase, {args.match:.0%} matching")
        load_before = os.getloadavg()
        roots = [process.pid for process in processes]
        first = cpu_snapshot(roots, db_url, args.database)
        base_answers, _, base_failed, base_rate = run_phase(*plan, phase="baseline")
        base_cpu = cpu_used(first, cpu_snapshot(roots, db_url, args.database))
        manage(env, LAUNCH)
        time.sleep(2)  # every web process sees the live journey (watched names are cached briefly)
        first = cpu_snapshot(roots, db_url, args.database)
        live_answers, answered_at, live_failed, live_rate = run_phase(*plan, phase="journey")
        live_cpu = cpu_used(first, cpu_snapshot(roots, db_url, args.database))
        load_after = os.getloadavg()
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
    after = sum(1 for latency in latencies if latency > 0)
    base, live, entry = percentiles(base_answers), percentiles(live_answers), percentiles(latencies)
    print()
    print(f"{'what (ms)':<52} {'events/s':>9} {'p50':>8} {'p95':>8} {'p99':>8} {'p99 ratio':>10}")
    print(
        f"{'API answer, no journey live (baseline)':<52} {base_rate:>9,.0f} {base[0]:>8.1f} {base[1]:>8.1f} "
        f"{base[2]:>8.1f} {1:>10.2f}"
    )
    print(
        f"{'API answer, abandoned-cart journey live':<52} {live_rate:>9,.0f} {live[0]:>8.1f} {live[1]:>8.1f} "
        f"{live[2]:>8.1f} {live[2] / base[2]:>10.2f}"
    )
    print(
        f"{'answer -> entry row written (matching events)':<52} {'':>9} {entry[0]:>8.1f} {entry[1]:>8.1f} "
        f"{entry[2]:>8.1f}"
    )
    print(
        f"\nmatching events answered {len(answered_at)}, entered {len(latencies)} ({after} written after the answer), "
        f"without entry {missing}; failed batches {base_failed + live_failed}"
    )
    base_events, live_events = len(base_answers) * args.batch, len(live_answers) * args.batch
    print("\nCPU per event (ms)       production processes   PostgreSQL   cores needed at --rate")
    for label, used, events in (("no journey live", base_cpu, base_events), ("journey live", live_cpu, live_events)):
        app_ms, db_ms = 1000 * used["app"] / max(events, 1), 1000 * used["database"] / max(events, 1)
        print(f"{label:<24} {app_ms:>21.2f} {db_ms:>12.2f} {(app_ms + db_ms) * args.rate / 1000:>22.2f}")
    load = " ".join(f"{value:.2f}" for value in load_before) + " -> " + " ".join(f"{v:.2f}" for v in load_after)
    print(f"load average {load}")
    print(
        json.dumps(
            {
                "rate": args.rate,
                "match": args.match,
                "batch": args.batch,
                "baseline_events_per_s": round(base_rate),
                "journey_events_per_s": round(live_rate),
                "baseline_answer_p99_ms": round(base[2], 1),
                "journey_answer_p99_ms": round(live[2], 1),
                "answer_p99_ratio": round(live[2] / base[2], 2),
                "entry_p50_ms": round(entry[0], 1),
                "entry_p99_ms": round(entry[2], 1),
                "matching": len(answered_at),
                "written_after_answer": after,
                "without_entry": missing,
                "failed_batches": base_failed + live_failed,
                "load_average": [round(v, 2) for v in (*load_before, *load_after)],
                "cpu_ms_per_event": {
                    "baseline": {k: round(1000 * v / max(base_events, 1), 3) for k, v in base_cpu.items()},
                    "journey": {k: round(1000 * v / max(live_events, 1), 3) for k, v in live_cpu.items()},
                },
            }
        )
    )
    if missing or base_failed or live_failed:
        sys.exit("Some matching events have no entry, or some batches failed.")


if __name__ == "__main__":
    main()
