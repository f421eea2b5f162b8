from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from personalization.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["scope"] if obj else []

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

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
