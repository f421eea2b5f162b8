"""The page that creates an experiment: the form read into settings and variants, references checked
against what the target offers, and the plan checked against the eligible audience before saving.

What a variant changes is chosen from what the target has (a surface's versions, a campaign's
template variants, a trained model, or the holdout), offered by the app that owns the target
(``experiments.targets``); a choice that belongs to another target is refused with the field named.
Saving goes through ``services.create_experiment``, which checks everything again and audits it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from experiments import services, targets
from experiments.lifecycle import plan_warning
from experiments.models import Experiment, MetricKey, TargetKind
from experiments.results import plan

VARIANT_ROWS = 4
HOLDOUT = "holdout"
UNCHANGED = ""


@dataclass
class VariantRow:
    n: int
    key: str = ""
    name: str = ""
    weight: str = "1"
    change: str = UNCHANGED
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, message), shown in the row


@dataclass
class NewExperimentForm:
    values: dict[str, str] = field(default_factory=dict)
    variants: list[VariantRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanCheck:
    baseline: float | None
    source: str
    per_variant: int | None
    variants: int
    eligible: int | None
    reachable: int | None
    warning: str

    @property
    def needed(self) -> int | None:
        return self.per_variant * self.variants if self.per_variant else None


def blank_form() -> NewExperimentForm:
    rows = [VariantRow(n) for n in range(VARIANT_ROWS)]
    rows[0].key, rows[0].name = "control", "Control"
    rows[1].key, rows[1].name = "treatment", "Treatment"
    return NewExperimentForm(
        values={
            "key": "",
            "name": "",
            "description": "",
            "target": "global:",
            "primary_metric": MetricKey.CONVERSION,
            "mde": "5",
            "alpha": "0.05",
            "power": "0.8",
            "traffic": "100",
            "baseline": "",
        },
        variants=rows,
    )


def change_code(payload: dict[str, Any]) -> str:
    """The select's value for a payload: ``holdout``, or its JSON."""
    if payload.get("holdout") is True and len(payload) == 1:
        return HOLDOUT
    return json.dumps(payload, sort_keys=True)


def choices() -> list[dict[str, Any]]:
    """Every target a variant may aim at, grouped by kind, with what its variants may change."""
    groups = []
    for kind, label in TargetKind.choices:
        options = targets.target_choices(kind)
        if kind == TargetKind.GLOBAL and not options:
            options = [targets.TargetChoice("", "Every surface")]
        groups.append(
            {
                "kind": kind,
                "label": label,
                "targets": [
                    {
                        "value": f"{kind}:{t.key}",
                        "name": t.name,
                        "key": t.key,
                        "changes": [(change_code(p), text) for p, text in t.payloads],
                    }
                    for t in options
                ],
            }
        )
    return groups


def _number(form: NewExperimentForm, name: str, low: float, high: float, scale: float = 1.0) -> float | None:
    raw = form.values.get(name, "").strip()
    try:
        value = float(raw) / scale
    except ValueError:
        form.errors[name] = "A number is required."
        return None
    if not math.isfinite(value) or not low <= value <= high:
        form.errors[name] = f"Between {low * scale:g} and {high * scale:g}."
        return None
    return value


