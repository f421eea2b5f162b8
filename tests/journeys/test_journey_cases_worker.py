"""Onboarding day 3, expansion and the weekly digest end to end: PostgreSQL, Redis, a real Celery
worker and a real SMTP server on loopback. Each journey is its starter definition (journeys.starters),
with day-long waits made seconds long. Each test: the right person gets the right message once,
the exit works, and consent withdrawn on the way stops the email.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from campaigns import approvals
from campaigns import services as campaigns
from campaigns.models import Message, MessageState, Reason
from campaigns.tasks import send_due_messages
from catalog.models import Item
from journeys import entering, lifecycle, services
from journeys.models import Entry, EntryState, Journey, StepRun
from journeys.starters import starter
from journeys.tasks import advance_journeys
from personalization.celery import app
from profiles import services as profiles
from tests.campaigns.conftest import Mailbox, account, make_campaign, person, track, user
from tests.campaigns.test_campaigns_worker import Worker

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the worker runs in another process",
    ),
]

_ids = itertools.count(1)


def wait_for(condition: Callable[[], bool], seconds: float, what: str, worker: Worker) -> None:
    """Poll, and do what celery beat does: queue the advancing round and the sending round."""
    deadline = time.monotonic() + seconds
    last = 0.0
    while time.monotonic() < deadline:
        if condition():
            return
        if not worker.alive():
            pytest.fail(f"the worker exited:\n{worker.log.read_text()[-4000:]}")
        if time.monotonic() - last > 1:
            advance_journeys.delay()
            send_due_messages.delay()
            last = time.monotonic()
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{worker.log.read_text()[-4000:]}")


def settle(seconds: float = 3.0) -> None:
    """A few more rounds, to see that nothing more is sent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        advance_journeys.delay()
        send_due_messages.delay()
        time.sleep(0.5)


def from_starter(key: str, *, waits: dict[str, Any] | None = None) -> Journey:
    """The starter, launched; nobody held out (the holdout draw depends on person ids, which vary)."""
    definition = {**starter(key)["definition"], "holdout_share": 0}
    for step in definition["steps"]:
        if step["type"] == "wait" and waits:
            for unit in ("seconds", "minutes", "hours", "days"):
                step.pop(unit, None)
            step.update(waits)
    return lifecycle.launch(lifecycle.create_journey(key, starter(key)["name"], definition))


def api_calls(user_id: str, n: int) -> None:
    """``n`` API calls of one person, in one ingested batch."""
    result = profiles.ingest_messages(
        [
            {"type": "track", "userId": user_id, "event": "API Call", "messageId": f"call-{next(_ids)}"}
            for _ in range(n)
        ],
        refresh=False,
    )
    assert not result.rejected


# --- onboarding day 3 -------------------------------------------------------------------------------------

CALENDAR_HTML = (
    "<html><body><p>Hi {{ person.first_name }}, one step left:</p>"
    '{% for step in journey.pinned %}<p><a href="{{ step.url }}">{{ step.title }}</a>: {{ step.note }}</p>'
    '{% endfor %}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


@pytest.mark.django_db(transaction=True)
def test_onboarding_day_3_end_to_end(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    Item.objects.create(external_id="connect-calendar", kind="feature", title="Connect your calendar", stock=None)
    make_campaign(
        "onboarding-calendar",
        subject="One step left: {{ journey.pinned[0].title }}",
        html=CALENDAR_HTML,
        text="{% for step in journey.pinned %}{{ step.title }}: {{ step.url }}{% endfor %}",
        content_limit=0,
        audience={"all": []},
        item_url="https://app.example.com/setup/{item_id}",
    )
    # The generic onboarding email, due on day 3 for everyone: the focused one replaces it.
    generic = make_campaign(
        "onboarding-generic",
        subject="Getting started",
        audience={"all": []},
        content_limit=0,
        send_at=datetime(2030, 1, 1, 9, tzinfo=UTC).isoformat(),
    )
    campaigns.launch(generic, None)
    journey = from_starter("onboarding-day-3", waits={"seconds": 4})

    ana = person("ana", first_name="Ana", role="account_executive")
    person("bo", first_name="Bo", role="account_executive")
    cy = person("cy", first_name="Cy", role="account_executive")
    person("dee", first_name="Dee", role="sdr")
    campaigns.prepare(generic.pk)
    assert Message.objects.filter(campaign=generic, state=MessageState.SCHEDULED).count() == 4
    for who in ("ana", "bo", "cy", "dee"):
        track(who, "Integration Connected", integration="crm")
    assert Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).count() == 4

    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        wait_for(lambda: not Entry.objects.filter(journey=journey, step="is-ae").exists(), 60, "the branch", worker)
        track("bo", "Integration Connected", integration="calendar")  # done within the 3 days: leaves
        profiles.record_consent(cy.pk, "email_marketing", False, source="preference centre")
        wait_for(lambda: len(box.received) >= 1, 90, "the calendar email", worker)
        wait_for(
            lambda: not Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).exists(), 30, "the ends", worker
        )
        settle()
    finally:
        worker.stop()

    assert box.by_recipient() == {"ana@example.com": 1}
    sent = box.received[0]
    assert str(sent["Subject"]) == "One step left: Connect your calendar"
    message = Message.objects.get(person=ana, campaign__key="onboarding-calendar")
    assert next(url for url, _ in message.links) == "https://app.example.com/setup/connect-calendar"  # the deep link
    states = {e.person.traits["email"]: (e.state, e.exit_reason) for e in Entry.objects.select_related("person")}
    assert states["ana@example.com"][0] == EntryState.DONE
    assert states["bo@example.com"] == (EntryState.EXITED, "exit event: Integration Connected")
    assert states["dee@example.com"] == (EntryState.EXITED, "exit step not-for-them")
    refused = Message.objects.get(person=cy, campaign__key="onboarding-calendar")
    assert (refused.state, refused.reason) == (MessageState.SUPPRESSED, Reason.NO_CONSENT)
    # Instead of the generic email: Ana's is replaced, the others' still go on day 3.
    generic_states = dict(Message.objects.filter(campaign=generic).values_list("to_email", "state"))
    assert generic_states.pop("ana@example.com") == MessageState.SUPPRESSED
    assert set(generic_states.values()) == {MessageState.SCHEDULED}
    # The checklist shows the same step first, with the journey's note; only to Ana.
    checklist = campaigns.next_best_actions(ana.pk)
    assert checklist.items[0].item_id == "connect-calendar"
    assert checklist.items[0].reason == starter("onboarding-day-3")["definition"]["steps"][3]["note"]
    assert [i.item_id for i in campaigns.next_best_actions(cy.pk).items][:1] == ["connect-calendar"]  # pinned too
    bo = profiles.find_person("bo")
    assert bo is not None and "connect-calendar" not in [i.item_id for i in campaigns.next_best_actions(bo.pk).items]


