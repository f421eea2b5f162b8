"""The public face of the experiments app: what serving, campaigns, the API and the pages call.

Assignment and exposures (hot path, no database query to assign)::

    assign(experiment_key, person_id) -> Assignment | None
    assignments_for(person_id, target_kind=None, target_key=None) -> list[Assignment]
    log_exposure(experiment_key, person_id, variant_key, at=None) -> bool   (refuses a variant not assigned)

What variant payloads refer to (apps above register their checks when they load)::

    register_target(target_kind, check=..., audience=..., choices=...); eligible_audience(kind, key);
    target_choices(kind) -> list[TargetChoice]

Lifecycle (each one audited)::

    create_experiment(key, name, variants, user=None, layer=None, **settings) -> Experiment
    update_experiment(experiment, changes, user=None, variants=None, layer=None) -> Experiment
    start / stop / conclude / rebucket / set_weights

Results and the scheduled jobs::

    compute_results(experiment) -> dict; record_results(experiment) -> ResultSnapshot
    run_guardrails() -> list[GuardrailStop]; reweight_bandits() -> list[str]
"""

from __future__ import annotations

from experiments.guardrails import GuardrailStop, apply_guardrails, run_guardrails
from experiments.lifecycle import (
    ExperimentError,
    VariantSpec,
    conclude,
    create_experiment,
    effective_shares,
    rebucket,
    set_weights,
    start,
    stop,
    update_experiment,
)
from experiments.metrics import METRICS, MetricDefinition
from experiments.results import compute_results, latest_results, lift_history, plan, record_results
from experiments.reweighting import reweight, reweight_bandits
from experiments.serving import Assignment, NotAssigned, UnknownVariant, assign, assignments_for, log_exposure
from experiments.targets import (
    PayloadError,
    TargetChoice,
    eligible_audience,
    model_version_number,
    register_target,
    target_choices,
)

__all__ = [
    "METRICS",
    "Assignment",
    "ExperimentError",
    "GuardrailStop",
    "MetricDefinition",
    "NotAssigned",
    "PayloadError",
    "TargetChoice",
    "UnknownVariant",
    "VariantSpec",
    "apply_guardrails",
    "assign",
    "assignments_for",
    "compute_results",
    "conclude",
    "create_experiment",
    "effective_shares",
    "eligible_audience",
    "latest_results",
    "lift_history",
    "log_exposure",
    "model_version_number",
    "plan",
    "rebucket",
    "record_results",
    "register_target",
    "reweight",
    "reweight_bandits",
    "run_guardrails",
    "set_weights",
    "start",
    "stop",
    "target_choices",
    "update_experiment",
]
