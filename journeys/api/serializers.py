from __future__ import annotations

from typing import Any

from rest_framework import serializers

from journeys.models import Journey

DEFINITION_HELP = (
    'The journey: {"trigger": {...}, "steps": [...], "exit_on": [...], "reentry": {...}, "holdout_share": 0.1}. '
    "Triggers: event, event_count, back_in_stock, schedule; steps: wait, branch, require_approval, send_email, "
    "exit. See docs/journeys.md."
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
    waiting = serializers.IntegerField(help_text="Active entries whose next step this is.")


class StepCountsSerializer(serializers.Serializer):
    entries = serializers.DictField(child=serializers.IntegerField(), help_text="Entries per state.")
    steps = StepCountSerializer(many=True)
