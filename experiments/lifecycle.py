"""Creating experiments and moving them through their life: draft → running → stopped / concluded.

Every change that alters what people see (start, stop, conclude, weights, re-bucketing, a
guardrail stop, a bandit re-weighting) is one ``ExperimentChange`` row with who, when and the
before and after, and tells the serving processes to reload. Status transitions are conditional
updates, so two people (or a person and a job) cannot both stop the same experiment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as AccountUser
from django.db import transaction
from django.utils import timezone

from experiments import metrics, results, serving, targets
from experiments.assignment import BUCKETS, Allocation, allocate, moved_buckets, reallocate, rebucket_salt
from experiments.models import (
    RESERVED_KEYS,
    ChangeAction,
    Experiment,
    ExperimentChange,
    Layer,
    Status,
    TargetKind,
    Variant,
)

# Who acts: an account, an API key's principal (recorded by name) or None for the scheduled jobs.
User = AbstractBaseUser | AnonymousUser | object | None
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


class ExperimentError(ValueError):
    """A request the experiment cannot honour; ``attr`` names the field at fault."""

    def __init__(self, detail: str, attr: str | None = None, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail, self.attr, self.code = detail, attr, code


@dataclass(frozen=True)
class VariantSpec:
    key: str
    name: str = ""
    weight: float = 1.0
    payload: dict[str, Any] = field(default_factory=dict)
    is_control: bool = False


# Settings a marketer may change, and those that are frozen once the experiment has started
# (changing how it is measured after seeing data would invalidate the statistics).
SETTINGS = (
    "name",
    "description",
    "owner",
    "target_kind",
    "target_key",
    "primary_metric",
    "secondary_metrics",
    "guardrail_metrics",
    "minimum_detectable_effect",
    "alpha",
    "power",
    "baseline_mean",
    "baseline_sd",
    "is_bandit",
    "bandit_floor",
    "bandit_min_samples",
    "attribution_window_days",
    "pre_period_days",
    "traffic",
    "layer_share",
)
CHANGEABLE_WHILE_RUNNING = {"name", "description", "owner", "secondary_metrics", "guardrail_metrics"}


def _user(user: User) -> AccountUser | None:
    """The account to record as actor; None for anonymous callers and the scheduled jobs."""
    return user if isinstance(user, AccountUser) else None


def _audit(
    experiment: Experiment, action: str, user: User, detail: dict[str, Any] | None = None, note: str = ""
) -> ExperimentChange:
    detail = dict(detail or {})
    if user is not None and _user(user) is None and not isinstance(user, AnonymousUser):
        detail["actor"] = str(user)  # an API key: its prefix says which one
    return ExperimentChange.objects.create(
        experiment=experiment,
        action=action,
        changed_by=_user(user),
        changed_at=timezone.now(),
        detail=results.json_ready(detail),
        note=note[:500],
    )


def _plain(value: Any) -> Any:
    if isinstance(value, AbstractBaseUser):
        return value.get_username()
    return value


# --- Validation -----------------------------------------------------------------------------------


MAX_WEIGHT = 1000.0


def _check_weight(value: Any, attr: str) -> float:
    """A weight is a finite number from 0 to 1000 (a bigger one only overflows the allocation)."""
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ExperimentError("Must be a number.", attr) from None
    if not math.isfinite(weight) or not 0 <= weight <= MAX_WEIGHT:
        raise ExperimentError(f"Must be a number from 0 to {MAX_WEIGHT:g}.", attr)
    return weight


def _check_payloads(variants: Sequence[Any], target_kind: str, target_key: str) -> None:
    """Each payload against what it refers to (a surface version, a template variant…)."""
    for index, spec in enumerate(variants):
        try:
            targets.check_payload(target_kind, target_key, spec.payload)
        except targets.PayloadError as error:
            attr = f"variants.{index}.payload" + ("" if error.field == "payload" else f".{error.field}")
            raise ExperimentError(error.message, attr, code="invalid_reference") from None


def _check_variants(
    variants: Sequence[VariantSpec], is_bandit: bool, floor: float, target: tuple[str, str] = (TargetKind.GLOBAL, "")
) -> list[VariantSpec]:
    if len(variants) < 2:
        raise ExperimentError("An experiment needs at least two variants (a control and one more).", "variants")
    keys = [v.key for v in variants]
    for index, spec in enumerate(variants):
        if not spec.key or not _SLUG.match(spec.key):
            raise ExperimentError("Use letters, digits, '-' and '_'.", f"variants.{index}.key")
        _check_weight(spec.weight, f"variants.{index}.weight")
    _check_payloads(variants, *target)
    if len(set(keys)) != len(keys):
        raise ExperimentError("Variant keys must be unique.", "variants")
    if sum(v.weight for v in variants) <= 0:
        raise ExperimentError("At least one variant needs a positive weight.", "variants")
    controls = [v for v in variants if v.is_control]
    if len(controls) > 1:
        raise ExperimentError("Only one variant can be the control.", "variants")
    if not controls:  # the first variant is the control unless another one says it is
        first = variants[0]
        variants = [VariantSpec(first.key, first.name, first.weight, first.payload, True), *variants[1:]]
    if is_bandit and not 0 <= floor <= 1 / len(variants):
        raise ExperimentError(
            f"The floor must be between 0 and 1/{len(variants)} for {len(variants)} arms.", "bandit_floor"
        )
    return list(variants)


def _check_settings(values: Mapping[str, Any]) -> None:
    for name in ("primary_metric",):
        if name in values:
            try:
                metrics.metric(values[name])
            except ValueError as error:
                raise ExperimentError(str(error), name) from None
    for name in ("secondary_metrics", "guardrail_metrics"):
        for index, key in enumerate(values.get(name) or []):
            if key not in metrics.METRICS:
                raise ExperimentError(
                    f"Unknown metric {key!r}; choose one of {', '.join(metrics.METRICS)}.", f"{name}.{index}"
                )
    if "target_kind" in values and values["target_kind"] not in TargetKind.values:
        raise ExperimentError(f"Choose one of {', '.join(TargetKind.values)}.", "target_kind")
    bounds = {
        "minimum_detectable_effect": (0.001, 10),
        "alpha": (0.0001, 0.5),
        "power": (0.5, 0.999),
        "traffic": (0.0001, 1),
        "layer_share": (0.0001, 1),
        "bandit_floor": (0, 0.5),
        "attribution_window_days": (1, 365),
        "pre_period_days": (1, 365),
    }
    for name, (low, high) in bounds.items():
        if name in values and values[name] is not None and not low <= float(values[name]) <= high:
            raise ExperimentError(f"Must be between {low} and {high}.", name)


def _replace_variants(experiment: Experiment, variants: Sequence[VariantSpec]) -> None:
    experiment.variants.all().delete()
    Variant.objects.bulk_create(
        [
            Variant(
                experiment=experiment,
                key=spec.key,
                name=spec.name or spec.key,
                weight=spec.weight,
                payload=spec.payload,
                is_control=spec.is_control,
                position=position,
            )
            for position, spec in enumerate(variants)
        ]
    )


PLAN_FIELDS = [
    "baseline_mean",
    "baseline_sd",
    "baseline_source",
    "planned_sample_size",
    "mixture_variance",
    "plan_warning",
]


def _apply_plan(experiment: Experiment, treatments: int) -> None:
    """Planned units per variant and the sequential test's τ², from the marketer's baseline or the event log."""
    planned = results.plan(experiment, treatments)
    experiment.baseline_mean, experiment.baseline_sd = planned.baseline_mean, planned.baseline_sd
    experiment.baseline_source = planned.source
    experiment.planned_sample_size = planned.planned_sample_size
    experiment.mixture_variance = planned.mixture_variance
    experiment.plan_warning = plan_warning(experiment, treatments + 1)


def plan_warning(experiment: Experiment, variant_count: int) -> str:
    """A warning when the plan needs more people than the target can reach, else ""."""
    per_variant = experiment.planned_sample_size
    if not per_variant:
        return ""
    eligible = targets.eligible_audience(experiment.target_kind, experiment.target_key)
    if eligible is None:
        return ""
    needed = per_variant * variant_count
    reachable = eligible * experiment.traffic * (experiment.layer_share if experiment.layer_id else 1.0)
    if needed <= reachable:
        return ""
    times = f"{needed / reachable:.1f}× " if reachable >= 1 else ""
    return (
        f"The plan needs {needed:,} people ({per_variant:,} per variant × {variant_count}), {times}more than the "
        f"{int(reachable):,} this target can reach: it will likely end without a clear result. Raise the "
        "minimum detectable effect, the traffic, or the audience."
    )[:500]


# --- Create and edit ------------------------------------------------------------------------------


@transaction.atomic
def create_experiment(
    key: str,
    name: str,
    variants: Sequence[VariantSpec],
    user: User = None,
    layer: str | None = None,
    **options: Any,
) -> Experiment:
    """A draft experiment with its variants and a planned sample size; nobody is assigned until it starts."""
    if not key or not _SLUG.match(key) or len(key) > 100:
        raise ExperimentError("Use up to 100 letters, digits, '-' and '_'.", "key")
    if key in RESERVED_KEYS:
        raise ExperimentError(f"{key!r} is reserved; choose another key.", "key")
    if Experiment.objects.filter(key=key).exists():
        raise ExperimentError("An experiment with this key exists.", "key", code="unique")
    unknown = set(options) - set(SETTINGS)
    if unknown:
        raise ExperimentError(f"Unknown setting {sorted(unknown)[0]!r}.", sorted(unknown)[0])
    _check_settings(options)
    target = (str(options.get("target_kind") or TargetKind.GLOBAL), str(options.get("target_key") or ""))
    variants = _check_variants(
        variants, bool(options.get("is_bandit")), float(options.get("bandit_floor", 0.05) or 0), target
    )
    options.setdefault("owner", _user(user))
    source = "marketer" if options.get("baseline_mean") is not None else ""
    experiment = Experiment(key=key, name=name or key, salt=rebucket_salt(key, 0), baseline_source=source, **options)
    if layer:
        experiment.layer = _layer(layer)
    experiment.save()
    _replace_variants(experiment, variants)
    _apply_plan(experiment, len(variants) - 1)
    experiment.save(update_fields=PLAN_FIELDS)
    _audit(
        experiment,
        ChangeAction.CREATE,
        user,
        {
            "variants": [{"key": v.key, "weight": v.weight, "payload": v.payload} for v in variants],
            **{k: _plain(v) for k, v in options.items()},
        },
    )
    return experiment


def _layer(key: str) -> Layer:
    if not _SLUG.match(key):
        raise ExperimentError("Use letters, digits, '-' and '_'.", "layer")
    layer, _ = Layer.objects.get_or_create(key=key, defaults={"name": key, "salt": f"layer:{key}"})
    return layer


@transaction.atomic
def update_experiment(
    experiment: Experiment,
    changes: Mapping[str, Any],
    user: User = None,
    variants: Sequence[VariantSpec] | None = None,
    layer: str | None = None,
) -> Experiment:
    """Change settings (all of them in a draft; only names, owner and extra metrics once it has started)."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise ExperimentError(f"Unknown setting {sorted(unknown)[0]!r}.", sorted(unknown)[0])
    if experiment.status != Status.DRAFT:
        frozen = sorted(set(changes) - CHANGEABLE_WHILE_RUNNING)
        if frozen or variants is not None or layer is not None:
            attr = frozen[0] if frozen else "variants" if variants is not None else "layer"
            raise ExperimentError(
                f"{attr} cannot change once the experiment has started (weights and traffic still can).",
                attr,
                code="frozen",
            )
    _check_settings(changes)
    before = {k: _plain(getattr(experiment, k)) for k in changes}
    for name, value in changes.items():
        setattr(experiment, name, value)
    if "baseline_mean" in changes or "baseline_sd" in changes:
        experiment.baseline_source = "marketer" if experiment.baseline_mean is not None else ""
    detail: dict[str, Any] = {"before": before, "after": {k: _plain(v) for k, v in changes.items()}}
    if layer is not None:
        detail["before"]["layer"] = experiment.layer.key if experiment.layer else None
        experiment.layer = _layer(layer) if layer else None
        detail["after"]["layer"] = layer or None
    if variants is not None:
        checked = _check_variants(
            variants, experiment.is_bandit, experiment.bandit_floor, (experiment.target_kind, experiment.target_key)
        )
    elif "target_kind" in changes or "target_key" in changes:
        _check_payloads(list(experiment.variants.all()), experiment.target_kind, experiment.target_key)
    if variants is not None:
        detail["before"]["variants"] = [
            {"key": v.key, "weight": v.weight, "payload": v.payload} for v in experiment.variants.all()
        ]
        _replace_variants(experiment, checked)
        detail["after"]["variants"] = [{"key": v.key, "weight": v.weight, "payload": v.payload} for v in checked]
    if experiment.status == Status.DRAFT:
        _apply_plan(experiment, max(1, experiment.variants.count() - 1))
    experiment.save()
    _audit(experiment, ChangeAction.UPDATE, user, detail)
    return experiment


