"""Browser pages for marketers: the experiments list and each experiment's results."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from experiments import creation, pages, services
from experiments.models import Experiment, MetricKey, ResultSnapshot, Status


@require_GET
@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def experiment_list(request: HttpRequest) -> HttpResponse:
    latest = ResultSnapshot.objects.filter(experiment=OuterRef("pk"), generation=OuterRef("generation")).order_by(
        "-computed_at", "-id"
    )
    experiments = (
        Experiment.objects.select_related("owner")
        .annotate(
            latest_decision=Subquery(latest.values("decision")[:1]),
            latest_units=Subquery(latest.values("units")[:1]),
            latest_srm=Subquery(latest.values("srm_mismatch")[:1]),
        )
        .order_by("-created_at", "-id")[:200]
    )
    rows = [{"experiment": e, "status": pages.status_badge(e.status)} for e in experiments]
    can_create = request.user.has_perm("experiments.add_experiment")
    return render(request, "experiments/list.html", {"rows": rows, "can_create": can_create})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("experiments.add_experiment", raise_exception=True)
def experiment_new(request: HttpRequest) -> HttpResponse:
    """Create a draft: settings, variants chosen from what the target has, the plan checked first."""
    form = creation.blank_form()
    checked = None
    if request.method == "POST":
        form, arguments = creation.read(request.POST)
        if arguments is not None:
            if request.POST.get("action") == "create":
                try:
                    experiment = creation.create(arguments, request.user)
                except services.ExperimentError as error:
                    form.errors[creation.field_of(error.attr, arguments["rows"])] = error.detail
                else:
                    messages.success(request, f"Draft {experiment.name} created; start it when the plan suits you.")
                    if experiment.plan_warning:
                        messages.warning(request, experiment.plan_warning)
                    return HttpResponseRedirect(reverse("experiments:results", args=[experiment.key]))
            if not form.errors:
                checked = creation.check_plan(arguments)
    status = 400 if form.errors else 200
    creation.attach_row_errors(form)
    context = {
        "form": form,
        "values": form.values,
        "errors": form.errors,
        "groups": creation.choices(),
        "metrics": MetricKey.choices,
        "plan": checked,
    }
    return render(request, "experiments/new.html", context, status=status)


@require_GET
@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def experiment_results(request: HttpRequest, key: str) -> HttpResponse:
    experiment = get_object_or_404(Experiment.objects.select_related("owner", "layer"), key=key)
    snapshot = services.latest_results(experiment)
    if snapshot is None and experiment.status != Status.DRAFT:
        snapshot = services.record_results(experiment)
    context = pages.results_context(experiment, snapshot, services.lift_history(experiment))
    return render(request, "experiments/results.html", context)


# The permission each button needs (personalization.Access holds the lifecycle ones; named, not imported).
ACTION_PERMISSIONS = {
    "recompute": "experiments.view_experiment",
    "start": "personalization.run_experiment",
    "stop": "personalization.run_experiment",
    "conclude": "personalization.conclude_experiment",
}


@require_POST
@login_required
def experiment_action(request: HttpRequest, key: str, action: str) -> HttpResponse:
    """The buttons of the results page: recompute, start, stop, conclude (with a winner)."""
    if not request.user.has_perm(ACTION_PERMISSIONS.get(action, "personalization.run_experiment")):
        raise PermissionDenied("Your role does not allow this action.")
    experiment = get_object_or_404(Experiment, key=key)
    try:
        if action == "recompute":
            services.record_results(experiment)
            messages.success(request, "Results recomputed.")
        elif action == "start":
            services.start(experiment, request.user)
            messages.success(request, "Started: people are being assigned.")
        elif action == "stop":
            services.stop(experiment, request.user, reason=request.POST.get("reason", ""))
            messages.success(request, "Stopped: everyone gets the control experience.")
        elif action == "conclude":
            winner = request.POST.get("winner") or None
            services.conclude(experiment, request.user, winner=winner)
            messages.success(request, f"Concluded; everyone gets {winner or 'the control'} from now on.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except services.ExperimentError as error:
        messages.error(request, error.detail)
    return HttpResponseRedirect(reverse("experiments:results", args=[experiment.key]))
