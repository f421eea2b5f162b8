"""``manage.py evaluate DIR``: the engine beside the baselines on an interchange folder, one table.

A thin wrapper: the split, the fitting and the metrics live in ``personalization.engine``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

COLUMNS = ("model", "recall", "ndcg", "map", "coverage", "diversity", "fit_seconds")


class Command(BaseCommand):
    help = "Evaluate the recommendation engine against baselines on a dataset in the interchange format."
    requires_system_checks: list[str] = []  # reads files only; needs no database or URLs

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="interchange folder: events.csv, optional items.csv and users.csv")
        split = parser.add_mutually_exclusive_group()
        split.add_argument("--cutoff", help="YYYY-MM-DD: history before this day, test from it on")
        split.add_argument("--test-file", help="a test set in the events.csv layout; DIR's events are the history")
        parser.add_argument("--k", type=int, default=20, help="length of the recommended lists (default 20)")
        parser.add_argument("--json", dest="json_path", help="also write the results as JSON to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        from personalization.engine.dataset import load_interchange, read_event_pairs
        from personalization.engine.evaluation import (
            default_split,
            run_evaluation,
            split_by_cutoff,
            split_by_test_pairs,
        )

        folder = Path(options["directory"])
        if not (folder / "events.csv").exists():
            raise CommandError(f"{folder} has no events.csv")
        k = options["k"]
        if k <= 0:
            raise CommandError("--k must be positive")
        started = time.perf_counter()
        dataset = load_interchange(folder)
        load_seconds = time.perf_counter() - started
        if options["cutoff"]:
            if not dataset.has_timestamps:
                raise CommandError("--cutoff needs timestamps on every event; this dataset has none")
            try:
                day = datetime.strptime(options["cutoff"], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError(f"--cutoff must look like 2011-11-09, got {options['cutoff']!r}") from exc
            split = split_by_cutoff(dataset, day.timestamp())
        elif options["test_file"]:
            test_path = Path(options["test_file"])
            if not test_path.exists():
                raise CommandError(f"{test_path} does not exist")
            split = split_by_test_pairs(dataset, read_event_pairs(test_path))
        else:
            split = default_split(dataset)
        if not split.test:
            raise CommandError(f"no test person with history under this split ({split.description})")

        self.stdout.write(
            f"{folder}: {len(dataset.events)} events, {dataset.n_users} people, {dataset.n_items} items"
            f" ({dataset.bad_rows} unusable rows skipped); loaded in {load_seconds:.1f}s"
        )
        self.stdout.write(
            f"split: {split.description}; {len(split.test)} test people; ranking {split.train.n_items} items; k={k}"
        )
        report = run_evaluation(split, k=k, progress=lambda message: self.stderr.write(message))
        rows = [result.as_row() for result in report.results]
        self.stdout.write(_table(rows))
        timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.engine_timings.items())
        self.stdout.write(f"engine training: {timings}")
        engine_row = rows[0]
        self.stdout.write(
            f"engine recommendations: {engine_row['recommend_seconds']}s for {report.test_people} people"
            f" ({1000 * float(engine_row['recommend_seconds']) / max(report.test_people, 1):.1f} ms each)"  # type: ignore[arg-type]
        )
        self.stdout.write(f"total wall time: {time.perf_counter() - started:.1f}s")
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")


def _table(rows: list[dict[str, object]]) -> str:
    cells = [list(COLUMNS)] + [[_cell(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
