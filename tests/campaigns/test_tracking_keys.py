"""Finding 6 of issue 12: tokens in emails were signed with the site's secret key, which fell back to
a public constant, so anyone could forge a one-click unsubscribe. They are now signed with a key of
their own, which is rotated with a grace period for the links in emails already sent."""

from __future__ import annotations

from django.core import signing

from campaigns import tracking
from campaigns.models import Message
from profiles import services as profiles
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track

OLD_PUBLIC_DEFAULT = "insecure-embedded-default-key-for-local-use-only"


def _sent(shop) -> Message:
    shop()
    person("ann", first_name="Ann")
    track("ann", "Product Viewed", product_id="a1")
    campaign = launch_and_prepare(make_campaign("t"))
    assert send_all() == {"sent": 1}
    return Message.objects.get(campaign=campaign)


def _email_consent(person_id: int) -> bool | None:
    state = next((s for s in profiles.consent_states(person_id) if s.purpose == "email_marketing"), None)
    return None if state is None else state.granted


def test_finding_6_a_forged_unsubscribe_token_withdraws_nothing(db, shop, client, settings):
    message = _sent(shop)
    before = _email_consent(message.person_id)
    value = f"{message.campaign_id}-{message.person_id}"
    for key in (OLD_PUBLIC_DEFAULT, settings.SECRET_KEY):  # the old public constant, and the site's key
        forged = signing.Signer(key=key, salt="campaigns.unsubscribe").sign(value)
        assert client.post(f"/t/u/{forged}").status_code == 404
    message.refresh_from_db()
    assert message.unsubscribed_at is None
    assert _email_consent(message.person_id) == before
    # The genuine token, signed with the tracking key, still works.
    assert client.post(f"/t/u/{tracking.unsubscribe_token(message.campaign_id, message.person_id)}").status_code == 200
    assert _email_consent(message.person_id) is False


def test_tracking_tokens_are_signed_with_the_tracking_key_not_the_secret_key(settings):
    token = tracking.open_token(7, 8)
    assert signing.Signer(key=settings.TRACKING_SECRET_KEY, salt="campaigns.tracking.open").unsign(token) == "7-8"
    settings.SECRET_KEY = "a-different-secret-key-rotated-for-sessions-only-0123456789abcdef"
    assert tracking.read("open", token) == tracking.TrackedMessage(7, 8)


def test_a_rotated_tracking_key_keeps_old_links_working_during_the_grace_period(settings):
    settings.TRACKING_SECRET_KEY = "tracking-key-one"
    settings.TRACKING_SECRET_KEYS_OLD = []
    old_click, old_unsubscribe = tracking.click_token(3, 4, 1), tracking.unsubscribe_token(3, 4)

    settings.TRACKING_SECRET_KEY = "tracking-key-two"
    settings.TRACKING_SECRET_KEYS_OLD = ["tracking-key-one"]
    assert tracking.read("click", old_click) == tracking.TrackedMessage(3, 4, 1)
    assert tracking.read("unsubscribe", old_unsubscribe) == tracking.TrackedMessage(3, 4)
    new_token = tracking.unsubscribe_token(3, 4)
    assert new_token != old_unsubscribe  # new links are signed with the new key
    assert signing.Signer(key="tracking-key-two", salt="campaigns.unsubscribe").unsign(new_token) == "3-4"

    settings.TRACKING_SECRET_KEYS_OLD = []  # the grace period is over
    assert tracking.read("click", old_click) is None
    assert tracking.read("unsubscribe", old_unsubscribe) is None
    assert tracking.read("unsubscribe", new_token) == tracking.TrackedMessage(3, 4)
