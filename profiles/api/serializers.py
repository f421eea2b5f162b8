"""Request and response shapes for the OpenAPI schema. Ingest messages are validated by
``profiles.segment`` (the hot path); these serializers document the same fields."""

from __future__ import annotations

from rest_framework import serializers

from profiles.models import Purpose


class MessageSerializer(serializers.Serializer):
    messageId = serializers.CharField(required=False, help_text="Unique per message; a replay is not stored twice.")
    anonymousId = serializers.CharField(required=False, help_text="Visitor id before sign-in.")
    userId = serializers.CharField(required=False, help_text="Your user id; userId or anonymousId is required.")
    context = serializers.DictField(required=False)  # type: ignore[assignment]
    timestamp = serializers.DateTimeField(required=False, help_text="When it happened; defaults to now.")
    sentAt = serializers.DateTimeField(required=False, help_text="When the client sent it, to correct its clock.")


class TrackSerializer(MessageSerializer):
    event = serializers.CharField(help_text="E.g. 'Product Viewed', 'Order Completed', 'Email Opened'.")
    properties = serializers.DictField(
        required=False, help_text="product_id/item_id, price, quantity; for orders: order_id and products[]."
    )


class IdentifySerializer(MessageSerializer):
    traits = serializers.DictField(required=False, help_text="email, name, plan, timezone, country…")


class PageSerializer(MessageSerializer):
    name = serializers.CharField(required=False)
    properties = serializers.DictField(required=False)


class BatchMessageSerializer(TrackSerializer):
    type = serializers.ChoiceField(choices=["track", "identify", "page", "screen"])
    event = serializers.CharField(required=False)
    traits = serializers.DictField(required=False)
    name = serializers.CharField(required=False)


class BatchSerializer(serializers.Serializer):
    batch = BatchMessageSerializer(many=True, help_text="Up to 500 messages.")
    context = serializers.DictField(required=False, help_text="Merged into each message's context.")  # type: ignore[assignment]
    sentAt = serializers.DateTimeField(required=False)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the message in the batch.")
    attr = serializers.CharField(help_text="The field at fault, e.g. batch.3.timestamp.")
    code = serializers.CharField()
    detail = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    accepted = serializers.IntegerField(help_text="New messages stored.")
    duplicates = serializers.IntegerField(help_text="Replays of messages already stored; not stored again.")
    rejected = serializers.IntegerField()
    errors = RejectionSerializer(many=True)  # type: ignore[assignment]


class ConsentStateSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    granted = serializers.BooleanField()
    source = serializers.CharField()  # type: ignore[assignment]
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Null when the default applies.")


class ConsentChangeSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    source = serializers.CharField()  # type: ignore[assignment]
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField()


class ConsentSerializer(serializers.Serializer):
    person = serializers.CharField(read_only=True)
    consents = ConsentStateSerializer(many=True, read_only=True)
    history = ConsentChangeSerializer(many=True, read_only=True)


class ConsentUpdateSerializer(serializers.Serializer):
    purposes = serializers.DictField(
        child=serializers.BooleanField(),
        help_text='Purpose → granted, e.g. {"personalization": false, "email_marketing": true}.',
    )
    source = serializers.CharField(max_length=200, required=False, default="api", help_text="Where it was given.")  # type: ignore[assignment]

    def validate_purposes(self, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(Purpose.values))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown purpose(s): {', '.join(unknown)}; use {', '.join(Purpose.values)}."
            )
        if not value:
            raise serializers.ValidationError("Name at least one purpose.")
        return value
