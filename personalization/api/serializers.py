from __future__ import annotations

from rest_framework import serializers


class RecommendationQuerySerializer(serializers.Serializer):
    person = serializers.CharField(required=False, help_text="User id, anonymous id or email. Omit for cold start.")
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)
    kind = serializers.ChoiceField(
        choices=["product", "content", "feature"],
        required=False,
        default="product",
        help_text="Which kind of item to recommend.",
    )


class RecommendedItemSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()
    source = serializers.CharField(help_text="The candidate source: co-visited, popular…")  # type: ignore[assignment]
    reason = serializers.CharField(help_text="Why this item, in words a marketer can read.")


class RecommendationsSerializer(serializers.Serializer):
    recommendation_id = serializers.CharField()
    personalized = serializers.BooleanField(
        help_text="True only when the answer used the person's own events; false for an unknown person, "
        "without consent, or when nothing they did is known to the model."
    )
    personalized_by = serializers.ChoiceField(
        choices=["history"], allow_null=True, help_text='"history": the person\'s own events; null: not personal.'
    )
    items = RecommendedItemSerializer(many=True)
    degraded = serializers.BooleanField(help_text="True when the trained model could not be used (see the reason).")
    degraded_reason = serializers.CharField(help_text='Why, e.g. "model files of version 3 missing"; empty if not.')
