"""Every URL × every role × every method: the expected status, and nothing changed by a denial.

The expectation table below names, for each URL pattern of the URL configuration, who may use each
method; every other (role, method) must be refused. A pattern missing from the table fails the test,
so a new URL cannot ship without someone deciding who may use it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.access import World, api_client, build_world, session_client

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ANONYMOUS, STAFF, MARKETER, CSM, ANALYST, ADMIN, INGEST, SECRET = (
    "anonymous",
    "staff without permissions",
    "Marketer",
    "CSM",
    "Analyst",
    "Administrator",
    "ingest key",
    "secret key",
)
ROLES = (ANONYMOUS, STAFF, MARKETER, CSM, ANALYST, ADMIN, INGEST, SECRET)
EVERYONE = frozenset(ROLES)
SIGNED_IN = frozenset({STAFF, MARKETER, CSM, ANALYST, ADMIN})


@dataclass(frozen=True)
class Entry:
    allowed: dict[str, frozenset[str]]  # method → roles that may
    params: dict[str, str] = field(default_factory=dict)  # path parameter → value (or a {world} name)
    data: dict[str, Any] = field(default_factory=dict)  # what a POST sends


def may(*roles: str) -> frozenset[str]:
    return frozenset(roles)


# Not walked, with the reason.
EXCLUDED = {
    "admin/": "the Django admin: its own staff login and model permissions, Django's code",
    "api/schema/": "the public OpenAPI document",
    "api/docs/": "the public API documentation page",
}

EXPECTED: dict[str, Entry] = {
    # --- the console ---
    "": Entry({"GET": SIGNED_IN}),  # home: the home page, or (a CSM, no role) the first page they may open
    "login/": Entry({"GET": EVERYONE, "POST": EVERYONE}),
    "logout/": Entry({"POST": EVERYONE}),
    "settings/": Entry({"GET": SIGNED_IN, "POST": SIGNED_IN}, data={"time_zone": "Europe/Berlin"}),  # one's own
    "surfaces/": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}),
    "surfaces/new/": Entry({"GET": may(MARKETER, ADMIN), "POST": may(MARKETER, ADMIN)}, data={"key": "grid"}),
    "surfaces/items": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}),
    "surfaces/<slug:key>/": Entry(
        {"GET": may(MARKETER, ANALYST, ADMIN), "POST": may(MARKETER, ADMIN)}, {"key": "homepage"}, {"action": "save"}
    ),
    "surfaces/<slug:key>/rollback": Entry({"POST": may(MARKETER, ADMIN)}, {"key": "homepage"}, {"version": "1"}),
    "campaigns/": Entry({"GET": may(MARKETER, ANALYST)}),
    "campaigns/<slug:key>/": Entry({"GET": may(MARKETER, ANALYST)}, {"key": "spring"}),
    # The builder: a Marketer builds, previews and launches; an Analyst may count and follow along.
    "campaigns/new/": Entry({"GET": may(MARKETER), "POST": may(MARKETER)}),
    "campaigns/builder/count": Entry({"POST": may(MARKETER, ANALYST)}),
    "campaigns/builder/preview": Entry({"POST": may(MARKETER)}, data={"person": "ann"}),
    "campaigns/<slug:key>/edit": Entry({"GET": may(MARKETER), "POST": may(MARKETER)}, {"key": "draft"}),
    "campaigns/<slug:key>/confirm": Entry({"GET": may(MARKETER)}, {"key": "draft"}),
    "campaigns/<slug:key>/progress": Entry({"GET": may(MARKETER, ANALYST)}, {"key": "spring"}),
    "campaigns/<slug:key>/<slug:action>": Entry({"POST": may(MARKETER)}, {"key": "draft", "action": "launch"}),
    "journeys/": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}),
    "journeys/new/": Entry({"GET": may(MARKETER, ADMIN), "POST": may(MARKETER, ADMIN)}, data={"name": "n"}),
    "journeys/<slug:key>/": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}, {"key": "draft-journey"}),
    "journeys/<slug:key>/edit": Entry(
        {"GET": may(MARKETER, ADMIN), "POST": may(MARKETER, ADMIN)}, {"key": "draft-journey"}, {"op": "refresh"}
    ),
    "journeys/<slug:key>/counts": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}, {"key": "live-journey"}),
    "journeys/<slug:key>/<slug:action>": Entry(
        {"POST": may(MARKETER, ADMIN)}, {"key": "draft-journey", "action": "launch"}
    ),
    "approvals/": Entry({"GET": may(MARKETER, CSM), "POST": may(CSM)}, data={"action": "approve", "ids": "{message}"}),
    "approvals/<int:pk>/": Entry(
        {"GET": may(MARKETER, CSM), "POST": may(CSM)}, {"pk": "{message}"}, {"action": "edit", "note": "n"}
    ),
    "items/<str:item_id>": Entry({"GET": EVERYONE}, {"item_id": "sku-1"}),  # public: where email item links go
    "t/o/<str:token>.gif": Entry({"GET": EVERYONE}, {"token": "{open}"}),
    "t/c/<str:token>": Entry({"GET": EVERYONE}, {"token": "{click}"}),
    "t/u/<str:token>": Entry({"GET": EVERYONE, "POST": EVERYONE}, {"token": "{unsubscribe}"}),
    # A CSM reads the people of their accounts (Ann is in theirs); tests/profiles/test_people_pages.py
    # checks that one outside is a 404.
    "people/": Entry({"GET": may(MARKETER, CSM, ANALYST, ADMIN)}),
    "people/<int:pk>/": Entry({"GET": may(MARKETER, CSM, ANALYST, ADMIN)}, {"pk": "{person}"}),
    "people/<int:pk>/export": Entry({"GET": may(ADMIN), "POST": may(ADMIN)}, {"pk": "{person}"}, {"confirm": "yes"}),
    "people/<int:pk>/erase": Entry({"GET": may(ADMIN), "POST": may(ADMIN)}, {"pk": "{person}"}, {"confirm": "erase"}),
    "consent/": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}),
    "experiments/": Entry({"GET": may(MARKETER, ANALYST)}),
    "experiments/new/": Entry(
        {"GET": may(MARKETER), "POST": may(MARKETER)},
        data={
            **{"name": "Matrix", "target": "global:", "primary_metric": "conversion", "mde": "5", "alpha": "0.05"},
            **{"power": "0.8", "traffic": "100", "v0_key": "control", "v1_key": "b", "action": "plan"},
        },
    ),
    "audit/": Entry({"GET": may(MARKETER, ANALYST, ADMIN)}),
    "audit/rollback/<slug:key>/<int:number>": Entry({"POST": may(MARKETER, ADMIN)}, {"key": "homepage", "number": "1"}),
    "experiments/<slug:key>/": Entry({"GET": may(MARKETER, ANALYST)}, {"key": "exp"}),
    "experiments/<slug:key>/<slug:action>": Entry({"POST": may(MARKETER)}, {"key": "exp", "action": "stop"}),
    "model/": Entry({"GET": may(ANALYST, ADMIN)}),
    "model/schedule": Entry({"POST": may(ADMIN)}, data={"enabled": "on", "hour": "4", "minute": "5", "days": "1"}),
    "model/drift-rule": Entry(
        {"POST": may(ADMIN)},
        data={
            "enabled": "on",
            "unknown_item_share": "0.4",
            "ndcg_drop": "0.2",
            "ctr_drop": "0.15",
            "min_answers": "500",
            "baseline_days": "7",
            "cooldown_hours": "24",
        },
    ),
    # --- the API ---
    "api/v1/catalog/items": Entry({"GET": may(MARKETER, ANALYST, SECRET), "PUT": may(SECRET)}),
    "api/v1/catalog/items/<str:external_id>": Entry(
        {"GET": may(MARKETER, ANALYST, SECRET), "PATCH": may(SECRET), "DELETE": may(SECRET)}, {"external_id": "sku-1"}
    ),
    "api/v1/track": Entry({"POST": may(INGEST, SECRET)}),
    "api/v1/identify": Entry({"POST": may(INGEST, SECRET)}),
    "api/v1/page": Entry({"POST": may(INGEST, SECRET)}),
    "api/v1/batch": Entry({"POST": may(INGEST, SECRET)}),
    "api/v1/people/<str:person_key>/consent": Entry(
        {"GET": may(MARKETER, ANALYST, ADMIN, SECRET), "PUT": may(ADMIN, SECRET)}, {"person_key": "ann"}
    ),
    # Ann is in the CSM's account; tests/profiles/test_people_api.py checks one outside it is a 404.
    "api/v1/people/<str:person_key>": Entry(
        {"GET": may(MARKETER, ANALYST, CSM, ADMIN, SECRET), "DELETE": may(ADMIN, SECRET)}, {"person_key": "ann"}
    ),
    "api/v1/people/<str:person_key>/export": Entry({"GET": may(ADMIN, SECRET)}, {"person_key": "ann"}),
    "api/v1/recommendations": Entry({"GET": may(MARKETER, SECRET)}),
    "api/v1/recommendations/popular": Entry({"GET": may(MARKETER, ANALYST, ADMIN, INGEST, SECRET)}),
    "api/v1/surfaces": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET), "POST": may(MARKETER, ADMIN, SECRET)}),
    "api/v1/surfaces/<slug:key>": Entry(
        {"GET": may(MARKETER, ANALYST, ADMIN, SECRET), "PATCH": may(MARKETER, ADMIN, SECRET)}, {"key": "homepage"}
    ),
    "api/v1/surfaces/<slug:key>/versions": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET)}, {"key": "homepage"}),
    "api/v1/surfaces/<slug:key>/rollback": Entry({"POST": may(MARKETER, ADMIN, SECRET)}, {"key": "homepage"}),
    "api/v1/surfaces/<slug:key>/recommendations": Entry(
        {"GET": may(MARKETER, INGEST, SECRET), "POST": may(MARKETER, INGEST, SECRET)}, {"key": "homepage"}
    ),
    "api/v1/experiments/": Entry({"GET": may(MARKETER, ANALYST, SECRET), "POST": may(MARKETER, SECRET)}),
    "api/v1/experiments/assignments": Entry({"GET": may(MARKETER, ANALYST, INGEST, SECRET)}),
    "api/v1/experiments/<slug:key>": Entry(
        {"GET": may(MARKETER, ANALYST, SECRET), "PATCH": may(MARKETER, SECRET)}, {"key": "exp"}
    ),
    "api/v1/experiments/<slug:key>/start": Entry({"POST": may(MARKETER, SECRET)}, {"key": "draft-exp"}),
    "api/v1/experiments/<slug:key>/stop": Entry({"POST": may(MARKETER, SECRET)}, {"key": "exp"}),
    "api/v1/experiments/<slug:key>/conclude": Entry({"POST": may(MARKETER, SECRET)}, {"key": "exp"}),
    "api/v1/experiments/<slug:key>/rebucket": Entry({"POST": may(MARKETER, SECRET)}, {"key": "exp"}),
    "api/v1/experiments/<slug:key>/exposures": Entry({"POST": may(INGEST, SECRET)}, {"key": "exp"}),
    "api/v1/experiments/<slug:key>/results": Entry({"GET": may(MARKETER, ANALYST, SECRET)}, {"key": "exp"}),
    "api/v1/campaigns": Entry({"GET": may(MARKETER, ANALYST, SECRET), "POST": may(MARKETER, SECRET)}),
    "api/v1/campaigns/audience-count": Entry({"POST": may(MARKETER, ANALYST, SECRET)}),
    "api/v1/campaigns/<slug:key>": Entry(
        {"GET": may(MARKETER, ANALYST, SECRET), "PATCH": may(MARKETER, SECRET), "DELETE": may(MARKETER, SECRET)},
        {"key": "draft"},
    ),
    "api/v1/campaigns/<slug:key>/audience": Entry({"GET": may(MARKETER, ANALYST, SECRET)}, {"key": "spring"}),
    "api/v1/campaigns/<slug:key>/preview": Entry({"GET": may(MARKETER, ANALYST, SECRET)}, {"key": "spring"}),
    "api/v1/campaigns/<slug:key>/launch": Entry({"POST": may(MARKETER, SECRET)}, {"key": "draft"}),
    "api/v1/campaigns/<slug:key>/pause": Entry({"POST": may(MARKETER, SECRET)}, {"key": "spring"}),
    "api/v1/campaigns/<slug:key>/resume": Entry({"POST": may(MARKETER, SECRET)}, {"key": "paused"}),
    "api/v1/messages": Entry({"GET": may(MARKETER, CSM, SECRET)}),
    # Approvals are made by people: the secret key reads the queue but decides nothing.
    "api/v1/messages/decisions": Entry({"POST": may(CSM)}),
    "api/v1/messages/<int:pk>": Entry({"GET": may(MARKETER, CSM, SECRET), "PATCH": may(CSM)}, {"pk": "{message}"}),
    "api/v1/messages/<int:pk>/approve": Entry({"POST": may(CSM)}, {"pk": "{message}"}),
    "api/v1/messages/<int:pk>/reject": Entry({"POST": may(CSM)}, {"pk": "{message}"}),
    "api/v1/onboarding/<str:person_key>": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET)}, {"person_key": "ann"}),
    "api/v1/journeys": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET), "POST": may(MARKETER, ADMIN, SECRET)}),
    "api/v1/journeys/<slug:key>": Entry(
        {"GET": may(MARKETER, ANALYST, ADMIN, SECRET), "PATCH": may(MARKETER, ADMIN, SECRET)}, {"key": "draft-journey"}
    ),
    "api/v1/journeys/<slug:key>/launch": Entry({"POST": may(MARKETER, ADMIN, SECRET)}, {"key": "draft-journey"}),
    "api/v1/journeys/<slug:key>/pause": Entry({"POST": may(MARKETER, ADMIN, SECRET)}, {"key": "live-journey"}),
    "api/v1/journeys/<slug:key>/steps": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET)}, {"key": "live-journey"}),
    "api/v1/segments": Entry({"GET": may(MARKETER, ANALYST, ADMIN, SECRET)}),
    "api/v1/segments/<slug:key>": Entry({"PUT": may(MARKETER, ADMIN, SECRET)}, {"key": "trials"}),
}


def url_patterns() -> Iterator[str]:
    """Every route of the URL configuration, included ones resolved, as one string each."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route in EXCLUDED:
                    continue
                yield from walk(pattern.url_patterns, route)
            else:
                assert isinstance(pattern, URLPattern)
                yield route

    yield from walk(get_resolver().url_patterns, "")


