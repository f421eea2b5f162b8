"""A big event log for the service benchmarks: ``--preload-events N`` of ``bench/ingest.py`` and
``bench/serve.py`` fill the scratch database's (partitioned) ``profiles_event`` with N events before
they measure, so that ingestion and serving are timed against the log a shop has after two years.

What goes in, generated with numpy and written with ``COPY`` in chunks (one transaction each, with a
progress line):

* people of their own (one per ``EVENTS_PER_PERSON`` events, a ``user_id`` identity ``log-u<k>``
  each), beside any the bench already made (``existing_people``), who get a share of the events too;
* events spread over the last ``months`` months (more of them recent: the shop grew), on the items of
  the catalogue the bench uses, a mix of kinds (mostly views, then carts, purchases, pages, searches,
  email opens and clicks) with Segment's names, a price and an order id on purchases; one message
  each, whose id also goes to ``profiles_eventmessage`` as ingestion records it (a replay of one of
  them through the API is recognised);
* the month partitions first (``profiles.partitions.create_month``), so that no row lands in the
  default partition; ``VACUUM ANALYZE`` after, as a log in service has had (visibility map for the
  index-only reads of serving, statistics for the planner).

The foreign keys of the copied rows (person) are not checked row by row: the rows are made to
satisfy them, and the copy sets ``session_replication_role = replica`` for its own session when the
database role may (a superuser); otherwise they are checked at each chunk's commit.

Run alone, inside Django's environment, on the database of ``DATABASE_URL``:

    DJANGO_SETTINGS_MODULE=personalization.settings DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch \
        .venv/bin/python bench/big_log.py --events 2000000 --items i0,i1,i2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

EVENTS_PER_PERSON = 40
CHUNK = 500_000
DAY = 86_400.0
# kind, the name sent, share of all events, carries an item
KINDS = (
    ("view", "Product Viewed", 0.68, True),
    ("add_to_cart", "Product Added", 0.10, True),
    ("purchase", "Order Completed", 0.05, True),
    ("page", "Home", 0.09, False),
    ("search", "Products Searched", 0.05, False),
    ("email_open", "Email Opened", 0.02, False),
    ("email_click", "Email Link Clicked", 0.01, False),
)
EVENT_COLUMNS = (
    "message_id, position, person_id, kind, name, item_id, quantity, price, order_id, properties, context,"
    ' "timestamp", received_at'
)


@dataclass
class Preloaded:
    events: int
    people: int
    seconds: float
    vacuum_seconds: float
    bytes_on_disk: int  # events, their indexes and the message ids

    def line(self) -> str:
        per_million = self.bytes_on_disk / max(self.events, 1) * 1e6 / 2**20
        return (
            f"preloaded {self.events:,} events of {self.people:,} new people in {self.seconds:.0f} s"
            f" ({self.events / max(self.seconds, 1e-9):,.0f} events/s), VACUUM ANALYZE {self.vacuum_seconds:.0f} s;"
            f" {self.bytes_on_disk / 2**30:.2f} GiB on disk, {per_million:.0f} MiB per million events"
        )


def _stamps(seconds: np.ndarray) -> list[str]:
    text = np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us")
    return [f"{s}+00" for s in text.tolist()]


def _timestamps(rng: np.random.Generator, count: int, now: float, months: int) -> np.ndarray:
    """Moments in the last ``months`` months, the density growing linearly to three times the oldest."""
    span = months * 30.44 * DAY
    # inverse of the CDF of a density rising from 1 to 3 across the span
    u = rng.random(count)
    x = (-1 + np.sqrt(1 + 8 * u)) / 2  # in [0, 1), 0 the oldest
    return now - span + x * span - rng.uniform(0, 60, count)  # never in the future


def create_months(now: float, months: int) -> int:
    """The month partitions of the span (Django set up); returns how many were created."""
    from profiles.partitions import Month, create_month, is_partitioned

    if not is_partitioned():
        return 0
    this_month = Month.of(datetime.fromtimestamp(now, UTC))
    return sum(create_month(this_month.plus(-k)) for k in range(months + 1))


def preload(
    db_url: str,
    events: int,
    items: Sequence[str],
    existing_people: int = 0,
    months: int = 24,
    seed: int = 11,
    chunk: int = CHUNK,
    progress: Callable[[str], None] = print,
) -> Preloaded:
    """COPY ``events`` events into the database of ``db_url`` (its month partitions already made).

    People ``1..existing_people`` (ids the bench gave) get a share of the events in proportion to
    their number; the new people take the ids after the highest one."""
    import psycopg

    if not items:
        raise ValueError("items: the catalogue's item ids are needed to make events about them")
    started = time.perf_counter()
    now = time.time()
    rng = np.random.default_rng(seed)
    item_ids = np.asarray(items, dtype=object)
    # Popular items are viewed more: a Zipf rank over a shuffled catalogue.
    item_order = rng.permutation(len(item_ids))
    shares = np.asarray([k[2] for k in KINDS])
    kind_names = [k[0] for k in KINDS]
    event_names = [k[1] for k in KINDS]
    with_item = np.asarray([k[3] for k in KINDS])
    new_people = max(1, events // EVENTS_PER_PERSON)
    received = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S+00")
    with psycopg.connect(db_url) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
        first = cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM profiles_person").fetchone()[0]  # type: ignore[index]
        first = max(first, existing_people + 1)
        for start in range(0, new_people, chunk):
            ids = range(first + start, first + min(new_people, start + chunk))
            with cursor.copy("COPY profiles_person (id, traits, created_at, updated_at) FROM STDIN") as copy:
                copy.write("".join(f"{k}\t{{}}\t{received}\t{received}\n" for k in ids))
            with cursor.copy("COPY profiles_identity (person_id, kind, value, created_at) FROM STDIN") as copy:
                copy.write("".join(f"{k}\tuser_id\tlog-u{k}\t{received}\n" for k in ids))
        cursor.execute("SELECT setval(pg_get_serial_sequence('profiles_person', 'id'), %s)", (first + new_people - 1,))
        conn.commit()
        # The people an event may be of: the bench's (1..existing) and the new ones.
        pool = np.concatenate([np.arange(1, existing_people + 1), np.arange(first, first + new_people)]).astype(
            np.int64
        )
        done = 0
        while done < events:
            n = min(chunk, events - done)
            person = pool[rng.integers(0, pool.size, n)]
            kind = rng.choice(len(KINDS), n, p=shares / shares.sum())
            rank = np.minimum(rng.zipf(1.3, n) - 1, len(item_ids) - 1)
            item = np.where(with_item[kind], item_ids[item_order[rank]], "")
            when = _timestamps(rng, n, now, months)
            stamps = _stamps(when)
            price = np.round(np.exp(rng.normal(3.3, 0.8, n)), 2)
            messages = [f"log-{done + k}" for k in range(n)]
            lines = []
            for k, (m, p, kd, it, ts, pr) in enumerate(
                zip(messages, person.tolist(), kind.tolist(), item.tolist(), stamps, price.tolist(), strict=True)
            ):
                if kd == 2:  # a purchase: quantity, price, order
                    tail = f"1\t{pr:.2f}\tlog-o{done + k}"
                elif with_item[kd]:
                    tail = "1\t\\N\t"
                else:
                    tail = "\\N\t\\N\t"
                lines.append(
                    f"{m}\t0\t{p}\t{kind_names[kd]}\t{event_names[kd]}\t{it}\t{tail}\t{{}}\t{{}}\t{ts}\t{received}\n"
                )
            with cursor.copy(f"COPY profiles_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
                copy.write("".join(lines))
            with cursor.copy('COPY profiles_eventmessage (message_id, "timestamp") FROM STDIN') as copy:
                copy.write("".join(f"{m}\t{ts}\n" for m, ts in zip(messages, stamps, strict=True)))
            conn.commit()
            done += n
            elapsed = time.perf_counter() - started
            progress(
                f"  preload: {done:,} / {events:,} events ({done / events:.0%}), {elapsed:.0f} s,"
                f" {done / elapsed:,.0f} events/s"
            )
    copied = time.perf_counter() - started
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE profiles_event, profiles_eventmessage, profiles_person, profiles_identity")
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relkind = 'r' AND (c.oid IN (SELECT inhrelid FROM pg_inherits "
            "WHERE inhparent = 'profiles_event'::regclass) OR c.relname IN ('profiles_event', 'profiles_eventmessage'))"
        ).fetchone()[0]  # type: ignore[index]
        default = conn.execute("SELECT count(*) FROM profiles_event_default").fetchone()
    if default and default[0]:
        progress(f"  preload: {default[0]:,} events in the default partition (months missing)")
    return Preloaded(events, new_people, copied, time.perf_counter() - started - copied, int(size))


def run(events: int, items: Sequence[str], existing_people: int = 0, months: int = 24) -> Preloaded:
    """Inside Django's environment: the months' partitions, then the preload, then a summary line."""
    created = create_months(time.time(), months)
    print(f"  preload: {created} month partitions created", flush=True)
    result = preload(
        os.environ["DATABASE_URL"],
        events,
        items,
        existing_people=existing_people,
        months=months,
        progress=lambda line: print(line, flush=True),
    )
    print(f"  {result.line()}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--items", help="Item ids, comma-separated.")
    parser.add_argument("--items-file", help="Item ids, one a line.")
    parser.add_argument("--existing-people", type=int, default=0, help="People 1..N already in the database.")
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    items = Path(args.items_file).read_text().splitlines() if args.items_file else (args.items or "").split(",")
    items = [item for item in items if item]
    sys.path.insert(0, str(ROOT))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    django.setup()
    run(args.events, items, args.existing_people, args.months)


if __name__ == "__main__":
    main()
