"""Experiments, their variants, layers, exposures, result snapshots and the audit trail.

The numbers live in the Django-free core (``assignment``, ``stats``, ``sequential``, ``bandits``,
``decision``); these rows hold the configuration that feeds it and the results it produced.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

# Keys that would collide with the API's own paths under /api/v1/experiments/.
RESERVED_KEYS = frozenset({"assignments", "layers", "new"})  # API paths, and the page that creates one


class MetricKey(models.TextChoices):
    CONVERSION = "conversion", "Conversion (share of units who bought)"
    REVENUE_PER_UNIT = "revenue_per_unit", "Revenue per unit"
    CLICK_THROUGH = "click_through", "Click-through of impressions"
    AVERAGE_ORDER_VALUE = "average_order_value", "Average order value"
    UNSUBSCRIBE_RATE = "unsubscribe_rate", "Unsubscribe rate"
    EMAIL_OPEN_RATE = "email_open_rate", "Email open rate"
    EMAIL_CLICK_RATE = "email_click_rate", "Email click rate"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    CONCLUDED = "concluded", "Concluded"


class TargetKind(models.TextChoices):
    SURFACE = "surface", "Surface"
    CAMPAIGN = "campaign", "Campaign"
    GLOBAL = "global", "Global"


class Unit(models.TextChoices):
    PERSON = "person", "Person"


class Layer(models.Model):
    """A namespace of mutually exclusive experiments: a person is in at most one running experiment of a layer.

    ``slices`` is an ``assignment.Allocation`` (as ``to_dict``) whose "variants" are experiment keys:
    the layer buckets each running experiment may use.
    """

    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    salt = models.CharField(max_length=200, help_text="Hashed with the person id to pick the layer bucket.")
    slices = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key


class Experiment(models.Model):
    key = models.SlugField(max_length=100, unique=True, help_text="Stable id used by serving, campaigns and the API.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="The hypothesis: what changes, for whom, and why.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments"
    )
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices, default=TargetKind.GLOBAL)
    target_key = models.CharField(max_length=200, blank=True, help_text="The surface or campaign key; blank if global.")
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.PERSON)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stop_reason = models.CharField(max_length=500, blank=True)
    concluded_at = models.DateTimeField(null=True, blank=True)
    concluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    winner_key = models.CharField(max_length=100, blank=True, help_text="The variant everyone gets once concluded.")

    primary_metric = models.CharField(max_length=32, choices=MetricKey.choices, default=MetricKey.CONVERSION)
    secondary_metrics = models.JSONField(default=list, blank=True)
    guardrail_metrics = models.JSONField(
        default=list, blank=True, help_text="A variant that significantly harms one of these is stopped automatically."
    )
    minimum_detectable_effect = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.001), MaxValueValidator(10)],
        help_text="The smallest relative change worth detecting (0.05 = 5%).",
    )
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)])
    power = models.FloatField(default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)])
    baseline_mean = models.FloatField(
        null=True, blank=True, help_text="The primary metric today (a rate for conversions); empty: from the event log."
    )
    baseline_sd = models.FloatField(null=True, blank=True, help_text="Its standard deviation per unit, for means.")
    baseline_source = models.CharField(max_length=16, blank=True, help_text="marketer, event_log, or empty.")
    planned_sample_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Units per variant from the power calculation."
    )
    mixture_variance = models.FloatField(
        null=True, blank=True, help_text="τ² of the sequential test of the primary metric, fixed at start."
    )
    plan_warning = models.CharField(
        max_length=500, blank=True, help_text="Set when the plan needs more people than the target can reach."
    )
    refused_exposures = models.PositiveIntegerField(
        default=0, help_text="Exposures refused because they named a variant the person was not assigned."
    )

    is_bandit = models.BooleanField(default=False)
    bandit_floor = models.FloatField(default=0.05, validators=[MinValueValidator(0), MaxValueValidator(0.5)])
    bandit_min_samples = models.PositiveIntegerField(default=100)
    attribution_window_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    pre_period_days = models.PositiveIntegerField(
        default=28,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Days before a person's first exposure whose activity is the CUPED covariate.",
    )

    traffic = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0001), MaxValueValidator(1)],
        help_text="Share of eligible people enrolled.",
    )
    layer = models.ForeignKey(Layer, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments")
    layer_share = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0001), MaxValueValidator(1)],
        help_text="Share of the layer's people this experiment may use.",
    )
    salt = models.CharField(max_length=220, blank=True)
    generation = models.PositiveIntegerField(default=0, help_text="How many times it was re-bucketed.")
    allocation = models.JSONField(default=dict, blank=True, help_text="Buckets per variant (assignment.Allocation).")
    allocation_version = models.PositiveIntegerField(default=0)
    allocation_history = models.JSONField(
        default=dict, blank=True, help_text="Effective share of each variant per allocation version, for the SRM check."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["target_kind", "target_key"])]

    def __str__(self) -> str:
        return self.name or self.key


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(0), MaxValueValidator(1000)], help_text="Relative share, 0 to 1000."
    )
    payload = models.JSONField(
        default=dict,
        blank=True,
        help_text='What it changes: {"surface_version": 3}, {"template_variant": "b"}, {"holdout": true}…',
    )
    is_control = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    stopped_by_guardrail = models.BooleanField(default=False)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_unique_key"),
            models.UniqueConstraint(fields=["experiment"], condition=Q(is_control=True), name="variant_one_control"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}:{self.key}"

    def clean(self) -> None:
        # The validators let NaN through (every comparison with it is false).
        if self.weight is not None and not math.isfinite(self.weight):
            raise ValidationError({"weight": "A finite number from 0 to 1000 is required."})


class Exposure(models.Model):
    """The first time a person was shown a variant of an experiment (in the current bucketing generation)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="exposures")
    person = models.ForeignKey("profiles.Person", on_delete=models.CASCADE, related_name="+")
    generation = models.PositiveIntegerField(default=0)
    allocation_version = models.PositiveIntegerField(default=0)
    first_exposed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "generation", "person"], name="exposure_once_per_person")
        ]
        indexes = [models.Index(fields=["experiment", "generation", "variant", "first_exposed_at"])]

    def __str__(self) -> str:
        return f"{self.person_id} saw {self.variant_id} at {self.first_exposed_at:%Y-%m-%d %H:%M}"