# --- Allocations ----------------------------------------------------------------------------------


def effective_shares(allocation: Allocation, variants: Sequence[Variant]) -> dict[str, float]:
    """Each variant's share of all units as served: stopped variants' people get control."""
    shares = allocation.shares()
    control = next(v.key for v in variants if v.is_control)
    effective = {v.key: 0.0 if v.stopped_by_guardrail else shares.get(v.key, 0.0) for v in variants}
    effective[control] += sum(shares.get(v.key, 0.0) for v in variants if v.stopped_by_guardrail)
    return effective


def _record_allocation(experiment: Experiment, allocation: Allocation, variants: Sequence[Variant]) -> None:
    experiment.allocation = allocation.to_dict()
    experiment.allocation_version += 1
    history = dict(experiment.allocation_history or {})
    history[str(experiment.allocation_version)] = effective_shares(allocation, variants)
    experiment.allocation_history = history


def _weights(variants: Sequence[Variant]) -> dict[str, float]:
    return {v.key: v.weight for v in variants}


def _layer_counts(layer: Layer, running_keys: set[str]) -> tuple[Allocation | None, dict[str, int]]:
    current = Allocation.from_dict(layer.slices) if layer.slices else None
    counts = {key: current.bucket_count(key) for key in running_keys} if current else {}
    return current, {k: n for k, n in counts.items() if n > 0}


