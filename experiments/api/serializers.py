from __future__ import annotations

import math
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from rest_framework import serializers

from experiments.metrics import METRICS
from experiments.models import Experiment, Layer, MetricKey, TargetKind, Variant

KEY_PATTERN = r"^[-a-zA-Z0-9_]+$"


def key_field(help_text: str, **kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(KEY_PATTERN, max_length=100, help_text=help_text, **kwargs)


def metric_list(help_text: str) -> serializers.ListField:
    # Plain strings (checked in validate_*) rather than an enum: one choice set under three field
    # names would give the schema three names for it.
    return serializers.ListField(
        child=serializers.CharField(), required=False, help_text=f"{help_text} One or more of: {', '.join(METRICS)}."
    )


def _check_metrics(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value not in METRICS:
            raise serializers.ValidationError({str(index): [f"Unknown metric {value!r}."]})
    return values


class VariantInputSerializer(serializers.Serializer):
    key = key_field("Letters, digits, '-' and '_'; unique in the experiment.")
    name = serializers.CharField(max_length=200, required=False, default="")
    weight = serializers.FloatField(
        min_value=0, max_value=1000, default=1.0, help_text="Relative share of the enrolled people, 0 to 1000."
    )

    def validate_weight(self, value: float) -> float:
        if not math.isfinite(value):  # NaN passes the bounds: every comparison with it is false
            raise serializers.ValidationError("A finite number from 0 to 1000 is required.")
        return value

    payload = serializers.DictField(
        required=False,
        default=dict,
        help_text='What it changes: {"surface_version": 3}, {"model_version": "v7"}, {"template_variant": "b"}, '
        'or {"holdout": true} for the non-personalized experience.',
    )
    is_control = serializers.BooleanField(
        required=False, default=False, help_text="The baseline; the first variant unless another one says so."
    )


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["key", "name", "weight", "payload", "is_control", "stopped_by_guardrail", "stopped_at", "stop_reason"]
        read_only_fields = fields


class _SettingsSerializer(serializers.Serializer):
    """The settings a marketer chooses; shared by create (draft) and update."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, help_text="The hypothesis.")
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        help_text="User name of the owner, who is emailed when a guardrail stops a variant.",
    )
    target_kind = serializers.ChoiceField(choices=TargetKind.choices, required=False)
    target_key = serializers.CharField(max_length=200, required=False, allow_blank=True)
    primary_metric = serializers.ChoiceField(choices=MetricKey.choices, required=False)
    secondary_metrics = metric_list("Read beside the primary metric.")
    guardrail_metrics = metric_list("A variant that significantly harms one of these is stopped automatically.")
    minimum_detectable_effect = serializers.FloatField(
        min_value=0.001, max_value=10, required=False, help_text="Relative: 0.05 is a 5% change."
    )
    alpha = serializers.FloatField(min_value=0.0001, max_value=0.5, required=False)
    power = serializers.FloatField(min_value=0.5, max_value=0.999, required=False)
    baseline_mean = serializers.FloatField(
        required=False, allow_null=True, help_text="The primary metric today; empty: measured in the event log."
    )
    baseline_sd = serializers.FloatField(required=False, allow_null=True, min_value=0)
    is_bandit = serializers.BooleanField(required=False)
    bandit_floor = serializers.FloatField(min_value=0, max_value=0.5, required=False)
    bandit_min_samples = serializers.IntegerField(min_value=0, required=False)
    attribution_window_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    pre_period_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    traffic = serializers.FloatField(min_value=0.0001, max_value=1, required=False)
    layer = key_field(
        "Experiments of one layer never share a person; created on first use.", required=False, allow_blank=True
    )
    layer_share = serializers.FloatField(min_value=0.0001, max_value=1, required=False)

    def validate_secondary_metrics(self, value: list[str]) -> list[str]:
        return _check_metrics(value)

    def validate_guardrail_metrics(self, value: list[str]) -> list[str]:
        return _check_metrics(value)


class ExperimentCreateSerializer(_SettingsSerializer):
    key = key_field("Stable id used by serving, campaigns and the API.")
    variants = VariantInputSerializer(many=True, allow_empty=False)


class ExperimentUpdateSerializer(_SettingsSerializer):
    name = serializers.CharField(max_length=200, required=False)
    variants = VariantInputSerializer(many=True, required=False, help_text="Drafts only: replaces the variants.")
    weights = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1000),
        required=False,
        help_text="New weights by variant key (0 to 1000); while running only the people whose bucket must move move.",
    )


class ExperimentSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    started_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    stopped_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    concluded_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    layer: serializers.SlugRelatedField[Layer] = serializers.SlugRelatedField(
        slug_field="key", read_only=True, allow_null=True
    )
    variants = VariantSerializer(many=True, read_only=True)
    secondary_metrics = serializers.ListField(child=serializers.CharField(), read_only=True)
    guardrail_metrics = serializers.ListField(child=serializers.CharField(), read_only=True)
    results_url = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "key",
            "name",
            "description",
            "owner",
            "target_kind",
            "target_key",
            "unit",
            "status",
            "created_at",
            "updated_at",
            "started_at",
            "started_by",
            "stopped_at",
            "stopped_by",
            "stop_reason",
            "concluded_at",
            "concluded_by",
            "winner_key",
            "primary_metric",
            "secondary_metrics",
            "guardrail_metrics",
            "minimum_detectable_effect",
            "alpha",
            "power",
            "baseline_mean",
            "baseline_sd",
            "baseline_source",
            "planned_sample_size",
            "plan_warning",
            "refused_exposures",
            "is_bandit",
            "bandit_floor",
            "bandit_min_samples",
            "attribution_window_days",
            "pre_period_days",
            "traffic",
            "layer",
            "layer_share",
            "generation",
            "allocation_version",
            "variants",
            "results_url",
        ]
        read_only_fields = fields

    def get_results_url(self, experiment: Experiment) -> str:
        return f"/api/v1/experiments/{experiment.key}/results"


class StopSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ConcludeSerializer(serializers.Serializer):
    winner = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="The variant everyone gets from now on."
    )
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class RebucketSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class AssignmentQuerySerializer(serializers.Serializer):
    person = serializers.CharField(help_text="User id, anonymous id or email of the person.")
    target_kind = serializers.ChoiceField(choices=TargetKind.choices, required=False)
    target_key = serializers.CharField(required=False, help_text="Only experiments on this surface or campaign.")


class AssignmentSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    variant = serializers.CharField()
    payload = serializers.DictField(help_text="What to show: the variant's configuration.")
    is_control = serializers.BooleanField()
    is_holdout = serializers.BooleanField(help_text="The variant is the non-personalized experience.")
    active = serializers.BooleanField(help_text="Running: log an exposure where it is shown.")
    allocation_version = serializers.IntegerField()
    target_kind = serializers.CharField()
    target_key = serializers.CharField()


class AssignmentsSerializer(serializers.Serializer):
    person = serializers.CharField()
    known = serializers.BooleanField(help_text="False when no person has this id yet: nothing is assigned.")
    assignments = AssignmentSerializer(many=True)


class ExposureInputSerializer(serializers.Serializer):
    person = serializers.CharField(help_text="User id, anonymous id or email of the person who saw the variant.")
    variant = serializers.CharField(max_length=100, help_text="The variant that was shown.")
    timestamp = serializers.DateTimeField(required=False, help_text="When it was shown; now if omitted.")


class ExposureResultSerializer(serializers.Serializer):
    logged = serializers.BooleanField(help_text="True for the person's first exposure; repeats change nothing.")


class SrmSerializer(serializers.Serializer):
    checked = serializers.BooleanField()
    mismatch = serializers.BooleanField(help_text="p below the threshold: the split is too uneven to be chance.")
    p_value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(required=False)
    observed = serializers.DictField(child=serializers.IntegerField())
    expected = serializers.DictField(child=serializers.FloatField())


class DecisionSerializer(serializers.Serializer):
    variant = serializers.CharField(allow_null=True)
    verdict = serializers.CharField(
        help_text="wins, loses, ahead, behind, no_detectable_difference, sample_ratio_mismatch or waiting."
    )
    message = serializers.CharField(help_text="The plain-language reading.")
    days_remaining = serializers.IntegerField(allow_null=True, required=False)
    lift = serializers.FloatField(allow_null=True, required=False)
    reading = serializers.CharField(allow_null=True, required=False, help_text="sequential or fixed_horizon.")


class ResultVariantSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    is_control = serializers.BooleanField()
    weight = serializers.FloatField()
    stopped_by_guardrail = serializers.BooleanField()
    units = serializers.IntegerField(help_text="Exposed people.")


class GuardrailStateSerializer(serializers.Serializer):
    metric = serializers.CharField()
    variant = serializers.CharField()
    state = serializers.CharField(help_text="ok, harmed or collecting (fewer people than the guardrail needs).")
    stopped = serializers.BooleanField()
    relative_change = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)


class LiftPointSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    lift = serializers.DictField(
        child=serializers.DictField(), help_text="Per variant: lift, low, high of the primary metric."
    )


class ResultsSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    status = serializers.CharField()
    generation = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    primary_metric = serializers.CharField()
    control = serializers.CharField()
    units = serializers.IntegerField()
    planned_sample_size = serializers.IntegerField(allow_null=True)
    daily_units_per_variant = serializers.FloatField(allow_null=True)
    srm = SrmSerializer()
    variants = ResultVariantSerializer(many=True)
    metrics = serializers.DictField(
        child=serializers.DictField(),
        help_text="Per metric: summaries per variant and, per treatment, the fixed-horizon comparison, "
        "CUPED details and the sequential (always-valid) reading.",
    )
    decision = DecisionSerializer(allow_null=True)
    decisions = DecisionSerializer(many=True)
    guardrails = GuardrailStateSerializer(many=True)
    history = LiftPointSerializer(many=True, help_text="The primary metric's lift at each stored look.")


def settings_from(data: dict[str, Any]) -> dict[str, Any]:
    """Validated settings without the fields that are not experiment settings."""
    return {k: v for k, v in data.items() if k not in ("key", "variants", "weights", "layer")}
