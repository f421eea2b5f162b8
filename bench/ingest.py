"""Ingestion throughput: the Online Retail purchases through ``POST /api/v1/batch`` into PostgreSQL,
beside a plain ``COPY`` of the same rows into the same table as the baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/ingest.py

It creates (and afterwards drops) its own database, ``pe_bench_ingest`` (``--database`` names
another), migrates it, serves the app with gunicorn on loopback and sends every purchase as one
Segment ``track`` message, 500 to a batch, from ``--clients`` concurrent connections. Every accepted
batch is committed before the server answers, so the rate is of durable events. Each batch also
writes its follow-up work to the outbox in its transaction and, with ``REDIS_URL`` set, delivers it
after the commit as in production: its profile refresh queued for the workers (none runs during
the benchmark; the queue is emptied at the end) and its hot profile append. Options: ``--limit N``
to send fewer events, ``--workers`` and ``--clients`` to shape the load, ``--keep`` to keep the
database.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import drop_database, recreate_database, wait_for  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
BENCH_DB = "pe_bench_ingest"


def send_batches(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    totals = {"accepted": 0, "failed": 0}
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/api/v1/batch", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                if response.status == 200:
                    totals["accepted"] += json.loads(payload)["accepted"]
                else:
                    totals["failed"] += 1
                    print("batch failed:", response.status, payload[:300], file=sys.stderr)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, totals["accepted"], totals["failed"]


def copy_baseline(db_url: str, rows: list[tuple], person_of: dict[str, int]) -> float:
    """COPY the same purchases, person ids already resolved, into the same (emptied) table."""
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE profiles_event")
        buffer = io.StringIO()
        now = time.strftime("%Y-%m-%d %H:%M:%S+00")
        for message_id, user_id, item_id, timestamp, quantity, price, order_id in rows:
            buffer.write(
                f"{message_id}\t0\t{person_of[user_id]}\tpurchase\tpurchase\t{item_id}\t{quantity}\t{price}\t"
                f"{order_id}\t{{}}\t{{}}\t{timestamp}+00\t{now}\n"
            )
        data = buffer.getvalue()
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY profiles_event (message_id, position, person_id, kind, name, item_id, quantity, price, order_id,"
                " properties, context, timestamp, received_at) FROM STDIN"
            ) as copy,
        ):
            copy.write(data)
        conn.commit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="Send only the first N events.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--clients", type=int, default=3, help="Concurrent client connections.")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    parser.add_argument("--database", default=BENCH_DB, help="Name of the scratch database (dropped first).")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL")
    if not base_url or not base_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (any database; the bench makes its own).")

    from catalog.online_retail import convert

    folder = Path(tempfile.mkdtemp(prefix="online-retail-"))
    report = convert(DATA, folder)
    import csv

    with open(folder / "events.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [
            (f"or-{line}", r["user_id"], r["item_id"], r["timestamp"], r["quantity"], r["price"], r["order_id"])
            for line, r in enumerate(reader)
        ]
    if args.limit:
        rows = rows[: args.limit]
    print(
        f"Online Retail: {report.events} purchase events, {report.customers} customers, {report.items} items; "
        f"sending {len(rows)}"
    )

    messages = [
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": mid,
            "userId": user,
            "timestamp": ts.replace(" ", "T") + "Z",
            "properties": {"order_id": order, "product_id": item, "quantity": int(qty), "price": price},
        }
        for (mid, user, item, ts, qty, price, order) in rows
    ]
    bodies = [json.dumps({"batch": messages[i : i + args.batch]}).encode() for i in range(0, len(messages), args.batch)]

    db_url = recreate_database(base_url, args.database)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
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
    key = (
        subprocess.run(
            [
                python,
                "manage.py",
                "shell",
                "-c",
                "from personalization.models import ApiKey, KeyScope; print(ApiKey.issue('bench', KeyScope.INGEST)[1])",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    server = subprocess.Popen(
        [
            python,
            "-m",
            "gunicorn",
            "personalization.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for(args.port)
        api_seconds, accepted, failed = send_batches(args.port, key, bodies, args.clients)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM profiles_event").fetchone()[0]  # type: ignore[index]
        waiting = conn.execute("SELECT count(*) FROM profiles_outboxentry").fetchone()[0]  # type: ignore[index]
        person_of: dict[str, int] = dict(
            conn.execute("SELECT value, person_id FROM profiles_identity WHERE kind = 'user_id'").fetchall()
        )
    copy_seconds = copy_baseline(db_url, rows, person_of)
    if os.environ.get("REDIS_URL"):
        # No worker ran: drop the profile refreshes the run queued, they point at a database about to go.
        import redis

        from personalization import queues

        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*queues.QUEUES)
    if not args.keep:
        drop_database(base_url, args.database)

    api_rate, copy_rate = len(rows) / api_seconds, len(rows) / copy_seconds
    print()
    print(f"{'path':<44} {'events':>9} {'seconds':>8} {'events/s':>10} {'ratio':>7}")
    print(
        f"{'COPY into profiles_event (baseline)':<44} {len(rows):>9} {copy_seconds:>8.2f} {copy_rate:>10.0f} "
        f"{1.0:>7.2f}"
    )
    print(
        f"{'POST /api/v1/batch, durable (gunicorn x' + str(args.workers) + ')':<44} {stored:>9} "
        f"{api_seconds:>8.2f} {api_rate:>10.0f} {api_rate / copy_rate:>7.3f}"
    )
    print(f"\naccepted {accepted}, stored {stored}, failed batches {failed}, clients {args.clients}")
    print(f"outbox entries left undelivered: {waiting} (each batch writes one and delivers it after its commit)")
    if stored != len(rows) or failed:
        sys.exit("Not every event was stored.")


if __name__ == "__main__":
    main()
