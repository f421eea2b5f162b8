"""The console's journey pages on PostgreSQL: the list and the flow with counts that follow real
entries, the builder (from a starter, errors beside their field, edit as a new version), the test run,
launch / pause / archive, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.test import Client

from journeys import services
from journeys.models import Entry, EntryState, Journey, JourneyStatus
from journeys.starters import STARTERS
from tests.access import role_user
from tests.journeys.conftest import abandoned_cart, cart_campaign, item, now, person, relay, track

pytestmark = pytest.mark.django_db


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role.lower(), role))
    return client


def builder_post(client: Client, url: str, **fields: Any) -> Any:
    """The builder's form as a browser posts it: what the page shows, changed by ``fields``."""
    page = client.get(url)
    form = page.context["form"]
    data: dict[str, Any] = {k: v for k, v in form.values.items()}
    for n, row in enumerate(form.steps):
        data.update({f"step-{n}-{k}": v for k, v in row.items()})
    for n, row in enumerate(form.exits):
        data.update({f"exit-{n}-event": row["event"], f"exit-{n}-where": row["where"]})
    data.update(fields)
    return client.post(url, data)


def test_the_flow_counts_people_as_they_enter_wait_and_leave():
    item("a1")
    cart_campaign()
    journey = abandoned_cart()
    for name in ("ana", "bob", "cy"):
        person(name)
        track(name, "Product Added", product_id="a1")
    relay()
    services.advance_due(now=now())
    track("bob", "Order Completed", order_id="o1", products=[{"product_id": "a1", "price": "9"}])
    relay()
    marketer = signed_in("Marketer")

    listed = marketer.get("/journeys/")
    assert listed.status_code == 200
    row = listed.context["rows"][0]
    assert row["journey"].key == journey.key and row["counts"]["active"] == 2 and row["counts"]["exited"] == 1

    page = marketer.get(f"/journeys/{journey.key}/")
    wait, send = page.context["rows"]
    assert (wait["count"]["entered"], wait["count"]["waiting"], wait["count"]["exited"]) == (3, 2, 1)
    assert wait["count"]["exited_by_reason"] == {"exit event: Order Completed": 1}
    assert send["count"]["entered"] == 0
    assert "When someone adds something to the cart (Product Added)" in page.content.decode()
    assert "Wait 4 hours" in page.content.decode()

    Entry.objects.filter(state=EntryState.ACTIVE).update(due_at=F("due_at") - timedelta(hours=4))
    services.advance_due(now=now())
    counts = marketer.get(f"/journeys/{journey.key}/counts").json()
    wait_now, send_now = counts["steps"]
    assert (wait_now["moved_on"], wait_now["waiting"], send_now["entered"], send_now["moved_on"]) == (2, 0, 2, 2)
    assert counts["entries"] == {"active": 0, "done": 2, "exited": 1, "held_out": 0}


def test_a_marketer_builds_a_journey_from_a_starter_with_errors_beside_their_fields():
    cart_campaign()
    marketer = signed_in("Marketer")
    assert b"Abandoned cart" in marketer.get("/journeys/new/").content
    url = "/journeys/new/?starter=abandoned-cart"
    start = marketer.get(url)
    assert start.context["values"]["key"] == "abandoned-cart" and not start.context["missing_campaigns"]

    # A wait in words that are not a number: refused beside the wait, nothing stored.
    refused = builder_post(marketer, url, **{"step-0-wait_amount": "four"})
    assert refused.status_code == 200 and not Journey.objects.exists()
    assert refused.context["errors"] == {"step-0-wait_amount": "Give a number from 0 to 8784."}
    assert 'data-field="step-0-wait_amount"' in refused.content.decode()
    # A holdout above half: in percent, beside the holdout.
    refused = builder_post(marketer, url, holdout_percent="60")
    assert refused.context["errors"] == {"holdout_percent": "Give a share from 0 to 50 %."}

    # Adding a step shows it without saving; saving stores the draft as version 1.
    added = builder_post(marketer, url, op="add:exit")
    assert [s["type"] for s in added.context["steps"]] == [
        "wait",
        "send_email",
        "exit",
    ] and not Journey.objects.exists()
    saved = builder_post(marketer, url, **{"step-0-wait_amount": "2"})
    assert saved.status_code == 302 and saved["Location"] == "/journeys/abandoned-cart/"
    journey = Journey.objects.select_related("current_version", "owner").get(key="abandoned-cart")
    assert journey.current_version is not None and journey.owner is not None
    assert journey.status == JourneyStatus.DRAFT and journey.owner.username == "marketer"
    assert journey.current_version.definition["steps"][0] == {"id": "wait", "type": "wait", "seconds": 7200.0}
    assert journey.current_version.definition["holdout_share"] == 0.1

    # Edit: a new version; saving the same form again adds none.
    edit = f"/journeys/{journey.key}/edit"
    builder_post(marketer, edit, **{"step-0-wait_unit": "minutes", "step-0-wait_amount": "30", "name": "Cart 30"})
    journey.refresh_from_db()
    assert journey.current_version is not None
    assert journey.current_version.number == 2 and journey.name == "Cart 30"
    assert journey.current_version.definition["steps"][0]["seconds"] == 1800.0
    builder_post(marketer, edit)
    journey.refresh_from_db()
    assert journey.current_version is not None and journey.current_version.number == 2


