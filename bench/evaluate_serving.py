"""Single-person serving latency on a generated 100,000-item catalogue: top 20 of the engine's
candidates (``n_candidates``).

A later issue needs p99 ≤ 25 ms for exactly this. The shop is generated (500 themes, people who
follow one or two of them, item titles built from theme words), the engine is fitted with one
training window to keep the run short, saved and loaded back as a web process would, and then
``Engine.recommend`` is timed per request on one thread, with the stage breakdown of the slowest.

    PYTHONPATH=. .venv/bin/python bench/evaluate_serving.py [--items 100000] [--people 30000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from personalization.engine.config import EngineConfig
from personalization.engine.dataset import Catalogue, Dataset, EventLog
from personalization.engine.engine import Engine
from personalization.engine.history import PersonContext

DAY = 86_400.0
WORDS = [f"w{i}" for i in range(3000)]


def generate(n_items: int, n_people: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    themes = 500
    item_theme = rng.integers(0, themes, n_items)
    theme_items = [np.flatnonzero(item_theme == t) for t in range(themes)]
    theme_words = rng.integers(0, len(WORDS), (themes, 4))
    texts = [
        " ".join([WORDS[w] for w in theme_words[t]] + [WORDS[int(x)] for x in rng.integers(0, len(WORDS), 3)])
        for t in item_theme
    ]
    users, items, times = [], [], []
    for person in range(n_people):
        liked = rng.integers(0, themes, int(rng.integers(1, 3)))
        n = int(rng.integers(5, 40))
        pool = np.concatenate([theme_items[t] for t in liked])
        # Popular items within a theme sell more: a Zipf-like pick.
        picks = pool[np.minimum(rng.zipf(1.3, n) - 1, pool.shape[0] - 1)]
        users.append(np.full(n, person))
        items.append(picks)
        times.append(np.sort(rng.uniform(0, 120 * DAY, n)))
    user = np.concatenate(users).astype(np.int32)
    time_ = np.concatenate(times)
    order = np.argsort(time_, kind="stable")
    n_events = user.shape[0]
    log = EventLog(
        user=user[order],
        item=np.concatenate(items).astype(np.int32)[order],
        time=time_[order],
        weight=np.ones(n_events, dtype=np.float32),
        quantity=np.ones(n_events, dtype=np.float32),
        session=(user[order].astype(np.int64) * 1000 + (time_[order] // DAY).astype(np.int64)),
        event_type=np.zeros(n_events, dtype=np.int16),
    )
    return Dataset(
        user_ids=[f"p{i}" for i in range(n_people)],
        catalogue=Catalogue(
            item_ids=[f"i{i}" for i in range(n_items)], texts=texts, price=np.full(n_items, 9.99, dtype=np.float32)
        ),
        events=log,
        event_types=["purchase"],
        has_timestamps=True,
        segment_names=["A", "B", "C"],
        user_segment=rng.integers(0, 3, n_people).astype(np.int32),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=30_000)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = generate(args.items, args.people)
    print(f"generated {len(dataset.events)} events, {args.people} people, {args.items} items")
    config = EngineConfig(training_windows=1, horizon_days=20.0)
    engine = Engine.fit(dataset, config, progress=print)
    print(
        f"fit {time.perf_counter() - started:.0f}s; retrieval {engine.sources.retrieval.kind};"
        f" EASE {'on' if engine.sources.ease is not None else 'off'}; {engine.training_summary}"
    )
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine.load(engine.save(folder))

    rng = np.random.default_rng(1)
    events = dataset.events
    by_user = np.argsort(events.user, kind="stable")
    starts = np.searchsorted(events.user[by_user], np.arange(args.people))
    ends = np.searchsorted(events.user[by_user], np.arange(args.people), side="right")
    requests = []
    for person in rng.integers(0, args.people, args.requests):
        rows = by_user[starts[person] : ends[person]]
        requests.append(
            PersonContext(
                item_ids=[engine.item_ids[i] for i in events.item[rows]],
                timestamps=events.time[rows].tolist(),
                segment="B",
                now=float(events.time.max()) + DAY,
            )
        )
    for person in requests[:20]:  # warm caches and lazy imports
        engine.recommend(person, k=20)
    latencies = []
    for person in requests:
        began = time.perf_counter()
        engine.recommend(person, k=20)
        latencies.append((time.perf_counter() - began) * 1000)
    ms = np.asarray(latencies)
    print(
        f"recommend top-20 of 500 over {args.items} items, one thread, {len(ms)} requests:"
        f" p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms,"
        f" max {ms.max():.1f} ms"
    )
    # Where the time goes, on one median request.
    from personalization.engine.features import candidate_features

    person = requests[int(np.argsort(ms)[len(ms) // 2])]
    history = engine.history_for(person)
    marks = [time.perf_counter()]
    signals = engine.sources.signals(history, engine.config)
    marks.append(time.perf_counter())
    candidates = engine.sources.generate(history, signals, engine.config, 500)
    marks.append(time.perf_counter())
    features = candidate_features(engine.sources, history, signals, candidates, engine.item_price)
    marks.append(time.perf_counter())
    engine.ranker.score(features)
    marks.append(time.perf_counter())
    stages = ("signals", "candidates", "features", "ranker")
    print(
        "median request stages (ms):",
        {s: round((b - a) * 1000, 2) for s, a, b in zip(stages, marks, marks[1:], strict=False)},
    )


if __name__ == "__main__":
    main()
