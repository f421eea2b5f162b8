"""Experiment results: the event-log metrics of exposed people run through the statistical core.

``compute_results`` reads; ``record_results`` stores the reading as a ``ResultSnapshot``. Each look
carries the always-valid (sequential) state of the previous snapshot forward, so its p-values only
fall and its intervals only narrow over the life of one bucketing generation.

Which reading decides: before the planned sample size, the sequential test (valid however often
the marketer looks); from the planned size on, the fixed-horizon test (Holm-adjusted with several
variants). Guardrails always use the sequential test, since the guardrail job looks every hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Count, Min
from django.utils import timezone

from experiments import metrics
from experiments.decision import Decision, Verdict, decide
from experiments.metrics import MEAN, PROPORTION, RATIO, MetricDefinition, VariantOutcomes
from experiments.models import Experiment, Exposure, ResultSnapshot, Variant
from experiments.sequential import SequentialResult, mixture_variance_for, plan_mixture_variance, sequential_test
from experiments.stats import (
    Comparison,
    CovariateSummary,
    Interval,
    RatioSummary,
    SampleRatioCheck,
    SampleSummary,
    cuped_adjusted,
    cuped_test,
    holm,
    ratio_test,
    sample_ratio_check,
    sample_size_for_mean,
    sample_size_for_proportion,
    two_proportion_test,
    welch_test,
)

# Below this many people per variant a guardrail does not stop anything.
GUARDRAIL_MIN_UNITS = 100
# The sequential test starts once each variant has this many people: before, variances estimated
# from a handful of 0/1 values (often exactly zero) would make its normal approximation meaningless.
SEQUENTIAL_MIN_UNITS = 30
# Guardrails watch for clear harm early, so their mixing variance τ² makes the always-valid
# interval narrowest at this many people per variant rather than at the planned sample size.
GUARDRAIL_HORIZON = 500
WAITING = "waiting"


# --- JSON -----------------------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, NaN and infinities to None (PostgreSQL's jsonb refuses them)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _bound(value: Any, default: float) -> float:
    return default if value is None else float(value)


def sequential_from_dict(data: Mapping[str, Any] | None) -> SequentialResult | None:
    """The part of a stored sequential result that the next look needs (running p-value and intervals)."""
    if not data:
        return None
    try:
        return SequentialResult(
            n_control=int(data["n_control"]),
            n_treatment=int(data["n_treatment"]),
            control_mean=_bound(data.get("control_mean"), math.nan),
            treatment_mean=_bound(data.get("treatment_mean"), math.nan),
            standard_error=math.nan,
            relative_standard_error=math.nan,
            mixture_variance=float(data["mixture_variance"]),
            alpha=float(data["alpha"]),
            log_likelihood_ratio=math.nan,
            p_value=float(data["p_value"]),
            difference_interval=Interval(
                _bound(data["difference_interval"][0], -math.inf), _bound(data["difference_interval"][1], math.inf)
            ),
            relative_lift_interval=Interval(
                _bound(data["relative_lift_interval"][0], -math.inf),
                _bound(data["relative_lift_interval"][1], math.inf),
            ),
            looks=int(data["looks"]),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


# --- Planning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    baseline_mean: float | None
    baseline_sd: float | None
    source: str
    planned_sample_size: int | None
    mixture_variance: float | None


def plan(experiment: Experiment, treatments: int | None = None) -> Plan:
    """Units per variant for the primary metric at the experiment's MDE, alpha and power.

    The baseline is the marketer's (``baseline_mean`` and, for means, ``baseline_sd``) or else
    measured in the event log over the last attribution window. With several treatments each is
    compared with control at alpha / treatments.
    """
    definition = metrics.metric(experiment.primary_metric)
    if treatments is None:
        treatments = max(1, experiment.variants.filter(is_control=False).count())
    marketer = experiment.baseline_source != "event_log"  # a measured baseline is measured again
    mean = experiment.baseline_mean if marketer else None
    sd = experiment.baseline_sd if marketer and mean is not None else None
    source = "marketer"
    if mean is not None and definition.kind == PROPORTION:
        sd = math.sqrt(mean * (1 - mean)) if 0 < mean < 1 else None
    if mean is None or sd is None:
        measured = metrics.baseline_from_event_log(experiment.primary_metric, experiment.attribution_window_days)
        if measured is None:
            return Plan(mean, sd, "" if mean is None else "marketer", None, None)
        if mean is None:
            mean, source = measured.mean, "event_log"
        sd = sd if sd is not None else measured.sd
    alpha = experiment.alpha / treatments
    n: int | None = None
    try:
        if definition.kind == PROPORTION:
            n = sample_size_for_proportion(mean, experiment.minimum_detectable_effect, alpha, experiment.power)
        elif sd:
            n = sample_size_for_mean(mean, sd, experiment.minimum_detectable_effect, alpha, experiment.power)
    except ValueError:
        n = None
    tau2 = plan_mixture_variance(sd, n, alpha) if n and sd else None
    return Plan(mean, sd, source, n, tau2)


# --- Comparisons ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricComparison:
    """One treatment against control on one metric: fixed-horizon test plus what the sequential look needs."""

    comparison: Comparison
    cuped: dict[str, float] | None
    control_summary: SampleSummary
    treatment_summary: SampleSummary


def summarize(definition: MetricDefinition, outcomes: VariantOutcomes) -> dict[str, Any]:
    """n, mean and per-unit variance of a metric in one variant (for a ratio: the ratio and n · Var(ratio))."""
    n = outcomes.n
    if n == 0:
        return {"n": 0, "mean": None, "variance": None}
    if definition.kind == RATIO:
        x, y = outcomes.columns[definition.numerator], outcomes.columns[definition.denominator]
        summary: dict[str, Any] = {"n": n, "numerator": float(x.sum()), "denominator": float(y.sum())}
        if y.sum() <= 0:
            return {**summary, "mean": None, "variance": None}
        if n < 2:
            return {**summary, "mean": float(x.sum() / y.sum()), "variance": None}
        ratio = RatioSummary.from_values(x, y)
        return {**summary, "mean": ratio.ratio, "variance": ratio.variance_of_ratio * n}
    values = SampleSummary.from_values(outcomes.columns[definition.column])
    return {"n": n, "mean": values.mean, "variance": values.variance, "total": float(values.mean * n)}


def compare(
    definition: MetricDefinition, control: VariantOutcomes, treatment: VariantOutcomes, alpha: float
) -> MetricComparison | None:
    """The fixed-horizon comparison of a metric, with CUPED where the pre-period has any variance."""
    if control.n < 2 or treatment.n < 2:
        return None
    if definition.kind == RATIO:
        c = RatioSummary.from_values(control.columns[definition.numerator], control.columns[definition.denominator])
        t = RatioSummary.from_values(treatment.columns[definition.numerator], treatment.columns[definition.denominator])
        if c.denominator_mean <= 0 or t.denominator_mean <= 0:
            return None
        comparison = ratio_test(c, t, alpha)
        return MetricComparison(
            comparison,
            None,
            SampleSummary(c.n, c.ratio, c.variance_of_ratio * c.n),
            SampleSummary(t.n, t.ratio, t.variance_of_ratio * t.n),
        )

    yc, yt = control.columns[definition.column], treatment.columns[definition.column]
    xc, xt = control.columns[definition.covariate], treatment.columns[definition.covariate]
    if np.concatenate([xc, xt]).var() > 0:
        cc, ct = CovariateSummary.from_values(yc, xc), CovariateSummary.from_values(yt, xt)
        cuped = cuped_test(cc, ct, alpha)
        pooled_covariate_mean = (cc.n * cc.covariate_mean + ct.n * ct.covariate_mean) / (cc.n + ct.n)
        return MetricComparison(
            cuped.comparison,
            {
                "theta": cuped.theta,
                "correlation": cuped.correlation,
                "variance_reduction": cuped.variance_reduction,
                "control_mean_unadjusted": cc.mean,
                "treatment_mean_unadjusted": ct.mean,
            },
            cuped_adjusted(cc, cuped.theta, pooled_covariate_mean),
            cuped_adjusted(ct, cuped.theta, pooled_covariate_mean),
        )
    sc, st = SampleSummary.from_values(yc), SampleSummary.from_values(yt)
    if definition.kind == PROPORTION:
        comparison = two_proportion_test(int(yc.sum()), control.n, int(yt.sum()), treatment.n, alpha)
    else:
        comparison = welch_test(sc, st, alpha)
    return MetricComparison(comparison, None, sc, st)


def _comparison_dict(result: MetricComparison) -> dict[str, Any]:
    return {**result.comparison.to_dict(), "decisive_p_value": result.comparison.decisive_p_value}


def _mixture_variance(result: MetricComparison, role: str, experiment: Experiment, alpha: float) -> float | None:
    """τ² for a metric's first sequential look (later looks keep it): from the plan, else from the variances.

    The primary metric uses the τ² planned at start. Others use the per-unit variances of this
    look scaled to a horizon: the planned sample size, or ``GUARDRAIL_HORIZON`` for guardrails.
    Only variances enter, never the difference, so the choice does not favour either direction.
    """
    if role == "primary" and experiment.mixture_variance:
        return experiment.mixture_variance
    spread = result.control_summary.variance + result.treatment_summary.variance
    if spread <= 0:
        return None
    horizon = GUARDRAIL_HORIZON if role == "guardrail" else experiment.planned_sample_size
    if not horizon:
        horizon = min(result.control_summary.n, result.treatment_summary.n)
    return mixture_variance_for(spread / horizon, alpha)


def _sequential_look(
    result: MetricComparison, previous: SequentialResult | None, mixture_variance: float | None, alpha: float
) -> SequentialResult | None:
    """One sequential look; τ² and alpha come from the previous look, else as given for the first one."""
    if min(result.control_summary.n, result.treatment_summary.n) < SEQUENTIAL_MIN_UNITS:
        return None
    variance = result.control_summary.variance_of_mean + result.treatment_summary.variance_of_mean
    if previous is not None:
        mixture_variance, alpha = previous.mixture_variance, previous.alpha
    if mixture_variance is None or mixture_variance <= 0 or variance <= 0:
        return None  # nothing varies yet (everyone at zero): no evidence either way
    try:
        return sequential_test(
            result.control_summary, result.treatment_summary, mixture_variance, alpha, previous=previous
        )
    except ValueError:
        return None


# --- Sample ratio ---------------------------------------------------------------------------------


def sample_ratio(experiment: Experiment, variants: list[Variant]) -> SampleRatioCheck | None:
    """Exposed people per variant against what the allocations in force when they came in would give.

    Each allocation version's effective shares (stopped variants folded into control) weigh the
    people exposed under it, so weight changes and bandit re-weighting do not look like a mismatch.
    """
    rows = (
        Exposure.objects.filter(experiment=experiment, generation=experiment.generation)
        .values("allocation_version", "variant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_id = {v.pk: v.key for v in variants}
    observed = {v.key: 0 for v in variants}
    expected = {v.key: 0.0 for v in variants}
    per_version: dict[int, int] = {}
    for row in rows:
        observed[by_id[row["variant_id"]]] += row["n"]
        per_version[row["allocation_version"]] = per_version.get(row["allocation_version"], 0) + row["n"]
    history = experiment.allocation_history or {}
    current = history.get(str(experiment.allocation_version), {})
    for version, n in per_version.items():
        shares = history.get(str(version)) or current
        total = sum(shares.values())
        for key, share in shares.items():
            if key in expected and total > 0:
                expected[key] += n * share / total
    keys = [key for key in observed if expected[key] > 0]
    if len(keys) < 2 or sum(observed[k] for k in keys) == 0:
        return None
    return sample_ratio_check({k: observed[k] for k in keys}, {k: expected[k] for k in keys})


def _daily_units_per_variant(experiment: Experiment, variants: int, now: datetime) -> float | None:
    """People newly exposed per day and variant over the last week (or since the first exposure)."""
    exposures = Exposure.objects.filter(experiment=experiment, generation=experiment.generation)
    first = exposures.aggregate(first=Min("first_exposed_at"))["first"]
    if first is None or variants < 1:
        return None
    since = max(first, now - timedelta(days=7))
    days = (now - since).total_seconds() / 86400
    if days < 1 / 24:
        return None
    recent = exposures.filter(first_exposed_at__gte=since).count()
    return recent / days / variants if recent else None


# --- Decisions ------------------------------------------------------------------------------------

_VERDICT_ORDER = {
    Verdict.SAMPLE_RATIO_MISMATCH: 0,
    Verdict.WINS: 1,
    Verdict.AHEAD: 2,
    Verdict.NO_DETECTABLE_DIFFERENCE: 3,
    WAITING: 4,
    Verdict.BEHIND: 5,
    Verdict.LOSES: 6,
}


def _headline(decisions: list[dict[str, Any]], higher_is_better: bool) -> dict[str, Any] | None:
    active = [d for d in decisions if not d.get("stopped_by_guardrail")]
    if not active:
        return None

    def rank(d: dict[str, Any]) -> tuple[int, float]:
        lift = d.get("lift")
        score = 0.0 if lift is None else (-lift if higher_is_better else lift)
        return _VERDICT_ORDER.get(d["verdict"], 9), score

    return min(active, key=rank)


def _label(variant: Variant) -> str:
    return variant.name or variant.key


# --- The whole reading ------------------------------------------------------------------------------


def _previous_snapshot(experiment: Experiment) -> ResultSnapshot | None:
    return (
        ResultSnapshot.objects.filter(experiment=experiment, generation=experiment.generation)
        .order_by("-computed_at", "-id")
        .first()
    )


def metric_roles(experiment: Experiment) -> dict[str, str]:
    """Each metric the experiment reads, in display order: the primary, the secondaries, the guardrails."""
    roles = {experiment.primary_metric: "primary"}
    for key in experiment.secondary_metrics or []:
        roles.setdefault(key, "secondary")
    for key in experiment.guardrail_metrics or []:
        if roles.get(key) != "primary":
            roles[key] = "guardrail"
    return roles


def compute_results(experiment: Experiment, now: datetime | None = None) -> dict[str, Any]:
    """Everything the results page and API show, JSON-ready. Reads only; ``record_results`` stores it."""
    now = now or timezone.now()
    variants = list(experiment.variants.order_by("position", "id"))
    control = next((v for v in variants if v.is_control), variants[0] if variants else None)
    if control is None:
        raise ValueError("the experiment has no variants")
    treatments = [v for v in variants if v.pk != control.pk]
    outcomes = metrics.unit_outcomes(experiment)
    empty = VariantOutcomes(0, {c: np.zeros(0) for c in metrics.ALL_COLUMNS}, [])
    outcome_of = {v.pk: outcomes.get(v.pk, empty) for v in variants}
    previous = _previous_snapshot(experiment)
    previous_metrics = (previous.data or {}).get("metrics", {}) if previous else {}
    srm = sample_ratio(experiment, variants)
    planned = experiment.planned_sample_size
    sequential_alpha = experiment.alpha / max(1, len(treatments))

    metric_sections: dict[str, Any] = {}
    readings: dict[str, dict[str, MetricComparison | None]] = {}
    sequentials: dict[str, dict[str, SequentialResult | None]] = {}
    roles = metric_roles(experiment)
    for key, role in roles.items():
        definition = metrics.metric(key)
        fixed: dict[str, MetricComparison | None] = {
            t.key: compare(definition, outcome_of[control.pk], outcome_of[t.pk], experiment.alpha) for t in treatments
        }
        available = {k: r.comparison for k, r in fixed.items() if r is not None}
        adjusted = holm(available) if len(available) > 1 else available
        comparisons: dict[str, Any] = {}
        sequentials[key] = {}
        for t in treatments:
            result = fixed[t.key]
            if result is None:
                comparisons[t.key] = {"fixed": None, "cuped": None, "sequential": None, "note": _not_enough(definition)}
                sequentials[key][t.key] = None
                continue
            result = MetricComparison(adjusted[t.key], result.cuped, result.control_summary, result.treatment_summary)
            fixed[t.key] = result
            stored = previous_metrics.get(key, {}).get("comparisons", {}).get(t.key, {}).get("sequential")
            previous_look = sequential_from_dict(stored)
            tau2 = None if previous_look else _mixture_variance(result, role, experiment, sequential_alpha)
            look = _sequential_look(result, previous_look, tau2, sequential_alpha)
            sequentials[key][t.key] = look
            comparisons[t.key] = {
                "fixed": _comparison_dict(result),
                "cuped": result.cuped,
                # Without a look this time the stored state carries over untouched.
                "sequential": look.to_dict() if look else stored,
                "note": "",
            }
        readings[key] = fixed
        metric_sections[key] = {
            "key": key,
            "label": definition.label,
            "kind": definition.kind,
            "unit": definition.unit,
            "role": role,
            "higher_is_better": definition.higher_is_better,
            "description": definition.description,
            "variants": {v.key: summarize(definition, outcome_of[v.pk]) for v in variants},
            "comparisons": comparisons,
        }

    primary = metrics.metric(experiment.primary_metric)
    active_variants = sum(1 for v in variants if not v.stopped_by_guardrail)
    daily = _daily_units_per_variant(experiment, active_variants, now)
    decisions: list[dict[str, Any]] = []
    lift_points: dict[str, Any] = {}
    for t in treatments:
        result = readings[primary.key][t.key]
        look = sequentials[primary.key][t.key]
        n_t, n_c = outcome_of[t.pk].n, outcome_of[control.pk].n
        if result is None:
            decisions.append(
                {
                    "variant": t.key,
                    "verdict": WAITING,
                    "message": f"Waiting for data: {_people(n_t)} in {_label(t)} and {_people(n_c)} in "
                    f"{_label(control)} so far.",
                    "days_remaining": None,
                    "lift": None,
                    "reading": None,
                    "stopped_by_guardrail": t.stopped_by_guardrail,
                }
            )
            continue
        at_planned_size = planned is not None and min(n_c, n_t) >= planned
        reading: Comparison | SequentialResult
        if at_planned_size:
            reading = result.comparison
        elif look is not None:
            reading = look
        else:
            # Too early for the sequential test: show the estimate, but a fixed-horizon p-value read
            # before the planned size is no decision.
            reading = replace(result.comparison, adjusted_p_value=1.0)
        decision: Decision = decide(
            reading,
            variant=_label(t),
            control=_label(control),
            sample_ratio=srm,
            planned_n_per_variant=planned,
            daily_units_per_variant=daily,
            higher_is_better=primary.higher_is_better,
        )
        message = decision.message
        if t.stopped_by_guardrail:
            message = f"{_label(t)} was stopped by a guardrail; its people now get {_label(control)}. " + message
        interval = reading.relative_lift_interval
        decisions.append(
            {
                "variant": t.key,
                "verdict": decision.verdict.value,
                "message": message,
                "days_remaining": decision.days_remaining,
                "lift": reading.relative_lift,
                "reading": "sequential" if reading is look else "fixed_horizon",
                "stopped_by_guardrail": t.stopped_by_guardrail,
            }
        )
        lift_points[t.key] = {
            "lift": reading.relative_lift,
            "low": interval.low,
            "high": interval.high,
            "reading": "sequential" if reading is look else "fixed_horizon",
        }

    guardrails = _guardrail_states(experiment, roles, treatments, outcome_of, control, sequentials)
    headline = _headline(decisions, primary.higher_is_better)
    units = sum(o.n for o in outcome_of.values())
    if units == 0:
        headline = {"variant": None, "verdict": WAITING, "message": "No exposures yet: nobody has seen a variant."}
    return json_ready(
        {
            "experiment": experiment.key,
            "name": experiment.name,
            "status": experiment.status,
            "generation": experiment.generation,
            "allocation_version": experiment.allocation_version,
            "computed_at": now,
            "primary_metric": primary.key,
            "control": control.key,
            "units": units,
            "planned_sample_size": planned,
            "daily_units_per_variant": daily,
            "attribution_window_days": experiment.attribution_window_days,
            "srm": _srm_dict(srm),
            "variants": [
                {
                    "key": v.key,
                    "name": _label(v),
                    "is_control": v.pk == control.pk,
                    "weight": v.weight,
                    "payload": v.payload,
                    "stopped_by_guardrail": v.stopped_by_guardrail,
                    "units": outcome_of[v.pk].n,
                }
                for v in variants
            ],
            "metrics": metric_sections,
            "decisions": decisions,
            "decision": headline,
            "guardrails": guardrails,
            "lift": lift_points,
        }
    )


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n:,} people"


def _not_enough(definition: MetricDefinition) -> str:
    if definition.kind == RATIO:
        return f"Needs at least 2 people and some {definition.denominator} in each variant."
    return "Needs at least 2 people in each variant."


def _srm_dict(srm: SampleRatioCheck | None) -> dict[str, Any]:
    if srm is None:
        return {"checked": False, "mismatch": False, "p_value": None, "observed": {}, "expected": {}}
    return {
        "checked": True,
        "mismatch": srm.mismatch,
        "p_value": srm.p_value,
        "statistic": srm.statistic,
        "threshold": srm.threshold,
        "observed": srm.observed,
        "expected": srm.expected,
    }


def harmful(definition: MetricDefinition, look: SequentialResult | None) -> bool:
    """A significant sequential result in the direction the metric counts as worse."""
    if look is None or not look.significant:
        return False
    worse = look.difference < 0 if definition.higher_is_better else look.difference > 0
    interval = look.difference_interval
    return worse and (interval.high < 0 if definition.higher_is_better else interval.low > 0)


def _guardrail_states(
    experiment: Experiment,
    roles: dict[str, str],
    treatments: list[Variant],
    outcome_of: dict[int, VariantOutcomes],
    control: Variant,
    sequentials: dict[str, dict[str, SequentialResult | None]],
) -> list[dict[str, Any]]:
    states = []
    for key, role in roles.items():
        if role != "guardrail":
            continue
        definition = metrics.metric(key)
        for t in treatments:
            look = sequentials[key][t.key]
            enough = min(outcome_of[t.pk].n, outcome_of[control.pk].n) >= GUARDRAIL_MIN_UNITS
            harmed = enough and harmful(definition, look)
            state = "harmed" if harmed else "ok" if enough else "collecting"
            states.append(
                {
                    "metric": key,
                    "label": definition.label,
                    "variant": t.key,
                    "state": state,
                    "stopped": t.stopped_by_guardrail,
                    "relative_change": look.relative_lift if look else None,
                    "p_value": look.p_value if look else None,
                }
            )
    return states


def record_results(experiment: Experiment, now: datetime | None = None) -> ResultSnapshot:
    """Compute and store one look at the results."""
    data = compute_results(experiment, now)
    srm = data["srm"]
    headline = data["decision"] or {}
    return ResultSnapshot.objects.create(
        experiment=experiment,
        generation=experiment.generation,
        computed_at=now or timezone.now(),
        units=data["units"],
        srm_p_value=srm["p_value"],
        srm_mismatch=bool(srm["mismatch"]),
        verdict=str(headline.get("verdict") or ""),
        decision=str(headline.get("message") or ""),
        data=data,
    )


def latest_results(experiment: Experiment) -> ResultSnapshot | None:
    return _previous_snapshot(experiment)


def lift_history(experiment: Experiment, points: int = 120) -> list[dict[str, Any]]:
    """The primary metric's lift and interval per treatment at the stored looks, oldest first.

    Long-running experiments have many hourly looks; at most ``points`` of them, evenly spread
    and always including the latest, are returned.
    """
    rows = list(
        ResultSnapshot.objects.filter(experiment=experiment, generation=experiment.generation)
        .order_by("computed_at", "id")
        .values_list("computed_at", "data__lift")
    )
    if len(rows) > points:
        step = (len(rows) - 1) / (points - 1)
        rows = [rows[round(i * step)] for i in range(points)]
    return [{"computed_at": computed_at, "lift": lift or {}} for computed_at, lift in rows]


__all__ = [
    "MEAN",
    "PROPORTION",
    "RATIO",
    "Plan",
    "compute_results",
    "latest_results",
    "lift_history",
    "plan",
    "record_results",
]
