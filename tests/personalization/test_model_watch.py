"""The daily watch over the active version: online, data and offline figures, stored and charted."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta

import pytest
from celery import current_app
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog.models import Item
from personalization import registry, watch
from personalization.engine.engine import Engine
from personalization.models import Impression, ModelHealthSnapshot, ModelVersion
from personalization.surfaces import create_surface
from personalization.training import TRAINING_KINDS
from profiles.models import Event, Person
from tests.access import role_user

_ids = itertools.count(1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=hour, minutes=minute)


def event(person: Person, kind: str, item: str, when: datetime, **properties) -> Event:
    return Event.objects.create(
        message_id=f"m-{next(_ids)}",
        person=person,
        kind=kind,
        item_id=item,
        timestamp=when,
        received_at=when,
        properties=properties,
    )


def answer(surface, person: Person | None, items: list[str], strategy: str, when: datetime, degraded=False) -> str:
    rec_id = f"r{next(_ids):08d}"
    Impression.objects.create(
        recommendation_id=rec_id,
        surface=surface,
        person_id=person.pk if person else None,
        item_ids=items,
        strategy=strategy,
        degraded=degraded,
        served_at=when,
    )
    return rec_id


def test_the_watch_is_scheduled_daily(db):
    job = PeriodicTask.objects.get(task="personalization.tasks.watch_active_model")
    assert job.enabled and job.crontab is not None and (job.crontab.hour, job.crontab.minute) == ("6", "15")


def test_online_figures_compare_personalized_and_curated_answers_per_surface(db):
    day = timezone.localdate() - timedelta(days=1)
    homepage = create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    for n in ("a", "b", "c"):
        Item.objects.create(external_id=n, title=n, price="5.00", stock=3)
    people = [Person.objects.create() for _ in range(60)]
    # 30 personalized answers, 9 clicked (3 by the carried id a day later), 2 bought; 3 of them degraded.
    for i, person in enumerate(people[:30]):
        rec = answer(homepage, person, ["a", "b"], "personalized", at(day, 10), degraded=i < 3)
        if i < 6:
            event(person, "view", "b", at(day, 10, 5))
        elif i < 9:
            event(person, "view", "a", at(day, 10) + timedelta(days=2), recommendation_id=rec)
        if i < 2:
            event(person, "purchase", "a", at(day, 12))
    # 30 curated answers, 3 clicked; a view of an item not shown, and one outside the window, do not count.
    for i, person in enumerate(people[30:]):
        answer(homepage, person, ["c"], "curated", at(day, 11))
        if i < 3:
            event(person, "add_to_cart", "c", at(day, 11, 30))
        elif i == 3:
            event(person, "view", "a", at(day, 11, 30))
        elif i == 4:
            event(person, "view", "c", at(day, 11) + timedelta(hours=25))

    snapshot = watch.compute_snapshot(day)

    figures = snapshot.online["surfaces"]["homepage"]
    personalized, curated = figures["arms"]["personalized"], figures["arms"]["curated"]
    assert (personalized["ctr"]["hits"], personalized["ctr"]["n"]) == (9, 30)
    assert (personalized["conversion"]["hits"], curated["ctr"]["hits"], curated["ctr"]["n"]) == (2, 3, 30)
    assert personalized["ctr"]["low"] < 0.3 < personalized["ctr"]["high"]
    difference = figures["ctr_difference"]
    assert difference["value"] == pytest.approx(0.2)
    # 30% against 10% on 30 answers each: the interval of the difference (Newcombe) still reaches zero.
    assert difference["low"] < 0 < 0.2 < difference["high"] < 0.45
    assert figures["degraded"] == 3 and snapshot.online["degraded_share"] == pytest.approx(3 / 60)
    assert snapshot.data["events"] == Event.objects.filter(timestamp__date=day).count()
    assert (
        snapshot.data["people_without_history"] == snapshot.data["people"] == 10
    )  # with item events that day, none before
    assert snapshot.model_version is None and snapshot.offline["ndcg"] is None


@pytest.fixture
def trained(db, model_storage, demo_first_fit) -> ModelVersion:
    call_command("seed_demo", people=150, days=60, verbosity=0)
    version = demo_first_fit()
    assert version.status == "active", version.error
    return version


def test_data_and_offline_figures_of_the_active_version(trained, model_storage):
    engine = Engine.load(registry.artifact_path(trained))
    known = [i for i in engine.item_ids if Item.objects.filter(external_id=i, active=True).exists()][:5]
    today = timezone.localdate()
    # As if the version had been trained two days ago: what came since is fresh for it.
    trained.training = {**trained.training, "data_end": (timezone.now() - timedelta(days=2)).timestamp()}
    trained.save()
    new = Item.objects.create(external_id="brand-new", title="Brand new", price="9.00", stock=3)
    newcomer = Person.objects.create()
    for n in range(4):
        event(newcomer, "view", new.external_id, timezone.now() - timedelta(minutes=10 + n))
    regulars = list(Person.objects.filter(events__isnull=False).distinct()[:20])
    for n, person in enumerate(regulars):
        event(person, "view", known[n % len(known)], timezone.now() - timedelta(minutes=5))
        event(person, "purchase", known[(n + 1) % len(known)], timezone.now() - timedelta(minutes=4))

    snapshot = watch.compute_snapshot(today)

    item_events = Event.objects.filter(timestamp__date=today, kind__in=TRAINING_KINDS).exclude(item_id="")
    unknown = sum(1 for item in item_events.values_list("item_id", flat=True) if item not in engine.item_index)
    assert unknown >= 4
    assert snapshot.data["unknown_item_share"] == pytest.approx(unknown / item_events.count())
    assert (
        snapshot.data["new_items_without_interactions"]
        == Item.objects.filter(created_at__date__gte=today - timedelta(days=29)).count()
        - Item.objects.filter(
            created_at__date__gte=today - timedelta(days=29), external_id__in=Event.objects.values("item_id")
        ).count()
    )
    assert snapshot.data["people_without_history"] >= 1
    assert snapshot.model_version == trained.pk
    offline = snapshot.offline
    assert offline["at_activation"] == trained.metrics["holdout"]["ndcg"]
    assert offline["ndcg"] is not None and 0 <= offline["ndcg"] <= 1 and offline["people"] >= 5, offline
    assert offline["change"] == pytest.approx(offline["ndcg"] / offline["at_activation"] - 1)


def test_the_model_page_charts_the_snapshots(db):
    homepage = create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    for offset in range(5, 0, -1):
        day = timezone.localdate() - timedelta(days=offset)
        person = Person.objects.create()
        answer(homepage, person, ["x"], "personalized", at(day, 9))
        answer(homepage, person, ["y"], "curated", at(day, 9, 30))
        event(person, "view", "x", at(day, 9, 1))
        current_app.tasks["personalization.tasks.watch_active_model"].apply(kwargs={"day": day.isoformat()})
    assert ModelHealthSnapshot.objects.count() == 5

    client = Client()
    client.force_login(role_user("ana", "Analyst"))
    page = client.get("/model/").content.decode()

    assert 'id="watch-online"' in page and "100%" in page
    for chart in ("ctr", "conversion", "ndcg", "shares", "events"):
        assert f'id="chart-{chart}"' in page or chart == "ndcg"
    assert page.count("<circle") >= 5 * 2 + 5  # two arms of click-through, events per day
    stored = ModelHealthSnapshot.objects.first()
    assert stored is not None and json.dumps(stored.online)  # stored as plain JSON


def test_the_demos_first_fit_stores_the_watch_of_the_last_days(db, model_storage):
    """``train_engine --if-none-active --watch-days N`` (make demo): the model page has its charts on
    the first run; a second run trains nothing and stores nothing more."""
    from io import StringIO

    call_command("seed_demo", people=150, days=60, verbosity=0)
    out = StringIO()
    call_command("train_engine", if_none_active=True, watch_days=3, verbosity=0, stdout=out)
    today = timezone.localdate()
    days = sorted(ModelHealthSnapshot.objects.values_list("day", flat=True))
    assert days == [today - timedelta(days=n) for n in (3, 2, 1)]
    assert all(s.data.get("events") for s in ModelHealthSnapshot.objects.all())
    assert "Daily watch stored for the last 3 days" in out.getvalue()
    again = StringIO()
    call_command("train_engine", if_none_active=True, watch_days=3, verbosity=0, stdout=again)
    assert "not training" in again.getvalue() and ModelHealthSnapshot.objects.count() == 3