class ResultSnapshot(models.Model):
    """One look at an experiment's results; the series of them draws the lift-over-time chart."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    generation = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()
    units = models.PositiveIntegerField(default=0)
    srm_p_value = models.FloatField(null=True, blank=True)
    srm_mismatch = models.BooleanField(default=False)
    verdict = models.CharField(max_length=32, blank=True)
    decision = models.TextField(blank=True)
    data = models.JSONField(default=dict, help_text="Per-variant metrics, comparisons, sequential state and decisions.")

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["experiment", "generation", "computed_at"])]

    def __str__(self) -> str:
        return f"{self.experiment.key} at {self.computed_at:%Y-%m-%d %H:%M}"


class ChangeAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Settings changed"
    START = "start", "Started"
    STOP = "stop", "Stopped"
    CONCLUDE = "conclude", "Concluded"
    REBUCKET = "rebucket", "Re-bucketed"
    WEIGHTS = "weights", "Weights changed"
    GUARDRAIL_STOP = "guardrail_stop", "Variant stopped by a guardrail"
    BANDIT_REWEIGHT = "bandit_reweight", "Bandit re-weighted"


class ExperimentChange(models.Model):
    """Who changed what, and when; ``changed_by`` is empty for the scheduled jobs (guardrails, bandits)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=32, choices=ChangeAction.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(db_index=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Before and after, as the change saw them.")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.get_action_display()} at {self.changed_at:%Y-%m-%d %H:%M}"
