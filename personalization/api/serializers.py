from __future__ import annotations

import copy

from rest_framework import serializers


class QuerySerializer(serializers.Serializer):
    """A query string's flat fields, read on every serving request.

    DRF deep-copies a serializer's declared fields for each instance (re-running each field's
    constructor): about 0.3 ms for the surface query's ten fields, on a request that costs a few
    milliseconds. Flat fields hold no state that validation changes (binding sets attributes on the
    copy), so a shallow copy of each is enough. A subclass that adds a nested serializer or a list
    (a POST body's) gets DRF's deep copies back."""

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = self._declared_fields
        if any(isinstance(field, _NESTED) for field in declared.values()):
            return super().get_fields()
        return {name: copy.copy(field) for name, field in declared.items()}


_NESTED = (serializers.BaseSerializer, serializers.ListField, serializers.DictField)


class RecommendationQuerySerializer(QuerySerializer):
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
