from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from campaigns import lifecycle
from campaigns.models import Account, ApprovalAction, Campaign, CampaignChange, Message


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "plan", "billing_day", "csm", "updated_at")
    list_filter = ("plan", "csm")
    search_fields = ("name", "external_id", "csm__username")
    autocomplete_fields = ("csm",)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        exclude: tuple[str, ...] = ()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        candidate = Campaign(**{k: v for k, v in cleaned.items() if k in {f.name for f in Campaign._meta.fields}})
        try:
            lifecycle.validate(candidate)
        except lifecycle.CampaignError as error:
            field = error.attr if error.attr in self.fields else None
            self.add_error(field, error.detail)
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "key", "channel", "status", "approval_policy", "audience_size", "launched_at")
    list_filter = ("status", "channel", "approval_policy")
    search_fields = ("name", "key", "description")
    readonly_fields = (
        "status",
        "holdout_experiment",
        "send_time_experiment",
        "launched_at",
        "launched_by",
        "prepared_at",
        "audience_size",
        "created_at",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: Campaign, form: forms.ModelForm, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in lifecycle.SETTINGS if name in form.cleaned_data}
        if change:
            saved = lifecycle.update_campaign(
                obj, {k: values[k] for k in form.changed_data if k in values}, request.user
            )
        else:
            saved = lifecycle.create_campaign(form.cleaned_data["key"], values, request.user)
        obj.pk = saved.pk


@admin.register(CampaignChange)
class CampaignChangeAdmin(admin.ModelAdmin):
    list_display = ("campaign", "action", "actor", "changed_at")
    list_filter = ("action",)
    search_fields = ("campaign__key", "campaign__name", "actor")
    readonly_fields = [f.name for f in CampaignChange._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ApprovalActionInline(admin.TabularInline):
    model = ApprovalAction
    extra = 0
    can_delete = False
    readonly_fields = ("action", "actor_name", "at", "note", "before", "after")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("campaign", "to_email", "account", "state", "reason", "variant", "scheduled_for", "sent_at")
    list_filter = ("state", "reason", "channel", "campaign")
    search_fields = ("to_email", "subject", "campaign__key", "account__name", "recommendation_id")
    raw_id_fields = ("person", "account", "campaign")
    readonly_fields = [f.name for f in Message._meta.fields if f.name not in ("id",)]
    inlines = [ApprovalActionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages are rendered by campaigns; decisions go through the approval queue


@admin.register(ApprovalAction)
class ApprovalActionAdmin(admin.ModelAdmin):
    list_display = ("message", "action", "actor_name", "at", "note")
    list_filter = ("action",)
    search_fields = ("actor_name", "note", "message__to_email", "message__campaign__key")
    raw_id_fields = ("message",)
    readonly_fields = [f.name for f in ApprovalAction._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
