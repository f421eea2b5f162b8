"""The model page (``/model/``): the active version, how fits went, the retraining schedule (edited
here, no admin needed), and, from the daily watch, how the active version is doing.

Seen with ``view_modelversion`` (Analyst, Administrator); the schedule and the drift rule are changed
with ``change_modelversion`` (Administrator), the permission that trains and activates versions.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from personalization import registry, retraining
from personalization.access import requires
from personalization.api.permissions import SEES_MODEL, TRAINS_MODEL, satisfied
from personalization.models import LoopChange, ModelVersion

RECENT_FITS = 12


class ScheduleForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Retrain on this schedule")
    hour = forms.IntegerField(min_value=0, max_value=23)
    minute = forms.IntegerField(min_value=0, max_value=59)
    days = forms.MultipleChoiceField(
        choices=retraining.DAYS,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one day."},
    )


def _schedule_form(data: Any = None) -> ScheduleForm:
    current = retraining.schedule()
    initial = {"enabled": current.enabled, "hour": current.hour, "minute": current.minute, "days": current.days}
    return ScheduleForm(data, initial=initial)


def _context(request: HttpRequest, schedule_form: ScheduleForm | None = None) -> dict[str, Any]:
    fits = list(ModelVersion.objects.order_by("-id")[:RECENT_FITS])
    return {
        "active": registry.active_version(),
        "schedule": retraining.schedule(),
        "schedule_form": schedule_form or _schedule_form(),
        "may_change": satisfied(request.user, TRAINS_MODEL),
        "fits": [(fit, retraining.outcome(fit)) for fit in fits],
        "problem": retraining.fit_problem(),
        "changes": LoopChange.objects.all()[:10],
    }


@require_GET
@requires(SEES_MODEL)
def model_page(request: HttpRequest) -> HttpResponse:
    return render(request, "personalization/model.html", _context(request))


@require_POST
@requires(TRAINS_MODEL)
def change_schedule(request: HttpRequest) -> HttpResponse:
    form = _schedule_form(request.POST)
    if not form.is_valid():
        return render(request, "personalization/model.html", _context(request, form), status=400)
    data = form.cleaned_data
    after = retraining.change_schedule(
        data["enabled"], data["hour"], data["minute"], list(data["days"]), by=request.user.get_username()
    )
    messages.success(request, f"Retraining schedule: {after.text}.")
    return HttpResponseRedirect("/model/")


def fit_alert(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the latest fit's failure or refusal, on every console page of those who see models."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not satisfied(user, SEES_MODEL):
        return {}
    try:
        problem = retraining.fit_problem()
    except DatabaseError:  # an error page must still render
        return {}
    if problem is None:
        return {}
    return {"fit_alert": {"version": problem, "text": retraining.outcome(problem)}}
