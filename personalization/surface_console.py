"""The console's surface pages: every surface with its results, a surface's editor (weights, filters,
quotas, exploration, curated default, cold-start rules) with a preview of the draft against the live
version, saving as a new version with a note, and the history with a readable diff and rollback.

The editor's form is validated by the API's serializer (``surface_config_serializers``), so a page and
the API refuse the same values; the preview is served by the same code that serves the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from catalog import services as catalog
from personalization.access import requires
from personalization.api.permissions import CHANGE_SURFACE, PREVIEW, VIEW_SURFACE, satisfied
from personalization.api.surface_config_serializers import (
    ITEM_KINDS,
    RESERVED_KEYS,
    SurfaceConfigSerializer,
    checked_config,
)
from personalization.engine.candidates import SOURCES
from personalization.loop_charts import DailyChart, Value, daily_chart
from personalization.models import Surface, SurfaceDailyStats, SurfaceKind, SurfaceVersion
from personalization.surface_compare import (
    ListComparison,
    ShownItem,
    compare_lists,
    config_changes,
    describe_rule,
    referenced_items,
)
from personalization.surface_editor import EditorForm, field_for, flatten_errors, form_for, read_form
from personalization.surface_serving import ServedAnswer, ServeRequest, UnknownSurface, serve
from personalization.surfaces import (
    CONTEXT_KEYS,
    SurfaceConfig,
    change_config,
    create_surface,
    current_config,
    rollback,
    summaries,
)
from profiles import services as profiles

CREATE_SURFACE = ("personalization.add_surface", *CHANGE_SURFACE)
SAMPLE_PEOPLE = 4
PREVIEW_SEED = 20_240_601  # the draft and the live version draw the same exploration slots
HISTORY_SHOWN = 50
PERFORMANCE_DAYS = 60
SHARE_FIELDS = (
    ("max_share_per_category", "Most from one category", "No category takes more of the list."),
    ("max_share_per_brand", "Most from one brand", "No brand takes more of the list."),
    (
        "min_share_outside_top_categories",
        "Least from outside their top categories",
        "Reserved for categories the person has not been browsing.",
    ),
    ("exploration_share", "Exploration", "The chance a slot shows a new or little-shown item, to learn about it."),
)


# --- the list -----------------------------------------------------------------------------------


@require_GET
@requires(VIEW_SURFACE)
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
        {
            "rows": rows,
            "surface_key": surface_key,
            "person_key": person_key,
            "preview": preview,
            "problem": problem,
            "can_add": satisfied(request.user, CREATE_SURFACE),
        },
    )


# --- validation shared by create and edit ---------------------------------------------------------


def _validated(form: EditorForm, config: dict[str, Any]) -> SurfaceConfig | None:
    body = SurfaceConfigSerializer(data=config)
    if not body.is_valid():
        for path, message in flatten_errors(body.errors).items():
            form.errors.setdefault(field_for(path), message)
        return None
    if form.errors:
        return None
    try:
        return checked_config(dict(body.validated_data))
    except ValidationError as exc:
        for path, message in flatten_errors(exc.detail).items():
            form.errors.setdefault(field_for(path.removeprefix("config.")), message)
        return None


def _editor_context(form: EditorForm) -> dict[str, Any]:
    ids = set(form.values["curated_items"]) | set(form.values["exclude_items"])
    for rule in form.rules:
        ids |= set(rule["items"])
    facts = catalog.item_facts(ids)
    rules = [{**rule, "n": n, "error": form.errors.get(f"cs{n}_when", "")} for n, rule in enumerate(form.rules)]
    blank = {k: "" for k in ("country", "device", "referrer", "interest", "role", "segment", "reason")}
    rules.append({**blank, "items": [], "n": len(rules), "error": ""})  # a row to add a rule without script
    for rule in rules:
        rule["items_field"] = f"cs{rule['n']}_items"
        rule["item_rows"] = _picked(rule["items"], facts)
        rule["items_error"] = form.errors.get(f"cs{rule['n']}_items", "")
    return {
        "form": form,
        "errors": form.errors,
        "values": form.values,
        "rules": rules,
        "rule_count": len(rules),
        "curated_rows": _picked(form.values["curated_items"], facts),
        "excluded_rows": _picked(form.values["exclude_items"], facts),
        "categories": sorted(set(catalog.categories()) | set(form.values["exclude_categories"])),
        "sources": SOURCES,
        "share_fields": SHARE_FIELDS,
        "context_keys": CONTEXT_KEYS,
    }


def _picked(ids: list[str], facts: dict[str, catalog.ItemFacts]) -> list[dict[str, str]]:
    return [
        {"id": i, "title": facts[i].title if i in facts else i, "category": facts[i].category if i in facts else ""}
        for i in ids
    ]


# --- create -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@requires(CREATE_SURFACE)
def surface_new(request: HttpRequest) -> HttpResponse:
    meta: dict[str, Any] = {
        "key": "",
        "name": "",
        "kind": SurfaceKind.GRID,
        "item_kinds": ["product"],
        "note": "Created",
    }
    meta_errors: dict[str, str] = {}
    if request.method == "POST":
        form, config = read_form(request.POST)
        meta = {
            "key": (request.POST.get("key") or "").strip(),
            "name": (request.POST.get("name") or "").strip(),
            "kind": request.POST.get("kind") or "",
            "item_kinds": [k for k in request.POST.getlist("item_kinds") if k],
            "note": (request.POST.get("note") or "").strip() or "Created",
        }
        meta_errors = _meta_errors(meta)
        parsed = _validated(form, config)
        if parsed is not None and not meta_errors:
            create_surface(
                meta["key"],
                meta["name"],
                parsed,
                kind=meta["kind"],
                item_kinds=meta["item_kinds"],
                by=request.user.get_username(),
                note=meta["note"][:500],
            )
            messages.success(request, f"Surface {meta['name']} created (version 1).")
            return HttpResponseRedirect(f"/surfaces/{meta['key']}/")
    else:
        form = form_for(SurfaceConfig(size=12, max_share_per_category=0.5).to_dict())
    return render(
        request,
        "personalization/surface_new.html",
        {
            **_editor_context(form),
            "meta": meta,
            "meta_errors": meta_errors,
            "kinds": SurfaceKind.choices,
            "item_kind_choices": ITEM_KINDS,
        },
    )


def _meta_errors(meta: dict[str, Any]) -> dict[str, str]:
    from django.core.validators import validate_slug

    errors: dict[str, str] = {}
    try:
        validate_slug(meta["key"])
        if len(meta["key"]) > 100:
            errors["key"] = "At most 100 characters."
        elif meta["key"] in RESERVED_KEYS:
            errors["key"] = f"{meta['key']!r} is reserved by the console; choose another key."
        elif Surface.objects.filter(key=meta["key"]).exists():
            errors["key"] = f"A surface {meta['key']!r} exists already."
    except Exception:
        errors["key"] = "Letters, numbers, hyphens and underscores, e.g. product-page."
    if not meta["name"]:
        errors["name"] = "Required."
    elif len(meta["name"]) > 200:
        errors["name"] = "At most 200 characters."
    if meta["kind"] not in SurfaceKind.values:
        errors["kind"] = "Choose a kind."
    if not meta["item_kinds"] or any(k not in ITEM_KINDS for k in meta["item_kinds"]):
        errors["item_kinds"] = "Choose what it may show."
    return errors


# --- one surface: edit, preview, save, history ------------------------------------------------------


@dataclass
class PersonPreview:
    label: str
    chosen: bool
    live: ServedAnswer
    draft: ServedAnswer
    comparison: ListComparison


@require_http_methods(["GET", "POST"])
def surface_detail(request: HttpRequest, key: str) -> HttpResponse:
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    if not satisfied(request.user, VIEW_SURFACE):
        raise PermissionDenied("Your role does not allow this page.")
    surface = get_object_or_404(Surface.objects.select_related("current_version"), key=key)
    live = current_config(surface)
    can_change = satisfied(request.user, CHANGE_SURFACE)
    can_preview = request.user.has_perm(PREVIEW)
    person_key = (request.POST.get("person") or request.GET.get("person") or "").strip()
    previews: list[PersonPreview] = []
    problem = note_error = ""
    note = ""
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied("Your role does not allow changing surfaces.")
        action = request.POST.get("action") or "preview"
        form, config = read_form(request.POST)
        note = (request.POST.get("note") or "").strip()
        parsed = _validated(form, config)
        if action == "save":
            if not note:
                note_error = "Say what changed and why; it is kept with the version."
            elif len(note) > 500:
                note_error = "At most 500 characters."
            if parsed is not None and not note_error:
                version = change_config(surface, parsed, by=request.user.get_username(), note=note)
                messages.success(request, f"Saved as version {version.number}; it serves within seconds.")
                return HttpResponseRedirect(f"/surfaces/{surface.key}/#history")
        elif parsed is not None:
            if not can_preview:
                raise PermissionDenied("Your role does not allow previewing what people get.")
            previews, problem = _previews(surface, live, parsed, person_key)
    else:
        form = form_for(live.to_dict())
    history = _history(surface)
    performance = _performance(surface)
    return render(
        request,
        "personalization/surface_detail.html",
        {
            **_editor_context(form),
            "surface": surface,
            "live": live,
            "live_rules": [describe_rule(r, history["titles"]) for r in live.to_dict()["cold_start"]],
            "versions": history["versions"],
            "can_change": can_change,
            "can_preview": can_preview,
            "person_key": person_key,
            "previews": previews,
            "problem": problem,
            "note": note,
            "note_error": note_error,
            "invalid": bool(form.errors) and request.method == "POST",
            "sample_count": SAMPLE_PEOPLE,
            "performance": performance,
        },
    )


def _answer(surface: Surface, person_id: int | None, config: SurfaceConfig) -> ServedAnswer:
    asked = ServeRequest(
        surface=surface.key,
        person_id=person_id,
        log=False,
        config=config,
        rng=np.random.default_rng(PREVIEW_SEED),
    )
    return serve(asked)


def _previews(
    surface: Surface, live: SurfaceConfig, draft: SurfaceConfig, person_key: str
) -> tuple[list[PersonPreview], str]:
    people: list[tuple[str, int | None, bool]] = []
    problem = ""
    if person_key:
        person = profiles.find_person(person_key)
        if person is None:
            problem = f"Nobody is known as {person_key!r}; showing what an unknown visitor gets."
            people.append(("an unknown visitor", None, True))
        else:
            people.append((person_key, person.pk, True))
    chosen = {pid for _, pid, _ in people}
    for sample_id, label in profiles.recently_active_people(SAMPLE_PEOPLE + 1):
        if sample_id not in chosen and len(people) < SAMPLE_PEOPLE + (1 if person_key else 0):
            people.append((label, sample_id, False))
    if not people:
        people.append(("an unknown visitor", None, True))
    found = []
    for label, person_id, is_chosen in people:
        live_answer = _answer(surface, person_id, live)
        draft_answer = _answer(surface, person_id, draft)
        found.append((label, is_chosen, live_answer, draft_answer))
    ids = {i.item_id for _, _, a, b in found for i in (*a.items, *b.items)}
    facts = catalog.item_facts(ids)

    def shown(answer: ServedAnswer) -> list[ShownItem]:
        return [
            ShownItem(i.item_id, i.title, facts[i.item_id].category if i.item_id in facts else "", i.reason)
            for i in answer.items
        ]

    previews = [
        PersonPreview(label, is_chosen, a, b, compare_lists(shown(a), shown(b))) for label, is_chosen, a, b in found
    ]
    return previews, problem


def _history(surface: Surface) -> dict[str, Any]:
    versions = list(SurfaceVersion.objects.filter(surface=surface).order_by("-number")[: HISTORY_SHOWN + 1])
    ids: set[str] = set()
    for v in versions:
        ids |= referenced_items(v.config)
    titles = {k: f.title for k, f in catalog.item_facts(ids).items()}
    rows = []
    for n, version in enumerate(versions[:HISTORY_SHOWN]):
        before = versions[n + 1] if n + 1 < len(versions) else None
        rows.append(
            {
                "version": version,
                "current": version.pk == surface.current_version_id,
                "changes": config_changes(before.config, version.config, titles)
                if before is not None
                else ["First version"]
                if version.number == 1
                else [],
            }
        )
    return {"versions": rows, "titles": titles}


def _performance(surface: Surface, days: int = PERFORMANCE_DAYS) -> dict[str, Any]:
    """The surface's daily answers, click-through, conversion and attributed revenue over ``days``, with
    a marker on each day a version was saved (from the daily rows and the versions, both by index)."""
    from datetime import timedelta

    from django.utils import timezone

    since = timezone.localdate() - timedelta(days=days - 1)
    rows = list(
        SurfaceDailyStats.objects.filter(surface=surface, day__gte=since)
        .order_by("day")
        .values_list("day", "impressions", "clicks", "purchases", "revenue")
    )
    saved = [
        (timezone.localtime(at).date(), f"v{number}")
        for number, at in SurfaceVersion.objects.filter(surface=surface, created_at__date__gte=since)
        .order_by("number")
        .values_list("number", "created_at")
    ]
    markers: dict[Any, str] = {}
    for day, label in saved:  # several versions on one day share one marker: "v3–v5"
        markers[day] = f"{markers[day].split('–')[0]}–{label}" if day in markers else label
    note = "orange: a version was saved that day"
    shown = [(day, n, c, p, r) for day, n, c, p, r in rows if n]
    charts: list[DailyChart] = [
        daily_chart(
            "surface-rates",
            "Click-through and conversion per day",
            [
                ("click-through", [Value(day, c / n) for day, n, c, _, _ in shown]),
                ("conversion", [Value(day, p / n) for day, n, _, p, _ in shown]),
            ],
            percent=True,
            markers=list(markers.items()),
            marker_note=note,
        ),
        daily_chart(
            "surface-answers",
            "Answers per day",
            [("answers", [Value(day, float(n)) for day, n, _, _, _ in rows])],
            markers=list(markers.items()),
            marker_note=note,
        ),
        daily_chart(
            "surface-revenue",
            "Attributed revenue per day",
            [("revenue", [Value(day, float(r)) for day, _, _, _, r in rows])],
            markers=list(markers.items()),
            marker_note=note,
        ),
    ]
    totals = {
        "answers": sum(r[1] for r in rows),
        "clicks": sum(r[2] for r in rows),
        "purchases": sum(r[3] for r in rows),
        "revenue": sum((r[4] for r in rows), Decimal(0)),
    }
    return {"charts": charts, "days": days, "totals": totals, "versions": [label for _, label in saved]}


@require_POST
@requires(CHANGE_SURFACE)
def surface_rollback(request: HttpRequest, key: str) -> HttpResponse:
    surface = get_object_or_404(Surface, key=key)
    raw = request.POST.get("version") or ""
    if not raw.isdigit() or not surface.versions.filter(number=int(raw)).exists():
        messages.error(request, f"Surface {surface.name} has no version {raw or '(none given)'}.")
        return HttpResponseRedirect(f"/surfaces/{surface.key}/#history")
    version = rollback(surface, int(raw), by=request.user.get_username())
    messages.success(request, f"Version {raw} serves again, saved as version {version.number}.")
    return HttpResponseRedirect(f"/surfaces/{surface.key}/#history")


@require_GET
@requires(VIEW_SURFACE)
def item_search(request: HttpRequest) -> JsonResponse:
    """Items by title for the editor's pickers (curated default, excluded items, cold-start items)."""
    query = (request.GET.get("q") or "")[:200].replace("\x00", "")
    found = catalog.search_items(query, limit=20)
    return JsonResponse(
        {
            "items": [
                {
                    "id": f.external_id,
                    "title": f.title,
                    "category": f.category,
                    "servable": f.active and f.in_stock,
                }
                for f in found
            ]
        }
    )
