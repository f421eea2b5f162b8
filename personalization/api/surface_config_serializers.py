"""The surface configuration API's shapes: every setting of ``SurfaceConfig`` as a documented, validated
field, so a bad value is refused with the field named (``config.weights.margin``) before anything is
stored. The console's surface editor validates its forms with the same serializer.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.services import item_facts
from personalization.engine.candidates import SOURCES
from personalization.models import SurfaceKind
from personalization.reranking import RankingWeights
from personalization.surfaces import CONTEXT_KEYS, SurfaceConfig

WEIGHTS = tuple(RankingWeights.__dataclass_fields__)
MAX_WEIGHT = 100.0
MAX_LIST = 200


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming the first (a typo must not be silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [f"Unknown setting; known: {', '.join(sorted(self.fields))}."]}
                )
        return super().to_internal_value(data)


def _share(help_text: str, **kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(min_value=0.0, max_value=1.0, help_text=help_text, **kwargs)


def _weight(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(min_value=0.0, max_value=MAX_WEIGHT, required=False, help_text=help_text)


class WeightsSerializer(StrictSerializer):
    relevance = _weight("The ranker's score.")
    margin = _weight("Profit per unit.")
    freshness = _weight("Younger items score higher.")
    stock = _weight("Units in stock.")
    popularity = _weight("Recent purchases and views.")


class SourceQuotasSerializer(StrictSerializer):
    """How many candidates each source proposes before ranking (the engine's default when absent)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {source: serializers.IntegerField(min_value=0, max_value=1000, required=False) for source in SOURCES}


class ColdStartWhenSerializer(StrictSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {key: serializers.CharField(max_length=100, required=False) for key in CONTEXT_KEYS}


class ColdStartRuleSerializer(StrictSerializer):
    when = ColdStartWhenSerializer(help_text="Context values that must all match (country, device, referrer, …).")
    items = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=100, help_text="Shown first."
    )
    segment = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Ask for what is popular there, e.g. DE."
    )
    reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Shown with the rule's items."
    )


class SurfaceConfigSerializer(StrictSerializer):
    """A surface's configuration. On create, absent settings take their defaults; on PATCH, they keep
    their current values (``weights`` and ``source_quotas`` are merged key by key)."""

    size = serializers.IntegerField(min_value=1, max_value=100, required=False, help_text="Items per answer.")
    weights = WeightsSerializer(required=False, help_text="Non-negative; only their ratios matter.")
    in_stock_only = serializers.BooleanField(required=False)
    exclude_purchased = serializers.BooleanField(required=False, help_text="Never show what the person bought.")
    exclude_categories = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=MAX_LIST
    )
    exclude_items = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=MAX_LIST
    )
    max_share_per_category = _share("At most this share of the list from one category.", required=False)
    max_share_per_brand = _share("At most this share of the list from one brand.", required=False)
    min_share_outside_top_categories = _share(
        "At least this share from outside the person's two top categories.", required=False
    )
    exploration_share = _share("The chance that a slot explores new or little-shown items.", required=False)
    under_exposed_below = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, help_text="Fewer impressions than this: explorable."
    )
    new_item_days = serializers.FloatField(
        min_value=0.0, max_value=3650.0, required=False, help_text="Published within: counts as new."
    )
    source_quotas = SourceQuotasSerializer(required=False)
    curated_items = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=100,
        help_text="The default list (no consent, experiment holdouts, engine trouble), in order.",
    )
    cold_start = ColdStartRuleSerializer(many=True, required=False, help_text="First matching rule wins.")

    def validate_weights(self, value: dict[str, float]) -> dict[str, float]:
        if value and not any(v > 0 for v in value.values()):
            raise serializers.ValidationError("At least one weight must be positive.")
        return value

    def validate_curated_items(self, value: list[str]) -> list[str]:
        _known_items(value)
        return value

    def validate_cold_start(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for n, rule in enumerate(value):
            try:
                _known_items(rule.get("items", []))
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({str(n): {"items": exc.detail}}) from None
        return value


def _known_items(ids: list[str]) -> None:
    known = item_facts(ids)
    for n, item_id in enumerate(ids):
        if item_id not in known:
            raise serializers.ValidationError({str(n): [f"No item {item_id!r} in the catalogue."]})


def merged_config(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The current configuration with a partial change applied (dict settings merged key by key)."""
    merged = {**current, **change}
    for name in ("weights", "source_quotas"):
        if name in change:
            merged[name] = {**current.get(name, {}), **change[name]}
    if "weights" in change and not any(v > 0 for v in merged["weights"].values()):
        raise serializers.ValidationError({"config": {"weights": ["At least one weight must be positive."]}})
    return merged


def checked_config(data: dict[str, Any]) -> SurfaceConfig:
    """The whole configuration as serving will read it; what only the combination can break names ``config``."""
    from personalization.surfaces import SurfaceConfigError

    try:
        return SurfaceConfig.from_dict(data)
    except SurfaceConfigError as exc:
        field, _, detail = str(exc).partition(": ")
        raise serializers.ValidationError({"config": {field: [detail or str(exc)]}}) from None


class SurfaceVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    config = serializers.DictField(help_text="The configuration (see SurfaceConfig).")
    created_by = serializers.CharField(allow_blank=True, help_text="Who saved it.")
    created_at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)
    current = serializers.BooleanField(help_text="True for the version that serves now.")


class SurfaceSerializer(serializers.Serializer):
    key = serializers.SlugField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=SurfaceKind.choices)
    item_kinds = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField(allow_null=True, help_text="The version that serves now.")
    changed_by = serializers.CharField(allow_blank=True)
    changed_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    config = SurfaceConfigSerializer()


ITEM_KINDS = ("product", "content", "feature")
RESERVED_KEYS = ("new", "items")  # console paths under /surfaces/


class SurfaceCreateSerializer(StrictSerializer):
    key = serializers.SlugField(max_length=100, help_text="Used in the API: /api/v1/surfaces/KEY/recommendations.")
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=SurfaceKind.choices, default=SurfaceKind.GRID)
    item_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=ITEM_KINDS), default=lambda: ["product"], max_length=3, min_length=1
    )
    config = SurfaceConfigSerializer(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="Created")

    def validate_key(self, value: str) -> str:
        from personalization.models import Surface

        if value in RESERVED_KEYS:
            raise serializers.ValidationError(f"{value!r} is reserved by the console; choose another key.")
        if Surface.objects.filter(key=value).exists():
            raise serializers.ValidationError(f"A surface {value!r} exists already.")
        return value


class SurfaceUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    kind = serializers.ChoiceField(choices=SurfaceKind.choices, required=False)
    item_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=ITEM_KINDS), required=False, max_length=3, min_length=1
    )
    config = SurfaceConfigSerializer(required=False, help_text="Only the settings that change; a new version.")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, help_text="Why (kept with it).")


class RollbackSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=1, help_text="The version number whose configuration serves again.")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
