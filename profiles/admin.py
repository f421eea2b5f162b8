from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from profiles.erasure import erase_person_by_id
from profiles.models import (
    Consent,
    ConsentChange,
    ErasureReceipt,
    Event,
    Identity,
    OutboxEntry,
    Person,
    PersonMerge,
    Profile,
)


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    readonly_fields = ["created_at"]


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    readonly_fields = ["purpose", "granted", "source", "updated_at"]
    can_delete = False


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["id", "email", "created_at", "updated_at", "merged_into"]
    search_fields = ["identities__value", "traits"]
    list_filter = [("merged_into", admin.EmptyFieldListFilter), "created_at"]
    readonly_fields = ["created_at", "updated_at", "merged_into"]
    inlines = [IdentityInline, ConsentInline]

    @admin.display(description="email")
    def email(self, person: Person) -> str:
        return str((person.traits or {}).get("email", ""))

    # Deleting a person here is an erasure (profiles.erasure): everyone merged into them, every table,
    # every Redis copy, a receipt. A plain delete would leave merged-away people, impressions and copies.
    def has_delete_permission(self, request: HttpRequest, obj: Person | None = None) -> bool:
        return super().has_delete_permission(request, obj) and request.user.has_perm("profiles.erase_person")

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], list[str]]:
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected  # erase_person covers every row the erasure removes

    def delete_model(self, request: HttpRequest, obj: Person) -> None:
        erase_person_by_id(obj.pk, requested_by=f"admin:{request.user.get_username()}")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Person]) -> None:
        for person_id in list(queryset.values_list("pk", flat=True)):
            if Person.objects.filter(pk=person_id).exists():  # not already erased with someone before it
                erase_person_by_id(person_id, requested_by=f"admin:{request.user.get_username()}")


@admin.register(ErasureReceipt)
class ErasureReceiptAdmin(admin.ModelAdmin):
    list_display = ["id", "requested_by", "requested_at", "people"]
    readonly_fields = ["id", "requested_by", "requested_at", "people", "counts"]
    date_hierarchy = "requested_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # receipts come from erasures

    def has_change_permission(self, request: HttpRequest, obj: ErasureReceipt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ErasureReceipt | None = None) -> bool:
        return False  # the record that an erasure happened


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["value", "kind", "person", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value"]
    raw_id_fields = ["person"]


@admin.register(PersonMerge)
class PersonMergeAdmin(admin.ModelAdmin):
    list_display = ["source_person_id", "target", "events_moved", "reason", "merged_at"]
    search_fields = ["source_person_id", "target__id"]
    list_filter = ["reason"]
    raw_id_fields = ["target"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "kind", "name", "item_id", "person", "quantity", "price", "order_id"]
    list_filter = ["kind", "timestamp"]
    search_fields = ["message_id", "item_id", "order_id", "name"]
    raw_id_fields = ["person"]
    date_hierarchy = "timestamp"
    show_full_result_count = False  # counting a large event log on every page is slow


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["person", "purpose", "granted", "source", "updated_at"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["person__identities__value"]
    raw_id_fields = ["person"]


@admin.register(ConsentChange)
class ConsentChangeAdmin(admin.ModelAdmin):
    list_display = ["person", "purpose", "granted", "source", "recorded_by", "recorded_at"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["person__identities__value", "recorded_by"]
    raw_id_fields = ["person"]

    def has_change_permission(self, request, obj=None):
        return False  # history is append-only


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["person", "last_seen_at", "price_band", "typical_price", "computed_at"]
    list_filter = ["price_band"]
    search_fields = ["person__identities__value"]
    raw_id_fields = ["person"]
    readonly_fields = ["event_counts", "category_affinity", "brand_affinity", "computed_at"]


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    """Follow-up work waiting for the broker or Redis; the relay delivers and deletes it."""

    list_display = ["id", "action", "created_at", "attempts", "last_error"]
    list_filter = ["action"]
    readonly_fields = ["action", "payload", "created_at", "attempts", "last_error"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
