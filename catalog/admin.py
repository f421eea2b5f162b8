from __future__ import annotations

from django.contrib import admin

from catalog.models import Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "title",
        "kind",
        "category",
        "brand",
        "price",
        "margin",
        "stock",
        "active",
        "updated_at",
    ]
    list_filter = ["kind", "active", "brand"]
    search_fields = ["external_id", "title", "category", "brand"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 50
    actions = ["activate", "deactivate"]

    @admin.action(description="Activate selected items")
    def activate(self, request, queryset):
        queryset.update(active=True)

    @admin.action(description="Deactivate selected items (never recommended)")
    def deactivate(self, request, queryset):
        queryset.update(active=False)
