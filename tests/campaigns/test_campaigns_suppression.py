"""Who is not sent a message, and why: consent and unsubscribes are checked when rendering and again
just before sending."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from campaigns import services, tracking
from campaigns.models import Message, MessageState, Reason
from profiles import services as profiles
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all


def _reasons(campaign) -> dict[str, tuple[str, str]]:
    return {m.person.traits.get("first_name"): (m.state, m.reason) for m in Message.objects.filter(campaign=campaign)}


def test_suppression_reasons_at_rendering(db):
    person("a", first_name="Granted")
    person("b", first_name="Silent", consent=None)  # never said anything: the default (no) holds
    withdrawn = person("c", first_name="Withdrawn")
    profiles.record_consent(withdrawn.pk, "email_marketing", False, source="preference center")
    unsubscribed = person("d", first_name="Unsubscribed")
    profiles.record_consent(unsubscribed.pk, "email_marketing", False, source="unsubscribe link")
    person("e", first_name="Nomail", email="")

    campaign = launch_and_prepare(make_campaign("s"))
    assert _reasons(campaign) == {
        "Granted": (MessageState.SCHEDULED, ""),
        "Silent": (MessageState.SUPPRESSED, Reason.NO_CONSENT),
        "Withdrawn": (MessageState.SUPPRESSED, Reason.NO_CONSENT),
        "Unsubscribed": (MessageState.SUPPRESSED, Reason.UNSUBSCRIBED),
        "Nomail": (MessageState.SUPPRESSED, Reason.NO_ADDRESS),
    }
    suppressed = Message.objects.get(campaign=campaign, person=withdrawn)
    assert suppressed.html == "" and suppressed.subject == ""  # nothing is rendered for them
    assert send_all() == {"sent": 1}


def test_consent_withdrawn_after_rendering_is_honoured_just_before_sending(db):
    ann = person("ann", first_name="Ann")
    person("bob", first_name="Bob")
    campaign = launch_and_prepare(make_campaign("late"))
    assert Message.objects.get(campaign=campaign, person=ann).state == MessageState.SCHEDULED

    profiles.record_consent(ann.pk, "email_marketing", False, source="support ticket")
    assert send_all() == {"sent": 1, "suppressed": 1}
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    message = Message.objects.get(campaign=campaign, person=ann)
    assert (message.state, message.reason) == (MessageState.SUPPRESSED, Reason.NO_CONSENT)


def test_an_unsubscribe_suppresses_the_persons_other_messages_not_sent_yet(db, client):
    ann = person("ann", first_name="Ann")
    first = launch_and_prepare(make_campaign("first"))
    later = make_campaign("later", send_at=timezone.now() + timedelta(days=2))
    launch_and_prepare(later)
    assert send_all() == {"sent": 1}
    waiting = Message.objects.get(campaign=later, person=ann)
    assert waiting.state == MessageState.SCHEDULED

    token = tracking.unsubscribe_token(first.pk, ann.pk)
    assert client.get(f"/t/u/{token}").status_code == 200  # the confirmation page changes nothing
    assert profiles.has_consent(ann.pk, "email_marketing")
    assert client.post(f"/t/u/{token}").status_code == 200
    assert not profiles.has_consent(ann.pk, "email_marketing")
    waiting.refresh_from_db()
    assert (waiting.state, waiting.reason) == (MessageState.SUPPRESSED, Reason.UNSUBSCRIBED)

    # And a campaign prepared afterwards says why.
    third = launch_and_prepare(make_campaign("third"))
    assert Message.objects.get(campaign=third, person=ann).reason == Reason.UNSUBSCRIBED


def test_a_paused_campaign_sends_nothing_until_resumed(db):
    person("ann", first_name="Ann")
    campaign = launch_and_prepare(make_campaign("pause"))
    services.pause(campaign)
    assert send_all() == {}
    services.resume(campaign)
    assert send_all() == {"sent": 1}
