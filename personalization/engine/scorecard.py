"""An evaluation report as text: the split, the decisions taken, the table and the comparison.

Printed by ``manage.py evaluate`` and ``bench/quality.py``. Free of Django.
"""

from __future__ import annotations

from personalization.engine.evaluation import EvaluationReport

COLUMNS = ("model", "settings", "recall", "ndcg", "coverage", "fit_seconds", "people")
HEADERS = ("model", "tuned settings", "Recall@k", "NDCG@k", "coverage", "fit s", "people")


def describe(report: EvaluationReport) -> str:
    """The split, the decisions and the table, as printed by the command and bench/quality.py."""
    lines = [
        f"split: {report.split}; {report.test_people} test people with history; ranking {report.catalogue_items}"
        f" items seen in history; k={report.k}",
        f"seen items {report.exclusion_reason}",
        f"test items dropped because the history never saw them: {report.unseen_test_items}",
    ]
    if report.people_without_new_items:
        left_out = report.people_without_new_items
        lines.append(f"test people left out, every test item already in their history: {left_out}")
    lines.append(f"baselines tuned on validation ({report.validation}); fit s includes the tuning")
    for name, reason in report.skipped.items():
        lines.append(f"{name} skipped: {reason}")
    lines.append(table([r.as_row() for r in report.results], report.k))
    lines.append(f"test people without history: {report.cold_people}")
    if report.cold_start:
        lines.append(table([r.as_row() for r in report.cold_start], report.k))
    if report.comparison:
        c = report.comparison
        lines.append(
            f"engine vs best baseline ({c.best_baseline}): NDCG@{report.k} {c.engine_ndcg:.4f} / {c.best_ndcg:.4f}"
            f" = {c.ratio:.3f}x; paired bootstrap 95% interval of the difference [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
            f" ({c.samples} resamples)"
        )
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.engine_timings.items())
    lines.append(f"engine training: {timings}")
    return "\n".join(lines)


def table(rows: list[dict[str, object]], k: int) -> str:
    headers = [h.replace("@k", f"@{k}") for h in HEADERS]
    cells = [headers] + [[_cell(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