def test_every_url_pattern_has_an_entry_in_the_matrix():
    routes = [r for r in url_patterns() if r not in EXCLUDED]
    missing = [r for r in routes if r not in EXPECTED]
    assert not missing, f"URL patterns without an entry in the role matrix: {missing}"
    stale = set(EXPECTED) - set(routes)
    assert not stale, f"Entries for URL patterns that no longer exist: {sorted(stale)}"


# --- what a denial may not change -----------------------------------------------------------------------

# Columns that change on every authenticated request, denied or not, and hold no business data.
VOLATILE = {"personalization_apikey": ["last_used_at"], "auth_user": ["last_login"]}


def _fingerprint_sql() -> str:
    models = [m for m in apps.get_models() if m._meta.managed and not m._meta.proxy]
    parts = []
    for model in models:
        table = model._meta.db_table
        if table in ("django_session", "django_admin_log") or table.startswith("django_celery"):
            continue
        columns = [f.column for f in model._meta.concrete_fields if f.column not in VOLATILE.get(table, [])]
        row = "ROW(" + ", ".join(f't."{c}"' for c in columns) + ")::text"
        parts.append(
            f"SELECT '{table}' AS t, md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM \"{table}\" t"
        )
    return " UNION ALL ".join(parts)


def fingerprint(sql: str) -> dict[str, str]:
    # The same statement runs before some 3,000 cells: prepared once on the server, it is planned once.
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor() as raw:
            raw.execute(sql, prepare=True)
            return dict(raw.fetchall())
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


