from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeys.measuring import step_measures
from journeys.models import Journey, Segment

DEFINITION_HELP = (
    'The journey: {"trigger": {...}, "steps": [...], "exit_on": [...], "reentry": {...}, "holdout_share": 0.1}. '
    'Triggers: event, event_count (per person or account; over period_days or "period": "billing_cycle", the '
    "account's billing cycle), audience, back_in_stock, price_drop, schedule; steps: "
    "wait, branch, require_approval, send_email, update_surface, exit. See docs/journeys.md."
)


class JourneySerializer(serializers.ModelSerializer):
    key = serializers.SlugField(max_length=100, help_text="Stable id, used in URLs and in messages.")
    name = serializers.CharField(max_length=200)
    status = serializers.CharField(read_only=True, help_text="draft, live, paused or archived.")
    definition = serializers.SerializerMethodField(help_text=DEFINITION_HELP)
    version = serializers.SerializerMethodField(help_text="The number of the current version.")

    class Meta:
        model = Journey
        fields = ["key", "name", "status", "version", "definition", "created_at", "updated_at", "launched_at"]
        read_only_fields = ["created_at", "updated_at", "launched_at"]

    def get_definition(self, journey: Journey) -> dict[str, Any]:
        return dict(journey.current_version.definition) if journey.current_version else {}

    def get_version(self, journey: Journey) -> int:
        return journey.current_version.number if journey.current_version else 0


class JourneyCreateSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=100, help_text="Stable id, used in URLs and in messages.")
    name = serializers.CharField(max_length=200)
    definition = serializers.JSONField(help_text=DEFINITION_HELP)


class JourneyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    definition = serializers.JSONField(required=False, help_text=DEFINITION_HELP + " A change adds a version.")


class StepCountSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    ran = serializers.IntegerField(help_text="Entries that ran this step.")
    waiting = serializers.IntegerField(help_text="Active entries held at this step now (in its wait).")


class StepCountsSerializer(serializers.Serializer):
    entries = serializers.DictField(child=serializers.IntegerField(), help_text="Entries per state.")
    steps = StepCountSerializer(many=True)


class StepMeasureSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    entered = serializers.IntegerField(help_text="Entries that reached this step (ran it, or wait to run the first).")
    waiting = serializers.IntegerField(help_text="Active entries held at this step now (in its wait).")
    moved_on = serializers.IntegerField(help_text="Entries that went past this step, to the next one or the end.")
    exited = serializers.IntegerField(help_text="Entries that left the journey here (an exit event, an exit step).")
    exited_by_reason = serializers.DictField(child=serializers.IntegerField(), help_text="Exits here by reason.")
    finished = serializers.IntegerField(help_text="Of those that moved on, entries that ended the journey after it.")
    outcomes = serializers.DictField(child=serializers.IntegerField(), help_text="A branch: entries per then / else.")
    converted = serializers.IntegerField(help_text="Of those that reached it, entries that bought within the days.")
    revenue = serializers.FloatField(help_text="What those entries spent (price × quantity of their purchases).")
    conversion_rate = serializers.FloatField(allow_null=True, help_text="Converted / entered.")
    revenue_per_entry = serializers.FloatField(allow_null=True, help_text="Revenue / entered.")
    conversion_lift = serializers.FloatField(allow_null=True, help_text="Conversion rate minus the holdout's.")
    conversion_lift_interval = serializers.ListField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="95% interval (two-proportion z)."
    )
    revenue_lift = serializers.FloatField(allow_null=True, help_text="Revenue per entry minus the holdout's.")
    revenue_lift_interval = serializers.ListField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="95% interval (Welch)."
    )


class HoldoutComparisonSerializer(serializers.Serializer):
    entries = serializers.IntegerField(help_text="Entries that went through the journey.")
    held_out = serializers.IntegerField(help_text="Entries held out (nothing sent).")
    conversion_rate = serializers.FloatField(allow_null=True)
    holdout_conversion_rate = serializers.FloatField(allow_null=True)
    revenue_per_entry = serializers.FloatField(allow_null=True)
    holdout_revenue_per_entry = serializers.FloatField(allow_null=True)
    conversion_lift = serializers.FloatField(allow_null=True, help_text="Conversion rate minus the holdout's.")
    conversion_lift_interval = serializers.ListField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="95% interval (two-proportion z)."
    )
    revenue_lift = serializers.FloatField(allow_null=True, help_text="Revenue per entry minus the holdout's.")
    revenue_lift_interval = serializers.ListField(
        child=serializers.FloatField(allow_null=True), allow_null=True, help_text="95% interval (Welch)."
    )


class JourneyMeasuresSerializer(serializers.Serializer):
    conversion_days = serializers.IntegerField(help_text="A purchase within this many days of entering converts.")
    entries = serializers.DictField(child=serializers.IntegerField(), help_text="Entries per state.")
    total = serializers.IntegerField(help_text="Every entry, held out or not.")
    steps = StepMeasureSerializer(many=True)
    holdout = HoldoutComparisonSerializer()


class JourneyDetailSerializer(JourneySerializer):
    measures = serializers.SerializerMethodField(
        help_text="Per step: entered, waiting, moved on, exited (why), converted, revenue; and against the holdout."
    )

    class Meta(JourneySerializer.Meta):
        fields = [*JourneySerializer.Meta.fields, "measures"]

    @extend_schema_field(JourneyMeasuresSerializer)
    def get_measures(self, journey: Journey) -> dict[str, Any]:
        return JourneyMeasuresSerializer(step_measures(journey)).data


class SegmentSerializer(serializers.ModelSerializer):
    key = serializers.SlugField(max_length=100, read_only=True, help_text="Used in definitions: audience, segment.")
    rule = serializers.JSONField(help_text='An audience rule, as a campaign\'s: {"all": [{"field", "op", "value"}]}.')

    class Meta:
        model = Segment
        fields = ["key", "name", "rule", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
