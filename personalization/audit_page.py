"""The audit page: every change that alters what people see, filterable by kind, person and dates, each
with a link to what changed and, for surface versions, a rollback."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from personalization import audit
from personalization.access import requires
from personalization.api.permissions import satisfied
from personalization.models import Surface
from personalization.surfaces import rollback

PAGE_SIZE = 50
ROLLBACK = ("personalization.change_surface", "personalization.add_surfaceversion")
VIEW_AUDIT = "personalization.view_audit"


def _day(value: str, name: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = f"{value!r} is not a date; use YYYY-MM-DD."
        return None


def _midnight(day: date) -> datetime:
    """The start of a day in the viewer's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _query(request: HttpRequest) -> tuple[audit.AuditQuery, dict[str, str], dict[str, str]]:
    params = {name: request.GET.get(name, "").strip() for name in ("kind", "who", "since", "until")}
    errors: dict[str, str] = {}
    if params["kind"] and params["kind"] not in audit.KINDS:
        errors["kind"] = f"Unknown kind {params['kind']!r}."
    if len(params["who"]) > 200:
        errors["who"] = "Longer than 200 characters."
    since, until = _day(params["since"], "since", errors), _day(params["until"], "until", errors)
    if since and until and until < since:
        errors["until"] = "Before the start date."
    query = audit.AuditQuery(
        kinds=frozenset([params["kind"]]) if params["kind"] and "kind" not in errors else frozenset(),
        who="" if "who" in errors else params["who"],
        since=_midnight(since) if since and "since" not in errors else None,
        until=_midnight(until + timedelta(days=1)) if until and "until" not in errors else None,
        limit=PAGE_SIZE + 1,  # one more, to know whether there is a next page
    )
    return query, params, errors


def _link(user: Any, change: audit.Change) -> str:
    if not change.url:
        return ""
    if change.url_needs == "admin":
        return change.url if user.is_staff else ""
    return change.url if not change.url_needs or satisfied(user, change.url_needs) else ""


@require_GET
@requires(VIEW_AUDIT)
def audit_log(request: HttpRequest) -> HttpResponse:
    query, params, errors = _query(request)
    page = request.GET.get("page", "1")
    number = int(page) if page.isdigit() and 0 < int(page) <= 1000 else 1
    found = audit.changes(query, offset=(number - 1) * PAGE_SIZE)
    may_roll_back = satisfied(request.user, ROLLBACK)
    rows = [
        {
            "change": c,
            "label": audit.KINDS.get(c.kind, c.kind),
            "link": _link(request.user, c),
            "diff": audit.differences(c.before, c.after),
            "rollback": c.rollback if may_roll_back else None,
        }
        for c in found[:PAGE_SIZE]
    ]
    base = {k: v for k, v in params.items() if v}
    context = {
        "rows": rows,
        "params": params,
        "errors": errors,
        "kinds": list(audit.KINDS.items()),
        "page": number,
        "has_next": len(found) > PAGE_SIZE,
        "base_query": urlencode(base),
        "filtered": bool(base),
    }
    return render(request, "personalization/audit.html", context, status=400 if errors else 200)


@require_POST
@requires(ROLLBACK)
def rollback_surface(request: HttpRequest, key: str, number: int) -> HttpResponse:
    """Serve an earlier version of a surface again, as a new version (the audit shows both)."""
    surface = Surface.objects.filter(key=key).first()
    if surface is None or not surface.versions.filter(number=number).exists():
        raise Http404("No such surface version.")
    with transaction.atomic():
        version = rollback(surface, number, by=request.user.get_username())
    messages.success(request, f"{surface.name} serves version {number}'s settings again, as version {version.number}.")
    return HttpResponseRedirect(reverse("audit") + "?kind=surfaces")
