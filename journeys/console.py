"""The console's journey pages: the list with status and counts; a journey as a vertical flow with
counts on each step, its words, a test run for one person and launch / pause / archive; the builder
(new from a starter or blank, and edit), whose errors stand beside the field they name.

Marketers and Administrators build, launch and pause; Analysts read (``personalization.roles``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import conf as campaign_conf
from campaigns import people as campaign_people
from campaigns.account_people import account_key, billing_day
from campaigns.models import Campaign
from journeys import builder, counting, dry_run, lifecycle, measuring, segments, starters, wording
from journeys import definition as spec
from journeys.definition import INTEREST_KINDS, REENTRY_MODES, EventFacts
from journeys.entering import held_out
from journeys.models import Entry, EntryState, Journey, JourneyStatus
from personalization.access import requires
from profiles import services as profiles
from profiles.models import Event, Purpose

VIEW = "journeys.view_journey"
ADD = ("journeys.add_journey", "journeys.change_journey")
CHANGE = "journeys.change_journey"
LAUNCH = "journeys.launch_journey"
STATUS_TONES = {"draft": "", "live": "good", "paused": "warn", "archived": ""}
TEST_RUN_EVENTS = 5000  # the latest events of the person a test run reads
TEST_RUN_DAYS = 400
RESERVED_KEYS = {"new"}
DONE = {"launch": "launched", "pause": "paused", "archive": "archived"}
TRIGGER_LABELS = {
    "event": "when they do an event",
    "event_count": "when an event reaches a count",
    "audience": "when they come into a segment",
    "back_in_stock": "when an item they wanted is back in stock",
    "price_drop": "when an item they wanted drops in price",
    "schedule": "on a schedule",
}
# The definition's send options (window, from the CSM, instead of, picks), per-account counts and
# segments came with the update_surface step; the builder shows their fields when it has them.
EXTENDED = "update_surface" in spec.STEP_TYPES


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


def _test_run(journey: Journey, person_key: str) -> tuple[dry_run.Trace | None, str, str]:
    """(trace, problem, note about their entries now)."""
    person = profiles.find_person(person_key)
    if person is None:
        return None, f"No person is known by {person_key!r}.", ""
    if journey.current_version is None:
        return None, "This journey has no definition yet.", ""
    now = timezone.now()
    rows = list(
        Event.objects.filter(person_id=person.pk, timestamp__gte=now - timedelta(days=TEST_RUN_DAYS))
        .order_by("-timestamp", "-pk")
        .values_list("kind", "name", "item_id", "properties", "timestamp", "message_id", "position")[:TEST_RUN_EVENTS]
    )
    events = [
        EventFacts(person.pk, kind, name, item_id, dict(props or {}), at.timestamp(), message_id, position)
        for kind, name, item_id, props, at, message_id, position in rows
    ]
    traits = campaign_people.traits_of([person.pk]).get(person.pk, {})
    definition = journey.current_version.definition
    used = spec.segments_used(definition)
    facts = dry_run.Person(
        traits=traits,
        consents={s.purpose: s.granted for s in profiles.consent_states(person.pk)},
        zone=campaign_people.zone_of(traits, campaign_conf.default_timezone()),
        held_out=held_out(journey.key, person.pk, definition["holdout_share"]),
        segments=segments.segments_holding(person.pk, used, now),
        segment_since=segments.member_since(person.pk, used),
        billing_day=billing_day(account_key(traits)),
    )
    current = Entry.objects.filter(journey=journey, person=person).order_by("-entered_at", "-pk").first()
    note = ""
    if current is not None and current.state == EntryState.ACTIVE:
        note = f"They are in this journey now (entered {current.entered_at:%b %-d %H:%M}, next step {current.step})."
    elif current is not None:
        state = current.get_state_display().lower()
        note = f"They were in this journey ({state}, entered {current.entered_at:%b %-d %H:%M})."
    return dry_run.trace(definition, events, facts, now), "", note


def _flow_rows(journey: Journey) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The journey's measures (``step_measures``: the same numbers as the API) and a row per step."""
    measures = measuring.step_measures(journey)
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    names = wording.step_names(steps)
    rows = [
        {
            "number": n,
            "step": step,
            "label": builder.STEP_LABELS.get(step["type"], step["type"]),
            "words": wording.step(step, names),
            "count": count,
            "against": wording.against_holdout(count, measures["holdout"]),
        }
        for n, (step, count) in enumerate(zip(steps, measures["steps"], strict=True), start=1)
    ]
    return measures, rows


@require_GET
@requires(VIEW)
def journey_detail(request: HttpRequest, key: str) -> HttpResponse:
    journey = get_object_or_404(_journeys(), key=key)
    definition = journey.current_version.definition if journey.current_version else {}
    measures, rows = _flow_rows(journey)
    person_key = request.GET.get("person", "").strip() if request.user.has_perm("profiles.view_person") else ""
    trace, problem, note = _test_run(journey, person_key) if person_key else (None, "", "")
    context = {
        "journey": journey,
        "tone": STATUS_TONES.get(journey.status, ""),
        "words": wording.summary(definition),
        "flow": measures,
        "rows": rows,
        "finished": measures["entries"].get(counting.DONE, 0),
        "holdout": wording.against_holdout(measures["holdout"], measures["holdout"]),
        "conversion_days": measures["conversion_days"],
        "versions": journey.versions.all()[:20],
        "code": json.dumps(definition, indent=2, ensure_ascii=False),
        "person_key": person_key,
        "may_test": request.user.has_perm("profiles.view_person"),
        "trace": trace,
        "test_problem": problem,
        "test_note": note,
        "can_change": _may(request, CHANGE) and journey.status != JourneyStatus.ARCHIVED,
        "can_launch": _may(request, LAUNCH),
    }
    return render(request, "journeys/detail.html", context)


