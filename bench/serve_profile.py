"""Where a personalized answer's time goes, stage by stage, in one process on a kept benchmark shop.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pe_bench_serve REDIS_URL=redis://127.0.0.1:6379/12 \
        MODEL_STORAGE_DIR=<the folder bench/serve.py --keep printed> .venv/bin/python bench/serve_profile.py

``bench/serve.py --keep`` leaves its shop (database ``pe_bench_serve`` and the model folder) behind;
this script serves it through Django's request handler, without gunicorn or a network, and times
each stage of ``GET /api/v1/surfaces/homepage/recommendations`` by wrapping the functions that do
the work. Beside it, in the same run, the cached popular list (the serving benchmark's baseline)
through the same handler: the ratio is what personalization costs a request in this process.
Stages nest (``generate`` includes the HNSW ``search``), so shares do not add up to 100 %; they
are those of first visits, whose person lookup goes to the database. The same people asked about
twice more give a third row: returning visitors, whose profile the hot profile holds in Redis.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERSONALIZED = "/api/v1/surfaces/homepage/recommendations?person=u{person}"
BASELINE = "/api/v1/recommendations/popular?limit=20"


def _timed(spent: dict[str, float], owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
    os.environ.setdefault("DEBUG", "False")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("TRACKING_SECRET_KEY", "bench-only-tracking-secret")
    os.environ.setdefault("HTTPS", "False")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("API_RATE_LIMIT", "10000000/min")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.test import Client

    import personalization.api.throttling as throttling
    import personalization.engine.candidates as candidates
    import personalization.engine.collaborative as collaborative
    import personalization.engine.content as content
    import personalization.engine.ranker as ranker
    import personalization.engine.retrieval as retrieval
    import personalization.surface_serving as serving
    from personalization.models import ApiKey, KeyScope
    from profiles import services as profiles

    spent: dict[str, float] = defaultdict(float)
    stages = [
        (profiles, "recent_activity_by_key", "person, consent, events (Redis, or one query on a miss)"),
        (throttling, "_count", "rate limit (a leased slot; Redis when the lease is renewed)"),
        (serving, "serve", "serve (all below)"),
        (serving.Engine, "history_for", "history"),
        (candidates.CandidateSources, "signals", "source signals"),
        (collaborative.ALSModel, "person_vector", "  ALS person vector"),
        (content.ContentIndex, "scores", "  content scores"),
        (candidates, "score_from_neighbours", "  neighbour scores"),
        (candidates.CandidateSources, "generate", "candidate generation"),
        (retrieval.VectorIndex, "search", "  ALS retrieval (FAISS)"),
        (serving, "candidate_features", "ranking features"),
        (ranker.Ranker, "score", "LightGBM scoring"),
        (serving, "rerank", "surface re-ranking"),
    ]
    for owner, name, label in stages:
        _timed(spent, owner, name, label)

    client = Client()
    headers = {"Authorization": f"Bearer {ApiKey.issue('bench-profile', KeyScope.SECRET)[1]}"}
    rng = np.random.default_rng(5)
    people = rng.integers(0, args.people, args.requests + 100).tolist()
    for person in people[:100]:  # load the engine, build the catalogue arrays
        response = client.get(PERSONALIZED.format(person=person), headers=headers)
        if response.status_code != 200:
            sys.exit(f"{response.status_code}: {response.content[:300]!r}")
    spent.clear()

    def timed_requests(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
        wall, cpu = [], []
        for path in paths:
            started, started_cpu = time.perf_counter(), time.process_time()
            client.get(path, headers=headers)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        return np.asarray(wall) * 1000, np.asarray(cpu) * 1000

    wall, cpu = timed_requests([PERSONALIZED.format(person=p) for p in people[100:]])
    per_request = {label: seconds * 1000 / args.requests for label, seconds in spent.items()}
    base_wall, base_cpu = timed_requests([BASELINE] * args.requests)
    # The same people again: the second visit copies each profile into Redis, the third reads it there.
    timed_requests([PERSONALIZED.format(person=p) for p in people[100:]])
    hot_wall, hot_cpu = timed_requests([PERSONALIZED.format(person=p) for p in people[100:]])

    print(f"{args.requests} requests of each in one process (no network, no gunicorn)\n")
    print("| request | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms | p50 vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, w, c in (
        ("baseline: cached popular", base_wall, base_cpu),
        ("personalized, first visit (database)", wall, cpu),
        ("personalized, returning (hot profile)", hot_wall, hot_cpu),
    ):
        ratio = np.percentile(w, 50) / np.percentile(base_wall, 50)
        print(
            f"| {label} | {np.percentile(w, 50):.2f} | {np.percentile(w, 99):.2f} | {np.percentile(c, 50):.2f} |"
            f" {np.percentile(c, 99):.2f} | {ratio:.1f} |"
        )
    mean_wall = float(wall.mean())
    print(f"\n| stage of a personalized request | mean ms | share of the mean request ({mean_wall:.2f} ms) |")
    print("|---|---:|---:|")
    for _, _, label in stages:
        if label in per_request:
            print(f"| {label} | {per_request[label]:.2f} | {per_request[label] / mean_wall:.0%} |")


if __name__ == "__main__":
    main()
