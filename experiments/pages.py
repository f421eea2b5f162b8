"""What the experiments pages show, formatted for people: the rows and badges the templates print."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from experiments import charts
from experiments.metrics import METRICS, PROPORTION, RATIO
from experiments.models import ChangeAction, Experiment, ExperimentChange, ResultSnapshot


def percent(value: Any, signed: bool = False, digits: int = 1) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def p_value(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def metric_value(value: Any, kind: str, unit: str) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    if kind == PROPORTION:
        return percent(value, digits=2)
    if unit == "currency":
        return f"{value:,.2f}"
    if kind == RATIO:
        return f"{value:.2%}"
    return f"{value:,.3f}"


def interval(values: Any) -> str:
    if not values or len(values) != 2 or all(v is None for v in values):
        return "–"
    low, high = values
    return f"{percent(low, signed=True)} to {percent(high, signed=True)}"


@dataclass(frozen=True)
class Badge:
    text: str
    tone: str  # good, bad, warn or "" (neutral)
    title: str = ""


def srm_badge(srm: dict[str, Any] | None) -> Badge:
    if not srm or not srm.get("checked"):
        return Badge("SRM: not checked yet", "", "Needs exposures in at least two variants.")
    observed = ", ".join(f"{k} {v:,}" for k, v in (srm.get("observed") or {}).items())
    if srm.get("mismatch"):
        return Badge(f"Sample ratio mismatch (p = {p_value(srm.get('p_value'))})", "bad", f"Observed: {observed}")
    return Badge(f"SRM: split as planned (p = {p_value(srm.get('p_value'))})", "good", f"Observed: {observed}")


STATUS_TONES = {"draft": "", "running": "good", "stopped": "bad", "concluded": "warn"}
VERDICT_TONES = {
    "wins": "good",
    "loses": "bad",
    "ahead": "",
    "behind": "",
    "no_detectable_difference": "",
    "sample_ratio_mismatch": "bad",
    "waiting": "",
}


def status_badge(status: str) -> Badge:
    return Badge(status.capitalize(), STATUS_TONES.get(status, ""))


def _comparison_cells(section: dict[str, Any], variant: str) -> dict[str, str]:
    comparison = (section.get("comparisons") or {}).get(variant) or {}
    fixed = comparison.get("fixed") or {}
    sequential = comparison.get("sequential") or {}
    return {
        "lift": percent(fixed.get("relative_lift"), signed=True),
        "interval": interval(fixed.get("relative_lift_interval")),
        "p_value": p_value(fixed.get("decisive_p_value", fixed.get("p_value"))),
        "sequential_p": p_value(sequential.get("p_value")),
        "sequential_interval": interval(sequential.get("relative_lift_interval")),
        "method": str(fixed.get("method") or comparison.get("note") or ""),
        "cuped": percent((comparison.get("cuped") or {}).get("variance_reduction"), digits=0)
        if comparison.get("cuped")
        else "",
    }


def metric_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per metric: a row per variant (the control has no comparison cells)."""
    decisions = {d["variant"]: d for d in data.get("decisions", [])}
    tables = []
    for key, section in (data.get("metrics") or {}).items():
        definition = METRICS.get(key)
        kind, unit = section.get("kind", ""), section.get("unit", "")
        rows = []
        for variant in data.get("variants", []):
            summary = (section.get("variants") or {}).get(variant["key"]) or {}
            row: dict[str, Any] = {
                "key": variant["key"],
                "name": variant["name"],
                "is_control": variant["is_control"],
                "stopped": variant["stopped_by_guardrail"],
                "units": f"{summary.get('n', 0):,}",
                "mean": metric_value(summary.get("mean"), kind, unit),
            }
            if not variant["is_control"]:
                row.update(_comparison_cells(section, variant["key"]))
                if section.get("role") == "primary" and variant["key"] in decisions:
                    verdict = decisions[variant["key"]]["verdict"]
                    row["verdict"] = Badge(verdict.replace("_", " "), VERDICT_TONES.get(verdict, ""))
            rows.append(row)
        tables.append(
            {
                "key": key,
                "label": section.get("label") or (definition.label if definition else key),
                "role": section.get("role", ""),
                "description": section.get("description", ""),
                "lower_is_better": not section.get("higher_is_better", True),
                "rows": rows,
            }
        )
    return tables


def guardrail_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    tones = {"ok": "good", "harmed": "bad", "collecting": ""}
    names = {v["key"]: v["name"] for v in data.get("variants", [])}
    return [
        {
            "metric": g.get("label") or g["metric"],
            "variant": names.get(g["variant"], g["variant"]),
            "badge": Badge(
                "stopped" if g.get("stopped") else g["state"], "bad" if g.get("stopped") else tones[g["state"]]
            ),
            "change": percent(g.get("relative_change"), signed=True),
            "p_value": p_value(g.get("p_value")),
        }
        for g in data.get("guardrails", [])
    ]


def _actor(change: ExperimentChange) -> str:
    if change.changed_by is not None:
        return change.changed_by.get_username()
    actor = (change.detail or {}).get("actor")
    if actor:
        return str(actor)
    scheduled = change.action in (ChangeAction.GUARDRAIL_STOP, ChangeAction.BANDIT_REWEIGHT)
    return "scheduled job" if scheduled else "–"


def results_context(
    experiment: Experiment, snapshot: ResultSnapshot | None, history: list[dict[str, Any]]
) -> dict[str, Any]:
    data = snapshot.data if snapshot else {}
    treatments = [(v["key"], v["name"]) for v in data.get("variants", []) if not v["is_control"]]
    primary = METRICS[experiment.primary_metric]
    guardrail_stops = ExperimentChange.objects.filter(experiment=experiment, action=ChangeAction.GUARDRAIL_STOP)
    decision = data.get("decision") or {}
    return {
        "experiment": experiment,
        "status": status_badge(experiment.status),
        "snapshot": snapshot,
        "data": data,
        "decision": decision,
        "decision_badge": Badge(
            str(decision.get("verdict", "")).replace("_", " "), VERDICT_TONES.get(decision.get("verdict", ""), "")
        ),
        "srm": srm_badge(data.get("srm")),
        "chart": charts.lift_chart(history, treatments),
        "chart_reading": "always-valid (sequential) interval until the planned sample size, then the fixed-horizon one",
        "primary": primary,
        "tables": metric_tables(data),
        "guardrails": guardrail_rows(data),
        "guardrail_stops": list(guardrail_stops.select_related("changed_by")[:10]),
        "changes": [
            {"at": c.changed_at, "what": c.get_action_display(), "who": _actor(c), "note": c.note}
            for c in experiment.changes.select_related("changed_by")[:15]
        ],
        "variants": list(experiment.variants.all()),
        "daily_units": data.get("daily_units_per_variant"),
    }
