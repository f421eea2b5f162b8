from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import Item


class ItemSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(max_length=200, help_text="Your id for the item; unique.")
    attributes = serializers.DictField(required=False, help_text="Free-form attributes (colour, size, tags…).")

    class Meta:
        model = Item
        fields = [
            "external_id",
            "kind",
            "title",
            "description",
            "category",
            "brand",
            "price",
            "margin",
            "stock",
            "published_at",
            "active",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if "/" in value:
            raise serializers.ValidationError("Must not contain '/'.")
        if self.instance is not None and value != self.instance.external_id:
            raise serializers.ValidationError("The external id of an item cannot change.")
        return value


class ItemBatchSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.DictField(),
        max_length=1000,
        allow_empty=False,
        help_text="Up to 1,000 items; each is created or fully replaced by its external_id.",
    )


class ItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    attr = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    detail = serializers.CharField()


class ItemBatchResultSerializer(serializers.Serializer):
    upserted = serializers.IntegerField(help_text="Items created or replaced.")
    rejected = serializers.IntegerField()
    errors = ItemErrorSerializer(many=True)  # type: ignore[assignment]


def first_field_error(errors: dict[str, Any]) -> tuple[str, str, str]:
    """(field, code, message) of the first error a serializer reported."""
    field, messages = next(iter(errors.items()))
    message = messages[0] if isinstance(messages, list) else messages
    if isinstance(message, dict):  # nested, e.g. attributes
        inner, code, text = first_field_error(message)
        return f"{field}.{inner}", code, text
    return field, getattr(message, "code", "invalid"), str(message)
