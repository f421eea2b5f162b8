"""Assignment and exposure logging: the hot path that serving, campaigns and the API call.

Assigning a person costs no database query: every process keeps the configuration of the live
experiments (salts, allocations, layers, variants) in memory and hashes locally with the core's
``assignment`` module, so the answer is the same in every process and after every restart. The
in-memory copy is reloaded when any experiment changes (a stamp in the shared cache changes with
every lifecycle action, weight change, guardrail stop or bandit re-weighting) and at the latest
after ``LOCAL_TTL_SECONDS``, for setups whose cache is per process.

Exposures are logged where the variant is shown: once per person and experiment (and bucketing
generation). A shared-cache gate absorbs the repeat exposures of the same person without touching
the database; the unique constraint on the row is the guarantee when the gate forgets.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from experiments.assignment import Allocation, ExperimentSplit
from experiments.assignment import Layer as LayerSplit
from experiments.models import Experiment, Exposure, Status
from profiles import services as profiles

CONFIG_STAMP_KEY = "experiments:config-stamp"
LOCAL_TTL_SECONDS = 10.0
# How often the shared stamp is read at most: a burst of assignments costs one cache read.
STAMP_CHECK_SECONDS = 1.0
EXPOSURE_GATE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Assignment:
    """The variant a person gets in one experiment, and what it changes.

    ``active`` is True while the experiment runs: show the variant and log the exposure where it
    is shown. Once stopped or concluded every person gets the control (or the declared winner)
    with ``active`` False, and exposures are no longer recorded.
    """

    experiment: str
    variant: str
    payload: dict[str, Any]
    is_control: bool
    active: bool
    allocation_version: int
    target_kind: str
    target_key: str

    @property
    def is_holdout(self) -> bool:
        """The variant is the non-personalized experience (``{"holdout": true}`` in its payload)."""
        return self.payload.get("holdout") is True


@dataclass(frozen=True)
class _VariantState:
    id: int
    key: str
    payload: dict[str, Any]
    is_control: bool
    stopped: bool


@dataclass(frozen=True)
class _ExperimentState:
    id: int
    key: str
    status: str
    target_kind: str
    target_key: str
    generation: int
    allocation_version: int
    split: ExperimentSplit | None
    layer: str | None
    variants: dict[str, _VariantState]
    control: str
    winner: str


@dataclass
class _Configuration:
    stamp: str
    loaded_at: float
    checked_at: float
    experiments: dict[str, _ExperimentState] = field(default_factory=dict)
    layers: dict[str, LayerSplit] = field(default_factory=dict)


_local: _Configuration | None = None
_lock = threading.Lock()


def _current_stamp() -> str:
    stamp = cache.get(CONFIG_STAMP_KEY)
    if stamp is None:
        cache.add(CONFIG_STAMP_KEY, uuid.uuid4().hex, timeout=None)
        stamp = cache.get(CONFIG_STAMP_KEY) or ""
    return str(stamp)


def configuration_changed() -> None:
    """Tell every process to reload experiments: now, and again once the current transaction commits."""

    def bump() -> None:
        cache.set(CONFIG_STAMP_KEY, uuid.uuid4().hex, timeout=None)

    bump()
    transaction.on_commit(bump)
    global _local
    _local = None


def _load(stamp: str) -> _Configuration:
    now = time.monotonic()
    config = _Configuration(stamp=stamp, loaded_at=now, checked_at=now)
    rows = (
        Experiment.objects.exclude(status=Status.DRAFT)
        .select_related("layer")
        .prefetch_related("variants")
        .defer("description", "allocation_history")
    )
    for experiment in rows:
        variants = {
            v.key: _VariantState(v.pk, v.key, dict(v.payload or {}), v.is_control, v.stopped_by_guardrail)
            for v in experiment.variants.all()
        }
        control = next((k for k, v in variants.items() if v.is_control), next(iter(variants), ""))
        if not control:
            continue
        split = None
        if experiment.status == Status.RUNNING and experiment.allocation:
            split = ExperimentSplit(experiment.salt or experiment.key, Allocation.from_dict(experiment.allocation))
            if experiment.layer is not None and experiment.layer.key not in config.layers:
                slices = experiment.layer.slices
                config.layers[experiment.layer.key] = LayerSplit(
                    salt=experiment.layer.salt,
                    slices=Allocation.from_dict(slices) if slices else Allocation(ranges={}),
                )
        config.experiments[experiment.key] = _ExperimentState(
            id=experiment.pk,
            key=experiment.key,
            status=experiment.status,
            target_kind=experiment.target_kind,
            target_key=experiment.target_key,
            generation=experiment.generation,
            allocation_version=experiment.allocation_version,
            split=split,
            layer=experiment.layer.key if experiment.layer is not None else None,
            variants=variants,
            control=control,
            winner=experiment.winner_key if experiment.winner_key in variants else "",
        )
    return config


def _configuration() -> _Configuration:
    global _local
    config = _local
    now = time.monotonic()
    if config is not None and now - config.loaded_at < LOCAL_TTL_SECONDS:
        if now - config.checked_at < STAMP_CHECK_SECONDS:
            return config
        if config.stamp == _current_stamp():
            config.checked_at = now
            return config
    stamp = _current_stamp()
    with _lock:
        config = _local
        if config is None or config.stamp != stamp or time.monotonic() - config.loaded_at >= LOCAL_TTL_SECONDS:
            config = _load(stamp)
            _local = config
    return config


def _answer(state: _ExperimentState, variant: _VariantState, active: bool) -> Assignment:
    return Assignment(
        experiment=state.key,
        variant=variant.key,
        payload=variant.payload,
        is_control=variant.is_control,
        active=active,
        allocation_version=state.allocation_version,
        target_kind=state.target_kind,
        target_key=state.target_key,
    )


def _assign(config: _Configuration, state: _ExperimentState, person_id: int) -> Assignment | None:
    if state.status == Status.STOPPED:
        return _answer(state, state.variants[state.control], active=False)
    if state.status == Status.CONCLUDED:
        return _answer(state, state.variants[state.winner or state.control], active=False)
    if state.split is None:
        return None
    unit = str(person_id)
    if state.layer is not None:
        layer = config.layers.get(state.layer)
        if layer is None or layer.experiment_for(unit) != state.key:
            return None
    key = state.split.variant_for(unit)
    if key is None or key not in state.variants:
        return None
    variant = state.variants[key]
    if variant.stopped:
        variant = state.variants[state.control]  # a variant stopped by a guardrail falls back to control
    return _answer(state, variant, active=True)


def assign(experiment_key: str, person_id: int) -> Assignment | None:
    """The person's variant of one experiment, or None (draft, unknown, or the person is not enrolled).

    Running: the hashed variant, control for variants stopped by a guardrail. Stopped: control for
    everyone. Concluded: the winner (control when none was declared) for everyone.
    """
    config = _configuration()
    state = config.experiments.get(experiment_key)
    return None if state is None else _assign(config, state, person_id)


def assignments_for(person_id: int, target_kind: str | None = None, target_key: str | None = None) -> list[Assignment]:
    """The person's variants in every running experiment (optionally those of one surface or campaign)."""
    config = _configuration()
    answers = []
    for state in config.experiments.values():
        if state.status != Status.RUNNING:
            continue
        if target_kind is not None and state.target_kind != target_kind:
            continue
        if target_key is not None and state.target_key != target_key:
            continue
        answer = _assign(config, state, person_id)
        if answer is not None:
            answers.append(answer)
    return sorted(answers, key=lambda a: a.experiment)


