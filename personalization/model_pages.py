"""The model page (``/model/``): the active version, how fits went, the retraining schedule (edited
here, no admin needed), and, from the daily watch, how the active version is doing.

Seen with ``view_modelversion`` (Analyst, Administrator); the schedule and the drift rule are changed
with ``change_modelversion`` (Administrator), the permission that trains and activates versions.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from personalization import loop_charts, registry, retraining
from personalization.access import requires
from personalization.api.permissions import SEES_MODEL, TRAINS_MODEL, satisfied
from personalization.loop_charts import Value
from personalization.loop_stats import wilson
from personalization.models import DriftRule, LoopChange, ModelHealthSnapshot, ModelVersion

RECENT_FITS = 12
CHART_DAYS = 30


class ScheduleForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Retrain on this schedule")
    hour = forms.IntegerField(min_value=0, max_value=23)
    minute = forms.IntegerField(min_value=0, max_value=59)
    days = forms.MultipleChoiceField(
        choices=retraining.DAYS,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one day."},
    )


class DriftRuleForm(forms.ModelForm):
    class Meta:
        model = DriftRule
        fields = [
            "enabled",
            "unknown_item_share",
            "ndcg_drop",
            "ctr_drop",
            "min_answers",
            "baseline_days",
            "cooldown_hours",
        ]
        labels = {
            "enabled": "On",
            "unknown_item_share": "Unknown-item share",
            "ndcg_drop": "NDCG@20 drop",
            "ctr_drop": "Click-through drop",
            "min_answers": "Minimum answers",
            "baseline_days": "Baseline days",
            "cooldown_hours": "Cooldown hours",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("unknown_item_share", "ndcg_drop", "ctr_drop"):
            value = data.get(name)
            if value is not None and not 0 < value < 1:
                self.add_error(name, "A share between 0 and 1, e.g. 0.2 for 20%.")
        if data.get("baseline_days") is not None and not 1 <= data["baseline_days"] <= 60:
            self.add_error("baseline_days", "Between 1 and 60 days.")
        return data


def _schedule_form(data: Any = None) -> ScheduleForm:
    current = retraining.schedule()
    initial = {"enabled": current.enabled, "hour": current.hour, "minute": current.minute, "days": current.days}
    return ScheduleForm(data, initial=initial)


def _context(
    request: HttpRequest, schedule_form: ScheduleForm | None = None, drift_form: DriftRuleForm | None = None
) -> dict[str, Any]:
    fits = list(ModelVersion.objects.order_by("-id")[:RECENT_FITS])
    return {
        "active": registry.active_version(),
        "schedule": retraining.schedule(),
        "schedule_form": schedule_form or _schedule_form(),
        "drift_form": drift_form or DriftRuleForm(instance=DriftRule.current()),
        "may_change": satisfied(request.user, TRAINS_MODEL),
        "fits": [(fit, retraining.outcome(fit)) for fit in fits],
        "problem": retraining.fit_problem(),
        "changes": LoopChange.objects.all()[:10],
        **_watch(),
        "latency": feedback_latency(),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def feedback_latency() -> dict[str, Any]:
    """How long a click takes to reach (a) the next answer for that person and (b) the model's weights."""
    from django.conf import settings
    from django.utils import timezone

    now = timezone.now()
    latest = ModelHealthSnapshot.objects.order_by("-day").first()
    observed = (latest.latency if latest else {}) or {}
    schedule = retraining.schedule()
    next_run = schedule.next_run(now)
    active = registry.active_version()
    data_end = (active.training or {}).get("data_end") if active else None
    lag = None
    if active and active.activated_at and data_end is not None:
        # Demo and imported data may carry timestamps up to the moment of the fit, or past it.
        lag = max(active.activated_at.timestamp() - float(data_end), 0.0)
    fit_seconds = (active.training or {}).get("seconds") if active else None
    worst = None
    if next_run is not None:
        worst = (next_run - now).total_seconds() + float(fit_seconds or 0)
    return {
        "hot_profile_seconds": settings.HOT_PROFILE_SECONDS,
        "observed_day": latest.day if latest else None,
        "observed": observed,
        "median_wait": _duration(observed.get("median_seconds")),
        "p90_wait": _duration(observed.get("p90_seconds")),
        "schedule": schedule,
        "next_run": next_run,
        "until_next_run": _duration((next_run - now).total_seconds()) if next_run else None,
        "worst_case": _duration(worst),
        "fit_seconds": _duration(float(fit_seconds)) if fit_seconds is not None else "–",
        "active": active,
        "activation_lag": _duration(lag),
    }


