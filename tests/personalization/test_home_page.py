"""The home page: the morning's figures from the tables that hold them, per role; a CSM still lands
on the approvals; the queries stay a fixed handful however many surfaces and days there are."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments import services as experiments
from personalization.models import ModelHealthSnapshot, ModelVersion, SurfaceDailyStats, VersionStatus
from personalization.surfaces import change_config, create_surface, current_config
from profiles.ingestion import ingest_messages
from tests.access import role_user
from tests.conftest import track


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _figure(page: str, name: str) -> str:
    marker = f'data-figure="{name}">'
    start = page.index(marker) + len(marker)
    return page[start : page.index("<", start)]


def test_the_home_page_shows_the_figures_the_tables_hold(db, make_item):
    cache.clear()
    make_item("kettle", title="Kettle")
    now = timezone.now()
    ingest_messages(
        [
            track("Product Viewed", user="u1", properties={"product_id": "kettle"}, timestamp=now.isoformat()),
            track("Product Viewed", user="u2", properties={"product_id": "kettle"}, timestamp=now.isoformat()),
            track(
                "Product Viewed",
                user="u2",
                properties={"product_id": "kettle"},
                timestamp=(now - timedelta(days=3)).isoformat(),
            ),
        ]
    )
    homepage = create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    today = timezone.localdate()
    SurfaceDailyStats.objects.create(
        surface=homepage, day=today - timedelta(days=1), impressions=200, clicks=10, purchases=4, revenue="80.50"
    )
    SurfaceDailyStats.objects.create(surface=homepage, day=today, impressions=100, clicks=5, purchases=1, revenue="9")
    SurfaceDailyStats.objects.create(surface=homepage, day=today - timedelta(days=30), impressions=999, clicks=1)
    experiments.create_experiment(
        "hero", "Hero test", [experiments.VariantSpec("control"), experiments.VariantSpec("b")]
    )
    running = experiments.create_experiment(
        "banner", "Banner test", [experiments.VariantSpec("control"), experiments.VariantSpec("b")]
    )
    experiments.start(running, None)
    ModelVersion.objects.create(
        status=VersionStatus.FAILED, error="There are no events to learn from yet.", trigger="schedule"
    )
    ModelHealthSnapshot.objects.create(
        day=today, drift={"fired": True, "reasons": ["42% of item events on unknown items"]}, online={}
    )

    page = _client(role_user("mara", "Marketer")).get("/").content.decode()

    assert _figure(page, "events-today") == "2"
    assert "3 in the last 7 days" in page
    assert _figure(page, "people") == "2"
    row = page[page.index('data-surface="homepage"') :]
    assert _figure(row, "answers") == "300"  # the day 30 days ago is outside the two weeks
    assert _figure(row, "revenue") == "89.50"
    assert "0.05" in row[: row.index("</tr>")]  # click-through 15/300
    assert '<svg class="spark"' in row[: row.index("</tr>")]
    assert 'data-experiment="banner"' in page and 'data-experiment="hero"' not in page  # running only
    # A Marketer does not see model versions: no model tile, no failed-fit line.
    assert 'id="model-version"' not in page and "no events to learn from" not in page

    analyst_page = _client(role_user("ana", "Analyst")).get("/").content.decode()
    assert 'id="model-version"' in analyst_page
    assert "no events to learn from" in analyst_page and "42% of item events on unknown items" in analyst_page
    assert 'id="approvals-waiting"' not in analyst_page  # an Analyst does not read messages


def test_a_csm_still_lands_on_the_approvals_and_nobody_signed_in_on_the_login(db):
    assert _client(role_user("casey", "CSM")).get("/")["Location"] == "/approvals/"
    assert Client().get("/")["Location"].startswith("/login/")


def test_the_home_page_asks_a_fixed_number_of_queries(db):
    cache.clear()
    marketer = _client(role_user("mara", "Marketer"))
    for n in range(3):
        surface = create_surface(f"s{n}", f"S{n}", {"size": 4}, by="tests")
        for day in range(14):
            SurfaceDailyStats.objects.create(
                surface=surface, day=timezone.localdate() - timedelta(days=day), impressions=10, revenue=Decimal(1)
            )
    with CaptureQueriesContext(connection) as few:
        marketer.get("/")
    for n in range(3, 12):
        create_surface(f"s{n}", f"S{n}", {"size": 4}, by="tests")
    cache.clear()
    with CaptureQueriesContext(connection) as many:
        assert marketer.get("/").status_code == 200
    assert len(many) == len(few)


def test_a_surface_page_charts_its_days_with_each_saved_version_marked(db):
    homepage = create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    today = timezone.localdate()
    for back in range(10):
        SurfaceDailyStats.objects.create(
            surface=homepage, day=today - timedelta(days=back), impressions=100, clicks=back, purchases=1, revenue="5"
        )
    change_config(homepage, current_config(homepage), by="mara", note="Same again")

    page = _client(role_user("ana", "Analyst")).get("/surfaces/homepage/").content.decode()

    assert 'id="chart-surface-rates"' in page and 'id="chart-surface-answers"' in page
    assert "1000 answers, 45 clicks, 10 purchases and 50.00 attributed revenue" in page
    # Both versions were saved today: one marker, named by both.
    assert page.count('data-marker="v1–v2"') == 3
    rates = page[page.index('id="chart-surface-rates"') :]
    assert rates[: rates.index("</svg>")].count("<circle") == 20  # 10 days × click-through and conversion
