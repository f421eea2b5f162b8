"""``manage.py evaluate DIR``: the engine beside tuned baselines on an interchange folder, one table.

A thin wrapper: the splits, the tuning, the fitting and the metrics live in ``personalization.engine``
(docs/evaluation.md says what each protocol is and why).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

if TYPE_CHECKING:
    from personalization.engine.dataset import Dataset
    from personalization.engine.evaluation import EvaluationSplit


class Command(BaseCommand):
    help = "Evaluate the recommendation engine against tuned baselines on a dataset in the interchange format."
    requires_system_checks: list[str] = []  # reads files only; needs no database or URLs

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="interchange folder: events.csv, optional items.csv and users.csv")
        split = parser.add_mutually_exclusive_group()
        split.add_argument("--cutoff", help="YYYY-MM-DD: history before this day, test from it on")
        split.add_argument("--test-file", help="a test set in the events.csv layout; DIR's events are the history")
        split.add_argument(
            "--holdout",
            help="last:SHARE (each person's last SHARE of events by time) or random:SHARE (a seeded random"
            " SHARE of the items of each person with 5+ items), e.g. last:0.2",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of --holdout random and the bootstrap")
        parser.add_argument(
            "--exclude-seen",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="leave the items each person already has out of every list (default: when fewer than 5%% of"
            " the history's interactions repeat an item)",
        )
        parser.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="change an engine setting (an EngineConfig field), e.g. --set ranker_trees=100; repeatable",
        )
        parser.add_argument("--k", type=int, default=20, help="length of the recommended lists (default 20)")
        parser.add_argument("--json", dest="json_path", help="also write the results as JSON to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        from personalization.engine.config import EngineConfig
        from personalization.engine.dataset import load_interchange
        from personalization.engine.evaluation import run_evaluation
        from personalization.engine.overrides import apply_overrides
        from personalization.engine.scorecard import describe

        folder = Path(options["directory"])
        if not (folder / "events.csv").exists():
            raise CommandError(f"{folder} has no events.csv")
        k = options["k"]
        if k <= 0:
            raise CommandError("--k must be positive")
        try:
            config = apply_overrides(EngineConfig(), options["overrides"])
        except ValueError as exc:
            raise CommandError(f"--set: {exc}") from exc
        started = time.perf_counter()
        dataset = load_interchange(folder)
        load_seconds = time.perf_counter() - started
        split = make_split(dataset, options)
        if not split.test:
            raise CommandError(f"no test person with history under this split ({split.description})")

        self.stdout.write(
            f"{folder}: {len(dataset.events)} events, {dataset.n_users} people, {dataset.n_items} items"
            f" ({dataset.bad_rows} unusable rows skipped;"
            f" {'timestamps' if dataset.has_timestamps else 'no timestamps'}); loaded in {load_seconds:.1f}s"
        )
        if options["overrides"]:
            self.stdout.write(f"engine settings changed: {', '.join(options['overrides'])}")
        report = run_evaluation(
            split,
            k=k,
            config=config,
            exclude_seen=options["exclude_seen"],
            seed=options["seed"],
            progress=lambda message: self.stderr.write(message),
        )
        self.stdout.write(describe(report))
        self.stdout.write(f"total wall time: {time.perf_counter() - started:.1f}s")
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")


def make_split(dataset: Dataset, options: dict[str, Any]) -> EvaluationSplit:
    from personalization.engine.dataset import read_event_pairs
    from personalization.engine.evaluation import (
        default_split,
        split_by_cutoff,
        split_by_last_share,
        split_by_random_share,
        split_by_test_pairs,
    )

    if options.get("cutoff"):
        if not dataset.has_timestamps:
            raise CommandError("--cutoff needs timestamps on every event; this dataset has none")
        try:
            day = datetime.strptime(options["cutoff"], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise CommandError(f"--cutoff must look like 2011-11-09, got {options['cutoff']!r}") from exc
        return split_by_cutoff(dataset, day.timestamp())
    if options.get("test_file"):
        test_path = Path(options["test_file"])
        if not test_path.exists():
            raise CommandError(f"{test_path} does not exist")
        return split_by_test_pairs(dataset, read_event_pairs(test_path))
    if options.get("holdout"):
        kind, _, share_text = options["holdout"].partition(":")
        try:
            share = float(share_text)
        except ValueError:
            share = -1.0
        if kind not in ("last", "random") or not 0.0 < share < 1.0:
            raise CommandError(
                f"--holdout must be last:SHARE or random:SHARE with 0 < SHARE < 1, got {options['holdout']!r}"
            )
        if kind == "last":
            if not dataset.has_timestamps:
                raise CommandError("--holdout last needs timestamps on every event; use random:SHARE for this dataset")
            return split_by_last_share(dataset, share)
        return split_by_random_share(dataset, share, seed=options.get("seed") or 0)
    return default_split(dataset)
