"""Recommendation quality on every shared data set, each with the protocol its README prescribes.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--only ml-100k] [--json OUT]

* Online Retail: converted with the README's cleaning, history before 2011-11-09, seen items
  allowed (people re-buy);
* MovieLens 100K: each person's last 20 % of ratings by time, seen items excluded;
* Last.fm 2K: a random 20 % of each person's artists (seed 0), seen items excluded.

Each set is converted into a temporary folder and evaluated like ``manage.py evaluate``: the
engine beside baselines tuned on a validation split carved out of the history. It prints each
report, one table of all of them, and as its last line one JSON object with, per data set, the
engine's NDCG@20, the best baseline, the ratio, the paired bootstrap 95 % interval of the NDCG
difference and the engine's fit time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a fresh clone
    sys.path.insert(0, str(ROOT))

from catalog import lastfm, movielens, online_retail  # noqa: E402
from personalization.engine.dataset import Dataset, load_interchange  # noqa: E402
from personalization.engine.evaluation import (  # noqa: E402
    EvaluationReport,
    EvaluationSplit,
    run_evaluation,
    split_by_cutoff,
    split_by_last_share,
    split_by_random_share,
)
from personalization.engine.scorecard import describe, table  # noqa: E402

K = 20


@dataclass(frozen=True)
class SharedSet:
    name: str
    source: str  # relative to the data folder
    convert: Callable[[Path, Path], object]
    split: Callable[[Dataset], EvaluationSplit]
    exclude_seen: bool
    protocol: str


SETS = (
    SharedSet(
        "online-retail",
        "online-retail/online_retail.csv.gz",
        online_retail.convert,
        lambda d: split_by_cutoff(d, datetime(2011, 11, 9, tzinfo=UTC).timestamp()),
        False,
        "--cutoff 2011-11-09 --no-exclude-seen",
    ),
    SharedSet(
        "ml-100k",
        "ml-100k",
        movielens.convert,
        lambda d: split_by_last_share(d, 0.2),
        True,
        "--holdout last:0.2 --exclude-seen",
    ),
    SharedSet(
        "lastfm-2k",
        "lastfm-2k",
        lastfm.convert,
        lambda d: split_by_random_share(d, 0.2, seed=0),
        True,
        "--holdout random:0.2 --seed 0 --exclude-seen",
    ),
)


def evaluate(shared: SharedSet, data: Path, scratch: Path) -> EvaluationReport:
    source = data / shared.source
    if not source.exists():
        raise SystemExit(f"{source} does not exist (point --data at the shared data folder)")
    folder = scratch / shared.name
    started = time.perf_counter()
    shared.convert(source, folder)
    dataset = load_interchange(folder)
    print(f"\n== {shared.name} ({shared.protocol}): converted and loaded in {time.perf_counter() - started:.1f}s")
    report = run_evaluation(
        shared.split(dataset),
        k=K,
        exclude_seen=shared.exclude_seen,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(describe(report), flush=True)
    return report


def summary(reports: dict[str, EvaluationReport]) -> dict[str, object]:
    datasets: dict[str, object] = {}
    for name, report in reports.items():
        c = report.comparison
        engine = report.results[0]
        datasets[name] = {
            "engine_ndcg": round(engine.ndcg, 4),
            "best_baseline": c.best_baseline if c else None,
            "best_ndcg": round(c.best_ndcg, 4) if c else None,
            "ratio": round(c.ratio, 4) if c and math.isfinite(c.ratio) else None,
            "ci_low": round(c.ci_low, 4) if c else None,
            "ci_high": round(c.ci_high, 4) if c else None,
            "fit_seconds": round(engine.fit_seconds, 1),
        }
    return {"datasets": datasets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--only", action="append", choices=[s.name for s in SETS], help="run only this set")
    parser.add_argument("--json", type=Path, help="also write every report in full to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    reports: dict[str, EvaluationReport] = {}
    with tempfile.TemporaryDirectory(prefix="quality-") as scratch:
        for shared in SETS:
            if args.only and shared.name not in args.only:
                continue
            reports[shared.name] = evaluate(shared, args.data, Path(scratch))
    rows = [{**row.as_row(), "model": f"{name}: {row.model}"} for name, r in reports.items() for row in r.results]
    print(f"\n== every shared data set, k={K} (fit s includes the baselines' tuning)")
    print(table(rows, K))
    for name, report in reports.items():
        c = report.comparison
        if c:
            print(
                f"{name}: engine / {c.best_baseline} = {c.ratio:.3f}x, NDCG difference 95% interval"
                f" [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
            )
    print(f"wall time {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps({n: r.as_json() for n, r in reports.items()}, indent=2) + "\n")
    print(json.dumps(summary(reports)))


if __name__ == "__main__":
    main()
