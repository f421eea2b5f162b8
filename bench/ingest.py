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
database, ``--preload-events N`` to run again on a log preloaded with N events (``bench/big_log.py``)
and compare, ``--preloaded NAME`` to run again on the kept database NAME that ``bench/big_log.py
preload`` made (not dropped; the purchases then go under message and user ids of the run's own).
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.big_log import database_url, described  # noqa: E402
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


def copy_baseline(db_url: str, rows: list[tuple], person_of: dict[str, int], empty_first: bool = True) -> float:
    """COPY the same purchases, person ids already resolved, into the same table: emptied first, or,
    on a preloaded log, beside the rows the API stored (under other message ids)."""
    with psycopg.connect(db_url) as conn:
        if empty_first:
            conn.execute("TRUNCATE profiles_event")
        prefix = "" if empty_first else "copy-"
        buffer = io.StringIO()
        now = time.strftime("%Y-%m-%d %H:%M:%S+00")
        for message_id, user_id, item_id, timestamp, quantity, price, order_id in rows:
            buffer.write(
                f"{prefix}{message_id}\t0\t{person_of[user_id]}\tpurchase\tpurchase\t{item_id}\t{quantity}\t{price}\t"
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


def shifted_to_now(rows: list[tuple]) -> list[tuple]:
    """The purchases moved in time so that the last one is now, their spacing kept: events arrive
    in the current months, into the partitions the big log fills, not into the default partition
    where their 2010-2011 dates would put them."""
    parse = datetime.fromisoformat
    moments = [parse(r[3]) for r in rows]
    shift = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5) - max(moments)
    return [
        (*r[:3], (when + shift).strftime("%Y-%m-%d %H:%M:%S"), *r[4:]) for r, when in zip(rows, moments, strict=True)
    ]


@dataclass
class Measured:
    preload: int
    api_seconds: float
    accepted: int
    failed: int
    stored: int
    waiting: int
    copy_seconds: float
    events: int
    preloaded: str

    @property
    def api_rate(self) -> float:
        return self.events / self.api_seconds

    @property
    def copy_rate(self) -> float:
        return self.events / self.copy_seconds


def measure(
    args: argparse.Namespace,
    base_url: str,
    rows: list[tuple],
    bodies: list[bytes],
    preload: int,
    item_ids: list[str],
    kept: str = "",
) -> Measured:
    """One run in a fresh scratch database (the big log first when ``preload``), or on the kept
    database ``kept`` that ``bench/big_log.py preload`` made: the API, then COPY."""
    print(f"\n## log of {preload:,} events before the run{f' (the kept database {kept})' if kept else ''}", flush=True)
    db_url = database_url(base_url, kept) if kept else recreate_database(base_url, args.database)
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
    if not kept:
        subprocess.run([python, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    preloaded = ""
    if preload and not kept:
        # The big log first, on the items the purchases are of, in its own Django process.
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as items_file:
            items_file.write("\n".join(item_ids))
            items_file.flush()
            preloading = subprocess.Popen(
                [python, str(ROOT / "bench" / "big_log.py"), "--events", str(preload), "--items-file", items_file.name],
                cwd=ROOT,
                env={**env, "DJANGO_SETTINGS_MODULE": "personalization.settings"},
                stdout=subprocess.PIPE,
                text=True,
            )
            assert preloading.stdout is not None
            for line in preloading.stdout:  # the progress lines as they come
                print(line, end="", flush=True)
                preloaded = line.strip()
            if preloading.wait() != 0:
                sys.exit("Preloading the event log failed.")
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

    prefix = rows[0][0].rsplit("-", 1)[0] + "-"  # "or-", or "or-<run>-" on a kept database
    user_prefix = rows[0][1].split("-", 1)[0] + "-" if kept else ""
    with psycopg.connect(db_url) as conn:
        # Through the message ids' index (a prefix LIKE on its pattern index), not a pass over the log:
        # the events stored are those whose message is recorded at the same moment.
        stored = conn.execute(
            "SELECT count(*) FROM profiles_eventmessage m JOIN profiles_event e ON e.message_id = m.message_id"
            ' AND e."timestamp" = m."timestamp" WHERE m.message_id LIKE %s',
            (prefix.replace("_", "\\_") + "%",),
        ).fetchone()[0]  # type: ignore[index]
        waiting = conn.execute("SELECT count(*) FROM profiles_outboxentry").fetchone()[0]  # type: ignore[index]
        person_of: dict[str, int] = dict(
            conn.execute(
                "SELECT value, person_id FROM profiles_identity WHERE kind = 'user_id' AND value LIKE %s",
                (user_prefix + "%",),
            ).fetchall()
        )
    copy_seconds = copy_baseline(db_url, rows, person_of, empty_first=not preload)
    if os.environ.get("REDIS_URL"):
        # No worker ran: drop the profile refreshes the run queued, they point at a database about to go.
        import redis

        from personalization import queues

        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*queues.QUEUES)
    if not args.keep and not kept:
        drop_database(base_url, args.database)

    return Measured(preload, api_seconds, accepted, failed, stored, waiting, copy_seconds, len(rows), preloaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="Send only the first N events.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--clients", type=int, default=3, help="Concurrent client connections.")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    parser.add_argument("--database", default=BENCH_DB, help="Name of the scratch database (dropped first).")
    parser.add_argument(
        "--preload-events",
        type=int,
        default=0,
        metavar="N",
        help="Run twice, on an empty log and on a log preloaded with N events (bench/big_log.py), side by side;"
        " the purchases are then moved in time to end now.",
    )
    parser.add_argument(
        "--preloaded",
        metavar="NAME",
        help="Run twice, on an empty log and on the kept database NAME that `bench/big_log.py preload` made"
        " (not dropped; each run adds its events under message and user ids of its own).",
    )
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
    kept = None
    if args.preloaded:
        kept = described(base_url, args.preloaded)
        if kept is None:
            sys.exit(f"{args.preloaded}: not a database `bench/big_log.py preload` finished (see its `show`).")
        # Ids of this run's own, in both runs: on the kept log a run must not meet an earlier one's
        # messages (replays) nor its customers (known people), or it would measure something else.
        run = f"r{int(time.time())}"
        rows = [(f"or-{run}-{r[0][3:]}", f"{run}-{r[1]}", *r[2:]) for r in rows]
    if args.preload_events or kept:
        rows = shifted_to_now(rows)
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

    item_ids = sorted({r[2] for r in rows})
    if kept:
        results = [
            measure(args, base_url, rows, bodies, 0, item_ids),
            measure(args, base_url, rows, bodies, kept["events"], item_ids, kept=args.preloaded),
        ]
        results[1].preloaded = f"the kept database {args.preloaded}: {kept['preload_line']}"
    else:
        logs = [0, args.preload_events] if args.preload_events else [0]
        results = [measure(args, base_url, rows, bodies, preload, item_ids) for preload in logs]

    print()
    print(
        f"{'path':<44} {'log before':>11} {'events':>9} {'seconds':>8} {'events/s':>10} {'vs COPY':>8}"
        f" {'vs small log':>12}"
    )
    small = results[0]
    for result in results:
        log = f"{result.preload:,}"
        print(
            f"{'COPY into profiles_event (baseline)':<44} {log:>11} {len(rows):>9} {result.copy_seconds:>8.2f}"
            f" {result.copy_rate:>10.0f} {1.0:>8.2f} {result.copy_rate / small.copy_rate:>12.3f}"
        )
        print(
            f"{'POST /api/v1/batch, durable (gunicorn x' + str(args.workers) + ')':<44} {log:>11} {result.stored:>9}"
            f" {result.api_seconds:>8.2f} {result.api_rate:>10.0f} {result.api_rate / result.copy_rate:>8.3f}"
            f" {result.api_rate / small.api_rate:>12.3f}"
        )
    for result in results:
        print(
            f"\nlog of {result.preload:,} events before: accepted {result.accepted}, stored {result.stored},"
            f" failed batches {result.failed}, clients {args.clients}; outbox entries left undelivered:"
            f" {result.waiting} (each batch writes one and delivers it after its commit)"
        )
        if result.preloaded:
            print(f"  {result.preloaded}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if any(result.stored != len(rows) or result.failed for result in results):
        sys.exit("Not every event was stored.")


if __name__ == "__main__":
    main()
