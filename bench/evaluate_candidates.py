"""How many candidates the ranker orders, chosen on each shared set's validation carve (never the test).

    .venv/bin/python bench/evaluate_candidates.py [--data ../shared/data] [--only ml-100k] [--counts 100,200,500]

For each shared data set: its protocol applied inside the history (``Protocol.validation``), one
engine fitted on the carve's history, then the carve's people ranked with each count of candidates
(``n_candidates``) by that same engine. Prints NDCG@20 per count, the difference to the largest count
with the paired bootstrap 95 % interval over the carve's people, and the CPU ``Engine.rank`` spent a
person.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.quality import SETS  # noqa: E402
from personalization.engine.config import EngineConfig  # noqa: E402
from personalization.engine.dataset import load_interchange  # noqa: E402
from personalization.engine.engine import Engine  # noqa: E402
from personalization.engine.evaluation import engine_lists, served_histories  # noqa: E402
from personalization.engine.metrics import ndcg_at_k, paired_bootstrap_interval  # noqa: E402
from personalization.engine.splits import scored_people  # noqa: E402

K = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--only", action="append", help="A data set's name (repeatable).")
    parser.add_argument("--counts", default="100,150,200,300,500")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    reference = counts[-1]
    scratch = Path(tempfile.mkdtemp(prefix="pe-candidates-"))
    for shared in SETS:
        if args.only and shared.name not in args.only:
            continue
        folder = scratch / shared.name
        shared.convert(Path(args.data) / shared.source, folder)
        carve = shared.split(load_interchange(folder))
        carve = carve.protocol.validation(carve.train)
        people, relevant, _ = scored_people(carve, shared.exclude_seen)
        config = EngineConfig()
        started = time.perf_counter()
        engine = Engine.fit(carve.train, config, as_of=carve.as_of)
        fitted = time.perf_counter() - started
        histories = served_histories(carve, people, config.half_life_days)
        scores: dict[int, np.ndarray] = {}
        cpu: dict[int, float] = {}
        for count in counts:
            started = time.process_time()
            lists = engine_lists(engine, histories, people, K, shared.exclude_seen, n_candidates=count)
            cpu[count] = (time.process_time() - started) * 1000 / max(len(lists), 1)
            scores[count] = np.asarray([ndcg_at_k(r, t, K) for r, t in zip(lists, relevant, strict=True)])
        print(
            f"\n== {shared.name}: validation carve of {people.shape[0]} people, engine fitted in {fitted:.0f} s,"
            f" ranker {engine.training_summary.get('ranker')}"
        )
        print(f"| candidates | NDCG@{K} | difference to {reference} | 95 % interval | rank CPU ms a person |")
        print("|---:|---:|---:|---|---:|")
        for count in counts:
            low, high = paired_bootstrap_interval(scores[count] - scores[reference])
            difference = scores[count].mean() - scores[reference].mean()
            print(
                f"| {count} | {scores[count].mean():.4f} | {difference:+.4f} | {low:+.4f} to {high:+.4f} |"
                f" {cpu[count]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
