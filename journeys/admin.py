from __future__ import annotations

from django.contrib import admin

from journeys.models import Entry, Journey, JourneyVersion, Segment, StepRun, SurfacePin


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "status", "current_version", "launched_at")
    list_filter = ("status",)
    search_fields = ("key", "name")
    readonly_fields = ("current_version", "launched_at")


@admin.register(JourneyVersion)
class JourneyVersionAdmin(admin.ModelAdmin):
    list_display = ("journey", "number", "created_by", "created_at")
    readonly_fields = ("journey", "number", "definition", "watched", "created_by", "created_at", "note")


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ("journey", "person", "occurrence", "state", "step", "due_at", "entered_at")
    list_filter = ("state", "journey")
    raw_id_fields = ("person",)
    readonly_fields = ("journey", "version", "person", "occurrence", "entered_at", "context")


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    list_display = ("entry", "step", "kind", "outcome", "message_id", "ran_at")
    list_filter = ("kind",)
    raw_id_fields = ("entry",)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "updated_at")
    search_fields = ("key", "name")


@admin.register(SurfacePin)
class SurfacePinAdmin(admin.ModelAdmin):
    list_display = ("person", "surface", "item_id", "pinned_at")
    list_filter = ("surface",)
    raw_id_fields = ("person", "entry")
