"""The marketer's page: every surface with its version, weights, quotas and results, and a preview of
what one person gets on a surface and why (that part needs ``preview_recommendations``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from personalization.access import requires
from personalization.api.permissions import PREVIEW
from personalization.surface_serving import ServeRequest, UnknownSurface, serve
from personalization.surfaces import summaries
from profiles import services as profiles


@require_GET
@requires("personalization.view_surface")
def surface_overview(request: HttpRequest) -> HttpResponse:
    rows = summaries(days=7)
    surface_key = request.GET.get("surface") or (rows[0].key if rows else "")
    person_key = request.GET.get("person", "").strip() if request.user.has_perm(PREVIEW) else ""
    preview, problem = None, ""
    if person_key and surface_key:
        person = profiles.find_person(person_key)
        if person is None:
            problem = f"Nobody is known as {person_key!r}; showing what an unknown visitor gets."
        try:
            preview = serve(ServeRequest(surface=surface_key, person_id=person.pk if person else None, log=False))
        except UnknownSurface:
            problem = f"No surface {surface_key!r}."
    return render(
        request,
        "personalization/surfaces.html",
        {"rows": rows, "surface_key": surface_key, "person_key": person_key, "preview": preview, "problem": problem},
    )
