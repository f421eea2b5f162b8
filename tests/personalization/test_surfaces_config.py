from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from personalization import feedback
from personalization.models import Impression, SurfaceDailyStats, SurfaceItemExposure
from personalization.services import recommend
from personalization.surfaces import SurfaceConfig, SurfaceConfigError, change_config, create_surface, rollback
from profiles.models import Event, Person
from profiles.services import record_consent


def test_a_change_adds_a_version_and_a_rollback_copies_an_old_one(db):
    surface = create_surface("homepage", "Homepage", {"size": 12}, by="ana")
    change_config(surface, {"size": 12, "weights": {"relevance": 1, "margin": 2}}, by="ben", note="Margin push")
    back = rollback(surface, 1, by="cleo")
    surface.refresh_from_db()
    trail = list(surface.versions.order_by("number").values_list("number", "created_by", "note"))
    assert trail == [(1, "ana", "Created"), (2, "ben", "Margin push"), (3, "cleo", "Rollback to version 1")]
    assert surface.current_version == back and back.config == surface.versions.get(number=1).config


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"weights": {"charm": 1}}, "weights"),
        ({"max_share_per_category": 1.5}, "max_share_per_category"),
        ({"source_quotas": {"astrology": 10}}, "source_quotas"),
        ({"cold_start": [{"when": {"horoscope": "leo"}}]}, "cold_start"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_field(db, config, field):
    with pytest.raises(SurfaceConfigError, match=field):
        SurfaceConfig.from_dict(config)


def test_clicks_and_purchases_are_attributed_to_the_answer(db, make_item, settings):
    settings.SURFACE_IMPRESSIONS_INLINE = True
    shirt, hat = make_item("shirt"), make_item("hat")
    surface = create_surface("homepage", "Homepage", {"curated_items": ["shirt", "hat"]})
    person = Person.objects.create()
    now = timezone.now().replace(hour=12)
    Impression.objects.create(
        recommendation_id="r1", surface=surface, person_id=person.pk, item_ids=["shirt", "hat"], served_at=now
    )
    Impression.objects.create(recommendation_id="r2", surface=surface, person_id=None, item_ids=["hat"], served_at=now)
    events = [
        ("view", "shirt", now + timedelta(minutes=1), {"recommendation_id": "r1"}),
        ("view", "shirt", now + timedelta(minutes=2), {}),  # the same click again: counted once
        ("purchase", "shirt", now + timedelta(days=2), {}),  # inside the purchase window
        ("view", "hat", now + timedelta(days=3), {}),  # outside the click window, no id: not a click
    ]
    for n, (kind, item, at, properties) in enumerate(events):
        Event.objects.create(
            message_id=f"e{n}",
            person=person,
            kind=kind,
            item_id=item,
            timestamp=at,
            received_at=at,
            properties=properties,
            price=10 if kind == "purchase" else None,
            quantity=1,
        )

    feedback.compute_daily_stats(now.date())

    stats = SurfaceDailyStats.objects.get(surface=surface, day=now.date())
    assert (stats.impressions, stats.clicks, stats.purchases) == (2, 1, 1)
    assert stats.click_through == 0.5 and stats.conversion == 0.5
    assert SurfaceItemExposure.objects.get(surface=surface, item_id="shirt").clicks == 1
    assert SurfaceItemExposure.objects.get(surface=surface, item_id="hat").impressions == 2
    assert shirt and hat


def test_campaigns_calling_recommend_with_a_surface_get_its_answer(db, make_item, settings):
    settings.SURFACE_IMPRESSIONS_INLINE = True
    make_item("shirt")
    make_item("hat")
    create_surface("email-product-block", "Email block", {"curated_items": ["hat", "shirt"]}, kind="email_block")
    person = Person.objects.create()
    record_consent(person.pk, "personalization", False, source="tests")
    answer = recommend(person.pk, surface="email-product-block", limit=2)
    assert [i.item_id for i in answer.items] == ["hat", "shirt"] and answer.surface == "email-product-block"
    assert Impression.objects.filter(recommendation_id=answer.recommendation_id).exists()


def test_attributing_a_day_twice_counts_its_exposures_once(db, make_item, settings):
    settings.SURFACE_IMPRESSIONS_INLINE = True
    make_item("shirt")
    surface = create_surface("homepage", "Homepage", {"curated_items": ["shirt"]})
    person = Person.objects.create()
    now = timezone.now().replace(hour=12)
    Impression.objects.create(
        recommendation_id="r1", surface=surface, person_id=person.pk, item_ids=["shirt"], served_at=now
    )
    Event.objects.create(
        message_id="e1",
        person=person,
        kind="view",
        item_id="shirt",
        timestamp=now,
        received_at=now,
        properties={"recommendation_id": "r1"},
    )

    feedback.compute_daily_stats(now.date())
    feedback.compute_daily_stats(now.date())  # a retry, or a manual re-run of the day

    exposure = SurfaceItemExposure.objects.get(surface=surface, item_id="shirt")
    assert (exposure.impressions, exposure.clicks) == (1, 1)
    stats = SurfaceDailyStats.objects.get(surface=surface, day=now.date())
    assert (stats.impressions, stats.clicks) == (1, 1)


def test_another_day_adds_to_the_exposure_counts(db, make_item, settings):
    make_item("shirt")
    surface = create_surface("homepage", "Homepage", {"curated_items": ["shirt"]})
    now = timezone.now().replace(hour=12)
    for n, day in enumerate((now - timedelta(days=1), now)):
        Impression.objects.create(recommendation_id=f"r{n}", surface=surface, item_ids=["shirt"], served_at=day)
        feedback.compute_daily_stats(day.date())
    assert SurfaceItemExposure.objects.get(surface=surface, item_id="shirt").impressions == 2


def test_attribution_is_scheduled_every_night(db):
    from django_celery_beat.models import PeriodicTask

    job = PeriodicTask.objects.get(task="personalization.tasks.attribute_surface_feedback")
    assert job.enabled and job.crontab is not None and job.crontab.hour == "2"


def test_the_popular_list_is_the_same_for_everyone_and_only_servable_items(db, make_item, ingest_client):
    from django.core.cache import cache

    from personalization.baseline import POPULAR_CACHE_KEY
    from personalization.surface_serving import forget_popular_answers

    make_item("shirt")
    make_item("hat", stock=0)
    make_item("scarf")
    cache.set(POPULAR_CACHE_KEY, (time.time(), [("hat", 9.0), ("shirt", 4.0), ("scarf", 2.0)]), 60)
    forget_popular_answers()

    response = ingest_client.get("/api/v1/recommendations/popular?limit=5")

    assert response.status_code == 200
    body = response.json()
    assert body["personalized"] is False
    assert [i["item_id"] for i in body["items"]] == ["shirt", "scarf"]  # the hat is out of stock
    assert [i["score"] for i in body["items"]] == [pytest.approx(4 / 9, abs=1e-4), pytest.approx(2 / 9, abs=1e-4)]
    assert ingest_client.get("/api/v1/recommendations/popular?limit=0").status_code == 400
    forget_popular_answers()
    cache.delete(POPULAR_CACHE_KEY)


def test_a_stale_popular_list_is_served_while_one_background_refresh_replaces_it(
    transactional_db, make_item, ingest_client
):
    import threading

    from django.core.cache import cache

    from personalization import baseline
    from tests.conftest import track

    for sku in ("shirt", "hat"):
        make_item(sku)
    for user in ("u1", "u2"):
        ingest_client.post("/api/v1/track", track("Product Viewed", user=user, properties={"product_id": "shirt"}))
    assert [i for i, _ in baseline._popular()] == ["shirt"]

    # Ten minutes later the hat sells; the list in the cache is now past its refresh age.
    for user in ("u3", "u4", "u5"):
        ingest_client.post("/api/v1/track", track("Order Completed", user=user, properties={"product_id": "hat"}))
    computed_at, ranked = cache.get(baseline.POPULAR_CACHE_KEY)
    cache.set(baseline.POPULAR_CACHE_KEY, (computed_at - 600, ranked), 60)

    assert [i for i, _ in baseline._popular()] == ["shirt"]  # answered at once with what was there
    assert [i for i, _ in baseline._popular()] == ["shirt"]
    refreshers = [t for t in threading.enumerate() if t.name == "popular-refresh"]
    assert len(refreshers) <= 1  # the lock lets one process, one thread, refresh
    for thread in refreshers:
        thread.join(timeout=30)
    assert cache.get(baseline.POPULAR_CACHE_KEY)[1][0][0] == "hat"
    assert cache.get(baseline.POPULAR_REFRESH_LOCK) is None


def test_the_catalogue_refresh_reads_changed_rows_not_the_whole_catalogue_again(db, make_item, monkeypatch):
    from catalog.models import Item
    from personalization import item_table

    for n in range(30):
        make_item(f"sku-{n:02d}")
    long_ago = timezone.now() - timedelta(hours=1)
    Item.objects.update(updated_at=long_ago)  # a bulk import: every row has the same stamp
    table = item_table.ItemTable.build([f"sku-{n:02d}" for n in range(30)])
    monkeypatch.setattr(item_table, "REFRESH_SECONDS", 0.0)
    applied: list[int] = []
    apply = item_table.ItemTable._apply

    def counting(self: item_table.ItemTable, rows: Any, started: Any) -> None:
        rows = list(rows)
        applied.append(len(rows))
        apply(self, rows, started)

    monkeypatch.setattr(item_table.ItemTable, "_apply", counting)

    table.refresh()
    Item.objects.filter(external_id="sku-07").update(stock=0, updated_at=timezone.now())
    table.refresh()

    assert applied[0] == 0  # nothing changed since the build: no row is read again
    assert applied[1] == 1 and not table.in_stock[7] and table.in_stock[8]


def test_the_surfaces_page_shows_versions_weights_results_and_a_preview(db, make_item, admin_client, client):
    make_item("shirt", title="Linen shirt")
    surface = create_surface("homepage", "Homepage", {"curated_items": ["shirt"]}, by="ana")
    change_config(surface, {"curated_items": ["shirt"], "weights": {"relevance": 1, "margin": 0.5}}, by="ben")
    SurfaceDailyStats.objects.create(surface=surface, day=timezone.localdate(), impressions=200, clicks=10, purchases=2)
    person = Person.objects.create()
    record_consent(person.pk, "personalization", False, source="tests")
    from profiles.models import Identity

    Identity.objects.create(person=person, kind="user_id", value="user-1")

    page = admin_client.get("/surfaces/?surface=homepage&person=user-1").content.decode()

    assert "Homepage" in page and "margin 0.5" in page and "ben" in page
    assert "0.05" in page and "0.01" in page  # click-through and conversion of the week
    assert "curated" in page and "Linen shirt" in page and "Our pick for you" in page
    assert client.get("/surfaces/").status_code == 302  # staff only
    assert not Impression.objects.exists()  # a preview is not an impression