def read(data: QueryDict) -> tuple[NewExperimentForm, dict[str, Any] | None]:
    """The posted form, and the checked ``create_experiment`` arguments (None when a field is wrong)."""
    form = blank_form()
    for name in form.values:
        form.values[name] = (data.get(name) or "").strip()
    form.variants = [
        VariantRow(
            n,
            (data.get(f"v{n}_key") or "").strip(),
            (data.get(f"v{n}_name") or "").strip(),
            (data.get(f"v{n}_weight") or "1").strip(),
            data.get(f"v{n}_change") or UNCHANGED,
        )
        for n in range(VARIANT_ROWS)
    ]
    if not form.values["name"]:
        form.errors["name"] = "Required."
    kind, _, target_key = form.values["target"].partition(":")
    offered = {f"{g['kind']}:{t['key']}": t for g in choices() for t in g["targets"]}
    target = offered.get(form.values["target"])
    if kind not in TargetKind.values or target is None:
        form.errors["target"] = "Choose a surface, a campaign or every surface."
    if form.values["primary_metric"] not in MetricKey.values:
        form.errors["primary_metric"] = "Choose a metric."
    mde = _number(form, "mde", 0.001, 10, scale=100)
    alpha = _number(form, "alpha", 0.0001, 0.5)
    power = _number(form, "power", 0.5, 0.999)
    traffic = _number(form, "traffic", 0.0001, 1, scale=100)
    baseline = None
    if form.values["baseline"]:
        baseline = _number(form, "baseline", -1e12, 1e12)
    allowed = {code for code, _ in target["changes"]} if target else set()
    variants = []
    rows = []  # the form row of each variant kept
    for row in form.variants:
        if not row.key:
            if row.change != UNCHANGED or row.name:
                form.errors[f"v{row.n}_key"] = "Give this variant a key, or clear the row."
            continue
        try:
            weight = float(row.weight)
            if not math.isfinite(weight) or not 0 <= weight <= 1000:
                raise ValueError
        except ValueError:
            form.errors[f"v{row.n}_weight"] = "A number from 0 to 1000."
            continue
        if row.change == HOLDOUT:
            payload: dict[str, Any] = {"holdout": True}
        elif row.change == UNCHANGED:
            payload = {}
        elif target is not None and row.change not in allowed:
            form.errors[f"v{row.n}_change"] = f"{target['name']} has no such version or variant; choose one of its own."
            continue
        else:
            payload = json.loads(row.change) if target is not None else {}
        variants.append(services.VariantSpec(row.key, row.name or row.key, weight, payload, is_control=row.n == 0))
        rows.append(row.n)
    if len(variants) < 2 and "variants" not in form.errors:
        form.errors["variants"] = "An experiment needs a control and at least one more variant."
    if form.errors:
        return form, None
    assert mde is not None and alpha is not None and power is not None and traffic is not None
    return form, {
        "key": form.values["key"],
        "name": form.values["name"],
        "variants": variants,
        "rows": rows,
        "options": {
            "description": form.values["description"],
            "target_kind": kind,
            "target_key": target_key,
            "primary_metric": form.values["primary_metric"],
            "minimum_detectable_effect": mde,
            "alpha": alpha,
            "power": power,
            "traffic": traffic,
            "baseline_mean": baseline,
        },
    }


def attach_row_errors(form: NewExperimentForm) -> None:
    for row in form.variants:
        row.errors = [(name, message) for name, message in form.errors.items() if name.startswith(f"v{row.n}_")]


def check_plan(arguments: dict[str, Any]) -> PlanCheck:
    """The power calculation and the eligible audience for the settings, before anything is saved."""
    options = arguments["options"]
    draft = Experiment(key=arguments["key"] or "draft", name=arguments["name"], **options)
    draft.baseline_source = "marketer" if options.get("baseline_mean") is not None else ""
    count = len(arguments["variants"])
    planned = plan(draft, treatments=max(1, count - 1))
    draft.planned_sample_size = planned.planned_sample_size
    eligible = targets.eligible_audience(draft.target_kind, draft.target_key)
    return PlanCheck(
        baseline=planned.baseline_mean,
        source=planned.source,
        per_variant=planned.planned_sample_size,
        variants=count,
        eligible=eligible,
        reachable=int(eligible * draft.traffic) if eligible is not None else None,
        warning=plan_warning(draft, count),
    )


def create(arguments: dict[str, Any], user: Any) -> Experiment:
    return services.create_experiment(
        arguments["key"], arguments["name"], arguments["variants"], user, None, **arguments["options"]
    )


def field_of(attr: str | None, rows: list[int]) -> str:
    """The form field of an ``ExperimentError.attr`` (``variants.1.key`` -> ``v<row>_key``)."""
    if not attr:
        return "variants"
    names = {"minimum_detectable_effect": "mde", "baseline_mean": "baseline", "target_key": "target"}
    parts = attr.split(".")
    if parts[0] == "variants" and len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < len(rows):
        row = rows[int(parts[1])]
        return f"v{row}_{parts[2] if parts[2] in ('key', 'weight') else 'change'}"
    if parts[0] == "variants":
        return "variants"
    return names.get(attr, attr)