# --- expansion --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_expansion_end_to_end(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    casey = user("casey", "campaigns.approve_message")
    casey.first_name, casey.last_name = "Casey", "Jones"
    casey.save()
    olga = user("olga", "campaigns.approve_message")
    account("acme", csm=casey)
    account("initech", csm=casey)
    account("umbrella", csm=olga)
    make_campaign(
        "upgrade-prompt",
        channel="onboarding",
        subject="You are growing fast",
        html="<p>{{ journey.account.name }} made {{ journey.account.count }} API calls this month. Upgrade?</p>",
        text="Upgrade?",
        content_limit=0,
        audience={"all": []},
    )
    make_campaign(
        "expansion-csm",
        subject="{{ journey.account.name }}: room to grow",
        html="<p>Hi {{ person.first_name }}, your team is busy.</p><p>{{ journey.csm.name }}</p>"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        text="{{ journey.csm.name }}",
        content_limit=0,
        audience={"all": []},
    )
    journey = from_starter("expansion")
    ana = person("ana", first_name="Ana", account_id="acme")
    al = person("al", first_name="Al", account_id="acme")
    person("ivy", first_name="Ivy", account_id="initech")
    uma = person("uma", first_name="Uma", account_id="umbrella")

    api_calls("ana", 300)
    api_calls("al", 199)
    assert not Entry.objects.exists()  # 499 calls of acme
    api_calls("al", 1)  # the 500th, by Al
    api_calls("ana", 20)  # more calls in the same cycle enter nobody again
    api_calls("ivy", 500)
    track("ivy", "Plan Upgraded")  # Initech upgrades before the journey acts: it leaves
    api_calls("uma", 500)
    entries = {e.person.traits["email"]: e for e in Entry.objects.filter(journey=journey).select_related("person")}
    assert set(entries) == {"al@example.com", "ivy@example.com", "uma@example.com"}  # one per account
    assert entries["al@example.com"].context["account"]["id"] == "acme"

    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        waiting = Message.objects.filter(campaign__key="expansion-csm", state=MessageState.PENDING_APPROVAL)
        wait_for(lambda: waiting.count() == 2, 60, "the CSM emails in the approval queue", worker)
        # In the queue of the account's CSM only.
        assert list(approvals.visible_messages(casey).filter(pk__in=waiting).values_list("person_id", flat=True)) == [
            al.pk
        ]
        assert list(approvals.visible_messages(olga).filter(pk__in=waiting).values_list("person_id", flat=True)) == [
            uma.pk
        ]
        # Uma withdraws consent while her email waits; then both CSMs approve.
        profiles.record_consent(uma.pk, "email_marketing", False, source="preference centre")
        approvals.decide(casey, [m.pk for m in approvals.visible_messages(casey).filter(pk__in=waiting)], "approve")
        approvals.decide(olga, [m.pk for m in approvals.visible_messages(olga).filter(pk__in=waiting)], "approve")
        wait_for(lambda: len(box.received) >= 1, 90, "the CSM's email", worker)
        wait_for(
            lambda: Message.objects.filter(
                person=uma, campaign__key="expansion-csm", state=MessageState.SUPPRESSED
            ).exists(),
            60,
            "Uma's email to be stopped",
            worker,
        )
        wait_for(
            lambda: Message.objects.filter(campaign__key="upgrade-prompt", state=MessageState.SENT).count() == 2,
            60,
            "the upgrade prompts",
            worker,
        )
        settle()
    finally:
        worker.stop()

    assert box.by_recipient() == {"al@example.com": 1}
    sent = box.received[0]
    assert str(sent["From"]) == "Casey Jones <casey@example.com>"
    assert str(sent["Subject"]) == "Acme: room to grow"
    stopped = Message.objects.get(person=uma, campaign__key="expansion-csm")
    assert stopped.reason == Reason.NO_CONSENT
    # The upgrade prompt is on Al's in-app surface (and Uma's), not Ana's nor Ivy's.
    shown = campaigns.in_product_messages(al.pk)
    assert [m.subject for m in shown] == ["You are growing fast"]
    assert "Acme made 500 API calls" in shown[0].html
    assert campaigns.in_product_messages(ana.pk) == []
    ivy_entry = Entry.objects.get(journey=journey, person__traits__account_id="initech")
    assert (ivy_entry.state, ivy_entry.exit_reason) == (EntryState.EXITED, "exit event: Plan Upgraded")
    assert not StepRun.objects.filter(entry=ivy_entry).exists()


