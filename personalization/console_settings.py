"""A console user's own settings ("your settings" in the user menu): for now the time zone every page
shows times in. Without a choice, times are in the project's ``TIME_ZONE``.

``TimeZoneMiddleware`` activates the zone for the console's pages; the API keeps answering in UTC
(ISO 8601 with an offset), whoever asks.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from personalization.models import ConsoleSettings


@cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def project_zone() -> str:
    return str(settings.TIME_ZONE)


def zone_of(user: object) -> str:
    """The zone the user chose, or the project's."""
    if not getattr(user, "is_authenticated", False):
        return project_zone()
    chosen = ConsoleSettings.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()  # type: ignore[attr-defined]
    return chosen or project_zone()


def set_zone(user: object, name: str) -> str:
    """Store the user's zone ("" goes back to the project's); an unknown zone is a ValueError."""
    name = name.strip()
    if name and name not in zone_names():
        raise ValueError(f"{name!r} is not a time zone; pick one like Europe/Berlin or America/New_York.")
    ConsoleSettings.objects.update_or_create(user_id=user.pk, defaults={"time_zone": name})  # type: ignore[attr-defined]
    return name or project_zone()


class TimeZoneMiddleware:
    """Pages render times in the signed-in user's zone; API answers stay in UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") or not request.user.is_authenticated:
            return self.get_response(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone_of(request.user)))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone removed from the system's database
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


@require_http_methods(["GET", "POST"])
@login_required
def your_settings(request: HttpRequest) -> HttpResponse:
    """Any signed-in person's own settings; nobody changes anyone else's here."""
    error = ""
    chosen = zone_of(request.user)
    if request.method == "POST":
        try:
            chosen = set_zone(request.user, request.POST.get("time_zone", ""))
        except ValueError as problem:
            error = str(problem)
            chosen = request.POST.get("time_zone", "")
        else:
            messages.success(request, f"Times are now shown in {chosen}.")
            target = request.POST.get("next") or reverse("console-settings")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("console-settings")
            return HttpResponseRedirect(target)
    context = {
        "zones": zone_names(),
        "chosen": chosen,
        "project_zone": project_zone(),
        "error": error,
        "now": timezone.now(),
        "next": request.GET.get("next", ""),
    }
    return render(request, "personalization/your_settings.html", context, status=400 if error else 200)
