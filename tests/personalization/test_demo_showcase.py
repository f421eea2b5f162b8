"""``seed_demo --with-surfaces`` leaves data for every console page, made through the real code paths."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from campaigns import services as campaigns
from campaigns.lifecycle import content_surface_note
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from experiments import services as experiments
from experiments.models import Experiment, Exposure
from journeys.counting import journey_flow
from journeys.entering import held_out
from journeys.models import Entry, Journey, JourneyStatus, SurfacePin
from journeys.starters import STARTERS
from personalization.models import Impression, Surface, SurfaceDailyStats

# Far above any id the suite reaches in a run, so that no id this test's rows get was another test's
# (in-process copies keyed by id must not find an earlier test's row).
FIRST_ID = 10**9


def _number_from_a_fixed_id() -> None:
    """The ids of the rows the seed writes start at ``FIRST_ID``: what the demo shows hangs on them (a
    journey's and a campaign's holdout hash the person's id) and must not hang on how many ids the
    tests before this one used up in this database (under pytest-xdist, on which tests happened to run
    before it in its worker). Tables that hold rows (the migrations' roles and schedules) keep theirs."""
    with connection.cursor() as cursor:
        for sequence in connection.introspection.sequence_list():
            table, column = sequence["table"], sequence["column"] or "id"
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)})")
            if cursor.fetchone()[0]:
                continue
            if connection.vendor == "postgresql":
                cursor.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)", [table, column, FIRST_ID])
            elif connection.vendor == "sqlite":
                cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
                cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, FIRST_ID - 1])