def _set_slices(layer: Layer, current: Allocation | None, counts: dict[str, int]) -> None:
    """Give each experiment of the layer its number of layer buckets, keeping the ones it already has."""
    if counts:
        total = sum(counts.values())
        slices = reallocate(current, {k: float(n) for k, n in counts.items()}, traffic=total / BUCKETS)
        layer.slices = slices.to_dict()
    else:
        layer.slices = Allocation(ranges={}).to_dict()
    layer.version += 1
    layer.save(update_fields=["slices", "version", "updated_at"])


def _take_layer_slice(experiment: Experiment) -> None:
    assert experiment.layer_id is not None
    layer = Layer.objects.select_for_update().get(pk=experiment.layer_id)
    running = set(
        Experiment.objects.filter(layer=layer, status=Status.RUNNING)
        .exclude(pk=experiment.pk)
        .values_list("key", flat=True)
    )
    current, counts = _layer_counts(layer, running)
    wanted = round(experiment.layer_share * BUCKETS)
    free = BUCKETS - sum(counts.values())
    if wanted > free:
        raise ExperimentError(
            f"Layer {layer.key!r} has {free / BUCKETS:.1%} of its people free; this experiment asks for "
            f"{experiment.layer_share:.1%}. Lower layer_share or stop another experiment of the layer.",
            "layer_share",
            code="layer_full",
        )
    counts[experiment.key] = wanted
    _set_slices(layer, current, counts)


