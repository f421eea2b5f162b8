"""The trigger and step kinds added for the onboarding, expansion and digest cases, in one process:
coming into a saved segment, a price drop, an account's event count, segment branches, a send
within a window, and the measures per step against the holdout (also in the API and its schema)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from campaigns.models import Message, MessageState
from catalog import services as catalog
from journeys import entering, lifecycle, services
from journeys.measuring import step_measures
from journeys.models import Entry, EntryState, SegmentMember, StepRun
from profiles.models import OutboxEntry
from tests.campaigns.conftest import make_campaign, person, track
from tests.journeys.conftest import item, relay
from tests.journeys.test_journey_api import signed_in

pytestmark = pytest.mark.django_db

NOTE = [{"id": "send", "type": "send_email", "campaign": "note"}]


def live(key: str, definition: dict[str, Any]) -> Any:
    return lifecycle.launch(lifecycle.create_journey(key, key, {"steps": NOTE, **definition}))


@pytest.fixture(autouse=True)
def note_campaign(db: Any) -> None:
    make_campaign("note", content_limit=0, audience={"all": []})


def test_coming_into_a_saved_segment_enters_once_per_coming_in() -> None:
    lifecycle.save_segment("trials", "On a trial", {"all": [{"field": "trait.plan", "op": "eq", "value": "trial"}]})
    journey = live(
        "welcome-trial", {"trigger": {"type": "audience", "segment": "trials"}, "reentry": {"mode": "every_time"}}
    )
    ann = person("ann", plan="trial")
    person("bob", plan="pro")
    assert entering.on_audiences() == 1
    assert entering.on_audiences() == 0  # still in it: not a new coming in
    person("bob", plan="trial")
    person("ann", plan="pro")  # ann leaves …
    assert entering.on_audiences() == 1  # … bob comes in
    person("ann", plan="trial")  # … and ann comes back
    assert entering.on_audiences() == 1
    assert Entry.objects.filter(journey=journey, person=ann).count() == 2


def test_an_unknown_segment_is_refused_naming_the_field() -> None:
    with pytest.raises(lifecycle.JourneyError) as refused:
        live("x", {"trigger": {"type": "audience", "segment": "nobody-made-it"}})
    assert refused.value.field == "definition.trigger.segment"
    with pytest.raises(lifecycle.JourneyError) as wrong_rule:
        lifecycle.save_segment("bad", "Bad", {"all": [{"field": "trait.plan", "op": "sounds_like", "value": 1}]})
    assert wrong_rule.value.field.startswith("rule")


def test_a_price_drop_enters_people_with_a_recent_interest_in_the_item() -> None:
    journey = live(
        "price-drop",
        {"trigger": {"type": "price_drop", "interest": ["view"], "within_days": 30, "min_drop_percent": 5}},
    )
    item("d1").save()
    catalog.upsert_items([{"external_id": "d1", "title": "Desk", "price": "100.00", "stock": 3}])
    item("d2")
    person("ann")
    person("bob")
    track("ann", "Product Viewed", product_id="d1")
    track("bob", "Product Viewed", product_id="d2")
    catalog.upsert_items([{"external_id": "d1", "title": "Desk", "price": "98.00", "stock": 3}])  # 2%: too little
    relay()
    assert not Entry.objects.exists()
    catalog.upsert_items([{"external_id": "d1", "title": "Desk", "price": "80.00", "stock": 3}])
    relay()
    entry = Entry.objects.get(journey=journey)
    assert entry.person.traits["email"] == "ann@example.com"
    assert entry.context["item"]["price_before"] == 98.0 and entry.context["item"]["price"] == 80.0
    catalog.upsert_items([{"external_id": "d1", "title": "Desk", "price": "80.00", "stock": 3}])  # unchanged
    relay()
    assert Entry.objects.count() == 1


def test_an_accounts_count_enters_one_person_of_the_account_once_per_period() -> None:
    journey = live(
        "expansion",
        {"trigger": {"type": "event_count", "event": "API Call", "threshold": 3, "period_days": 30, "per": "account"}},
    )
    person("ann", account_id="acme")
    person("bob", account_id="acme")
    person("cy", account_id="globex")
    for who in ("ann", "cy", "bob", "cy"):
        track(who, "API Call")
    relay()
    assert not Entry.objects.exists()
    track("bob", "API Call")  # acme's third
    track("ann", "API Call")
    relay()
    entry = Entry.objects.get(journey=journey)
    assert entry.person.traits["email"] == "bob@example.com" and entry.context["account"]["id"] == "acme"


def test_a_branch_on_a_segment() -> None:
    lifecycle.save_segment("vip", "VIP", {"all": [{"field": "trait.tier", "op": "eq", "value": "vip"}]})
    journey = live(
        "vip-branch",
        {
            "trigger": {"type": "event", "event": "Signed In"},
            "steps": [
                {"id": "is-vip", "type": "branch", "if": {"segment": "vip"}, "then": "send", "else": "out"},
                {"id": "send", "type": "send_email", "campaign": "note"},
                {"id": "out", "type": "exit"},
            ],
        },
    )
    person("ann", tier="vip")
    person("bob", tier="basic")
    track("ann", "Signed In")
    track("bob", "Signed In")
    relay()
    services.advance_due()
    outcome = dict(
        StepRun.objects.filter(entry__journey=journey, step="is-vip").values_list(
            "entry__person__traits__email", "outcome"
        )
    )
    assert outcome == {"ann@example.com": "then", "bob@example.com": "else"}


def test_a_send_within_a_window_is_deferred_past_it_by_quiet_hours_never_dropped() -> None:
    now = timezone.now()
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=5)).time().replace(second=0, microsecond=0)
    make_campaign("quiet", content_limit=0, audience={"all": []}, quiet_start=start, quiet_end=end)
    live(
        "windowed",
        {
            "trigger": {"type": "event", "event": "Signed In"},
            "steps": [{"id": "send", "type": "send_email", "campaign": "quiet", "window_hours": 2}],
        },
    )
    person("ann", timezone="UTC")
    track("ann", "Signed In")
    relay()
    services.advance_due()
    message = Message.objects.get(campaign__key="quiet")
    assert message.state == MessageState.SCHEDULED
    assert message.scheduled_for is not None and message.scheduled_for > now + timedelta(hours=4)


def test_measures_per_step_and_against_the_holdout_in_the_api_and_its_schema() -> None:
    item("a1")
    journey = live(
        "cart",
        {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [
                {"id": "wait", "type": "wait", "hours": 1},
                {"id": "send", "type": "send_email", "campaign": "note"},
            ],
            "exit_on": [{"event": "Order Completed"}],
            "reentry": {"mode": "every_time"},
            "holdout_share": 0.5,
        },
    )
    people = [f"p{n}" for n in range(40)]
    for who in people:
        person(who)
        track(who, "Product Added", product_id="a1")
    relay()
    services.advance_due()  # the waits begin
    by_state: dict[bool, list[str]] = {True: [], False: []}
    for entry in Entry.objects.filter(journey=journey).select_related("person").order_by("pk"):
        by_state[entry.state == EntryState.HELD_OUT].append(entry.person.traits["email"].split("@")[0])
    buyers = by_state[False][:4] + by_state[True][:2]  # some who went through it, some held out
    for who in buyers:
        track(who, "Order Completed", products=[{"product_id": "a1", "price": 10, "quantity": 2}])
    relay()
    Entry.objects.filter(state=EntryState.ACTIVE).update(due_at=F("due_at") - timedelta(hours=2))
    services.advance_due()

    entries = Entry.objects.filter(journey=journey)
    held = entries.filter(state=EntryState.HELD_OUT).count()
    treated = entries.exclude(state=EntryState.HELD_OUT)
    exited = treated.filter(state=EntryState.EXITED).count()
    assert 0 < held < 40 and exited == 4
    measures = step_measures(journey)
    wait, send = measures["steps"]
    assert wait["entered"] == treated.count()
    assert wait["exited"] == exited and wait["exited_by_reason"] == {"exit event: Order Completed": exited}
    assert wait["moved_on"] == treated.count() - exited == send["entered"] == send["finished"]
    assert wait["converted"] == exited and wait["revenue"] == 20.0 * exited
    holdout = measures["holdout"]
    assert (holdout["entries"], holdout["held_out"]) == (treated.count(), held)
    converted_held = entries.filter(
        state=EntryState.HELD_OUT, person__traits__email__in=[f"{b}@example.com" for b in buyers]
    ).count()
    assert holdout["holdout_conversion_rate"] == pytest.approx(converted_held / held)
    low, high = holdout["conversion_lift_interval"]
    assert low < holdout["conversion_lift"] < high

    client = signed_in("Analyst")
    detail = client.get("/api/v1/journeys/cart").json()
    assert detail["measures"]["steps"][0]["exited"] == exited
    assert detail["measures"]["holdout"]["held_out"] == held
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "JourneyMeasures" in schema.content.decode()


def test_a_marketer_saves_a_segment_through_the_api_and_an_analyst_reads_it() -> None:
    marketer = signed_in("Marketer")
    rule = {"all": [{"field": "trait.plan", "op": "eq", "value": "trial"}]}
    saved = marketer.put("/api/v1/segments/trials", {"name": "On a trial", "rule": rule}, format="json")
    assert saved.status_code == 200, saved.json()
    wrong = marketer.put(
        "/api/v1/segments/bad", {"name": "Bad", "rule": {"all": [{"field": "trait.x", "op": "??"}]}}, format="json"
    )
    assert wrong.status_code == 400 and wrong.json()["attr"].startswith("rule")
    listed = signed_in("Analyst").get("/api/v1/segments").json()["results"]
    assert [(s["key"], s["rule"]) for s in listed] == [("trials", rule)]


def test_a_send_within_a_window_goes_at_the_best_hour_inside_it() -> None:
    import numpy as np

    from campaigns.send_time import HOURS_PER_WEEK, fit_send_time_model, hour_of_week, next_occurrence
    from journeys import sending
    from journeys.advancing import run_entry

    now = timezone.now()
    inside, outside = hour_of_week(now + timedelta(hours=2), "UTC"), hour_of_week(now + timedelta(hours=10), "UTC")
    counts = np.zeros((20, HOURS_PER_WEEK))
    counts[:, inside] = 5.0
    counts[:, outside] = 50.0  # the best hour of the week, but after the window
    model = fit_send_time_model(counts, [None] * 20)
    live(
        "windowed",
        {
            "trigger": {"type": "event", "event": "Signed In"},
            "steps": [{"id": "send", "type": "send_email", "campaign": "note", "window_hours": 3}],
        },
    )
    person("ann", timezone="UTC")
    track("ann", "Signed In")
    relay()
    entry = Entry.objects.select_related("journey", "version").get()
    run_entry(entry, now, sending.Preparations(now, model=model))
    message = Message.objects.get(campaign__key="note")
    assert message.state == MessageState.SCHEDULED
    # The model's most valuable hour among those that begin within the window (not the week's best).
    value = model.patterns(np.zeros((1, HOURS_PER_WEEK)), [None])[0] @ model.settings.send_value()
    starts = {hour: next_occurrence(hour, now, "UTC") for hour in range(HOURS_PER_WEEK)}
    in_window = [hour for hour, at in starts.items() if at <= now + timedelta(hours=3)]
    assert message.scheduled_for == starts[max(in_window, key=lambda hour: value[hour])]
    assert now <= message.scheduled_for <= now + timedelta(hours=3)
    assert value[outside] > value[hour_of_week(message.scheduled_for, "UTC")]
    assert message.send_time_source == "cold_start"  # the model's, for someone without a history


def test_coming_into_a_segment_through_ingestion_enters_within_the_commit_without_the_periodic_check(
    secret_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    lifecycle.save_segment("trials", "On a trial", {"all": [{"field": "trait.plan", "op": "eq", "value": "trial"}]})
    lifecycle.save_segment(
        "carters", "Carted twice", {"all": [{"field": "event.add_to_cart", "op": "at_least", "value": {"times": 2}}]}
    )
    trials = live("welcome-trial", {"trigger": {"type": "audience", "segment": "trials"}})
    carters = live("carters", {"trigger": {"type": "audience", "segment": "carters"}})
    ann = person("ann", plan="pro")
    bob = person("bob", plan="pro")
    relay()  # their identify's outbox entries, as after those commits
    assert entering.on_audiences() == 0  # the periodic check has seen them (outside both)

    def post(path: str, body: dict[str, Any]) -> None:
        # As the API answers: the batch commits, then its outbox entry is delivered at once.
        with django_capture_on_commit_callbacks(execute=True):
            response = secret_client.post(path, body, format="json")
        assert response.status_code == 200, response.content

    # A trait update through identify brings ann into "trials": she enters now, bob (unchanged) does not.
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "trial"}, "messageId": "i-1"})
    assert list(Entry.objects.filter(journey=trials).values_list("person_id", flat=True)) == [ann.pk]
    assert not OutboxEntry.objects.filter(action="journey_events").exists()  # delivered after the commit

    # Events: bob's second add to cart brings him into "carters"; the first does not.
    cart = {"type": "track", "userId": "bob", "event": "Product Added", "properties": {"product_id": "a1"}}
    post("/api/v1/track", {**cart, "messageId": "t-1"})
    assert not Entry.objects.filter(journey=carters).exists()
    post("/api/v1/track", {**cart, "messageId": "t-2"})
    entry = Entry.objects.get(journey=carters)
    assert entry.person_id == bob.pk and entry.context == {"segment": "carters"}

    # Nothing more for the periodic check to find, and nobody enters twice for the same coming in.
    assert entering.on_audiences() == 0
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "trial"}, "messageId": "i-2"})
    assert Entry.objects.filter(journey=trials).count() == 1

    # Leaving through a trait update is noticed at once too, so coming back is a new coming in.
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "pro"}, "messageId": "i-3"})
    assert not SegmentMember.objects.filter(segment__key="trials", person=ann).exists()
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "trial"}, "messageId": "i-4"})
    assert Entry.objects.filter(journey=trials, person=ann).count() == 1  # re-entry after_exit: still active
    Entry.objects.filter(journey=trials).update(state=EntryState.DONE)
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "pro"}, "messageId": "i-5"})
    post("/api/v1/identify", {"type": "identify", "userId": "ann", "traits": {"plan": "trial"}, "messageId": "i-6"})
    assert Entry.objects.filter(journey=trials, person=ann).count() == 2