def test_a_missing_template_campaign_is_named_on_the_email_step():
    marketer = signed_in("Marketer")
    url = "/journeys/new/?starter=back-in-stock"
    assert marketer.get(url).context["missing_campaigns"] == ["back-in-stock"]
    refused = builder_post(marketer, url)
    assert refused.context["errors"] == {"step-0-campaign": "No campaign has the key 'back-in-stock'."}


def test_launch_pause_archive_and_who_may():
    cart_campaign()
    journey = services.create_journey(
        "cart",
        "Cart",
        {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [{"id": "s", "type": "send_email", "campaign": "cart-reminder"}],
        },
    )
    analyst = signed_in("Analyst")
    assert analyst.get(f"/journeys/{journey.key}/").status_code == 200
    assert analyst.get(f"/journeys/{journey.key}/edit").status_code == 403
    assert analyst.post(f"/journeys/{journey.key}/launch").status_code == 403
    assert b'id="launch"' not in analyst.get(f"/journeys/{journey.key}/").content
    marketer = signed_in("Marketer")
    for action, status in (("launch", "live"), ("pause", "paused"), ("launch", "live"), ("archive", "archived")):
        assert marketer.post(f"/journeys/{journey.key}/{action}").status_code == 302
        journey.refresh_from_db()
        assert journey.status == status
    refused = marketer.post(f"/journeys/{journey.key}/pause", follow=True)
    assert "The journey is archived: it cannot be paused." in refused.content.decode()
    assert marketer.get(f"/journeys/{journey.key}/edit").status_code == 302


def test_the_test_run_shows_the_path_without_storing_anything():
    item("a1")
    cart_campaign()
    journey = abandoned_cart()
    services.pause(journey)  # nobody enters while the person's events come in
    person("ana")
    track("ana", "Product Added", at=now() - timedelta(hours=5), product_id="a1")
    relay()
    marketer = signed_in("Marketer")
    page = marketer.get(f"/journeys/{journey.key}/", {"person": "ana"})
    trace = page.context["trace"]
    assert trace.entered and [s.id for s in trace.path] == ["wait", "send"]
    assert "sends the email “cart-reminder”" in page.content.decode()
    assert not Entry.objects.exists()
    unknown = marketer.get(f"/journeys/{journey.key}/", {"person": "nobody-at-all"})
    assert unknown.context["test_problem"] == "No person is known by 'nobody-at-all'."


def test_the_test_run_reads_saved_segment_membership_for_the_trigger_and_branches():
    from journeys.models import Segment, SegmentMember

    cart_campaign()
    services.save_segment("trials", "On a trial", {"all": [{"field": "trait.plan", "op": "eq", "value": "trial"}]})
    services.save_segment("power", "Power users", {"all": [{"field": "trait.role", "op": "eq", "value": "ae"}]})
    definition = {
        "trigger": {"type": "audience", "segment": "trials"},
        "steps": [
            {"id": "b", "type": "branch", "if": {"segment": "power"}, "then": "mail", "else": "done"},
            {"id": "mail", "type": "send_email", "campaign": "cart-reminder"},
            {"id": "done", "type": "exit"},
        ],
    }
    services.create_journey("trial-power", "Trial power users", definition)
    ana = person("ana", plan="trial", role="ae")
    person("bob", plan="trial", role="sdr")
    person("cy", plan="paid", role="ae")
    since = now() - timedelta(days=2)
    SegmentMember.objects.create(segment=Segment.objects.get(key="trials"), person=ana, since=since)
    marketer = signed_in("Marketer")

    def run(who: str) -> Any:
        return marketer.get("/journeys/trial-power/", {"person": who}).context["trace"]

    ana_run = run("ana")  # in both: entered when the trigger counted her in, then the email
    assert ana_run.entered and ana_run.entered_at == since
    assert "came into the segment “trials”" in ana_run.entry
    assert [s.id for s in ana_run.path] == ["b", "mail", "done"]
    assert ana_run.path[0].happens.startswith("they are in the segment")
    bob_run = run("bob")  # in the trigger's segment (not yet counted in), not a power user
    assert bob_run.entered and "in the segment “trials” now" in bob_run.entry
    assert [s.id for s in bob_run.path] == ["b", "done"]
    assert bob_run.path[0].happens.startswith("they are not in the segment")
    cy_run = run("cy")  # not on a trial: shown as if she came in now; a power user
    assert not cy_run.entered and "not in the segment “trials”" in cy_run.entry
    assert [s.id for s in cy_run.path] == ["b", "mail", "done"]


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_every_starter_is_offered_and_saved_from_the_builder_unchanged(key):
    """/journeys/new/ offers the five cases; each opens in the builder and, saved as it opens, is
    stored exactly as the starter defines it."""
    from campaigns.models import Channel
    from journeys.definition import validate
    from journeys.starters import starter
    from tests.campaigns.conftest import make_campaign

    definition = starter(key)["definition"]
    for step in definition["steps"]:
        if step.get("campaign"):
            extra = {"channel": Channel.ONBOARDING} if step["type"] == "update_surface" else {}
            make_campaign(step["campaign"], **extra)
    marketer = signed_in("Marketer")
    offered = marketer.get("/journeys/new/").content.decode()
    assert all(f'data-starter="{k}"' in offered for k in STARTERS) and len(STARTERS) == 5
    saved = builder_post(marketer, f"/journeys/new/?starter={key}")
    assert saved.status_code == 302, saved.context["errors"]
    journey = Journey.objects.get(key=key)
    assert journey.status == JourneyStatus.DRAFT and journey.name == starter(key)["name"]
    assert journey.current_version is not None and journey.current_version.definition == validate(definition)
