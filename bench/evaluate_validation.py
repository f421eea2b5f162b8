"""Run the engine and baselines on the validation window of Online Retail (never the test period).

History before 2011-10-09, validation on 2011-10-09..2011-11-08; events from the test period
(2011-11-09 on) are dropped before anything is fitted. Used to choose every hyperparameter:

    .venv/bin/python bench/evaluate_validation.py /tmp/or [key=value ...]

where key=value overrides an EngineConfig field (e.g. ranker_leaves=63). To compare settings on
the same people, save one run's per-person NDCG@20 and compare another against it (the paired
bootstrap 95 % interval of the difference, 2,000 resamples, seed 0):

    .venv/bin/python bench/evaluate_validation.py /tmp/or --engine-only --save /tmp/as-is.npz
    .venv/bin/python bench/evaluate_validation.py /tmp/or --engine-only --compare /tmp/as-is.npz horizon_days=21
"""

from __future__ import annotations

import ast
import sys
import time
from datetime import UTC, datetime

import numpy as np

from personalization.engine.config import EngineConfig
from personalization.engine.dataset import load_interchange
from personalization.engine.evaluation import run_evaluation, split_by_cutoff
from personalization.engine.metrics import paired_bootstrap_interval

VALIDATION_CUTOFF = datetime(2011, 10, 9, tzinfo=UTC).timestamp()
TEST_CUTOFF = datetime(2011, 11, 9, tzinfo=UTC).timestamp()


def main() -> None:
    folder = sys.argv[1]
    overrides = {}
    baselines_wanted = True
    save_to = compare_with = None
    args = iter(sys.argv[2:])
    for arg in args:
        if arg == "--engine-only":
            baselines_wanted = False
            continue
        if arg == "--save":
            save_to = next(args)
            continue
        if arg == "--compare":
            compare_with = next(args)
            continue
        key, value = arg.split("=", 1)
        overrides[key] = ast.literal_eval(value)
    config = EngineConfig(**overrides)
    dataset = load_interchange(folder)
    split = split_by_cutoff(dataset, VALIDATION_CUTOFF, until=TEST_CUTOFF)
    started = time.perf_counter()
    report = run_evaluation(split, config=config, baselines=None if baselines_wanted else [], progress=print)
    print(f"{split.description}: {report.test_people} people, {report.catalogue_items} items, overrides {overrides}")
    for row in report.results:
        print(row.as_row())
    print("engine timings", {k: round(v, 1) for k, v in report.engine_timings.items()})
    print(f"wall {time.perf_counter() - started:.1f}s")
    engine = report.results[0]
    if save_to:
        np.savez(save_to, people=engine.person_ids, ndcg=engine.per_person_ndcg)
    if compare_with:
        reference = np.load(compare_with)
        if not np.array_equal(reference["people"], engine.person_ids):
            raise SystemExit(f"{compare_with} holds other people than this run")
        differences = engine.per_person_ndcg - reference["ndcg"]
        low, high = paired_bootstrap_interval(differences)
        print(
            f"engine {engine.ndcg:.4f} against {float(reference['ndcg'].mean()):.4f} in {compare_with}:"
            f" {float(differences.mean()):+.4f} ({low:+.4f} to {high:+.4f}, 95 % interval)"
        )


if __name__ == "__main__":
    main()
