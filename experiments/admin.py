from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from experiments import services
from experiments.models import Experiment, ExperimentChange, Exposure, Layer, ResultSnapshot, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["key", "name", "weight", "payload", "is_control", "position", "stopped_by_guardrail", "stop_reason"]
    readonly_fields = ["stopped_by_guardrail", "stop_reason"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Once started, weights change through the API or set_weights so that the buckets follow.
        return obj is None or obj.status == "draft"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.status == "draft"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.status == "draft"


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "status", "target_kind", "target_key", "primary_metric", "is_bandit", "started_at"]
    list_filter = ["status", "target_kind", "primary_metric", "is_bandit", "layer"]
    search_fields = ["key", "name", "description", "target_key"]
    readonly_fields = [
        "status",
        "results_page",
        "started_at",
        "started_by",
        "stopped_at",
        "stopped_by",
        "stop_reason",
        "concluded_at",
        "concluded_by",
        "winner_key",
        "baseline_source",
        "planned_sample_size",
        "mixture_variance",
        "salt",
        "generation",
        "allocation",
        "allocation_version",
        "allocation_history",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["owner"]
    inlines = [VariantInline]
    actions = ["start_selected", "stop_selected", "recompute_selected"]
    fieldsets = [
        (None, {"fields": ["key", "name", "description", "owner", "status", "results_page"]}),
        ("Target", {"fields": ["target_kind", "target_key", "unit", "traffic", "layer", "layer_share"]}),
        (
            "Metrics and plan",
            {
                "fields": [
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
                    "mixture_variance",
                    "attribution_window_days",
                    "pre_period_days",
                ]
            },
        ),
        ("Bandit", {"fields": ["is_bandit", "bandit_floor", "bandit_min_samples"]}),
        (
            "Lifecycle",
            {
                "fields": [
                    "started_at",
                    "started_by",
                    "stopped_at",
                    "stopped_by",
                    "stop_reason",
                    "concluded_at",
                    "concluded_by",
                    "winner_key",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
        (
            "Buckets",
            {
                "classes": ["collapse"],
                "fields": ["salt", "generation", "allocation_version", "allocation", "allocation_history"],
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None and obj.status != "draft":
            # How an experiment is measured and targeted is frozen once people have seen it.
            fields += [
                "key",
                "target_kind",
                "target_key",
                "unit",
                "traffic",
                "layer",
                "layer_share",
                "primary_metric",
                "minimum_detectable_effect",
                "alpha",
                "power",
                "baseline_mean",
                "baseline_sd",
                "attribution_window_days",
                "pre_period_days",
                "is_bandit",
                "bandit_floor",
                "bandit_min_samples",
            ]
        return fields

    @admin.display(description="results")
    def results_page(self, experiment: Experiment) -> str:
        if not experiment.pk:
            return "–"
        return format_html(
            '<a href="{}">Open the results page</a>', reverse("experiments:results", args=[experiment.key])
        )

    def save_model(self, request: HttpRequest, obj: Experiment, form: Any, change: bool) -> None:
        if not obj.salt:
            obj.salt = obj.key
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        experiment = form.instance
        if experiment.status == "draft":
            if not experiment.variants.filter(is_control=True).exists():
                first = experiment.variants.order_by("position", "id").first()
                if first is not None:
                    Variant.objects.filter(pk=first.pk).update(is_control=True)
            planned = services.plan(experiment)
            Experiment.objects.filter(pk=experiment.pk).update(
                planned_sample_size=planned.planned_sample_size,
                mixture_variance=planned.mixture_variance,
                baseline_source=planned.source,
            )

    @admin.action(description="Start the selected drafts")
    def start_selected(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._each(request, queryset, lambda e: services.start(e, request.user), "started")

    @admin.action(description="Stop the selected running experiments")
    def stop_selected(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._each(
            request, queryset, lambda e: services.stop(e, request.user, reason="Stopped in the admin."), "stopped"
        )

    @admin.action(description="Recompute the results now")
    def recompute_selected(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._each(request, queryset.exclude(status="draft"), services.record_results, "recomputed")

    def _each(self, request: HttpRequest, queryset: QuerySet[Experiment], act: Any, done: str) -> None:
        count = 0
        for experiment in queryset:
            try:
                act(experiment)
                count += 1
            except services.ExperimentError as error:
                self.message_user(request, f"{experiment.key}: {error.detail}", messages.ERROR)
        if count:
            self.message_user(request, f"{count} experiment(s) {done}.", messages.SUCCESS)


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "version", "updated_at"]
    search_fields = ["key", "name", "description"]
    list_filter = ["updated_at"]
    readonly_fields = ["slices", "version", "created_at", "updated_at"]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["experiment", "key", "name", "weight", "is_control", "stopped_by_guardrail"]
    list_filter = ["is_control", "stopped_by_guardrail", "experiment__status"]
    search_fields = ["key", "name", "experiment__key"]
    raw_id_fields = ["experiment"]
    readonly_fields = ["stopped_by_guardrail", "stopped_at", "stop_reason"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or obj.experiment.status == "draft"


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ["experiment", "variant", "person", "first_exposed_at", "generation", "allocation_version"]
    list_filter = ["experiment", "generation"]
    search_fields = ["experiment__key", "variant__key", "person__identities__value"]
    raw_id_fields = ["experiment", "variant", "person"]
    date_hierarchy = "first_exposed_at"
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of what happened


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(admin.ModelAdmin):
    list_display = ["experiment", "computed_at", "units", "verdict", "srm_mismatch", "generation"]
    list_filter = ["verdict", "srm_mismatch", "experiment"]
    search_fields = ["experiment__key", "decision"]
    raw_id_fields = ["experiment"]
    readonly_fields = ["experiment", "generation", "computed_at", "units", "srm_p_value", "srm_mismatch", "verdict"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExperimentChange)
class ExperimentChangeAdmin(admin.ModelAdmin):
    list_display = ["experiment", "action", "changed_by", "changed_at", "note"]
    list_filter = ["action", "changed_at"]
    search_fields = ["experiment__key", "note", "changed_by__username"]
    raw_id_fields = ["experiment", "changed_by"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit trail is append-only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
