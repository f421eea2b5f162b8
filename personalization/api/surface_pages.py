"""The marketer's page: every surface with its version, weights, quotas and results, and a preview of
what one person gets on a surface and why (staff only)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from personalization.surface_serving import ServeRequest, UnknownSurface, serve
from personalization.surfaces import summaries
from profiles import services as profiles


@staff_member_required
def surface_overview(request: HttpRequest) -> HttpResponse:
    rows = summaries(days=7)
    surface_key = request.GET.get("surface") or (rows[0].key if rows else "")
    person_key = request.GET.get("person", "").strip()
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
