"""The console's journey pages: the list with status and counts; a journey as a vertical flow with
counts on each step, its words, and launch / pause / archive.

Marketers and Administrators build, launch and pause; Analysts read (``personalization.roles``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from journeys import counting, lifecycle, wording
from journeys.models import Journey
from personalization.access import requires

VIEW = "journeys.view_journey"
ADD = ("journeys.add_journey", "journeys.change_journey")
CHANGE = "journeys.change_journey"
LAUNCH = "journeys.launch_journey"
STATUS_TONES = {"draft": "", "live": "good", "paused": "warn", "archived": ""}
TEST_RUN_EVENTS = 5000  # the latest events of the person a test run reads
TEST_RUN_DAYS = 400
RESERVED_KEYS = {"new"}
DONE = {"launch": "launched", "pause": "paused", "archive": "archived"}
TRIGGER_TYPES = [
    ("event", "when they do an event"),
    ("event_count", "when an event reaches a count"),
    ("back_in_stock", "when an item they wanted is back in stock"),
    ("schedule", "on a schedule"),
]


def _journeys() -> Any:
    return Journey.objects.select_related("current_version", "owner")


# --- the list ------------------------------------------------------------------------------------


@require_GET
@requires(VIEW)
def journey_list(request: HttpRequest) -> HttpResponse:
    journeys = list(_journeys().order_by("name", "key"))
    totals = counting.totals(journeys)
    rows = [
        {
            "journey": j,
            "tone": STATUS_TONES.get(j.status, ""),
            "trigger": wording.trigger(j.current_version.definition["trigger"]) if j.current_version else "",
            "steps": len(j.current_version.definition["steps"]) if j.current_version else 0,
            "counts": totals.get(j.pk, {}),
            "total": sum(totals.get(j.pk, {}).values()),
        }
        for j in journeys
    ]
    return render(request, "journeys/list.html", {"rows": rows, "can_add": _may(request, ADD)})


def _may(request: HttpRequest, permissions: str | tuple[str, ...]) -> bool:
    wanted = (permissions,) if isinstance(permissions, str) else permissions
    return all(request.user.has_perm(p) for p in wanted)


# --- a journey -----------------------------------------------------------------------------------


def _flow_rows(journey: Journey) -> tuple[counting.Flow, list[dict[str, Any]]]:
    flow = counting.journey_flow(journey)
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    names = wording.step_names(steps)
    rows = [
        {"number": n, "step": step, "words": wording.step(step, names), "count": count}
        for n, (step, count) in enumerate(zip(steps, flow.steps, strict=True), start=1)
    ]
    return flow, rows


@require_GET
@requires(VIEW)
def journey_detail(request: HttpRequest, key: str) -> HttpResponse:
    journey = get_object_or_404(_journeys(), key=key)
    definition = journey.current_version.definition if journey.current_version else {}
    flow, rows = _flow_rows(journey)
    context = {
        "journey": journey,
        "tone": STATUS_TONES.get(journey.status, ""),
        "words": wording.summary(definition),
        "flow": flow,
        "rows": rows,
        "finished": flow.entries.get(counting.DONE, 0),
        "versions": journey.versions.all()[:20],
        "code": json.dumps(definition, indent=2, ensure_ascii=False),
        "can_change": False,
        "can_launch": _may(request, LAUNCH),
    }
    return render(request, "journeys/detail.html", context)


@require_GET
@requires(VIEW)
def journey_counts(request: HttpRequest, key: str) -> JsonResponse:
    """The flow's counts, for the page to refresh them in place."""
    journey = get_object_or_404(_journeys(), key=key)
    return JsonResponse({"status": journey.status, **counting.journey_flow(journey).as_dict()})


@require_POST
@requires(LAUNCH)
def journey_action(request: HttpRequest, key: str, action: str) -> HttpResponse:
    journey = get_object_or_404(_journeys(), key=key)
    acts = {"launch": lifecycle.launch, "pause": lifecycle.pause, "archive": lifecycle.archive}
    if action not in acts:
        raise Http404("Unknown action")
    try:
        acts[action](journey)
    except lifecycle.JourneyError as error:
        if error.field == "status":
            messages.error(
                request, f"The journey is {journey.get_status_display().lower()}: it cannot be {DONE[action]}."
            )
        else:
            messages.error(request, f"{error.field.removeprefix('definition.')}: {error.detail}")
    else:
        said = {
            "launch": "Live: its trigger enters people and due steps advance.",
            "pause": "Paused: nobody enters and no step runs; people wait where they are.",
            "archive": "Archived.",
        }
        messages.success(request, said[action])
    return HttpResponseRedirect(reverse("journeys:detail", args=[journey.key]))
