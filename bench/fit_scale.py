"""Fitting and serving the engine on the serving benchmark's shop, without the web stack: time and
CPU per stage of the fit, the size of what a web process loads, and the CPU of one request.

    .venv/bin/python bench/fit_scale.py --items 1000000 --people 20000      # the million-item shop
    .venv/bin/python bench/fit_scale.py --load /tmp/model-folder           # serve a saved one again

The shop is ``bench/serve.py``'s (``generate`` and ``dataset_of``, 15 events a person on average),
fitted as that benchmark fits it (one training window of 20 days). Each stage is timed in wall
seconds and in CPU seconds of this process (all its threads): on a machine that other work shares,
CPU is the figure that does not depend on the neighbours; the load average before and after the
fit says how busy the machine was. Then the saved engine is loaded in a new
process, as a web worker loads it, and asked for ``--requests`` people's top 20 of its candidates on one
thread (``Engine.recommend``: history, source signals, candidates, features, LightGBM), with the
process's resident and proportional memory after loading and after serving.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(spent: dict[str, list[float]], owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label][0] += time.perf_counter() - wall
            spent[label][1] += time.process_time() - cpu

    setattr(owner, name, wrapper)


def memory_mb() -> dict[str, float]:
    status = Path("/proc/self/status").read_text().splitlines()
    rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
    pss = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) / 1024
    anonymous = next(int(line.split()[1]) for line in rollup if line.startswith("Anonymous:")) / 1024
    return {"rss_mb": round(rss, 1), "pss_mb": round(pss, 1), "anonymous_mb": round(anonymous, 1)}


def fit(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import personalization.engine.candidates as candidates
    import personalization.engine.engine as engine_module
    import personalization.engine.examples as examples
    from bench.serve import dataset_of, generate
    from personalization.engine.config import EngineConfig
    from personalization.engine.content import ContentIndex
    from personalization.engine.engine import Engine

    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    stages = [
        (ContentIndex, "fit", "content: TF-IDF vectors"),
        (ContentIndex, "with_neighbours", "content: neighbours of touched items"),
        (engine_module, "choose_ease", "EASE choice (off above its item limit)"),
        (candidates.ALSModel, "fit", "sources: ALS"),
        (candidates.VectorIndex, "build", "sources: retrieval index"),
        (candidates, "cosine_item_similarity", "sources: item kNN"),
        (candidates, "fit_covisitation", "sources: co-visitation"),
        (candidates, "fit_transitions", "sources: sequence"),
        (candidates.Popularity, "fit", "sources: popularity"),
        (engine_module, "build_examples", "training lists and features"),
        (engine_module, "choose_ranker", "ranker (LightGBM)"),
        (Engine, "save", "save"),
    ]
    for owner, name, label in stages:
        _timed(spent, owner, name, label)
    del examples  # imported so that build_examples is patched where the engine calls it

    now = time.time()
    shop = generate(args.items, args.people, args.events, now)
    dataset = dataset_of(shop)
    print(f"{args.items:,} items, {args.people:,} people, {shop.event_person.shape[0]:,} events", flush=True)
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    engine = Engine.fit(
        dataset,  # type: ignore[arg-type]
        EngineConfig(training_windows=1, horizon_days=20.0),
        as_of=now,
        progress=lambda message: print(f"  {message}", flush=True),
    )
    engine.save(folder)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()
    print("\n| stage of the fit | wall s | CPU s |\n|---|---:|---:|")
    for _, _, label in stages:
        if label in spent:
            print(f"| {label} | {spent[label][0]:.1f} | {spent[label][1]:.1f} |")
    print(f"| **fit and save, in all** | **{wall:.1f}** | **{cpu:.1f}** |")
    print(
        f"load average (1, 5, 15 min) before the fit {_loads(load_before)}, after {_loads(load_after)};"
        f" {os.cpu_count()} cores",
        flush=True,
    )
    return {
        "fit_seconds": round(wall, 1),
        "fit_cpu_seconds": round(cpu, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "stages": {label: [round(w, 1), round(c, 1)] for label, (w, c) in spent.items()},
    }


def _loads(loads: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.1f}" for x in loads)


def serve(folder: Path, requests: int, seed: int) -> dict[str, Any]:
    """In this (fresh) process: load as a web worker does, then serve ``requests`` people one by one."""
    from personalization.engine.engine import Engine
    from personalization.engine.history import PersonContext

    before = memory_mb()
    started = time.perf_counter()
    engine = Engine.load(folder)
    engine.ranker.compile()
    loaded_in = time.perf_counter() - started
    after_load = memory_mb()
    rng = np.random.default_rng(seed)
    n = len(engine.item_ids)
    # People of 3 to 30 events on items somebody touched before the fit (what histories are made of).
    touched = np.flatnonzero(np.asarray(engine.sources.popularity.count_all) > 0)
    people = [
        PersonContext(item_ids=engine.item_ids.take(rng.choice(touched, int(rng.integers(3, 30)))))  # type: ignore[attr-defined]
        for _ in range(requests + 50)
    ]
    for person in people[:50]:
        engine.recommend(person, k=60)
    wall, cpu = [], []
    for person in people[50:]:
        w, c = time.perf_counter(), time.process_time()
        engine.recommend(person, k=60)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    wall_ms, cpu_ms = np.asarray(wall) * 1000, np.asarray(cpu) * 1000
    result = {
        "items": n,
        "load_s": round(loaded_in, 1),
        "memory_before_load": before,
        "memory_after_load": after_load,
        "memory_after_serving": memory_mb(),
        "cpu_ms_p50": round(float(np.percentile(cpu_ms, 50)), 2),
        "cpu_ms_p99": round(float(np.percentile(cpu_ms, 99)), 2),
        "wall_ms_p50": round(float(np.percentile(wall_ms, 50)), 2),
        "wall_ms_p99": round(float(np.percentile(wall_ms, 99)), 2),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--events", type=float, default=15.0, help="Events per person (mean).")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--load", type=Path, help="Serve this saved engine folder instead of fitting one.")
    parser.add_argument("--keep", type=Path, help="Save the fitted engine here (default: a temporary folder).")
    parser.add_argument("--serve-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only:
        print(json.dumps(serve(args.serve_only, args.requests, seed=11)))
        return
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fit-scale-") as tmp:
        folder = args.load or args.keep or Path(tmp) / "model"
        if not args.load:
            summary.update(fit(args, folder))
        # A new process, as a web worker: nothing of the fit in its memory.
        served = subprocess.run(
            [sys.executable, __file__, "--serve-only", str(folder), "--requests", str(args.requests)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        result = json.loads(served.stdout.strip().splitlines()[-1])
    summary["serving"] = result
    print(
        f"\nserving on one thread, {args.requests} people of 3 to 30 touched items each: CPU p50"
        f" {result['cpu_ms_p50']:.2f} ms, p99 {result['cpu_ms_p99']:.2f} ms a request (wall p50"
        f" {result['wall_ms_p50']:.2f}, p99 {result['wall_ms_p99']:.2f}); loaded in {result['load_s']} s;"
        f" after loading RSS {result['memory_after_load']['rss_mb']:.0f} MB, of which"
        f" {result['memory_after_load']['anonymous_mb']:.0f} MB the process's own (the rest mapped files)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
