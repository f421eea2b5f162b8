"""The console's people pages: search, one person, their export and erasure, and the consent overview.

Who may read whom is the API's rule (``profiles/api/people.py``): ``profiles.view_person`` reads
everyone; a CSM's ``campaigns.view_account_people`` reads the people of the accounts they manage and
gets 404 for anyone else, as for a person who does not exist. Export and erasure call the services
behind ``GET /api/v1/people/<key>/export`` and ``DELETE /api/v1/people/<key>`` and need
``profiles.export_person`` / ``profiles.erase_person``; both ask for a confirmation first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from campaigns import conf as campaign_conf
from campaigns.account_people import READ_ACCOUNT_PEOPLE, account_key, managed_people, manages_person
from campaigns.models import Message
from personalization.access import requires
from personalization.api.permissions import ERASE_PERSON, EXPORT_PERSON, PREVIEW, SEES_MESSAGES, AnyOf, satisfied
from personalization.models import Surface
from personalization.surface_serving import ServedAnswer, ServeRequest, UnknownSurface, serve
from profiles import consent_overview, erasure, export, person_page
from profiles.models import ErasureReceipt, Person, Purpose
from profiles.people_search import describe_people, search_people
from profiles.recent import recent_activity
from profiles.share_chart import share_chart

logger = logging.getLogger(__name__)

READ_PEOPLE = AnyOf("profiles.view_person", READ_ACCOUNT_PEOPLE)
SURFACE_PREVIEW_ITEMS = 8
MESSAGES_SHOWN = 50


def _page_number(request: HttpRequest, name: str = "page") -> int:
    try:
        return max(1, min(int(request.GET.get(name, "1")), 10_000))
    except ValueError:
        return 1


def _reads_everyone(user: Any) -> bool:
    return bool(user.has_perm("profiles.view_person"))


def _readable_person(request: HttpRequest, pk: int) -> Person:
    """The person, or 404: unknown, or (for a CSM) outside the accounts they manage."""
    person = Person.objects.filter(pk=pk).first()
    if person is None:
        raise Http404("No such person.")
    if not _reads_everyone(request.user) and not manages_person(request.user, person.pk, person.traits):
        raise Http404("No such person.")
    return person


def _survivor(person: Person) -> Person:
    seen = {person.pk}
    while person.merged_into_id is not None and person.merged_into_id not in seen:
        seen.add(person.merged_into_id)
        person = Person.objects.get(pk=person.merged_into_id)
    return person


@require_GET
@requires(READ_PEOPLE)
def people_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    within = None if _reads_everyone(request.user) else managed_people(request.user)
    results = search_people(query, _page_number(request), within=within)
    if within is not None:
        traits = dict(Person.objects.filter(pk__in=[r.person_id for r in results.rows]).values_list("pk", "traits"))
        results.rows = [r for r in results.rows if manages_person(request.user, r.person_id, traits.get(r.person_id))]
    receipt = None
    if request.GET.get("receipt") and request.user.has_perm(ERASE_PERSON):
        try:
            receipt = ErasureReceipt.objects.filter(pk=request.GET["receipt"]).first()
        except Exception:  # not a UUID
            receipt = None
    return render(
        request,
        "profiles/people.html",
        {
            "results": results,
            "query": results.query,
            "receipt": receipt,
            "sees_consent": request.user.has_perm("profiles.view_consent"),
        },
    )


@dataclass
class SurfaceAnswer:
    key: str
    name: str
    answer: ServedAnswer | None
    problem: str = ""


def _surface_answers(person_id: int) -> list[SurfaceAnswer]:
    """What each surface gives the person now, by the function the surface preview and the API use."""
    answers = []
    for surface in Surface.objects.order_by("key"):
        try:
            answer = serve(
                ServeRequest(surface=surface.key, person_id=person_id, log=False, limit=SURFACE_PREVIEW_ITEMS)
            )
            answers.append(SurfaceAnswer(surface.key, surface.name, answer))
        except UnknownSurface:
            answers.append(SurfaceAnswer(surface.key, surface.name, None, "No live version."))
        except Exception as exc:  # one failing surface does not take the page down
            logger.exception("Person page: surface %s failed", surface.key)
            answers.append(SurfaceAnswer(surface.key, surface.name, None, f"Failed: {type(exc).__name__}"))
    return answers


def _segments(person: Person) -> list[tuple[str, str]]:
    traits = person.traits if isinstance(person.traits, dict) else {}
    found = []
    trait = campaign_conf.segment_trait()
    if traits.get(trait) not in (None, ""):
        found.append((f"Campaign segment ({trait})", str(traits[trait])))
    try:
        activity = recent_activity(person.pk, kinds=("view",), limit=1, keep=False)
    except Exception:  # Redis away: the segment is a detail, not worth a failed page
        activity = None
    country = (activity.country if activity else None) or traits.get("country")
    if country:
        found.append(("Popularity segment (country)", str(country)))
    account = account_key(traits)
    if account:
        found.append(("Account", account))
    return found


def _messages_of(request: HttpRequest, person_ids: list[int]) -> list[Message]:
    found = Message.objects.filter(person_id__in=person_ids).select_related("campaign", "account")
    if not _reads_everyone(request.user):
        found = found.filter(account__csm_id=request.user.pk)
    return list(found.order_by("-created_at", "-id")[:MESSAGES_SHOWN])


@require_GET
@requires(READ_PEOPLE)
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = _readable_person(request, pk)
    survivor = _survivor(person)
    if survivor.pk != person.pk:
        messages.info(request, f"Person {person.pk} was merged into person {survivor.pk}; showing them.")
        return HttpResponseRedirect(reverse("people:person", args=[survivor.pk]))
    facts = person_page.person_facts(person.pk)
    timeline = person_page.timeline(facts.person_ids, _page_number(request, "events"))
    previews = request.user.has_perm(PREVIEW)
    row = next(iter(describe_people([person.pk])), None)
    return render(
        request,
        "profiles/person.html",
        {
            "person": person,
            "row": row,
            "facts": facts,
            "traits": sorted((person.traits or {}).items()) if isinstance(person.traits, dict) else [],
            "segments": _segments(person),
            "timeline": timeline,
            "campaign_messages": _messages_of(request, facts.person_ids),
            "links_messages": satisfied(request.user, SEES_MESSAGES),
            "previews": previews,
            "surfaces": _surface_answers(person.pk) if previews else [],
            "may_export": request.user.has_perm(EXPORT_PERSON),
            "may_erase": request.user.has_perm(ERASE_PERSON),
        },
    )


@require_http_methods(["GET", "POST"])
@requires(EXPORT_PERSON)
def person_export(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what the export holds and a button; POST (confirmed): the export as a JSON download."""
    person = _readable_person(request, pk)
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            messages.error(request, "Confirm the export first.")
            return HttpResponseRedirect(reverse("people:export", args=[person.pk]))
        response = StreamingHttpResponse(
            (piece.encode() for piece in export.export_person(person)), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="person-{person.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response  # type: ignore[return-value]  # streamed: a download of any size
    return render(request, "profiles/person_export.html", {"person": person, "summary": export.person_summary(person)})


@require_http_methods(["GET", "POST"])
@requires(ERASE_PERSON)
def person_erase(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what will be removed, and the confirmation; POST (confirmed): erase, then the receipt."""
    person = _readable_person(request, pk)
    summary = export.person_summary(person)
    if request.method == "POST":
        if request.POST.get("confirm") != "erase":
            return render(
                request,
                "profiles/person_erase.html",
                {"person": person, "summary": summary, "error": "Tick the box to confirm the erasure."},
                status=400,
            )
        try:
            receipt = erasure.erase_person_by_id(person.pk, requested_by=f"user:{request.user.get_username()}")
        except erasure.PersonNotFound:
            raise Http404("No such person.") from None
        messages.success(request, f"Person {person.pk} was erased with everyone merged into them.")
        return HttpResponseRedirect(f"{reverse('people:search')}?receipt={receipt.pk}")
    return render(request, "profiles/person_erase.html", {"person": person, "summary": summary})


@require_GET
@requires("profiles.view_consent")
def consent_page(request: HttpRequest) -> HttpResponse:
    purpose = request.GET.get("purpose", "")
    error = ""
    if purpose and purpose not in Purpose.values:
        error = f"purpose: {purpose!r} is not one of {', '.join(Purpose.values)}."
        purpose = ""
    days, shares = consent_overview.daily_shares(days=90)
    chart = share_chart(days, [(p, label, shares[p]) for p, label in Purpose.choices])
    changes, has_next = consent_overview.recent_changes(purpose or None, _page_number(request))
    return render(
        request,
        "profiles/consent.html",
        {
            "now": consent_overview.shares_now(),
            "chart": chart,
            "changes": changes,
            "has_next": has_next,
            "page": _page_number(request),
            "purpose": purpose,
            "purposes": Purpose.choices,
            "error": error,
        },
        status=400 if error else 200,
    )