def _pooled(snapshot: ModelHealthSnapshot, arm: str, metric: str) -> Value | None:
    """One arm's rate over every surface of the day, with its interval."""
    hits = n = 0
    for surface in (snapshot.online.get("surfaces") or {}).values():
        figures = (surface.get("arms") or {}).get(arm)
        if figures:
            hits += figures[metric]["hits"]
            n += figures[metric]["n"]
    if not n:
        return None
    rate = wilson(hits, n)
    return Value(snapshot.day, rate.value, rate.low, rate.high)


def _series(snapshots: list[ModelHealthSnapshot], pick: Any) -> list[Value]:
    values = []
    for snapshot in snapshots:
        value = pick(snapshot)
        if isinstance(value, Value):
            values.append(value)
        elif isinstance(value, int | float):
            values.append(Value(snapshot.day, float(value)))
    return values


def _watch() -> dict[str, Any]:
    snapshots = list(reversed(ModelHealthSnapshot.objects.order_by("-day")[:CHART_DAYS]))
    if not snapshots:
        return {"latest": None, "charts": []}
    first = snapshots[0].day
    activations = [
        (activated.date(), f"v{pk} activated")
        for pk, activated in ModelVersion.objects.filter(activated_at__date__gte=first).values_list(
            "pk", "activated_at"
        )
        if activated is not None
    ]
    active = registry.active_version()
    at_activation = ((active.metrics or {}).get("holdout") or {}).get("ndcg") if active else None
    charts = [
        loop_charts.daily_chart(
            "ctr",
            "Click-through of answers: personalized against curated",
            [
                (arm, _series(snapshots, lambda s, arm=arm: _pooled(s, arm, "ctr")))
                for arm in ("personalized", "curated")
            ],
            percent=True,
            markers=activations,
        ),
        loop_charts.daily_chart(
            "conversion",
            "Conversion of answers: personalized against curated",
            [
                (arm, _series(snapshots, lambda s, arm=arm: _pooled(s, arm, "conversion")))
                for arm in ("personalized", "curated")
            ],
            percent=True,
            markers=activations,
        ),
        loop_charts.daily_chart(
            "ndcg",
            "NDCG@20 on the days since training, against the figure at activation",
            [("recent days", _series(snapshots, lambda s: (s.offline or {}).get("ndcg")))],
            reference=(at_activation, f"at activation {at_activation:.4f}") if at_activation else None,
            markers=activations,
            empty_note=(
                "No figures yet: the active version is measured on the days after its training cut-off, and "
                "none has been watched since (the watch adds a day each night)."
            ),
        ),
        loop_charts.daily_chart(
            "shares",
            "Shares: item events on unknown items, people without history, degraded answers",
            [
                ("unknown items", _series(snapshots, lambda s: (s.data or {}).get("unknown_item_share"))),
                (
                    "people without history",
                    _series(snapshots, lambda s: (s.data or {}).get("people_without_history_share")),
                ),
                ("degraded answers", _series(snapshots, lambda s: (s.online or {}).get("degraded_share"))),
            ],
            percent=True,
            markers=activations,
        ),
        loop_charts.daily_chart(
            "events",
            "Events per day",
            [("events", _series(snapshots, lambda s: (s.data or {}).get("events")))],
            markers=activations,
        ),
    ]
    return {"latest": snapshots[-1], "charts": charts}


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


@require_POST
@requires(TRAINS_MODEL)
def change_drift_rule(request: HttpRequest) -> HttpResponse:
    form = DriftRuleForm(request.POST, instance=DriftRule.current())
    if not form.is_valid():
        return render(request, "personalization/model.html", _context(request, drift_form=form), status=400)
    with transaction.atomic():
        rule = form.save(commit=False)
        rule.updated_by = request.user.get_username()
        rule.save()
        LoopChange.objects.create(
            by=rule.updated_by, what="drift_rule", detail={name: form.cleaned_data[name] for name in form.fields}
        )
    messages.success(request, "Drift rule saved; the next daily watch judges by it.")
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
