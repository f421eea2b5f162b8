"""Serving latency through the whole stack: gunicorn, PostgreSQL and Redis, on a generated shop.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/serve.py

For each catalogue size it creates (and afterwards drops) its own database, ``pe_bench_serve``,
migrates it and loads a generated shop with ``COPY``: items with categories, brands, prices,
margins, stock and publication dates; people with a country; views, carts and purchases of people
who each follow one or two themes (an item's theme fixes its category and brand), so the model has
something to learn. The engine is fitted on that log, registered and activated as
``manage.py train_engine`` would, and a ``homepage`` surface is created (default weights plus some
margin and popularity, at most 30 % of the answer from one category, 10 % exploration).

gunicorn then serves the app with the production settings (``DEBUG=False``), and a load generator
in this process asks, over keep-alive connections on loopback:

* ``GET /api/v1/surfaces/homepage/recommendations?person=<random user>`` — top 20 of the
  engine's candidates (``n_candidates``) ranked by LightGBM and re-ranked with the surface's
  weights, quotas and exploration;
* ``GET /api/v1/recommendations/popular`` — the cached popular list, through the same
  authentication, rate limit and serializer: the baseline. The ratio is the cost of personalization.

Each run starts with no hot profile in Redis (the copies of people an earlier run asked about
are deleted first), and the people asked about are drawn at random, with replacement, from all of
them; a person asked about in one run is not asked about again in the next.

Latency is measured open-loop: request *i* is due at ``t0 + i / rate`` whatever happened before,
and its latency runs from that due time to the end of the response, so a stall in the server shows
up in every request that waited behind it instead of slowing the sender down. The first run offers
100 requests/s (``--rate``) to each endpoint; then the offered rate climbs until p99 passes 50 ms or the server
no longer keeps up, and the highest rate with p99 under 50 ms is the sustained throughput.
Each row also gives the CPU each part spent per request: the load generator, the gunicorn workers,
PostgreSQL's processes of the benchmark's database and Redis (from ``/proc`` and Redis's INFO), so
a run on shared cores says where the machine's time went, not only how long requests waited.

Options: ``--items``, ``--people``, ``--events`` (per person, mean), ``--seconds`` per run,
``--rates`` (the climb), ``--workers``, ``--worker-class`` and ``--threads`` for gunicorn,
``--skip-million`` to leave out the 1,000,000-item catalogue (served with ``--million-people``
people), ``--database`` to name the scratch database, ``--keep`` to keep the database of the last
catalogue, ``--reuse MODELS_DIR`` to serve a kept one again without rebuilding it (with
``--skip-million``), ``--preload-events N`` to serve the catalogue twice, its shop alone and then
with N more events over 24 months in the partitioned log (``bench/big_log.py``), and compare,
``--preloaded NAME`` to do the same with the kept database NAME that ``bench/big_log.py preload``
made (its shop and big log; the sizes and the moment come from it, and it is not dropped).
The last line printed is one JSON object with the headline figures: latency
and sustained rate at both sizes (``p99_ms``, ``rps``, ``million_p99_ms``, ``million_rps``) and the
memory of a web worker at a million items (``worker_rss_mb``; ``worker_pss_mb``, its share of the
memory-mapped model; ``worker_own_mb``, its anonymous memory, what one more worker costs), and the
CPU per personalized request at 100 req/s (``web_cpu_ms``, ``postgres_cpu_ms``, ``redis_cpu_ms``).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.big_log import database_url, described  # noqa: E402
from bench.scratch_database import drop_database, recreate_database, wait_for  # noqa: E402

BENCH_DB = "pe_bench_serve"
DAY = 86_400.0
KINDS = ("view", "add_to_cart", "purchase")
KIND_SHARE = (0.80, 0.12, 0.08)
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL")
SURFACE_CONFIG = {
    "size": 20,
    "weights": {"relevance": 1.0, "margin": 0.2, "popularity": 0.1},
    "max_share_per_category": 0.3,
    "exploration_share": 0.1,
}
PERSONALIZED = "/api/v1/surfaces/homepage/recommendations?person={person}"
BASELINE = "/api/v1/recommendations/popular?limit=20"
P99_LIMIT_MS = 50.0


# --- the shop ------------------------------------------------------------------------------------


@dataclass
class Shop:
    n_items: int
    n_people: int
    item_theme: np.ndarray
    theme_category: np.ndarray
    theme_brand: np.ndarray
    price: np.ndarray
    margin: np.ndarray
    stock: np.ndarray
    published: np.ndarray  # epoch seconds
    person_country: np.ndarray
    event_person: np.ndarray  # 0-based person index, sorted by time
    event_item: np.ndarray
    event_kind: np.ndarray
    event_time: np.ndarray


def generate(n_items: int, n_people: int, events_per_person: float, now: float, seed: int = 7) -> Shop:
    """A shop with a planted structure: people follow themes, and popular items sell more."""
    rng = np.random.default_rng(seed)
    themes = max(10, n_items // 100)
    item_theme = rng.integers(0, themes, n_items)
    order = np.argsort(item_theme, kind="stable")
    theme_start = np.searchsorted(item_theme[order], np.arange(themes))
    theme_size = np.bincount(item_theme, minlength=themes)
    theme_category = rng.integers(0, 200, themes)
    theme_brand = rng.integers(0, 1000, themes)
    price = np.round(np.exp(rng.normal(3.3, 0.8, n_items)), 2).clip(1, 5000)
    margin = np.round(price * rng.uniform(0.05, 0.45, n_items), 2)
    stock = rng.integers(0, 200, n_items)
    stock[rng.random(n_items) < 0.05] = 0
    published = now - rng.uniform(0, 720 * DAY, n_items)

    per_person = np.maximum(1, rng.poisson(events_per_person, n_people))
    person = np.repeat(np.arange(n_people), per_person)
    n_events = person.shape[0]
    liked = rng.integers(0, themes, (n_people, 2))
    second = rng.random(n_events) < 0.3
    theme = np.where(second, liked[person, 1], liked[person, 0])
    size = np.maximum(theme_size[theme], 1)
    rank = np.minimum(rng.zipf(1.4, n_events) - 1, size - 1)
    item = order[np.minimum(theme_start[theme] + rank, n_items - 1)]
    # A tenth of all events fall on items outside the person's themes: noise the model must ignore.
    noise = rng.random(n_events) < 0.1
    item[noise] = rng.integers(0, n_items, int(noise.sum()))
    kind = rng.choice(len(KINDS), n_events, p=KIND_SHARE).astype(np.int16)
    when = now - rng.uniform(0.01, 120, n_events) ** 1.0 * DAY
    by_time = np.argsort(when, kind="stable")
    return Shop(
        n_items=n_items,
        n_people=n_people,
        item_theme=item_theme,
        theme_category=theme_category,
        theme_brand=theme_brand,
        price=price,
        margin=margin,
        stock=stock,
        published=published,
        person_country=rng.integers(0, len(COUNTRIES), n_people),
        event_person=person[by_time],
        event_item=item[by_time].astype(np.int32),
        event_kind=kind[by_time],
        event_time=when[by_time],
    )


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _copy(cursor: object, table_columns: str, lines: list[str]) -> None:
    data = "".join(lines)
    with cursor.copy(f"COPY {table_columns} FROM STDIN") as copy:  # type: ignore[attr-defined]
        for start in range(0, len(data), 8 << 20):
            copy.write(data[start : start + (8 << 20)])


def load(shop: Shop, db_url: str, now: float) -> None:
    """COPY the shop into the catalogue and profiles tables; person ``k`` gets id ``k + 1``."""
    import psycopg

    stamp = _stamp(now)
    with psycopg.connect(db_url) as conn, conn.cursor() as cursor:
        items = [
            f"i{i}\tproduct\tItem {i} of theme {t}\t\tDept {c // 20} > Category {c}\tBrand {b}\t{p:.2f}\t{m:.2f}\t{s}\t"
            f"{_stamp(pub)}\tt\t{{}}\t{stamp}\t{stamp}\n"
            for i, t, c, b, p, m, s, pub in zip(
                range(shop.n_items),
                shop.item_theme.tolist(),
                shop.theme_category[shop.item_theme].tolist(),
                shop.theme_brand[shop.item_theme].tolist(),
                shop.price.tolist(),
                shop.margin.tolist(),
                shop.stock.tolist(),
                shop.published.tolist(),
                strict=True,
            )
        ]
        _copy(
            cursor,
            "catalog_item (external_id, kind, title, description, category, brand, price, margin, stock,"
            " published_at, active, attributes, created_at, updated_at)",
            items,
        )
        del items
        people = [
            f'{k + 1}\t{{"country": "{COUNTRIES[c]}"}}\t{stamp}\t{stamp}\n'
            for k, c in enumerate(shop.person_country.tolist())
        ]
        _copy(cursor, "profiles_person (id, traits, created_at, updated_at)", people)
        cursor.execute("SELECT setval(pg_get_serial_sequence('profiles_person', 'id'), %s)", (shop.n_people,))
        identities = [f"{k + 1}\tuser_id\tu{k}\t{stamp}\n" for k in range(shop.n_people)]
        _copy(cursor, "profiles_identity (person_id, kind, value, created_at)", identities)
        events = [
            f"bench-{n}\t0\t{p + 1}\t{KINDS[k]}\t{KINDS[k]}\ti{i}\t1\t\\N\t\t{{}}\t{{}}\t{_stamp(t)}\t{stamp}\n"
            for n, (p, i, k, t) in enumerate(
                zip(
                    shop.event_person.tolist(),
                    shop.event_item.tolist(),
                    shop.event_kind.tolist(),
                    shop.event_time.tolist(),
                    strict=True,
                )
            )
        ]
        _copy(
            cursor,
            "profiles_event (message_id, position, person_id, kind, name, item_id, quantity, price, order_id,"
            " properties, context, timestamp, received_at)",
            events,
        )
        conn.commit()
    # Freshly copied rows make their first readers set hint bits (writing the pages) and leave the
    # visibility map empty; a database in service has had those done long ago, so do them now,
    # before any request is timed.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def dataset_of(shop: Shop) -> object:
    """The same shop as the engine's dataset (what ``export_interchange`` + ``load_interchange`` give)."""
    from personalization.engine.dataset import Catalogue, Dataset, EventLog, event_weight

    n = shop.event_person.shape[0]
    weights = np.asarray([event_weight(k) for k in KINDS], dtype=np.float32)
    texts = [
        f"Item {i} of theme {t} Dept {c // 20} > Category {c} Brand {b}"
        for i, t, c, b in zip(
            range(shop.n_items),
            shop.item_theme.tolist(),
            shop.theme_category[shop.item_theme].tolist(),
            shop.theme_brand[shop.item_theme].tolist(),
            strict=True,
        )
    ]
    return Dataset(
        user_ids=[str(k + 1) for k in range(shop.n_people)],
        catalogue=Catalogue(
            item_ids=[f"i{i}" for i in range(shop.n_items)], texts=texts, price=shop.price.astype(np.float32)
        ),
        events=EventLog(
            user=shop.event_person.astype(np.int32),
            item=shop.event_item,
            time=shop.event_time,
            weight=weights[shop.event_kind],
            quantity=np.ones(n, dtype=np.float32),
            session=shop.event_person.astype(np.int64) * 1000 + (shop.event_time // DAY).astype(np.int64) % 1000,
            event_type=shop.event_kind,
        ),
        event_types=list(KINDS),
        has_timestamps=True,
        segment_names=list(COUNTRIES),
        user_segment=shop.person_country.astype(np.int32),
    )


def prepare(args: argparse.Namespace) -> None:
    """Inside the benchmark's environment: migrate, load, train, activate, create the surface, print a key."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command

    from personalization import registry
    from personalization.baseline import POPULAR_CACHE_KEY
    from personalization.engine.config import EngineConfig
    from personalization.engine.engine import Engine
    from personalization.models import ApiKey, KeyScope, ModelVersion, VersionStatus
    from personalization.surfaces import create_surface

    started = time.perf_counter()
    now = args.now or time.time()
    shop = generate(args.items, args.people, args.events, now)
    n_events = shop.event_person.shape[0]
    print(f"  generated {args.items:,} items, {args.people:,} people, {n_events:,} events", flush=True)
    if not args.on_preloaded:  # else the kept database holds this very shop already (bench/big_log.py)
        call_command("migrate", verbosity=0)
        load(shop, os.environ["DATABASE_URL"], now)
    if args.preload_events and not args.on_preloaded:
        # A log as two years of a shop leave it, beside the shop's own recent events (bench/big_log.py).
        from bench.big_log import run as preload_log

        preload_log(args.preload_events, [f"i{i}" for i in range(args.items)], existing_people=args.people)
    loaded = time.perf_counter()
    print(f"  loaded with COPY in {loaded - started:.0f} s", flush=True)

    dataset = dataset_of(shop)
    fit_cpu = time.process_time()
    engine = Engine.fit(dataset, EngineConfig(training_windows=1, horizon_days=20.0), as_of=now)  # type: ignore[arg-type]
    fit_cpu = time.process_time() - fit_cpu
    version = ModelVersion.objects.create(status=VersionStatus.READY, requested_by="bench")
    folder = Path(settings.MODEL_STORAGE_DIR) / f"v{version.pk}"
    engine.save(folder)
    fitted = time.perf_counter()
    ModelVersion.objects.filter(pk=version.pk).update(
        artifact_dir=folder.name,
        training={"events": int(shop.event_person.shape[0]), "seconds": round(fitted - loaded, 1)},
    )
    version.refresh_from_db()
    cache.delete(POPULAR_CACHE_KEY)
    registry.forget_loaded_engine()
    registry.activate(version, by="bench")
    print(
        f"  engine fitted in {fitted - loaded:.0f} s (retrieval {engine.sources.retrieval.kind},"
        f" EASE {'on' if engine.sources.ease is not None else 'off'}; CPU {fit_cpu:.0f} s in all threads)",
        flush=True,
    )
    stages = {**engine.timings, **{f"  {k}": v for k, v in engine.sources.timings.items()}}
    print("  fit stages (s, wall): " + ", ".join(f"{k.strip()} {v:.1f}" for k, v in stages.items()), flush=True)
    from personalization.models import Surface

    if not Surface.objects.filter(key="homepage").exists():  # a kept database has it from an earlier run
        create_surface("homepage", "Homepage", SURFACE_CONFIG, by="bench")
    # The shop's backend asks for a person by user id: that needs the secret key (the ingest key may
    # only ask for the visitor in front of it, docs/security.md).
    print("KEY", ApiKey.issue("bench", KeyScope.SECRET)[1], flush=True)


# --- the load generator ---------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    offered: float
    seconds: float
    latencies_ms: np.ndarray
    errors: int
    achieved: float
    client_cpu_ms: float  # the load generator's own CPU per request (this process, all threads)
    server_cpu_ms: dict[str, float] = field(default_factory=dict)  # the server side's CPU per request, by part

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")


class CpuMeter:
    """CPU seconds spent on the server's side: the gunicorn workers, PostgreSQL's processes serving the
    benchmark's database, and Redis (its own account, from INFO). Read before and after a run, the
    difference per request says where the machine's two cores went, which latency alone cannot."""

    def __init__(self, server_pid: int, database: str) -> None:
        import redis

        self.server_pid, self.database = server_pid, database
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.tick = os.sysconf("SC_CLK_TCK")

    def _cpu(self, pid: str) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone between the listing and the read
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def read(self) -> dict[str, float]:
        workers = Path(f"/proc/{self.server_pid}/task/{self.server_pid}/children").read_text().split()
        backends = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if command.startswith(b"postgres: ") and f" {self.database} ".encode() in command:
                    backends.append(entry.name)
        info = self.redis.info("cpu")
        return {
            "web": sum(self._cpu(pid) for pid in workers),
            "postgres": sum(self._cpu(pid) for pid in backends),
            "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        }


def open_loop(
    port: int,
    key: str,
    paths: list[str],
    rate: float,
    seconds: float,
    connections: int,
    label: str,
    meter: CpuMeter | None = None,
) -> Run:
    """Request ``i`` is due at ``t0 + i / rate``; its latency counts from then, not from when it went out."""
    total = int(rate * seconds)
    latencies = np.full(total, np.nan)
    status_errors = [0]
    lock = threading.Lock()
    next_index = [0]
    headers = {"Authorization": f"Bearer {key}", "Connection": "keep-alive"}
    t0 = time.perf_counter() + 0.2
    cpu0 = time.process_time()
    server0 = meter.read() if meter else {}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                conn.close()
                return
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                conn.request("GET", paths[i % len(paths)], headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                ok = False
            latencies[i] = (time.perf_counter() - due) * 1000
            if not ok:
                with lock:
                    status_errors[0] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    client_cpu = (time.process_time() - cpu0) * 1000 / max(total, 1)
    server = {}
    if meter:
        server = {part: (spent - server0[part]) * 1000 / max(total, 1) for part, spent in meter.read().items()}
    done = latencies[np.isfinite(latencies)]
    return Run(label, rate, seconds, done, status_errors[0], done.size / elapsed, client_cpu, server)


def warm(port: int, key: str, paths: list[str], count: int) -> None:
    """Load the engine and build the catalogue arrays in every worker before measuring."""
    headers = {"Authorization": f"Bearer {key}"}

    def client(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for path in share:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
            if response.getheader("Connection", "").lower() == "close":
                conn.close()

    threads = [threading.Thread(target=client, args=(paths[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- orchestration --------------------------------------------------------------------------------


def row(run: Run, baseline: Run | None = None) -> str:
    ratio = f"{run.pct(99) / baseline.pct(99):.2f}" if baseline is not None else "–"
    return (
        f"| {run.label} | {run.offered:.0f} | {run.achieved:.0f} | {run.pct(50):.1f} | {run.pct(95):.1f} |"
        f" {run.pct(99):.1f} | {run.latencies_ms.max():.1f} | {run.errors} | {ratio} | {run.client_cpu_ms:.2f} |"
        + "".join(f" {run.server_cpu_ms.get(part, float('nan')):.2f} |" for part in ("web", "postgres", "redis"))
    )


HEADER = (
    "| endpoint | offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors | p99 vs baseline"
    " | load generator CPU ms/req | web workers CPU ms/req | PostgreSQL CPU ms/req | Redis CPU ms/req |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


class Visitors:
    """Request paths handed out in order, each run going on where the last stopped: a person asked
    about in one run is not asked about again in the next, so no run replays warm caches (the hot
    profile) of an earlier one. People were drawn at random with replacement; some come back."""

    def __init__(self, paths: list[str]) -> None:
        self.paths, self.at = paths, 0

    def next(self, count: int) -> list[str]:
        taken = [self.paths[(self.at + k) % len(self.paths)] for k in range(count)]
        self.at += count
        return taken


def climb(
    port: int,
    key: str,
    visitors: Visitors,
    rates: list[float],
    seconds: float,
    connections: int,
    label: str,
    meter: CpuMeter | None = None,
) -> tuple[float, list[Run]]:
    """The highest offered rate served in full with p99 under the limit."""
    best, runs = 0.0, []
    for rate in rates:
        paths = visitors.next(int(rate * seconds))
        run = open_loop(port, key, paths, rate, seconds, connections, f"{label} (climb)", meter)
        runs.append(run)
        print(row(run), flush=True)
        kept_up = run.achieved >= 0.95 * rate and run.errors == 0
        if run.pct(99) < P99_LIMIT_MS and kept_up:
            best = rate
        else:
            break
    return best, runs


def issue_key() -> None:
    """Inside the benchmark's environment, on a kept database: print a fresh API key."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    django.setup()
    from personalization.models import ApiKey, KeyScope

    print("KEY", ApiKey.issue("bench", KeyScope.SECRET)[1], flush=True)


def worker_memory(server_pid: int) -> dict[str, float]:
    """Resident and proportional memory (MB) of each gunicorn worker, the largest of them.

    RSS counts every page a worker maps, shared or not: the model's memory-mapped arrays count in
    full in each worker although the machine holds them once. PSS divides each shared page among
    the processes that map it, so the workers' PSS add up to what they cost the machine together."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    rss, pss, own = [], [], []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        rss.append(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024)
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        pss.append(next(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) / 1024)
        # Anonymous: the worker's own memory, what one more worker adds to the machine.
        own.append(next(int(line.split()[1]) for line in rollup if line.startswith("Anonymous:")) / 1024)
    return {
        "worker_rss_mb": round(max(rss), 1) if rss else float("nan"),
        "worker_pss_mb": round(max(pss), 1) if pss else float("nan"),
        "worker_own_mb": round(max(own), 1) if own else float("nan"),
        "workers_pss_total_mb": round(sum(pss), 1),
    }


def forget_hot_profiles() -> None:
    """Every run starts with no hot profile in Redis: copies an earlier run left (the same people,
    on a reused shop) would make this run's people returning visitors."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    batch: list[bytes] = []
    for key in client.scan_iter(match="*:hot:*", count=10_000):
        batch.append(key)
        if len(batch) == 1_000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def bench_catalogue(
    args: argparse.Namespace,
    base_url: str,
    items: int,
    people: int,
    climb_too: bool,
    preload: int = 0,
    now: float = 0.0,
    kept: str = "",
) -> dict:
    reuse = bool(args.reuse)
    if kept:
        # The shop and its big log in the database `bench/big_log.py preload` made: fitted here.
        db_url = database_url(base_url, kept)
        storage = tempfile.mkdtemp(prefix="pe-bench-serve-models-")
    elif reuse:
        # A shop kept by an earlier --keep run: same database, same model artifacts.
        db_url = base_url.rsplit("/", 1)[0] + f"/{args.database}"
        storage = args.reuse
    else:
        db_url = recreate_database(base_url, args.database)
        storage = tempfile.mkdtemp(prefix="pe-bench-serve-models-")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "personalization.settings",
        "DEBUG": "False",
        "SECRET_KEY": "bench-only-secret",
        "TRACKING_SECRET_KEY": "bench-only-tracking-secret",
        "HTTPS": "False",
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_RATE_LIMIT": "10000000/min",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        "MODEL_STORAGE_DIR": storage,
        "PYTHONPATH": str(ROOT),
    }
    log = f", {preload:,} more events preloaded in the log" if preload else ""
    where = " (kept shop)" if reuse else f" (the kept database {kept})" if kept else ""
    print(f"\n## {items:,} items, {people:,} people{where}{log}", flush=True)
    step = ["--issue-key"] if reuse else ["--prepare", "--items", str(items), "--people", str(people)]
    if preload and not reuse and not kept:
        step += ["--preload-events", str(preload)]
    if kept:
        step += ["--on-preloaded"]
    if now:
        step += ["--now", repr(now)]
    prepared = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *step, "--events", str(args.events)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prepared.stdout is not None
    lines = []
    for line in prepared.stdout:  # progress as it comes (a big log takes a while)
        lines.append(line.rstrip("\n"))
        if not line.startswith("KEY "):
            print(line, end="", flush=True)
    if prepared.wait() != 0:
        sys.exit("Preparing the benchmark database failed.")
    key = next(line.split(" ", 1)[1] for line in lines if line.startswith("KEY "))

    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "personalization.wsgi",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--timeout",
        "600",
        "--log-level",
        "warning",
        # The workers' heartbeat files: on a disk-backed /tmp a slow write stalls a worker mid-run.
        "--worker-tmp-dir",
        "/dev/shm",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    forget_hot_profiles()
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    rng = np.random.default_rng(3)
    personalized = [PERSONALIZED.format(person=f"u{k}") for k in rng.integers(0, people, 50_000).tolist()]
    result: dict = {"items": items, "people": people, "preload": preload}
    try:
        wait_for(args.port, seconds=600)  # workers of a loaded machine take minutes to import the app
        started = time.perf_counter()
        warm(args.port, key, personalized[-400:] + [BASELINE] * 40, 0)
        print(f"  warm-up (engine load, catalogue arrays in each worker) {time.perf_counter() - started:.0f} s")
        print()
        meter = CpuMeter(server.pid, db_url.rsplit("/", 1)[1])
        print(HEADER)
        base = open_loop(
            args.port, key, [BASELINE], args.rate, args.seconds, args.connections, "baseline: cached popular", meter
        )
        print(row(base, base), flush=True)
        visitors = Visitors(personalized)
        pers = open_loop(
            args.port,
            key,
            visitors.next(int(args.rate * args.seconds)),
            args.rate,
            args.seconds,
            args.connections,
            "personalized top-20",
            meter,
        )
        print(row(pers, base), flush=True)
        result.update(
            p50_ms=round(pers.pct(50), 2),
            p95_ms=round(pers.pct(95), 2),
            p99_ms=round(pers.pct(99), 2),
            errors=pers.errors,
            baseline_p50_ms=round(base.pct(50), 2),
            baseline_p99_ms=round(base.pct(99), 2),
        )
        rates = [float(r) for r in args.rates.split(",")]
        best, _ = climb(args.port, key, visitors, rates, args.climb_seconds, args.connections, "personalized", meter)
        result.update({f"{part}_cpu_ms": round(spent, 2) for part, spent in pers.server_cpu_ms.items()})
        result.update(rps=best)
        if climb_too:
            base_best, _ = climb(
                args.port, key, Visitors([BASELINE]), rates, args.climb_seconds, args.connections, "baseline", meter
            )
            result.update(baseline_rps=base_best)
        else:
            base_best = float("nan")
        more = " (or more: the climb stopped at its top rate)" if base_best == rates[-1] else ""
        baseline_part = f", baseline {base_best:.0f} req/s{more}" if climb_too else ""
        print(f"\nsustained with p99 < {P99_LIMIT_MS:.0f} ms: personalized {best:.0f} req/s{baseline_part}")
        memory = worker_memory(server.pid)
        result.update(memory)
        print(
            f"memory per web worker: RSS {memory['worker_rss_mb']:.0f} MB, PSS {memory['worker_pss_mb']:.0f} MB,"
            f" its own (anonymous) {memory['worker_own_mb']:.0f} MB"
            f" (all {args.workers} workers together: PSS {memory['workers_pss_total_mb']:.0f} MB)"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if os.environ.get("REDIS_URL"):
            import redis

            from personalization import queues

            redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*queues.QUEUES)
        if kept:
            subprocess.run(["rm", "-rf", storage], check=False)
        elif args.keep or reuse:
            print(f"kept the database {args.database} and the model artifacts in {storage} (--reuse {storage})")
        else:
            drop_database(base_url, args.database)
            subprocess.run(["rm", "-rf", storage], check=False)
    return result


def print_big_log(small: dict, big: dict) -> None:
    """The runs at ``--rate`` of the same shop, without and with the preloaded log, side by side."""
    print(f"\n### the same shop, its log alone and with {big['preload']:,} more events")
    print(
        "| log | p50 ms | p95 ms | p99 ms | baseline p99 ms | p99 vs shop alone | baseline p99 vs shop alone"
        " | web CPU ms/req | PostgreSQL CPU ms/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, run in (("shop alone", small), (f"+ {big['preload']:,} events", big)):
        print(
            f"| {label} | {run['p50_ms']:.1f} | {run['p95_ms']:.1f} | {run['p99_ms']:.1f}"
            f" | {run['baseline_p99_ms']:.1f}"
            f" | {run['p99_ms'] / small['p99_ms']:.2f} | {run['baseline_p99_ms'] / small['baseline_p99_ms']:.2f}"
            f" | {run.get('web_cpu_ms', float('nan')):.2f} | {run.get('postgres_cpu_ms', float('nan')):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--events", type=float, default=15.0, help="Events per person (mean).")
    parser.add_argument("--million-people", type=int, default=20_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--seconds", type=float, default=25.0, help="Length of each 100 req/s run.")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="Offered req/s of the first runs (lower it on a busy machine)."
    )
    parser.add_argument("--climb-seconds", type=float, default=15.0, help="Length of each step of the climb.")
    parser.add_argument("--rates", default="50,75,100,150,200,250,300,400")
    parser.add_argument("--connections", type=int, default=32, help="Client connections (the generator's pool).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=2, help="Threads per worker with gthread.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    parser.add_argument("--database", default=BENCH_DB, help="The benchmark's own database (created, then dropped).")
    parser.add_argument(
        "--reuse", metavar="MODELS_DIR", help="Serve the shop a --keep run left (its database and model folder)."
    )
    parser.add_argument(
        "--preload-events",
        type=int,
        default=0,
        metavar="N",
        help="Serve the catalogue twice, its shop alone and with N more events over 24 months in the log"
        " (bench/big_log.py), and compare the runs at --rate; no climb.",
    )
    parser.add_argument(
        "--preloaded",
        metavar="NAME",
        help="Serve the shop twice, alone in a scratch database and in the kept database NAME that"
        " `bench/big_log.py preload` made (the same shop, same moment, and its big log; not dropped);"
        " compare the runs at --rate; no climb. --items, --people and --events come from NAME.",
    )
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--on-preloaded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--issue-key", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args)
        return
    if args.issue_key:
        issue_key()
        return

    base_url = os.environ.get("DATABASE_URL")
    if not base_url or not base_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (any database; the bench makes its own).")
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: serving runs with Redis as cache and broker, as in production.")
    print(
        f"gunicorn {args.workers} x {args.worker_class}"
        f"{f' ({args.threads} threads)' if args.worker_class == 'gthread' else ''}; {os.cpu_count()} cores;"
        f" load average {os.getloadavg()[0]:.1f} at start"
    )
    big_log = None
    if args.preloaded:
        facts = described(base_url, args.preloaded)
        if facts is None:
            sys.exit(f"{args.preloaded}: not a database `bench/big_log.py preload` finished (see its `show`).")
        shop = facts["shop"]
        args.items, args.people, args.events = shop["items"], shop["people"], shop["events_per_person"]
        main_result = bench_catalogue(args, base_url, args.items, args.people, climb_too=False, now=facts["now"])
        big_log = bench_catalogue(
            args,
            base_url,
            args.items,
            args.people,
            climb_too=False,
            preload=facts["events"],
            now=facts["now"],
            kept=args.preloaded,
        )
        print_big_log(main_result, big_log)
    elif args.preload_events:
        main_result = bench_catalogue(args, base_url, args.items, args.people, climb_too=False)
        big_log = bench_catalogue(args, base_url, args.items, args.people, climb_too=False, preload=args.preload_events)
        print_big_log(main_result, big_log)
    else:
        main_result = bench_catalogue(args, base_url, args.items, args.people, climb_too=True)
    million = None
    if not args.skip_million:
        million = bench_catalogue(args, base_url, 1_000_000, args.million_people, climb_too=False)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    summary = {
        "p50_ms": main_result["p50_ms"],
        "p95_ms": main_result["p95_ms"],
        "p99_ms": main_result["p99_ms"],
        "rps": main_result.get("rps"),
        "baseline_p99_ms": main_result["baseline_p99_ms"],
        "baseline_rps": main_result.get("baseline_rps"),
        "items": main_result["items"],
        "million_p50_ms": million["p50_ms"] if million else None,
        "million_p99_ms": million["p99_ms"] if million else None,
        "million_baseline_p99_ms": million["baseline_p99_ms"] if million else None,
        "million_rps": million.get("rps") if million else None,
        "worker_rss_mb": million["worker_rss_mb"] if million else main_result["worker_rss_mb"],
        "worker_pss_mb": million["worker_pss_mb"] if million else main_result["worker_pss_mb"],
        "worker_own_mb": million["worker_own_mb"] if million else main_result["worker_own_mb"],
        "hundred_thousand_worker_rss_mb": main_result["worker_rss_mb"],
        **{f"{part}_cpu_ms": main_result.get(f"{part}_cpu_ms") for part in ("web", "postgres", "redis")},
        "million_web_cpu_ms": million.get("web_cpu_ms") if million else None,
    }
    if big_log:
        summary.update(
            big_log_events=big_log["preload"],
            big_log_p50_ms=big_log["p50_ms"],
            big_log_p99_ms=big_log["p99_ms"],
            big_log_baseline_p99_ms=big_log["baseline_p99_ms"],
            big_log_p99_ratio=round(big_log["p99_ms"] / main_result["p99_ms"], 3),
            big_log_p50_ratio=round(big_log["p50_ms"] / main_result["p50_ms"], 3),
            big_log_web_cpu_ms=big_log.get("web_cpu_ms"),
            big_log_postgres_cpu_ms=big_log.get("postgres_cpu_ms"),
        )
    print(json.dumps(summary))
    failed = [r for r in (main_result, million, big_log) if r and r.get("errors")]
    if failed:
        # A latency of refused requests is no latency: say so, and fail the run.
        raise SystemExit(f"{sum(r['errors'] for r in failed)} requests failed; the figures above do not count")


if __name__ == "__main__":
    main()