@pytest.fixture
def seeded(db, tmp_path):
    _number_from_a_fixed_id()
    out = StringIO()
    keys = tmp_path / "var" / "demo-api-keys.txt"
    call_command("seed_demo", people=250, days=60, with_surfaces=True, keys_file=str(keys), verbosity=0, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_has_data_for_every_console_page(seeded, tmp_path):
    # Surfaces: answers served over the days, with clicks and purchases the nightly job attributed.
    homepage = SurfaceDailyStats.objects.filter(surface__key="homepage")
    assert homepage.count() >= 50
    totals = homepage.aggregate(i=Sum("impressions"), c=Sum("clicks"), p=Sum("purchases"), r=Sum("revenue"))
    assert totals["i"] == Impression.objects.filter(surface__key="homepage").count() > 500
    assert 0 < totals["c"] < totals["i"] and 0 < totals["p"] < totals["c"] and totals["r"] > 0
    # The email product block is the surface campaigns use by default, and it served the sent one.
    email = SurfaceDailyStats.objects.get(surface__key="email-product-block", day=timezone.localdate())
    assert email.impressions > 0

    # A campaign in each state, all with the default content surface, which exists.
    by_key = {c.key: c for c in Campaign.objects.all()}
    assert by_key["winter-lookbook"].status == CampaignStatus.DRAFT
    for campaign in by_key.values():
        assert campaign.content_surface == "email-product-block"
        assert content_surface_note(campaign) == "Products from the surface 'email-product-block'."
    waiting = Message.objects.filter(campaign=by_key["account-renewal-picks"], state=MessageState.PENDING_APPROVAL)
    assert waiting.exists()
    scheduled = Message.objects.filter(campaign=by_key["weekend-sale-preview"], state=MessageState.SCHEDULED)
    assert scheduled.exists() and all(m.scheduled_for and m.scheduled_for > timezone.now() for m in scheduled)
    sent = Message.objects.filter(campaign=by_key["new-this-week"])
    assert sent.filter(state__in=[MessageState.SENT, MessageState.OPENED, MessageState.CLICKED]).count() > 10
    assert sent.filter(opened_at__isnull=False).exists() and sent.filter(clicked_at__isnull=False).exists()
    assert sent.filter(reason="holdout").exists()
    holdout = Experiment.objects.get(key=by_key["new-this-week"].holdout_experiment)
    assert Exposure.objects.filter(experiment=holdout).count() > 10

    # Logins per role; a CSM is not staff and sees only the approvals of their accounts.
    User = get_user_model()
    groups = {u.username: set(u.groups.values_list("name", flat=True)) for u in User.objects.all()}
    assert groups["marketer"] == {"Marketer"} and groups["analyst"] == {"Analyst"}
    assert groups["csm"] == {"CSM"} and groups["csm2"] == {"CSM"}
    assert groups["admin"] == {"Administrator"} and groups["demo"] == {"Administrator"}
    csm = User.objects.get(username="csm")
    assert not csm.is_staff and csm.check_password("csm")
    assert User.objects.get(username="demo").check_password("demo")
    queue = campaigns.visible_messages(csm).filter(state=MessageState.PENDING_APPROVAL)
    assert queue.exists() and set(queue.values_list("account__csm__username", flat=True)) == {"csm"}
    everything_waiting = Message.objects.filter(state=MessageState.PENDING_APPROVAL)
    assert queue.count() < everything_waiting.count()  # csm2's accounts are not in it

    # An experiment with exposures and a stored result that reads as a decision.
    experiment = Experiment.objects.get(key="homepage-margin-weight")
    assert experiment.status == "running" and Exposure.objects.filter(experiment=experiment).count() > 100
    snapshot = experiments.latest_results(experiment)
    assert snapshot is not None and snapshot.data["decision"]

    # Journeys: the five cases live, each with people at more than one step (the digest has one step:
    # people on it from the last two Mondays, sent and held out).
    flows = {}
    for key in STARTERS:
        journey = Journey.objects.get(key=key)
        assert journey.status == JourneyStatus.LIVE, key
        flows[key] = journey_flow(journey)
        reached = [s.id for s in flows[key].steps if s.entered > 0]
        assert len(reached) > 1 or (len(flows[key].steps) == 1 and flows[key].steps[0].entered > 10), key

    flow = flows["abandoned-cart"]
    wait, send = flow.steps
    assert wait.entered > 10 and wait.waiting > 0 and wait.moved_on > 0
    assert wait.exit_reasons.get("exit event: Order Completed", 0) > 0
    assert send.entered == send.moved_on > 0 and flow.entries["done"] == send.moved_on
    assert flow.entries["held_out"] > 0
    emails = Message.objects.filter(origin__startswith="journey:", campaign__key="cart-reminder")
    assert emails.count() == send.moved_on
    assert emails.filter(state=MessageState.SENT).exists() and "× " in emails.filter(state=MessageState.SENT)[0].html
    stock = Journey.objects.get(key="back-in-stock")
    restocked = sorted(set(Entry.objects.filter(journey=stock).values_list("context__item__id", flat=True)))
    assert len(restocked) == 1 and Entry.objects.filter(journey=stock).count() >= 3
    assert Message.objects.filter(origin__startswith="journey:", campaign__key="back-in-stock").exists()

    # Onboarding day 3: other roles leave at the branch, some wait for day 3, some connected the
    # calendar on their own (exit), the others were shown the step on the checklist and emailed.
    steps = {s.id: s for s in flows["onboarding-day-3"].steps}
    assert steps["is-ae"].outcomes.get("then", 0) > 0 and steps["is-ae"].outcomes.get("else", 0) > 0
    assert steps["not-for-them"].entered > 0
    assert steps["day-3"].waiting > 0
    assert sum(s.exit_reasons.get("exit event: Integration Connected", 0) for s in steps.values()) > 0
    assert steps["checklist"].entered > 0 and steps["email"].moved_on > 0
    assert SurfacePin.objects.filter(surface="onboarding-checklist", item_id="connect-calendar").exists()
    assert Message.objects.filter(origin__startswith="journey:", campaign__key="onboarding-calendar").exists()

    # Expansion: accounts past 500 API calls in a billing cycle, once per account and cycle; the prompt
    # is in the product and the CSM's email waits in their approval queue.
    expansion = Entry.objects.filter(journey__key="expansion")
    occurrences = sorted(expansion.values_list("occurrence", flat=True))
    assert len(occurrences) == 3 and all(":cycle:" in o for o in occurrences)
    assert sum(o.startswith("account:acme-retail:") for o in occurrences) == 2  # its last cycle and this one
    assert all(s.entered == 3 for s in flows["expansion"].steps)
    csm_emails = Message.objects.filter(campaign__key="expansion-csm", state=MessageState.PENDING_APPROVAL)
    assert csm_emails.count() == 3
    assert set(csm_emails.values_list("account__csm__username", flat=True)) == {"csm", "csm2"}
    assert Message.objects.filter(campaign__key="upgrade-prompt").count() == 3

    # Weekly digest: the last two Mondays, each person once a Monday; emails with picks went out.
    digest = Entry.objects.filter(journey__key="weekly-digest")
    assert len({o for o in digest.values_list("occurrence", flat=True)}) == 2
    # The holdout (5 %) follows each person's hash, so which of the run's ids fall in it varies: the
    # entries held out are exactly those the rule puts there.
    share = STARTERS["weekly-digest"]["definition"]["holdout_share"]
    expected = {pid for pid in digest.values_list("person_id", flat=True) if held_out("weekly-digest", pid, share)}
    assert set(digest.filter(state="held_out").values_list("person_id", flat=True)) == expected
    sent_digests = Message.objects.filter(campaign__key="weekly-digest", state=MessageState.SENT)
    assert sent_digests.exists() and all(m.item_ids for m in sent_digests)

    assert not Journey.objects.filter(status=JourneyStatus.DRAFT).exists()
    said = ", ".join(f"{k} (live)" for k in STARTERS)
    assert f"Journeys: {said}; {restocked[0]} back in stock." in seeded

    # The pages the console added last show data on the first run: the home page's figures, the
    # surface chart with its versions on the days they were saved, the experiment form's choices,
    # and the item page email links go to.
    from django.core.cache import cache
    from django.test import Client

    from catalog.models import Item
    from personalization.home_page import home_context
    from personalization.surface_console import _performance

    cache.clear()
    marketer = User.objects.get(username="marketer")
    home = home_context(marketer)
    assert home["events"].week > 0 and home["people"]["people"] > 200
    rows = {row.key: row for row in home["surfaces"]}
    assert rows["homepage"].answers > 0 and rows["homepage"].revenue > 0 and not rows["homepage"].answers_chart.empty
    assert {r["campaign"].key for r in home["campaigns"]} >= {"account-renewal-picks", "weekend-sale-preview"}
    assert home["approvals"]["total"] == everything_waiting.count()
    assert "homepage-margin-weight" in {r["experiment"].key for r in home["experiments"]}
    performance = _performance(Surface.objects.get(key="homepage"))
    assert all(not chart.empty for chart in performance["charts"])
    marked = [label for _, label in performance["charts"][0].markers]
    assert "v2–v3" in marked  # the two versions the experiment saved, three weeks ago
    client = Client()
    client.force_login(marketer)
    form = client.get("/experiments/new/").content.decode()
    assert 'data-target="surface:homepage"' in form and "Template variant default" in form
    item = Item.objects.filter(active=True).exclude(title="").first()
    assert item is not None and item.title in Client().get(f"/items/{item.external_id}").content.decode()

    # The API keys, in a file only its owner reads, named at the end of the output.
    keys = tmp_path / "var" / "demo-api-keys.txt"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert "export SK=" in keys.read_text() and "export IK=" in keys.read_text()
    assert f"API keys written to {keys}" in seeded
    assert "Demo login: csm / csm (CSM)" in seeded

    # A second run leaves everything as it is and issues no new keys.
    campaign_count = Campaign.objects.count()
    again = StringIO()
    call_command("seed_demo", if_empty=True, with_surfaces=True, keys_file=str(keys), verbosity=0, stdout=again)
    assert "API keys" not in again.getvalue() and Campaign.objects.count() == campaign_count
