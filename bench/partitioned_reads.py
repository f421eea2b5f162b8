"""What the month partitions cost serving's read of a person's latest events: the same query on the
partitioned ``profiles_event`` and on a plain copy of it with the same index, interleaved, on a
database that holds events (``DATABASE_URL``; the copy ``ev_plain`` is made first and dropped after).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pe .venv/bin/python bench/partitioned_reads.py
"""

from __future__ import annotations

import os
import random
import statistics
import time

import psycopg

SQL = (
    "SELECT item_id, timestamp, kind, quantity FROM {t} WHERE person_id = %s "
    "AND kind IN ('view', 'purchase', 'add_to_cart') AND item_id <> '' ORDER BY timestamp DESC LIMIT 50"
)


def main() -> None:
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    conn.execute("DROP TABLE IF EXISTS ev_plain")
    conn.execute("CREATE TABLE ev_plain AS SELECT * FROM profiles_event")
    conn.execute("CREATE INDEX ON ev_plain (person_id, timestamp) INCLUDE (item_id, kind, quantity)")
    conn.execute("ANALYZE ev_plain")
    conn.execute("ANALYZE profiles_event")
    row = conn.execute("SELECT min(person_id), max(person_id), count(*) FROM profiles_event").fetchone()
    assert row is not None
    lo, hi, events = row
    parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'profiles_event'::regclass").fetchone()
    times: dict[str, list[float]] = {"profiles_event": [], "ev_plain": []}
    random.seed(1)
    for table in times:  # warm both
        for _ in range(200):
            conn.execute(SQL.format(t=table), [random.randint(lo, hi)], prepare=True).fetchall()
    for _ in range(3000):
        person = random.randint(lo, hi)
        for table, taken in times.items():
            started = time.perf_counter()
            conn.execute(SQL.format(t=table), [person], prepare=True).fetchall()
            taken.append((time.perf_counter() - started) * 1000)
    print(f"{events} events, {parts[0] if parts else '?'} partitions")
    for table, taken in times.items():
        taken.sort()
        print(f"{table:16} median {statistics.median(taken):.3f} ms  p99 {taken[int(len(taken) * 0.99)]:.3f} ms")
    conn.execute("DROP TABLE ev_plain")


if __name__ == "__main__":
    main()