# --- the walk ------------------------------------------------------------------------------------------


def _fill(route: str, entry: Entry, world: World) -> str:
    values = {"message": str(world.message.pk), "person": str(world.message.person_id), **world.tokens}
    path = route
    for name, value in entry.params.items():
        value = values[value[1:-1]] if value.startswith("{") else value
        start = path.index("<")
        end = path.index(">", start)
        assert path[start + 1 : end].split(":")[-1] == name, (route, name)
        path = path[:start] + value + path[end + 1 :]
    assert "<" not in path, f"{route}: a path parameter has no value in the matrix"
    return "/" + path


def _clients(world: World) -> dict[str, APIClient]:
    return {
        ANONYMOUS: APIClient(),
        STAFF: session_client(world.users["staff"]),
        MARKETER: session_client(world.users["marketer"]),
        CSM: session_client(world.users["csm"]),
        ANALYST: session_client(world.users["analyst"]),
        ADMIN: session_client(world.users["admin"]),
        INGEST: api_client(world.ingest_raw),
        SECRET: api_client(world.secret_raw),
    }


def _denied(response: Any) -> bool:
    if response.status_code in (401, 403, 404, 405):
        return True
    # A page sends someone not signed in to the login page.
    return response.status_code == 302 and response["Location"].startswith("/login/?next=")


