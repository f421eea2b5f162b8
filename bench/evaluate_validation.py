"""Run the engine and baselines on the validation window of Online Retail (never the test period).

History before 2011-10-09, validation on 2011-10-09..2011-11-08; events from the test period
(2011-11-09 on) are dropped before anything is fitted. Used to choose every hyperparameter:

    .venv/bin/python bench/evaluate_validation.py /tmp/or [key=value ...]

where key=value overrides an EngineConfig field (e.g. ranker_leaves=63).
"""

from __future__ import annotations

import ast
import sys
import time
from datetime import UTC, datetime

from personalization.engine.config import EngineConfig
from personalization.engine.dataset import load_interchange
from personalization.engine.evaluation import run_evaluation, split_by_cutoff

VALIDATION_CUTOFF = datetime(2011, 10, 9, tzinfo=UTC).timestamp()
TEST_CUTOFF = datetime(2011, 11, 9, tzinfo=UTC).timestamp()


def main() -> None:
    folder = sys.argv[1]
    overrides = {}
    baselines_wanted = True
    for arg in sys.argv[2:]:
        if arg == "--engine-only":
            baselines_wanted = False
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


if __name__ == "__main__":
    main()
