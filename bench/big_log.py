"""A big event log for the service benchmarks, so that ingestion and serving are timed against the
log a shop has after two years: ``--preload-events N`` of ``bench/ingest.py`` and ``bench/serve.py``
fill their scratch database's (partitioned) ``profiles_event`` with N events before they measure;
``preload`` below makes a database of its own, kept, that ``--preloaded NAME`` of both measures
later (preloading 50 million events takes longer than the measurements: done once, apart).

What goes in, generated with numpy:

* people of their own (one per ``EVENTS_PER_PERSON`` events, a ``user_id`` identity ``log-u<k>``
  each), beside any the bench already made (``existing_people``), who get a share of the events too;
* events spread over the last ``months`` months (more of them recent: the shop grew), on the items of
  the catalogue the bench uses, a mix of kinds (mostly views, then carts, purchases, pages, searches,
  email opens and clicks) with Segment's names, a price and an order id on purchases; one message
  each, whose id also goes to ``profiles_eventmessage`` as ingestion records it (a replay of one of
  them through the API is recognised).

How, month by month rather than row by row into the indexed table: each month's events (their
number drawn from the density's mass over the month) are copied into a table of their own, made
``LIKE`` the parent without any index, with ``COPY … FREEZE`` (rows written frozen and all-visible,
as a vacuum would leave them); the parent's keys and indexes are then built on it once, a CHECK of
the month's bounds added, and it is attached as the month's partition: PostgreSQL takes the built
indexes as the partition's share of the parent's and, thanks to the CHECK, does not scan the rows.
The building and attaching run on other connections (two) while the next month is copied. An
existing partition of a month (the shop's recent events) is merged into the new one. The message
ids go into ``profiles_eventmessage`` emptied and without its keys in one transaction (its rows put
back), with ``FREEZE`` too, and its keys are built once at the end. Then ``ANALYZE`` (and a
``VACUUM``, which finds next to nothing to do).

The foreign keys of the copied rows (person) are not checked row by row: the rows are made to
satisfy them, and the preload sets ``session_replication_role = replica`` for its own sessions when
the database role may (a superuser); attaching a month checks them all at once.

Commands, with ``DATABASE_URL`` naming the server (any database on it):

    bench/big_log.py preload --database NAME [--events 50000000] [--items 100000 --people 100000]
        create NAME, migrate it, load the shop of ``bench/serve.py`` (same seed, same sizes as its
        defaults) and the events on its items and people; its facts go in the database's comment.
    bench/big_log.py show --database NAME      what NAME holds: the preload's facts, rows, size
    bench/big_log.py drop --database NAME

and inside Django's environment, on the database of ``DATABASE_URL`` itself (what the benchmarks'
``--preload-events`` runs):

    DJANGO_SETTINGS_MODULE=personalization.settings DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch \
        .venv/bin/python bench/big_log.py --events 2000000 --items i0,i1,i2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

if TYPE_CHECKING:
    import psycopg

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
    "id, message_id, position, person_id, kind, name, item_id, quantity, price, order_id, properties, context,"
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


def _share(x: np.ndarray | float) -> np.ndarray:
    """The CDF of the log's density across its span: rising linearly from 1 (oldest) to 3 (now)."""
    return (np.asarray(x, dtype=np.float64) + np.square(x)) / 2


def _timestamps(rng: np.random.Generator, count: int, t0: float, span: float, x0: float, x1: float) -> np.ndarray:
    """``count`` moments of that density, drawn within [x0, x1) of the span that starts at ``t0``
    (inverse of the CDF, restricted to the part of the span a month covers)."""
    u = rng.uniform(_share(x0), _share(x1), count)
    x = (-1 + np.sqrt(1 + 8 * u)) / 2  # in [x0, x1), 0 the oldest
    return np.clip(t0 + x * span, t0 + x0 * span, t0 + x1 * span - 1e-3)