@require_GET
@requires(VIEW)
def journey_counts(request: HttpRequest, key: str) -> JsonResponse:
    """The journey's measures (as the API's ``measures``), for the page to refresh them in place."""
    journey = get_object_or_404(_journeys(), key=key)
    measures = measuring.step_measures(journey)
    words = {s["id"]: wording.against_holdout(s, measures["holdout"]) for s in measures["steps"]}
    journey_words = wording.against_holdout(measures["holdout"], measures["holdout"])
    return JsonResponse({"status": journey.status, **measures, "words": words, "journey_words": journey_words})


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


# --- the builder ---------------------------------------------------------------------------------


def _builder_context(form: builder.BuilderForm, **extra: Any) -> dict[str, Any]:
    definition = builder.to_definition(form)
    campaigns = list(Campaign.objects.order_by("name").values_list("key", "name"))
    known = {k for k, _ in campaigns}
    wanted = [r.get("campaign") for r in form.steps if r.get("type") == "send_email" and r.get("campaign")]
    missing = sorted({str(k) for k in wanted if k not in known})
    return {
        "form": form,
        "values": form.values,
        "errors": form.errors,
        "steps": form.step_rows(),
        "exits": form.exit_rows(),
        "words": wording.summary(definition),
        "trigger_types": [(t, TRIGGER_LABELS.get(t, t)) for t in spec.TRIGGERS],
        "step_types": [(t, builder.STEP_LABELS.get(t, t)) for t in spec.STEP_TYPES],
        "extended": EXTENDED,
        "surfaces": getattr(spec, "SURFACES", ()),
        "step_ids": form.step_ids,
        "campaigns": campaigns,
        "missing_campaigns": missing,
        "units": builder.UNITS,
        "weekdays": list(enumerate(wording.WEEKDAYS)),
        "interest_kinds": INTEREST_KINDS,
        "reentry_modes": [(m, wording.reentry({"mode": m})) for m in REENTRY_MODES],
        "purposes": Purpose.values,
        "code": json.dumps(definition, indent=2, ensure_ascii=False),
        **extra,
    }


def _refused(form: builder.BuilderForm, error: lifecycle.JourneyError) -> None:
    form.errors[builder.field_for(error.field)] = builder.error_text(error.field, error.detail)


def _free_key(key: str) -> str:
    candidate, n = key, 2
    while Journey.objects.filter(key=candidate).exists():
        candidate, n = f"{key}-{n}", n + 1
    return candidate


@require_http_methods(["GET", "POST"])
@requires(ADD)
def journey_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = builder.read_form(request.POST)
        if not request.POST.get("op"):
            key = form.values["key"]
            if key in RESERVED_KEYS:
                form.errors["key"] = f"The key {key!r} is reserved; choose another."
            else:
                try:
                    journey = lifecycle.create_journey(
                        key, form.values["name"], builder.to_definition(form), request.user.get_username(), request.user
                    )
                except lifecycle.JourneyError as error:
                    _refused(form, error)
                else:
                    messages.success(request, "Saved as a draft (version 1). Test it with a person, then launch it.")
                    return HttpResponseRedirect(reverse("journeys:detail", args=[journey.key]))
        return render(request, "journeys/builder.html", _builder_context(form, creating=True))
    chosen = request.GET.get("starter", "")
    if chosen == "blank":
        form = builder.from_definition(builder.BLANK, "", "")
    elif chosen:
        try:
            found = starters.starter(chosen)
        except KeyError:
            raise Http404("No such starter") from None
        form = builder.from_definition(found["definition"], _free_key(chosen), found["name"])
    else:
        cards = [{"key": k, **s, "words": wording.summary(s["definition"])} for k, s in starters.STARTERS.items()]
        return render(request, "journeys/new.html", {"starters": cards})
    return render(request, "journeys/builder.html", _builder_context(form, creating=True, starter=chosen))


@require_http_methods(["GET", "POST"])
@requires(CHANGE)
def journey_edit(request: HttpRequest, key: str) -> HttpResponse:
    journey = get_object_or_404(_journeys(), key=key)
    if journey.status == JourneyStatus.ARCHIVED:
        messages.error(request, "An archived journey cannot be changed.")
        return HttpResponseRedirect(reverse("journeys:detail", args=[journey.key]))
    if request.method == "POST":
        form = builder.read_form(request.POST)
        form.values["key"] = journey.key
        if not request.POST.get("op"):
            definition = builder.to_definition(form)
            changed = journey.current_version is None or definition != _as_form_sees(journey)
            try:
                lifecycle.change_journey(
                    journey,
                    name=form.values["name"],
                    definition=definition if changed else None,
                    actor=request.user.get_username(),
                )
            except lifecycle.JourneyError as error:
                _refused(form, error)
            else:
                journey.refresh_from_db()
                version = journey.current_version.number if journey.current_version else 0
                messages.success(
                    request,
                    f"Saved as version {version}." + (" People already in it finish their version." if changed else ""),
                )
                return HttpResponseRedirect(reverse("journeys:detail", args=[journey.key]))
    else:
        definition = journey.current_version.definition if journey.current_version else builder.BLANK
        form = builder.from_definition(definition, journey.key, journey.name)
    return render(request, "journeys/builder.html", _builder_context(form, creating=False, journey=journey))


def _as_form_sees(journey: Journey) -> dict[str, Any]:
    """The current definition as the form would post it back unchanged (to save no empty version)."""
    assert journey.current_version is not None
    current = builder.to_definition(builder.from_definition(journey.current_version.definition))
    return current