# --- weekly digest ----------------------------------------------------------------------------------------

DIGEST_HTML = (
    "<html><body>{% for item in journey.picks %}"
    '<p><a href="{{ item.url }}">{{ item.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)

# Mondays, 08:10 in Berlin (07:10 UTC): the hour after the digest's 08:00 there, 02:10 in New York.
MONDAYS = [datetime(2026, 11, day, 7, 10, tzinfo=UTC) for day in (9, 16, 23)]


@pytest.mark.django_db(transaction=True)
def test_weekly_digest_end_to_end(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    for n in range(1, 6):
        Item.objects.create(external_id=f"p{n}", title=f"Pick {n}", price="9.90", stock=5)
    for n in range(1, 6):  # p1 the most popular, p5 the least
        for _ in range(7 - n):
            track("crowd", "Product Viewed", product_id=f"p{n}")
    make_campaign(
        "weekly-digest",
        subject="Your week: {{ journey.picks|length }} picks",
        html=DIGEST_HTML,
        text="{% for item in journey.picks %}{{ item.title }}\n{% endfor %}",
        content_limit=0,
        audience={"all": []},
        send_time_optimization=True,
    )
    journey = from_starter("weekly-digest")
    person("ana", timezone="Europe/Berlin")
    person("ned", timezone="America/New_York")
    cy = person("cy", timezone="Europe/Berlin")

    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        weeks = []
        for week, monday in enumerate(MONDAYS):
            entering_now = entering.on_schedule(now=monday)  # what the beat job does that Monday
            weeks.append(entering_now)
            if week == 0:
                profiles.record_consent(cy.pk, "email_marketing", False, source="preference centre")
            expected = min(week + 1, 2)  # a third Monday has nothing new: no email
            wait_for(
                lambda: not Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).exists(),
                60,
                f"week {week + 1}'s digests",
                worker,
            )
            wait_for(lambda e=expected: len(box.received) >= e, 60, f"week {week + 1}'s email", worker)  # type: ignore[misc]
        settle()
    finally:
        worker.stop()

    assert weeks == [2, 2, 2]  # Ana and Cy, in Berlin, each Monday; Ned not at that hour
    assert box.by_recipient() == {"ana@example.com": 2}
    first, second = box.received
    assert str(first["Subject"]) == "Your week: 3 picks"
    assert str(second["Subject"]) == "Your week: 2 picks"  # only what she was not shown before
    ana_messages = Message.objects.filter(person__traits__email="ana@example.com").order_by("pk")
    assert [m.item_ids for m in ana_messages] == [["p1", "p2", "p3"], ["p4", "p5"]]
    third = Entry.objects.filter(journey=journey, person__traits__email="ana@example.com").order_by("entered_at")[2]
    assert StepRun.objects.get(entry=third).outcome == "skipped: nothing new qualifies"
    refused = Message.objects.filter(person=cy)
    assert {(m.state, m.reason) for m in refused} == {(MessageState.SUPPRESSED, Reason.NO_CONSENT)}
    measures = services.step_measures(journey)
    assert measures["steps"][0]["entered"] == 6 and measures["steps"][0]["finished"] == 6
