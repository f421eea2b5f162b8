from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest

from personalization import audit, registry
from personalization.models import ApiKey, ModelVersion, Surface, SurfaceDailyStats, SurfaceVersion
from personalization.tasks import train_engine


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope"]
    actions = ["revoke", "rotate_identity_secret"]

    def get_fields(self, request, obj=None):
        if obj is not None and obj.scope == "ingest":
            return ["name", "scope", "identity_secret", "identity_secret_rotated_at"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return ["scope", "identity_secret", "identity_secret_rotated_at"] if obj else []

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = ApiKey.issue(obj.name, obj.scope, created_by=request.user)
        obj.pk, obj.key_hash, obj.prefix = key.pk, key.key_hash, key.prefix
        messages.warning(request, f"The new key is {raw} — copy it now; it is not shown again.")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        from personalization.api.authentication import forget_keys

        now = timezone.now()
        for key in queryset.filter(revoked_at__isnull=True):
            if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now) == 1:
                audit.record(
                    "keys",
                    "revoked",
                    str(key),
                    by=request.user,
                    target_id=key.pk,
                    before={"revoked": False},
                    after={"revoked": True},
                )
        forget_keys()

    @admin.action(description="Rotate the identity-verification secret of selected ingest keys")
    def rotate_identity_secret(self, request, queryset):
        from personalization.api.authentication import forget_keys
        from personalization.models import IDENTITY_SECRET_GRACE

        for key in queryset.filter(scope="ingest", revoked_at__isnull=True):
            key.rotate_identity_secret()
            audit.record(
                "keys",
                "rotated the identity secret",
                str(key),
                by=request.user,
                target_id=key.pk,
                note="the previous secret verifies for the grace period",
            )
        forget_keys()
        hours = int(IDENTITY_SECRET_GRACE.total_seconds() // 3600)
        messages.info(request, f"Rotated; tokens signed with the previous secret are accepted for {hours} hours.")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "holdout_ndcg", "progress", "stage", "created_at", "activated_at", "activated_by"]
    list_filter = ["status"]
    search_fields = ["id", "stage", "activated_by"]
    readonly_fields = ["data_read", "choices", *(f.name for f in ModelVersion._meta.fields)]
    actions = ["make_active", "train_new"]

    @admin.display(description="the data, as the fit read it")
    def data_read(self, version: ModelVersion) -> str:
        engine = (version.training or {}).get("engine") or {}
        regime = engine.get("regime")
        if not regime:
            return "–"
        clock = "real timestamps" if regime["has_time"] else "no timestamps: no time source or feature"
        repeats = (
            "re-consumption rare: a person's own items are never recommended"
            if regime["rare_repeats"]
            else "people re-consume: their own items are candidates"
        )
        return (
            f"{clock}; {repeats} ({regime['repeat_share']:.1%} of events repeat a pair); {regime['people']:,} people,"
            f" {regime['items']:,} items, {regime['events']:,} events, median {regime['events_per_person']:g} a person"
        )

    @admin.display(description="what the fit chose, on its validation lists")
    def choices(self, version: ModelVersion) -> str:
        engine = (version.training or {}).get("engine") or {}
        choice = engine.get("ranker_choice") or {}
        if not choice:
            return "–"
        parts = [f"training lists: {engine.get('lists', '?')} ({engine.get('groups', 0):,} lists)"]
        if "ease_lambda" in engine:
            figures = ", ".join(f"λ={k}: {v:.4f}" for k, v in (engine.get("ease_validation_ndcg") or {}).items())
            parts.append(f"EASE λ = {engine['ease_lambda']:g} over {engine.get('ease_items', 0):,} items ({figures})")
        elif engine.get("ease"):
            parts.append(f"EASE {engine['ease']}")
        ndcg = ", ".join(f"{k} {v:.4f}" for k, v in (choice.get("validation_ndcg") or {}).items())
        parts.append(
            f"ranking: {choice.get('chosen')} on {choice.get('validation_lists', 0):,} lists kept aside"
            + (f" (NDCG@20: {ndcg})" if ndcg else "")
            + (f"; {choice['why']}" if choice.get("why") else "")
        )
        if engine.get("candidates"):
            parts.append(f"serving ranks {engine['candidates']} candidates a person")
        return " · ".join(parts)

    @admin.display(description="hold-out NDCG@20")
    def holdout_ndcg(self, version: ModelVersion) -> str:
        score = (version.metrics or {}).get("holdout") or {}
        return f"{score['ndcg']:.4f}" if "ndcg" in score else "–"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Activate the selected version (roll back or forward)")
    def make_active(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = registry.activate(queryset.get(), by=str(request.user))
        except registry.ActivationRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Version {version.pk} now serves; every process switches within seconds.")

    @admin.action(description="Train a new version now")
    def train_new(self, request, queryset):
        version = ModelVersion.objects.create(requested_by=str(request.user))
        transaction.on_commit(lambda: train_engine.delay(version.pk))
        self.message_user(request, f"Version {version.pk} is training; its progress shows in this list.")


class SurfaceVersionInline(admin.TabularInline):
    model = SurfaceVersion
    extra = 0
    can_delete = False
    fields = ["number", "created_by", "created_at", "note", "config"]
    readonly_fields = ["number", "created_by", "created_at", "note", "config"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Surface)
class SurfaceAdmin(admin.ModelAdmin):
    """The versions below are the audit trail: who changed what, when; the action rolls back."""

    list_display = ["key", "name", "kind", "current_version", "created_at"]
    search_fields = ["key", "name"]
    inlines = [SurfaceVersionInline]
    readonly_fields = ["current_version"]
    actions = ["roll_back"]

    def save_model(self, request: HttpRequest, obj: Surface, form, change) -> None:
        from personalization import surfaces

        super().save_model(request, obj, form, change)
        if obj.current_version is None:
            surfaces.change_config(obj, {}, by=str(request.user), note="Created with the defaults")

    @admin.action(description="Roll back to the previous version")
    def roll_back(self, request, queryset):
        from personalization import surfaces

        for surface in queryset:
            current = surface.current_version.number if surface.current_version else 0
            if current < 2:
                self.message_user(request, f"{surface.key} has no earlier version.", messages.WARNING)
                continue
            version = surfaces.rollback(surface, current - 1, by=str(request.user))
            self.message_user(request, f"{surface.key} now serves version {version.number} (a copy of {current - 1}).")


@admin.register(SurfaceDailyStats)
class SurfaceDailyStatsAdmin(admin.ModelAdmin):
    list_display = ["surface", "day", "impressions", "clicks", "purchases", "ctr", "conversion_rate", "revenue"]
    list_filter = ["surface"]
    date_hierarchy = "day"

    @admin.display(description="click-through")
    def ctr(self, stats: SurfaceDailyStats) -> str:
        return f"{stats.click_through:.2%}"

    @admin.display(description="conversion")
    def conversion_rate(self, stats: SurfaceDailyStats) -> str:
        return f"{stats.conversion:.2%}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