def _release_layer_slice(experiment: Experiment) -> None:
    if experiment.layer_id is None:
        return
    layer = Layer.objects.select_for_update().get(pk=experiment.layer_id)
    running = set(
        Experiment.objects.filter(layer=layer, status=Status.RUNNING)
        .exclude(pk=experiment.pk)
        .values_list("key", flat=True)
    )
    current, counts = _layer_counts(layer, running)
    _set_slices(layer, current, counts)


# --- Lifecycle ------------------------------------------------------------------------------------


def _transition(experiment: Experiment, allowed: Sequence[str], **fields: Any) -> bool:
    """Exactly-once status change: True only for the caller whose update found an allowed status."""
    updated = Experiment.objects.filter(pk=experiment.pk, status__in=list(allowed)).update(
        updated_at=timezone.now(), **fields
    )
    return updated == 1


@transaction.atomic
def start(experiment: Experiment, user: User = None) -> Experiment:
    """Freeze the plan, lay out the buckets (and the layer slice) and start assigning people."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.DRAFT:
        raise ExperimentError(f"Only a draft can start; this experiment is {experiment.status}.", "status", "conflict")
    variants = list(experiment.variants.order_by("position", "id"))
    if len(variants) < 2 or sum(v.is_control for v in variants) != 1:
        raise ExperimentError("An experiment needs a control and at least one more variant.", "variants")
    # What the payloads refer to may have gone since they were saved (a surface version, a campaign variant).
    _check_payloads(variants, experiment.target_kind, experiment.target_key)
    for index, variant in enumerate(variants):
        _check_weight(variant.weight, f"variants.{index}.weight")
    if experiment.is_bandit and experiment.bandit_floor > 1 / len(variants):
        raise ExperimentError(f"The floor must be at most 1/{len(variants)} for {len(variants)} arms.", "bandit_floor")
    if experiment.layer_id is not None:
        _take_layer_slice(experiment)
    _apply_plan(experiment, len(variants) - 1)
    weights = {v.key: 1.0 for v in variants} if experiment.is_bandit else _weights(variants)
    if experiment.is_bandit:
        Variant.objects.filter(experiment=experiment).update(weight=1.0)
        for v in variants:
            v.weight = 1.0
    experiment.salt = experiment.salt or rebucket_salt(experiment.key, experiment.generation)
    _record_allocation(experiment, allocate(weights, experiment.traffic), variants)
    now = timezone.now()
    if not _transition(experiment, [Status.DRAFT], status=Status.RUNNING, started_at=now, started_by=_user(user)):
        raise ExperimentError("Another change started this experiment first.", "status", "conflict")
    experiment.status, experiment.started_at, experiment.started_by = Status.RUNNING, now, _user(user)
    experiment.save(
        update_fields=[
            "salt",
            "allocation",
            "allocation_version",
            "allocation_history",
            *PLAN_FIELDS,
        ]
    )
    _audit(
        experiment,
        ChangeAction.START,
        user,
        {"weights": weights, "traffic": experiment.traffic, "planned_sample_size": experiment.planned_sample_size},
    )
    serving.configuration_changed()
    return experiment


@transaction.atomic
def stop(experiment: Experiment, user: User = None, reason: str = "") -> Experiment:
    """Stop a running experiment: everyone gets control from now on; results stay readable."""
    now = timezone.now()
    if not _transition(
        experiment,
        [Status.RUNNING],
        status=Status.STOPPED,
        stopped_at=now,
        stopped_by=_user(user),
        stop_reason=reason[:500],
    ):
        current = Experiment.objects.filter(pk=experiment.pk).values_list("status", flat=True).first()
        raise ExperimentError(f"Only a running experiment can stop; this one is {current}.", "status", "conflict")
    experiment.refresh_from_db()
    _release_layer_slice(experiment)
    _audit(experiment, ChangeAction.STOP, user, {"reason": reason}, note=reason)
    serving.configuration_changed()
    return experiment


@transaction.atomic
def conclude(experiment: Experiment, user: User = None, winner: str | None = None, note: str = "") -> Experiment:
    """Close a running or stopped experiment; with a ``winner`` everyone gets that variant from now on."""
    if winner and not experiment.variants.filter(key=winner).exists():
        raise ExperimentError(f"There is no variant {winner!r}.", "winner")
    was_running = Experiment.objects.filter(pk=experiment.pk, status=Status.RUNNING).exists()
    now = timezone.now()
    if not _transition(
        experiment,
        [Status.RUNNING, Status.STOPPED],
        status=Status.CONCLUDED,
        concluded_at=now,
        concluded_by=_user(user),
        winner_key=winner or "",
    ):
        current = Experiment.objects.filter(pk=experiment.pk).values_list("status", flat=True).first()
        raise ExperimentError(
            f"Only a running or stopped experiment can conclude; this one is {current}.", "status", "conflict"
        )
    experiment.refresh_from_db()
    if was_running:
        _release_layer_slice(experiment)
    _audit(experiment, ChangeAction.CONCLUDE, user, {"winner": winner or None}, note=note)
    serving.configuration_changed()
    return experiment


@transaction.atomic
def set_weights(
    experiment: Experiment,
    weights: Mapping[str, float],
    user: User = None,
    traffic: float | None = None,
    action: str = ChangeAction.WEIGHTS,
    note: str = "",
    detail: Mapping[str, Any] | None = None,
) -> Experiment:
    """New weights (and optionally traffic); while running, only the people whose bucket must move move.

    Variants missing from ``weights`` keep theirs. People keep their variant unless their bucket
    changed hands; re-bucket to reshuffle everyone.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in (Status.DRAFT, Status.RUNNING):
        raise ExperimentError(
            f"Weights cannot change once the experiment is {experiment.status}.", "weights", "conflict"
        )
    variants = list(experiment.variants.order_by("position", "id"))
    known = {v.key for v in variants}
    for key, value in weights.items():
        if key not in known:
            raise ExperimentError(f"There is no variant {key!r}.", f"weights.{key}")
        _check_weight(value, f"weights.{key}")
    before = _weights(variants)
    after = {**before, **{k: float(v) for k, v in weights.items()}}
    if sum(after.values()) <= 0:
        raise ExperimentError("At least one variant needs a positive weight.", "weights")
    if traffic is not None:
        _check_settings({"traffic": traffic})
    new_traffic = experiment.traffic if traffic is None else float(traffic)
    change: dict[str, Any] = {"before": {"weights": before, "traffic": experiment.traffic}}
    change["after"] = {"weights": after, "traffic": new_traffic}
    for v in variants:
        if v.weight != after[v.key]:
            v.weight = after[v.key]
            v.save(update_fields=["weight"])
    experiment.traffic = new_traffic
    fields = ["traffic"]
    if experiment.status == Status.RUNNING:
        current = Allocation.from_dict(experiment.allocation)
        updated = reallocate(current, after, new_traffic)
        change["moved_share"] = moved_buckets(current, updated) / current.buckets
        _record_allocation(experiment, updated, variants)
        fields += ["allocation", "allocation_version", "allocation_history"]
    experiment.save(update_fields=[*fields, "updated_at"])
    _audit(experiment, action, user, {**change, **(detail or {})}, note=note)
    if experiment.status == Status.RUNNING:
        serving.configuration_changed()
    return experiment


