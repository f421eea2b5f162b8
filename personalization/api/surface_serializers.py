from __future__ import annotations

from rest_framework import serializers

from personalization.api.serializers import QuerySerializer


class SurfaceQuerySerializer(QuerySerializer):
    person = serializers.CharField(required=False, help_text="User id or email. Omit for an unknown visitor.")
    anonymous_id = serializers.CharField(required=False, help_text="The browser's anonymous id, when not signed in.")
    person_token = serializers.CharField(
        required=False,
        max_length=200,
        help_text="With the ingest key, `person` (a user id) needs this token, signed by your backend "
        "(docs/security.md).",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=100, help_text="Default: the surface's size."
    )
    item = serializers.CharField(required=False, help_text="The item on screen now (product page).")
    country = serializers.CharField(required=False, help_text="Context for cold start, e.g. DE.")
    device = serializers.CharField(required=False)
    referrer = serializers.CharField(required=False)
    interest = serializers.CharField(required=False, help_text="A declared interest.")
    role = serializers.CharField(required=False, help_text="A declared role (onboarding surfaces).")


class SessionEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["view", "add_to_cart", "purchase"], default="view")
    item_id = serializers.CharField()


class SurfaceRequestSerializer(SurfaceQuerySerializer):
    cart = serializers.ListField(child=serializers.CharField(), required=False, default=list, max_length=200)
    recent_events = SessionEventSerializer(
        many=True, required=False, default=list, help_text="This session's events, oldest first."
    )
    context = serializers.DictField(  # type: ignore[assignment]
        required=False, default=dict, help_text="country, device, referrer, interest, role"
    )


class ServedItemSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField(help_text="The surface's weighted score, in [0, 1].")
    source = serializers.CharField(help_text="The candidate source, curated, popular or exploring.")  # type: ignore[assignment]
    reason = serializers.CharField(help_text="Why this item, in words a marketer can read.")
    exploring = serializers.BooleanField()


class SurfaceAnswerSerializer(serializers.Serializer):
    recommendation_id = serializers.CharField(help_text="Send it back with clicks and purchases to attribute them.")
    surface = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="The surface configuration version that answered.")
    strategy = serializers.ChoiceField(choices=["personalized", "cold_start", "curated", "popular"])
    personalized = serializers.BooleanField(
        help_text="True only when the answer used the person's own events or this session's context."
    )
    personalized_by = serializers.ChoiceField(
        choices=["history", "session"],
        allow_null=True,
        help_text='"history": the person\'s own events; "session": this visit\'s items or context; null: neither.',
    )
    degraded = serializers.BooleanField(help_text="True when a fallback answered (no model, cache down…).")
    degraded_reason = serializers.CharField(allow_blank=True)
    model_version = serializers.IntegerField(allow_null=True)
    experiment = serializers.CharField(allow_blank=True)
    variant = serializers.CharField(allow_blank=True)
    items = ServedItemSerializer(many=True)


class PopularQuerySerializer(QuerySerializer):
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)
    kind = serializers.ChoiceField(choices=["product", "content", "feature"], default="product")


class PopularAnswerSerializer(serializers.Serializer):
    personalized = serializers.BooleanField(help_text="Always false: the same list for everyone.")
    items = ServedItemSerializer(many=True)