class UnknownVariant(ValueError):
    pass


class NotAssigned(ValueError):
    """An exposure to a variant the person was not assigned (or in an experiment they are not in)."""


def log_exposure(
    experiment_key: str, person_id: int, variant_key: str, at: datetime | None = None, *, assigned: bool = False
) -> bool:
    """Record that the person was shown ``variant_key``; True only for the first exposure.

    Ignored (False) when the experiment is not running, the variant was stopped by a guardrail,
    the person has already been exposed, or the person refused analytics. ``person_id`` must be
    an existing person. Raises ``UnknownVariant`` for a key the experiment does not have, and
    ``NotAssigned`` (counted on the experiment) for a variant the person is not assigned now;
    ``assigned=True`` is for callers that hold an assignment the service made earlier (a campaign
    message prepared before a weight change), which stays true for what was shown.
    """
    config = _configuration()
    state = config.experiments.get(experiment_key)
    if state is None or state.status != Status.RUNNING:
        return False
    variant = state.variants.get(variant_key)
    if variant is None:
        raise UnknownVariant(f"Experiment {experiment_key!r} has no variant {variant_key!r}.")
    if variant.stopped:
        return False
    if not assigned:
        current = _assign(config, state, person_id)
        if current is None or current.variant != variant_key:
            Experiment.objects.filter(pk=state.id).update(refused_exposures=F("refused_exposures") + 1)
            if current is None:
                raise NotAssigned(f"This person is not in experiment {experiment_key!r}.")
            raise NotAssigned(f"This person is assigned {current.variant!r}, not {variant_key!r}.")
    gate = f"experiments:exposed:{state.id}:{state.generation}:{person_id}"
    if not cache.add(gate, 1, timeout=EXPOSURE_GATE_SECONDS):
        return False
    try:
        if not profiles.has_consent(person_id, "analytics"):
            return False
        now = timezone.now()
        shown_at = min(at, now) if at is not None else now
        try:
            with transaction.atomic():
                Exposure.objects.create(
                    experiment_id=state.id,
                    variant_id=variant.id,
                    person_id=person_id,
                    generation=state.generation,
                    allocation_version=state.allocation_version,
                    first_exposed_at=shown_at,
                )
        except IntegrityError:
            return False  # exposed before (the gate had forgotten), or another process was first
        return True
    except Exception:
        cache.delete(gate)  # let the next exposure try again
        raise


def forget_local_configuration() -> None:
    """Drop this process's copy (tests; after restoring a database)."""
    global _local
    _local = None