def _allowed(route: str, response: Any) -> bool:
    status = response.status_code
    if 200 <= status < 400:
        return not _denied(response)
    if status == 400 and route.startswith("api/"):
        return response.json().get("type") == "validation_error"
    return False


def _send(client: APIClient, method: str, path: str, entry: Entry, world: World, page: bool) -> Any:
    data = {k: (str(world.message.pk) if v == "{message}" else v) for k, v in entry.data.items()}
    if page:
        return client.generic(method, path, data=_form(data), content_type="application/x-www-form-urlencoded")
    return client.generic(method, path, data="{}" if method != "GET" else "", content_type="application/json")


def _form(data: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


@pytest.fixture(scope="module")
def vacuumed(django_db_setup: Any, django_db_blocker: Any) -> None:
    """The tables without the dead rows the tests before left (every rolled-back test leaves its
    inserts behind until autovacuum comes): the walk reads every table some 3,000 times, and after a
    module of seeded stores that took it from under a minute to over two. Vacuuming changes no row."""
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


@pytest.mark.django_db
def test_every_url_every_role_every_method(vacuumed, settings):
    settings.SURFACE_IMPRESSIONS_INLINE = True  # no writer thread outside the test's transaction
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"principal": "100000/min", "ingest": "100000/min"},
    }
    world = build_world()
    clients = _clients(world)
    cookies = {role: client.cookies for role, client in clients.items()}  # a logout cell must not log out the next
    sql = _fingerprint_sql()
    # Every cell runs in a transaction that is rolled back, so the database before each cell is the
    # world as built here: one fingerprint of it stands for the state before every refused request
    # (and would also catch a cell whose change outlived its rollback).
    before = fingerprint(sql)
    failures: list[str] = []
    cells = 0
    for route in url_patterns():
        if route in EXCLUDED:
            continue
        entry = EXPECTED[route]
        path = _fill(route, entry, world)
        page = not route.startswith("api/")
        for method in METHODS:
            allowed_roles = entry.allowed.get(method, frozenset())
            for role in ROLES:
                cells += 1
                clients[role].cookies = copy.copy(cookies[role])
                with transaction.atomic():
                    response = _send(clients[role], method, path, entry, world, page)
                    if role in allowed_roles:
                        if not _allowed(route, response):
                            failures.append(f"{method} {path} as {role}: {response.status_code}, expected allowed")
                    elif not _denied(response):
                        failures.append(f"{method} {path} as {role}: {response.status_code}, expected refused")
                    elif (after := fingerprint(sql)) != before:
                        changed = {t for t, h in after.items() if before.get(t) != h}
                        failures.append(f"{method} {path} as {role}: refused but changed {sorted(changed)}")
                    transaction.set_rollback(True)
    assert cells > 1500
    assert not failures, "\n".join(failures)