def _month_starts(t0: float, now: float) -> list[datetime]:
    """The first moments (UTC) of the calendar months [t0, now) touches, and of the month after."""
    start = datetime.fromtimestamp(t0, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [start]
    while starts[-1].timestamp() <= now:
        last = starts[-1]
        starts.append(last.replace(year=last.year + last.month // 12, month=last.month % 12 + 1))
    return starts


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _structure(cursor: psycopg.Cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, definition) of ``table``'s primary and unique keys, (name, CREATE INDEX …) of its
    other indexes: what a table that takes its place (or a partition of it) must have."""
    keys = cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('p', 'u') ORDER BY contype, conname",
        (table,),
    ).fetchall()
    indexes = cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "ORDER BY i.relname",
        (table,),
    ).fetchall()
    return keys, indexes


class _Messages:
    """``profiles_eventmessage`` while the preload fills it, in one transaction of its own: its keys
    and indexes dropped, the table emptied (the ids it held put back), the ids copied in chunks with
    ``FREEZE``, then the keys and indexes built again once, with their names, and the commit."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.cursor = conn.cursor()
        self.cursor.execute("SET maintenance_work_mem = '1GB'")  # one sort of all the ids at the end
        self.keys, self.indexes = _structure(self.cursor, "profiles_eventmessage")
        for name, _ in self.indexes:
            self.cursor.execute(f"DROP INDEX {_quoted(name)}")
        for name, _ in self.keys:
            self.cursor.execute(f"ALTER TABLE profiles_eventmessage DROP CONSTRAINT {_quoted(name)}")
        self.cursor.execute("CREATE TEMPORARY TABLE kept_messages AS SELECT * FROM profiles_eventmessage")
        self.cursor.execute("TRUNCATE profiles_eventmessage")
        self.cursor.execute("INSERT INTO profiles_eventmessage SELECT * FROM kept_messages")
        self.cursor.execute("DROP TABLE kept_messages")

    def copy(self, data: str) -> None:
        with self.cursor.copy(
            'COPY profiles_eventmessage (id, message_id, "timestamp") FROM STDIN WITH (FREEZE)'
        ) as copy:
            copy.write(data)

    def rebuild(self) -> None:
        for name, definition in self.keys:
            self.cursor.execute(f"ALTER TABLE profiles_eventmessage ADD CONSTRAINT {_quoted(name)} {definition}")
        for _, create in self.indexes:
            self.cursor.execute(create)
        self.conn.commit()


def _reserve(cursor: psycopg.Cursor, table: str, count: int) -> int:
    """The first of ``count`` ids taken from ``table``'s id sequence in one step."""
    sequence = cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]  # type: ignore[index]
    first = cursor.execute(f"SELECT nextval('{sequence}')").fetchone()[0]  # type: ignore[index]
    cursor.execute("SELECT setval(%s, %s)", (sequence, first + count))
    return int(first)


def _clear_months(cursor: psycopg.Cursor, starts: Sequence[datetime]) -> None:
    """Make way for the months about to be loaded, before any is: the partition of one of them is
    dropped, the events it held (the shop's) first kept in a plain table ``<partition>_old``, without
    keys or indexes, to be merged into the new partition. Done first and in one go, so that building
    a month never waits for a lock another one holds (dropping a partition locks the parent and, for
    its foreign key, the people)."""
    for month in starts:
        table = f"profiles_event_{month:%Y_%m}"
        if not cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:  # type: ignore[index]
            continue
        if cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:  # type: ignore[index]
            cursor.execute(f"CREATE TABLE {table}_old AS SELECT * FROM {table}")
        cursor.execute(f"DROP TABLE {table}")


def _child_name(table: str, name: str) -> str:
    """The name of a partition's share of the parent's index ``name``: ``profiles_event_2026_01_pkey``."""
    return f"{table}_{name.removeprefix('profiles_event_')}"[:63]


def _attach_month(cursor: psycopg.Cursor, month: datetime, after: datetime, keys, indexes) -> None:
    """Make the loaded table ``<partition>_load`` the month's partition: the rows of the month's
    former partition (kept by ``_clear_months`` in ``<partition>_old``) moved in, the parent's
    keys and indexes built once on the whole month (the attach then takes them as the partition's
    share of the parent's instead of building its own), a CHECK of the bounds so that the attach
    need not scan the rows, and the attach."""
    table = f"profiles_event_{month:%Y_%m}"
    load = f"{table}_load"
    if cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{table}_old",)).fetchone()[0]:  # type: ignore[index]
        # the columns in the same order: both were made like the parent
        cursor.execute(f"INSERT INTO {load} SELECT * FROM {table}_old")
        cursor.execute(f"DROP TABLE {table}_old")
    for name, definition in keys:
        cursor.execute(f"ALTER TABLE {load} ADD CONSTRAINT {_quoted(_child_name(table, name))} {definition}")
    for name, create in indexes:
        on_parent = create.split(" USING ", 1)[1]
        cursor.execute(f"CREATE INDEX {_quoted(_child_name(table, name))} ON {load} USING {on_parent}")
    bounds = f"FROM ('{month.isoformat()}') TO ('{after.isoformat()}')"
    cursor.execute(
        f"ALTER TABLE {load} ADD CONSTRAINT {table}_bounds "
        f"CHECK (\"timestamp\" >= '{month.isoformat()}' AND \"timestamp\" < '{after.isoformat()}')"
    )
    cursor.execute(f"ALTER TABLE {load} RENAME TO {table}")
    cursor.execute(f"ALTER TABLE profiles_event ATTACH PARTITION {table} FOR VALUES {bounds}")
    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_bounds")


def preload(
    db_url: str,
    events: int,
    items: Sequence[str],
    existing_people: int = 0,
    months: int = 24,
    seed: int = 11,
    chunk: int = CHUNK,
    progress: Callable[[str], None] = print,
    builders_count: int = 2,
) -> Preloaded:
    """Load ``events`` events into the partitioned log of the database of ``db_url``, month by month.

    Each month is written to a table of its own, ``LIKE`` the parent and without any index, with
    ``COPY … FREEZE`` in the transaction that created it (the rows written frozen and visible to all,
    as a vacuum would leave them); then it gets the parent's keys and indexes, built once over the
    month instead of grown row by row, and is attached as the month's partition (an existing
    partition of that month, the shop's own events, is merged in first). ``profiles_eventmessage``
    is filled the same way: its keys and indexes dropped, the ids copied, the keys built again.

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
    span = months * 30.44 * DAY
    t0 = now - span
    starts = _month_starts(t0, now)
    # How many events each month gets: the density's mass over the part of the span it covers.
    edges = np.clip((np.asarray([s.timestamp() for s in starts]) - t0) / span, 0.0, 1.0)
    mass = np.diff(_share(edges))
    per_month = rng.multinomial(events, mass / mass.sum())
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url) as side, conn.cursor() as cursor:
        for connection in (conn, side):
            try:
                connection.execute("SET session_replication_role = replica")
            except psycopg.errors.InsufficientPrivilege:
                connection.rollback()
        cursor.execute("SET maintenance_work_mem = '256MB'")
        first = cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM profiles_person").fetchone()[0]  # type: ignore[index]
        first = max(first, existing_people + 1)
        for start in range(0, new_people, chunk):
            ids = range(first + start, first + min(new_people, start + chunk))
            with cursor.copy("COPY profiles_person (id, traits, created_at, updated_at) FROM STDIN") as copy:
                copy.write("".join(f"{k}\t{{}}\t{received}\t{received}\n" for k in ids))
            with cursor.copy("COPY profiles_identity (person_id, kind, value, created_at) FROM STDIN") as copy:
                copy.write("".join(f"{k}\tuser_id\tlog-u{k}\t{received}\n" for k in ids))
        cursor.execute("SELECT setval(pg_get_serial_sequence('profiles_person', 'id'), %s)", (first + new_people - 1,))
        first_event = _reserve(cursor, "profiles_event", events)
        first_message = _reserve(cursor, "profiles_eventmessage", events)
        keys, indexes = _structure(cursor, "profiles_event")
        _clear_months(cursor, starts[:-1])
        conn.commit()
        messages = _Messages(side)
        progress(f"  preload: {new_people:,} people, {time.perf_counter() - started:.0f} s")
        # The people an event may be of: the bench's (1..existing) and the new ones.
        pool = np.concatenate([np.arange(1, existing_people + 1), np.arange(first, first + new_people)]).astype(
            np.int64
        )
        done = 0
        local = threading.local()
        opened: list[psycopg.Connection] = []

        def attach(month: datetime, after: datetime, count: int) -> None:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(db_url)
                local.conn.execute("SET maintenance_work_mem = '256MB'")
                opened.append(local.conn)
            began = time.perf_counter()
            with local.conn.cursor() as builder:
                _attach_month(builder, month, after, keys, indexes)
            local.conn.commit()
            progress(
                f"  preload: month {month:%Y-%m} ({count:,} events) indexed and attached"
                f" in {time.perf_counter() - began:.0f} s"
            )

        builders = ThreadPoolExecutor(max_workers=builders_count)
        building = []
        for m, (month, after, count) in enumerate(zip(starts[:-1], starts[1:], per_month.tolist(), strict=True)):
            table = f"profiles_event_{month:%Y_%m}_load"
            cursor.execute(f"CREATE TABLE {table} (LIKE profiles_event INCLUDING DEFAULTS)")
            for offset in range(0, count, chunk):
                n = min(chunk, count - offset)
                person = pool[rng.integers(0, pool.size, n)]
                kind = rng.choice(len(KINDS), n, p=shares / shares.sum())
                rank = np.minimum(rng.zipf(1.3, n) - 1, len(item_ids) - 1)
                item = np.where(with_item[kind], item_ids[item_order[rank]], "")
                when = _timestamps(rng, n, t0, span, float(edges[m]), float(edges[m + 1]))
                stamps = _stamps(when)
                price = np.round(np.exp(rng.normal(3.3, 0.8, n)), 2)
                lines = []
                for k, (p, kd, it, ts, pr) in enumerate(
                    zip(person.tolist(), kind.tolist(), item.tolist(), stamps, price.tolist(), strict=True)
                ):
                    number = done + k
                    if kd == 2:  # a purchase: quantity, price, order
                        tail = f"1\t{pr:.2f}\tlog-o{number}"
                    elif with_item[kd]:
                        tail = "1\t\\N\t"
                    else:
                        tail = "\\N\t\\N\t"
                    lines.append(
                        f"{first_event + number}\tlog-{number}\t0\t{p}\t{kind_names[kd]}\t{event_names[kd]}\t{it}\t"
                        f"{tail}\t{{}}\t{{}}\t{ts}\t{received}\n"
                    )
                with cursor.copy(f"COPY {table} ({EVENT_COLUMNS}) FROM STDIN WITH (FREEZE)") as copy:
                    copy.write("".join(lines))
                messages.copy(
                    "".join(f"{first_message + done + k}\tlog-{done + k}\t{ts}\n" for k, ts in enumerate(stamps))
                )
                done += n
                elapsed = time.perf_counter() - started
                progress(
                    f"  preload: {done:,} / {events:,} events ({done / events:.0%}), {elapsed:.0f} s,"
                    f" {done / elapsed:,.0f} events/s; month {month:%Y-%m}"
                )
            conn.commit()
            # Its keys and indexes are built on another connection while the next month is copied.
            building.append(builders.submit(attach, month, after, count))
        built = time.perf_counter()
        messages.rebuild()
        progress(f"  preload: message ids indexed in {time.perf_counter() - built:.0f} s")
        for future in building:
            future.result()
        builders.shutdown()
        for opened_conn in opened:
            opened_conn.close()
    copied = time.perf_counter() - started
    with psycopg.connect(db_url, autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute("VACUUM profiles_event, profiles_eventmessage, profiles_person, profiles_identity")
        progress(f"  preload: VACUUM {time.perf_counter() - began:.0f} s")
        conn.execute("ANALYZE profiles_event, profiles_eventmessage, profiles_person, profiles_identity")
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
    """Inside Django's environment, on the database of ``DATABASE_URL``: the preload, then a summary line."""
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


# --- a kept database, preloaded once and measured later ------------------------------------------


def database_url(base_url: str, name: str) -> str:
    return urlparse(base_url)._replace(path=f"/{name}").geturl()


def described(base_url: str, name: str) -> dict | None:
    """What ``preload`` wrote on database ``name`` (its comment), or None when it is not one of its."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    if row is None or not row[0] or not row[0].startswith("{"):
        return None
    return json.loads(row[0])


def preload_database(
    base_url: str, name: str, events: int, items: int, people: int, per_person: float, months: int
) -> None:
    """Create database ``name``, migrate it, load the shop of ``bench/serve.py`` (``items`` items,
    ``people`` people, ``per_person`` events each on average) and ``events`` more events over
    ``months`` months on its items and people (and people of their own); write what it holds as the
    database's comment, which ``bench/serve.py --preloaded`` and ``bench/ingest.py --preloaded`` read."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            sys.exit(f"The database {name} exists: `bench/big_log.py drop --database {name}` first.")
        conn.execute(f"CREATE DATABASE {_quoted(name)}")
    url = database_url(base_url, name)
    os.environ["DATABASE_URL"] = url
    sys.path.insert(0, str(ROOT))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    # The benchmark signs nothing that leaves the machine; the production settings still want keys.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("TRACKING_SECRET_KEY", "bench-only-tracking-secret")
    django.setup()
    from django.core.management import call_command

    from bench.serve import generate, load

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    now = time.time()
    shop = generate(items, people, per_person, now)
    load(shop, url, now)
    print(
        f"  the shop of bench/serve.py: {items:,} items, {people:,} people, {shop.event_person.shape[0]:,} events,"
        f" {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    result = run(events, [f"i{i}" for i in range(items)], existing_people=people, months=months)
    facts = {
        "events": events,
        "people": result.people,
        "months": months,
        "shop": {
            "items": items,
            "people": people,
            "events_per_person": per_person,
            "events": int(shop.event_person.shape[0]),
        },
        "now": now,
        "made": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started),
        "preload_line": result.line(),
    }
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE {_quoted(name)} IS {_literal(json.dumps(facts))}")
    print(f"kept the database {name}: {time.perf_counter() - started:.0f} s in all", flush=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def show(base_url: str, name: str) -> None:
    """What database ``name`` holds: the preload's facts, its partitions' rows (from the statistics) and size."""
    import psycopg

    facts = described(base_url, name)
    print(
        json.dumps(facts, indent=1) if facts else f"{name}: no preload facts (not made by `preload`, or not finished)"
    )
    with psycopg.connect(database_url(base_url, name), autocommit=True) as conn:
        rows, parts = conn.execute(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, count(*) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'profiles_event'::regclass"
        ).fetchone()  # type: ignore[misc]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    print(f"{name}: about {rows:,} events in {parts} partitions (statistics), {size / 2**30:.1f} GiB")


def main() -> None:
    commands = ("preload", "drop", "show")
    if len(sys.argv) > 1 and sys.argv[1] in commands:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("command", choices=commands)
        parser.add_argument("--database", required=True, help="The kept database (on the server of DATABASE_URL).")
        parser.add_argument("--events", type=int, default=50_000_000)
        parser.add_argument("--items", type=int, default=100_000, help="The shop's items (bench/serve.py --items).")
        parser.add_argument("--people", type=int, default=100_000, help="The shop's people (bench/serve.py --people).")
        parser.add_argument("--per-person", type=float, default=15.0, help="The shop's events per person (mean).")
        parser.add_argument("--months", type=int, default=24)
        args = parser.parse_args()
        base_url = os.environ.get("DATABASE_URL")
        if not base_url or not base_url.startswith("postgres"):
            sys.exit("Set DATABASE_URL to a PostgreSQL server (any database).")
        if args.command == "preload":
            preload_database(
                base_url, args.database, args.events, args.items, args.people, args.per_person, args.months
            )
        elif args.command == "show":
            show(base_url, args.database)
        else:
            import psycopg

            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {_quoted(args.database)} WITH (FORCE)")
            print(f"dropped the database {args.database}")
        return
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
    # The benchmark signs nothing that leaves the machine; the production settings still want keys.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("TRACKING_SECRET_KEY", "bench-only-tracking-secret")
    django.setup()
    run(args.events, items, args.existing_people, args.months)


if __name__ == "__main__":
    main()