@transaction.atomic
def rebucket(experiment: Experiment, user: User = None, note: str = "") -> Experiment:
    """Reshuffle everyone with a new salt; results start afresh (the earlier exposures stay on record)."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.RUNNING:
        raise ExperimentError("Only a running experiment can be re-bucketed.", "status", "conflict")
    variants = list(experiment.variants.order_by("position", "id"))
    before = {"generation": experiment.generation, "salt": experiment.salt}
    experiment.generation += 1
    experiment.salt = rebucket_salt(experiment.key, experiment.generation)
    _record_allocation(experiment, allocate(_weights(variants), experiment.traffic), variants)
    experiment.save(
        update_fields=["generation", "salt", "allocation", "allocation_version", "allocation_history", "updated_at"]
    )
    _audit(
        experiment,
        ChangeAction.REBUCKET,
        user,
        {"before": before, "after": {"generation": experiment.generation, "salt": experiment.salt}},
        note=note,
    )
    serving.configuration_changed()
    return experiment


@transaction.atomic
def stop_variant(variant: Variant, reason: str, detail: Mapping[str, Any] | None = None) -> bool:
    """Stop one variant (a guardrail): its people get control. True only for the call that stopped it.

    When no treatment is left the experiment stops as well.
    """
    experiment = Experiment.objects.select_for_update().get(pk=variant.experiment_id)
    if experiment.status != Status.RUNNING or variant.is_control:
        return False
    now = timezone.now()
    stopped = Variant.objects.filter(pk=variant.pk, stopped_by_guardrail=False).update(
        stopped_by_guardrail=True, stopped_at=now, stop_reason=reason[:500]
    )
    if stopped != 1:
        return False
    variants = list(experiment.variants.order_by("position", "id"))
    _record_allocation(experiment, Allocation.from_dict(experiment.allocation), variants)
    experiment.save(update_fields=["allocation", "allocation_version", "allocation_history", "updated_at"])
    _audit(experiment, ChangeAction.GUARDRAIL_STOP, None, {"variant": variant.key, **(detail or {})}, note=reason)
    if not any(not v.is_control and not v.stopped_by_guardrail for v in variants):
        stop(experiment, None, reason=f"Every variant was stopped by a guardrail. {reason}")
    serving.configuration_changed()
    return True
